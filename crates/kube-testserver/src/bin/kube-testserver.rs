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
//!
//! `--fault-seed S` runs a seeded random fault schedule (see `kube_testserver::schedule`):
//! `--fault-duration D` long (default 60s), starting `--fault-delay D` after the start
//! (default 0), one fault every `--fault-interval D` on average (default 1s), of the kinds
//! `--fault-kinds a,b,...` (default all: cut-all-watches, cut-some-watches, compact, 429, 5xx,
//! latency, stall, restart-listener, restart-server), down at most `--fault-max-down D`
//! (default 2s). Each fault is written as a JSON line (`{"seed":S,"step":N,"at_ms":T,
//! "kind":K,"fault":"..."}`) to `--fault-log PATH` (default: standard output), and a last line
//! `{"done":true,"seed":S,"by_kind":{...},...}` when the schedule ends; the server then goes
//! on serving until Ctrl-C. `--fault-dry-run` prints the schedule and exits.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use kube_testserver::schedule::{FaultKind, FaultSchedule, ScheduleOptions};
use kube_testserver::{TestServer, WatchCacheSize};

const USAGE: &str = "usage: kube-testserver [--listen ADDR:PORT] [--kubeconfig-out PATH] [--plain-http] [--token TOKEN] [--allow-anonymous] [--client-cert-auth] [--no-simulated-kubelet] [--kubelet-delay-ms N] [--watch-cache-size N] [--etcd-compaction-interval DURATION] [--fault-seed S [--fault-duration D] [--fault-delay D] [--fault-interval D] [--fault-kinds K,K...] [--fault-max-down D] [--fault-log PATH] [--fault-dry-run]]";

/// The fault schedule options.
struct FaultOptions {
    seed: Option<u64>,
    duration: Duration,
    delay: Duration,
    interval: Duration,
    kinds: Vec<FaultKind>,
    max_down: Duration,
    log: Option<String>,
    /// Print the schedule and exit.
    dry_run: bool,
}

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
    faults: FaultOptions,
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
        faults: FaultOptions {
            seed: None,
            duration: Duration::from_secs(60),
            delay: Duration::ZERO,
            interval: Duration::from_secs(1),
            kinds: FaultKind::ALL.to_vec(),
            max_down: Duration::from_secs(2),
            log: None,
            dry_run: false,
        },
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
            "--fault-seed" => {
                let text = value("--fault-seed")?;
                let seed = text
                    .parse()
                    .map_err(|e| format!("--fault-seed {text}: {e}"))?;
                options.faults.seed = Some(seed);
            }
            "--fault-duration" => {
                options.faults.duration = parse_duration(&value("--fault-duration")?)
                    .map_err(|e| format!("--fault-duration {e}"))?;
            }
            "--fault-delay" => {
                options.faults.delay = parse_duration(&value("--fault-delay")?)
                    .map_err(|e| format!("--fault-delay {e}"))?;
            }
            "--fault-interval" => {
                options.faults.interval = parse_duration(&value("--fault-interval")?)
                    .map_err(|e| format!("--fault-interval {e}"))?;
            }
            "--fault-max-down" => {
                options.faults.max_down = parse_duration(&value("--fault-max-down")?)
                    .map_err(|e| format!("--fault-max-down {e}"))?;
            }
            "--fault-kinds" => {
                options.faults.kinds = value("--fault-kinds")?
                    .split(',')
                    .filter(|k| !k.is_empty())
                    .map(|k| k.parse::<FaultKind>().map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?;
            }
            "--fault-log" => options.faults.log = Some(value("--fault-log")?),
            "--fault-dry-run" => options.faults.dry_run = true,
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
    if options.faults.dry_run {
        let schedule = FaultSchedule::random(
            options.faults.seed.unwrap_or(0),
            &schedule_options(&options.faults),
        );
        for (step, scheduled) in schedule.faults().iter().enumerate() {
            println!(
                "{step:>4} {:>9.3}s  {}",
                scheduled.at.as_secs_f64(),
                scheduled.fault
            );
        }
        return ExitCode::SUCCESS;
    }
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
    let schedule = async {
        match options.faults.seed {
            Some(seed) => run_faults(&server, seed, &options.faults).await,
            None => std::future::pending().await,
        }
    };
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            eprintln!("kube-testserver: cannot wait for Ctrl-C: {error}");
        }
    };
    tokio::pin!(ctrl_c);
    tokio::select! {
        _ = &mut ctrl_c => {}
        ended = schedule => {
            if let Err(error) = ended {
                eprintln!("kube-testserver: fault log: {error}");
                return ExitCode::FAILURE;
            }
            ctrl_c.await;
        }
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}

fn schedule_options(options: &FaultOptions) -> ScheduleOptions {
    ScheduleOptions::new(options.duration)
        .mean_interval(options.interval)
        .kinds(options.kinds.iter().copied())
        .max_down(options.max_down)
}

/// Runs the seeded fault schedule, logging each fault as a JSON line.
async fn run_faults(server: &TestServer, seed: u64, options: &FaultOptions) -> std::io::Result<()> {
    use std::io::Write;
    let mut log: Box<dyn Write + Send> = match &options.log {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None => Box::new(std::io::stdout()),
    };
    let schedule = FaultSchedule::random(seed, &schedule_options(options));
    tokio::time::sleep(options.delay).await;
    let mut failed = None;
    let report = server
        .run_fault_schedule(&schedule, &Default::default(), |step, scheduled| {
            let line = serde_json::json!({
                "seed": seed,
                "step": step,
                "at_ms": scheduled.at.as_millis() as u64,
                "kind": scheduled.fault.kind().as_str(),
                "fault": scheduled.fault.to_string(),
            });
            if let Err(error) = writeln!(log, "{line}").and_then(|()| log.flush()) {
                failed.get_or_insert(error);
            }
        })
        .await;
    if let Some(error) = failed {
        return Err(error);
    }
    let by_kind: serde_json::Map<String, serde_json::Value> = report
        .by_kind
        .iter()
        .map(|(kind, count)| (kind.as_str().to_string(), (*count).into()))
        .collect();
    let line = serde_json::json!({
        "done": true,
        "seed": seed,
        "by_kind": by_kind,
        "requests_failed": report.requests_failed,
        "responses_stalled": report.responses_stalled,
        "watches_cut": report.watches_cut,
        "restart_errors": report.restart_errors,
    });
    writeln!(log, "{line}")?;
    log.flush()
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

    #[test]
    fn fault_flags() {
        let options = parse(&args(&[
            "--fault-seed",
            "7",
            "--fault-duration",
            "30s",
            "--fault-kinds",
            "compact,429",
            "--fault-log",
            "/tmp/f.jsonl",
        ]))
        .unwrap();
        assert_eq!(options.faults.seed, Some(7));
        assert_eq!(options.faults.duration, Duration::from_secs(30));
        assert_eq!(
            options.faults.kinds,
            [FaultKind::Compact, FaultKind::TooManyRequests]
        );
        assert_eq!(options.faults.log.as_deref(), Some("/tmp/f.jsonl"));
        assert!(parse(&args(&["--fault-kinds", "flood"])).is_err());
    }
}
