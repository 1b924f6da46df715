//! `cargo xtask bench informer-sync`: issue 14's informer benchmark.
//!
//! Starts the kube-testserver binary in a process of its own (or uses the cluster of
//! `--kubeconfig`), loads N pods built from `shared/fixtures/pod-realistic.json` (with their
//! managedFields, as a real server returns them) through the `informer_sync` example's `load`,
//! then runs the example's `sync` in a fresh process `--runs` times per mode and prints the
//! medians: time from start to `has_synced`, client CPU time, client RSS growth per pod, and
//! the server's CPU time per run when its process is known (`--server-pid`, or the
//! kube-testserver started here).
//!
//! ```sh
//! cargo xtask bench informer-sync [--pods 10000,100000] [--runs 5]
//!     [--modes typed,compact,typed+stream] [--kubeconfig PATH [--load] [--server-pid PID]]
//! ```
//!
//! Modes join flags with `+`: `typed` or `compact` (ours over kube-rest), `kubeclient` (ours
//! over kube-rs's client), `kube-rs` (kube-rs's own watcher + reflector; `+strip` drops
//! managedFields with `.modify()`), `stream` (streaming list), `json` (lists in JSON, not protobuf), `managedfields` (kept).
//! The side-by-side run: `--modes typed,typed+kubeclient,kube-rs,kube-rs+strip`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Options {
    pods: Vec<usize>,
    runs: usize,
    modes: Vec<String>,
    kubeconfig: Option<PathBuf>,
    load: bool,
    server_pid: Option<u32>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        pods: vec![10_000],
        runs: 5,
        modes: vec!["typed".into(), "compact".into()],
        kubeconfig: None,
        load: false,
        server_pid: None,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| iter.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--pods" => {
                options.pods = value("--pods")?
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|e| format!("--pods {n}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--runs" => {
                options.runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?
            }
            "--modes" => options.modes = value("--modes")?.split(',').map(str::to_string).collect(),
            "--kubeconfig" => options.kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--load" => options.load = true,
            "--server-pid" => {
                options.server_pid = Some(
                    value("--server-pid")?
                        .parse()
                        .map_err(|e| format!("--server-pid: {e}"))?,
                )
            }
            other => return Err(format!("informer-sync: unknown argument `{other}`")),
        }
    }
    if options.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(options)
}

/// CPU time (user + system) of a process, in milliseconds.
fn process_cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10.0)
}

