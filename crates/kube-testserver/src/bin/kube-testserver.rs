//! `kube-testserver --listen 127.0.0.1:PORT --kubeconfig-out PATH [--plain-http] [--token T]`:
//! runs an in-memory Kubernetes API server until Ctrl-C.
//!
//! The simulated kubelet runs by default (pods go Running, write logs, and terminate within
//! their grace period): `--kubelet-delay-ms N` sets its delay (default 300),
//! `--no-simulated-kubelet` turns it off. `--simulated-kubelet` is accepted and does nothing
//! (it turned the kubelet on when it was off by default).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use kube_testserver::TestServer;

const USAGE: &str = "usage: kube-testserver [--listen ADDR:PORT] [--kubeconfig-out PATH] [--plain-http] [--token TOKEN] [--allow-anonymous] [--client-cert-auth] [--no-simulated-kubelet] [--kubelet-delay-ms N]";

struct Options {
    listen: SocketAddr,
    kubeconfig_out: Option<String>,
    plain_http: bool,
    token: Option<String>,
    anonymous: bool,
    client_cert_auth: bool,
    kubelet: bool,
    kubelet_delay: Duration,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 6443)),
        kubeconfig_out: None,
        plain_http: false,
        token: None,
        anonymous: false,
        client_cert_auth: false,
        kubelet: true,
        kubelet_delay: kube_testserver::DEFAULT_KUBELET_DELAY,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| {
            iter.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--listen" => {
                let text = value("--listen")?;
                options.listen = text.parse().map_err(|e| format!("--listen {text}: {e}"))?;
            }
            "--kubeconfig-out" => options.kubeconfig_out = Some(value("--kubeconfig-out")?),
            "--token" => options.token = Some(value("--token")?),
            "--plain-http" => options.plain_http = true,
            "--allow-anonymous" => options.anonymous = true,
            "--client-cert-auth" => options.client_cert_auth = true,
            // On by default now; kept so older command lines still work.
            "--simulated-kubelet" => {}
            "--no-simulated-kubelet" => options.kubelet = false,
            "--kubelet-delay-ms" => {
                let text = value("--kubelet-delay-ms")?;
                let millis: u64 = text
                    .parse()
                    .map_err(|e| format!("--kubelet-delay-ms {text}: {e}"))?;
                options.kubelet_delay = Duration::from_millis(millis);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("kube-testserver: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = TestServer::builder()
        .listen(options.listen)
        .allow_anonymous(options.anonymous)
        .client_cert_auth(options.client_cert_auth)
        .simulated_kubelet(options.kubelet.then_some(options.kubelet_delay));
    if options.plain_http {
        builder = builder.plain_http();
    }
    if let Some(token) = options.token {
        builder = builder.token(token);
    }
    let server = match builder.start().await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("kube-testserver: {error}");
            return ExitCode::FAILURE;
        }
    };
    match &options.kubeconfig_out {
        Some(path) => {
            if let Err(error) = server.write_kubeconfig(path) {
                eprintln!("kube-testserver: cannot write {path}: {error}");
                return ExitCode::FAILURE;
            }
            println!(
                "kube-testserver serving {} (kubeconfig: {path})",
                server.url()
            );
        }
        None => println!(
            "kube-testserver serving {}\n{}",
            server.url(),
            server.kubeconfig_yaml()
        ),
    }
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("kube-testserver: cannot wait for Ctrl-C: {error}");
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}
