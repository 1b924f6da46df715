//! `kubectl exec` in Rust: run a command in a pod's container, or with `-it` an interactive
//! shell wired to this terminal (raw mode, resizes followed).
//!
//! Runs against the cluster of the current kubeconfig when one answers (then POD is
//! required), otherwise against an embedded kube-testserver with a pod created for the demo
//! (its simulated kubelet runs a tiny shell: echo, cat, env, hostname, date, sleep, exit N,
//! stty size, sh -c).
//!
//! ```sh
//! cargo run -p kube-rest --example exec                                 # echo in a demo pod
//! cargo run -p kube-rest --example exec -- -- sh -c 'hostname; exit 3' # exit code 3
//! cargo run -p kube-rest --example exec -- -it                          # interactive sh
//! cargo run -p kube-rest --example exec -- -it -n default web-0 -c app -- sh
//! ```
//!
//! The exit code is the remote command's.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube_rest::exec::{AttachParams, TerminalResizer, TerminalSize};
use kube_rest::{Api, Client, Config, DeleteParams, PostParams};
use kube_testserver::TestServer;
use tokio::io::AsyncWriteExt as _;

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const USAGE: &str =
    "usage: exec [-i] [-t] [-it] [-n NAMESPACE] [-c CONTAINER] [POD] [-- COMMAND [ARG...]]";

struct Options {
    stdin: bool,
    tty: bool,
    namespace: Option<String>,
    container: Option<String>,
    pod: Option<String>,
    command: Vec<String>,
}

fn parse_args() -> Result<Options> {
    let mut options = Options {
        stdin: false,
        tty: false,
        namespace: None,
        container: None,
        pod: None,
        command: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-i" | "--stdin" => options.stdin = true,
            "-t" | "--tty" => options.tty = true,
            "-it" | "-ti" => (options.stdin, options.tty) = (true, true),
            "-n" | "--namespace" => options.namespace = Some(args.next().ok_or(USAGE)?),
            "-c" | "--container" => options.container = Some(args.next().ok_or(USAGE)?),
            "-h" | "--help" => return Err(USAGE.into()),
            "--" => {
                options.command = args.by_ref().collect();
            }
            other if other.starts_with('-') => return Err(format!("{other}: {USAGE}").into()),
            pod if options.pod.is_none() => options.pod = Some(pod.to_string()),
            _ => return Err(USAGE.into()),
        }
    }
    if options.command.is_empty() {
        options.command = if options.stdin && options.tty {
            vec!["sh".into()]
        } else {
            ["sh", "-c", "echo hello from $HOSTNAME"]
                .map(String::from)
                .to_vec()
        };
    }
    Ok(options)
}

/// The cluster of the current kubeconfig if it answers, else an embedded kube-testserver.
async fn connect() -> Result<(Client, Option<TestServer>)> {
    if let Ok(config) = Config::infer() {
        let client = Client::try_from_config(config)?;
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(5), client.server_version()).await
        {
            return Ok((client, None));
        }
    }
    eprintln!("(no cluster answers: using an embedded kube-testserver)");
    let server = TestServer::builder()
        .simulated_kubelet(Some(Duration::from_millis(100)))
        .start()
        .await?;
    let kubeconfig =
        kube_rest::Kubeconfig::parse(&server.kubeconfig_yaml(), std::path::Path::new("embedded"))?;
    Ok((
        Client::try_from_config(Config::from_kubeconfig(&kubeconfig)?)?,
        Some(server),
    ))
}

/// Creates the demo pod on the embedded server and waits until it runs.
async fn demo_pod(pods: &Api<Pod>) -> Result<String> {
    let name = "exec-demo";
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "busybox", "image": "busybox", "command": ["sleep", "3600"]}]}
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let pod = pods.get(name).await?;
            if pod.status.and_then(|s| s.phase).as_deref() == Some("Running") {
                return Ok::<_, kube_rest::Error>(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .map_err(|_| "the demo pod did not run within 10 s")??;
    Ok(name.to_string())
}

/// Raw mode on the local terminal for as long as it lives.
struct RawMode;

impl RawMode {
    fn enable() -> Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

fn local_size() -> Option<TerminalSize> {
    let (width, height) = crossterm::terminal::size().ok()?;
    Some(TerminalSize { width, height })
}

/// Sends the terminal's size now and after every SIGWINCH.
async fn follow_resizes(resizer: TerminalResizer) {
    if let Some(size) = local_size() {
        resizer.resize(size);
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut changes) = signal(SignalKind::window_change()) else {
            return;
        };
        while changes.recv().await.is_some() {
            if let Some(size) = local_size()
                && !resizer.resize(size)
            {
                return;
            }
        }
    }
}

async fn run(options: Options) -> Result<i32> {
    let (client, server) = connect().await?;
    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let pod = match (&options.pod, &server) {
        (Some(pod), _) => pod.clone(),
        (None, Some(_)) => demo_pod(&pods).await?,
        (None, None) => return Err(format!("a POD is needed against a cluster\n{USAGE}").into()),
    };
    let mut tty = options.tty;
    if tty && !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
        tty = false;
    }
    let mut params = AttachParams::default()
        .stdin(options.stdin)
        .tty(tty)
        .stderr(!tty);
    if let Some(container) = &options.container {
        params = params.container(container.clone());
    }
    let mut process = pods.exec(&pod, options.command.clone(), &params).await?;
    let raw_mode = if tty { Some(RawMode::enable()?) } else { None };

    if let Some(resizer) = process.terminal_resizer() {
        tokio::spawn(follow_resizes(resizer));
    }
    if let Some(mut remote_stdin) = process.stdin() {
        tokio::spawn(async move {
            let mut local = tokio::io::stdin();
            // EOF on the local stdin closes the remote one (with v5).
            if tokio::io::copy(&mut local, &mut remote_stdin).await.is_ok() {
                let _ = remote_stdin.shutdown().await;
            }
        });
    }
    let stdout = process.stdout().map(|mut remote| {
        tokio::spawn(async move {
            let mut local = tokio::io::stdout();
            let _ = tokio::io::copy(&mut remote, &mut local).await;
            let _ = local.flush().await;
        })
    });
    let stderr = process.stderr().map(|mut remote| {
        tokio::spawn(async move {
            let mut local = tokio::io::stderr();
            let _ = tokio::io::copy(&mut remote, &mut local).await;
        })
    });
    let status = process.join().await;
    for copy in [stdout, stderr].into_iter().flatten() {
        let _ = copy.await;
    }
    drop(raw_mode);
    let status = status?;
    if !status.success() {
        eprintln!("command terminated with exit code {}", status.code());
    }
    if server.is_some() && options.pod.is_none() {
        pods.delete(&pod, &DeleteParams::default().grace_period(0))
            .await?;
    }
    Ok(status.code())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let code = match run(options).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    // The local stdin is read by a blocking thread that may still wait for input: exit now.
    std::process::exit(code);
}