/// A kube-testserver process, killed on drop.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(binary: &Path, kubeconfig: &Path) -> Result<Server, String> {
    let _ = std::fs::remove_file(kubeconfig);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let child = Command::new(binary)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--kubeconfig-out")
        .arg(kubeconfig)
        .arg("--no-simulated-kubelet")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let server = Server { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() {
        if Instant::now() > deadline {
            return Err("kube-testserver did not write its kubeconfig within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

/// One `RESULT` line's figures.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    n: f64,
    sync_ms: f64,
    cpu_ms: f64,
    growth_b: f64,
    server_cpu_ms: Option<f64>,
}

fn parse_result(line: &str) -> Option<Sample> {
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some(Sample {
        n: field("n")?,
        sync_ms: field("sync_ms")?,
        cpu_ms: field("cpu_sync_ms")?,
        growth_b: field("growth_b_per_obj")?,
        server_cpu_ms: None,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn mode_args(mode: &str) -> Vec<&'static str> {
    let mut args = Vec::new();
    for part in mode.split('+') {
        match part {
            "compact" => args.push("--compact"),
            "stream" => args.push("--streaming"),
            "json" => args.push("--json"),
            "managedfields" => args.push("--keep-managed-fields"),
            "kubeclient" => args.push("--kube-client"),
            "kube-rs" => args.push("--kube-rs"),
            "strip" => args.push("--strip"),
            _ => {}
        }
    }
    args
}

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let build = |args: &[&str]| -> Result<(), String> {
        let status = Command::new(&cargo)
            .current_dir(root)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or(format!("cargo {} failed", args.join(" ")))
    };
    eprintln!("== building kube-testserver and the informer_sync example (release)");
    build(&[
        "build",
        "--release",
        "-p",
        "kube-testserver",
        "--bin",
        "kube-testserver",
    ])?;
    build(&[
        "build",
        "--release",
        "-p",
        "kube-cache",
        "--features",
        "rest,kube",
        "--example",
        "informer_sync",
    ])?;
    let release = crate::target_dir(root).join("release");
    let example = release.join("examples").join("informer_sync");
    let fixture = root.join("../shared/fixtures/pod-realistic.json");

    println!(
        "| pods | mode | sync to ready | client CPU | RSS growth per pod | server CPU per run | runs |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for &pods in &options.pods {
        let scratch = std::env::temp_dir().join(format!("informer-sync-{pods}"));
        let _ = std::fs::create_dir_all(&scratch);
        let (_server, kubeconfig, server_pid) = match &options.kubeconfig {
            Some(path) => (None, path.clone(), options.server_pid),
            None => {
                let kubeconfig = scratch.join("kubeconfig");
                let server = start_server(&release.join("kube-testserver"), &kubeconfig)?;
                let pid = server.child.id();
                (Some(server), kubeconfig, Some(pid))
            }
        };
        if options.kubeconfig.is_none() || options.load {
            eprintln!("== loading {pods} pods");
            let status = Command::new(&example)
                .arg("load")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["--pods", &pods.to_string()])
                .arg("--fixture")
                .arg(&fixture)
                .status()
                .map_err(|e| format!("cannot run {}: {e}", example.display()))?;
            if !status.success() {
                return Err(format!("loading {pods} pods failed ({status})"));
            }
        }
        for mode in &options.modes {
            let mut samples = Vec::new();
            for run in 0..options.runs {
                let server_before = server_pid.and_then(process_cpu_ms);
                let output = Command::new(&example)
                    .arg("sync")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .args(mode_args(mode))
                    .output()
                    .map_err(|e| format!("cannot run {}: {e}", example.display()))?;
                let server_after = server_pid.and_then(process_cpu_ms);
                let stdout = String::from_utf8_lossy(&output.stdout);
                let line = stdout.lines().find(|l| l.starts_with("RESULT"));
                let Some(mut sample) = line.and_then(parse_result) else {
                    return Err(format!(
                        "sync run {run} ({mode}) printed no RESULT: {}{}",
                        stdout,
                        String::from_utf8_lossy(&output.stderr)
                    ));
                };
                sample.server_cpu_ms = server_before.zip(server_after).map(|(a, b)| b - a);
                eprintln!("{}", line.unwrap_or_default());
                samples.push(sample);
            }
            let pick = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
            let server = samples
                .iter()
                .map(|s| s.server_cpu_ms)
                .collect::<Option<Vec<f64>>>()
                .map(|v| format!("{:.2} s", median(v) / 1000.0))
                .unwrap_or_else(|| "-".into());
            println!(
                "| {:.0} | {mode} | {:.2} s | {:.2} s | {:.1} KB | {server} | {} |",
                pick(|s| s.n),
                pick(|s| s.sync_ms) / 1000.0,
                pick(|s| s.cpu_ms) / 1000.0,
                pick(|s| s.growth_b) / 1000.0,
                options.runs
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_result_line() {
        let line = "RESULT impl=kube-toolkit mode=typed n=10001 sync_ms=612.5 total_ms=640.0 \
                    cpu_ms=700.0 cpu_sync_ms=650.0 rss0_kb=1 rss1_kb=2 hwm_kb=3 growth_b_per_obj=9000";
        let sample = parse_result(line).unwrap();
        assert_eq!(sample.n, 10001.0);
        assert_eq!(sample.sync_ms, 612.5);
        assert_eq!(sample.cpu_ms, 650.0);
        assert_eq!(sample.growth_b, 9000.0);
        assert!(parse_result("RESULT n=1").is_none());
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn modes_map_to_flags() {
        assert_eq!(mode_args("compact+stream"), ["--compact", "--streaming"]);
        assert!(mode_args("typed").is_empty());
        assert_eq!(mode_args("kube-rs+strip"), ["--kube-rs", "--strip"]);
        assert_eq!(mode_args("typed+kubeclient"), ["--kube-client"]);
    }
}
