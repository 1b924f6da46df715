//! `kube-testserver --listen 127.0.0.1:PORT --kubeconfig-out PATH [--plain-http] [--token T]`:
//! runs an in-memory Kubernetes API server until Ctrl-C.
//!
//! The simulated kubelet runs by default (pods go Running, write logs, and terminate within
//! their grace period): `--kubelet-delay-ms N` sets its delay (default 300),
//! `--no-simulated-kubelet` turns it off. `--simulated-kubelet` is accepted and does nothing
//! (it turned the kubelet on when it was off by default).
//!
//! Like kube-apiserver, the server keeps a bounded watch-cache window per resource and
//! compacts its history every 5 minutes: `--watch-cache-size N` fixes the window at N events
//! (0: no window, watches resume from anything compaction left; default: kube-apiserver's
//! dynamic 100 to 102,400 events), `--etcd-compaction-interval SECONDS` sets the interval
//! (a number of seconds or a duration such as `5m`, `30s`; 0 never compacts).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use kube_testserver::{TestServer, WatchCacheSize};

const USAGE: &str = "usage: kube-testserver [--listen ADDR:PORT] [--kubeconfig-out PATH] [--plain-http] [--token TOKEN] [--allow-anonymous] [--client-cert-auth] [--no-simulated-kubelet] [--kubelet-delay-ms N] [--watch-cache-size N] [--etcd-compaction-interval DURATION]";

struct Options {
    listen: SocketAddr,
    kubeconfig_out: Option<String>,
    plain_http: bool,
    token: Option<String>,
    anonymous: bool,
    client_cert_auth: bool,
    kubelet: bool,
    kubelet_delay: Duration,
    watch_cache: WatchCacheSize,
    compaction_interval: Duration,
}

/// `300`, `300s`, `5m`, `1h`, `250ms` or `0`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number.parse().map_err(|e| format!("{text}: {e}"))?;
    let unit_seconds = match unit {
        "ms" => return Ok(Duration::from_millis(value)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        other => return Err(format!("{text}: unknown unit {other:?} (ms, s, m or h)")),
    };
    Ok(Duration::from_secs(value.saturating_mul(unit_seconds)))
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
        watch_cache: WatchCacheSize::default(),
        compaction_interval: kube_testserver::DEFAULT_COMPACTION_INTERVAL,
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
            "--watch-cache-size" => {
                let text = value("--watch-cache-size")?;
                let events: usize = text
                    .parse()
                    .map_err(|e| format!("--watch-cache-size {text}: {e}"))?;
                options.watch_cache = if events == 0 {
                    WatchCacheSize::Unbounded
                } else {
                    WatchCacheSize::Fixed(events)
                };
            }
            "--etcd-compaction-interval" => {
                let text = value("--etcd-compaction-interval")?;
                options.compaction_interval =
                    parse_duration(&text).map_err(|e| format!("--etcd-compaction-interval {e}"))?;
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
        .simulated_kubelet(options.kubelet.then_some(options.kubelet_delay))
        .watch_cache(options.watch_cache)
        .compaction_interval(Some(options.compaction_interval));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn window_and_compaction_flags() {
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.watch_cache, WatchCacheSize::default());
        assert_eq!(defaults.compaction_interval, Duration::from_secs(300));
        let options = parse(&args(&[
            "--watch-cache-size",
            "50",
            "--etcd-compaction-interval",
            "2m",
        ]))
        .unwrap();
        assert_eq!(options.watch_cache, WatchCacheSize::Fixed(50));
        assert_eq!(options.compaction_interval, Duration::from_secs(120));
        let off = parse(&args(&[
            "--watch-cache-size",
            "0",
            "--etcd-compaction-interval",
            "0",
        ]))
        .unwrap();
        assert_eq!(off.watch_cache, WatchCacheSize::Unbounded);
        assert!(off.compaction_interval.is_zero());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5d").is_err());
        assert!(parse(&args(&["--watch-cache-size", "many"])).is_err());
    }
}
