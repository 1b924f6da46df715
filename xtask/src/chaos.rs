//! `cargo xtask chaos [--seed S[,S...]] [--duration D] [--scenario NAME[,NAME...]]`: seeded
//! fault injection across the stack.
//!
//! For each seed and scenario, the runner starts the `kube-testserver` binary with a fault
//! schedule of that seed (`--fault-seed`), the scenario's client (`chaos-client`, a separate
//! process reporting JSON lines), and a load generator writing config maps, secrets and pods
//! across namespaces. When the schedule and the writes are over it asks the client to check
//! its state against the server's, and prints per scenario the faults injected by kind, the
//! writes made, the checks passed, the violations and the client's resident memory at start
//! and end. Any violation (or a scenario that could not run) fails the command.
//!
//! Scenarios: `informers` (caches, handlers, deletes and tombstones), `recorder` (never
//! blocking, losses only past the budget and counted), `leader` (never two leaders, one after
//! the faults), and `flagship` when the tree has `examples/podset-controller` (two replicas of
//! the controller: never more pods than asked, never two replicas leading or reconciling at
//! once, convergence after the faults). See docs/chaos.md.
//!
//! `--interval D` sets the mean time between faults (default 1s), `--max-down D` the longest
//! outage, latency period or stall (default 3s), `--bin-dir DIR` uses
//! prebuilt `kube-testserver` and `chaos-client` binaries instead of building them, `--out DIR`
//! keeps the logs there instead of `target/chaos`.

mod proc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use proc::{Proc, wait_for_file};

/// The scenarios, in the order they run.
const SCENARIOS: [&str; 4] = ["informers", "recorder", "leader", "flagship"];

/// The scenarios this tree can run: `flagship` needs the podset-controller example.
fn available(root: &Path) -> Vec<&'static str> {
    let flagship = root.join("examples/podset-controller/Cargo.toml").exists();
    SCENARIOS
        .into_iter()
        .filter(|s| *s != "flagship" || flagship)
        .collect()
}

struct Options {
    seeds: Vec<u64>,
    duration: Duration,
    scenarios: Vec<String>,
    interval: Duration,
    max_down: Duration,
    /// Prebuilt binaries (no build).
    bin_dir: Option<PathBuf>,
    /// Where the logs go (default `target/chaos`).
    out: Option<PathBuf>,
}

/// `20`, `20s`, `5m`, `1h` or `500ms`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number.parse().map_err(|e| format!("{text}: {e}"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(value),
        "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(value * 60),
        "h" => Duration::from_secs(value * 3600),
        other => return Err(format!("{text}: unknown unit {other:?}")),
    })
}

/// `1,2,5` or `1-10`.
fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let mut seeds = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((low, high)) => {
                let low: u64 = low.parse().map_err(|e| format!("--seed {part}: {e}"))?;
                let high: u64 = high.parse().map_err(|e| format!("--seed {part}: {e}"))?;
                seeds.extend(low..=high);
            }
            None => seeds.push(part.parse().map_err(|e| format!("--seed {part}: {e}"))?),
        }
    }
    Ok(seeds)
}

fn parse(args: &[String], available: &[&str]) -> Result<Options, String> {
    let mut options = Options {
        seeds: vec![1],
        duration: Duration::from_secs(20),
        scenarios: available.iter().map(|s| s.to_string()).collect(),
        interval: Duration::from_secs(1),
        max_down: Duration::from_secs(3),
        bin_dir: None,
        out: None,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seed" | "--seeds" => options.seeds = parse_seeds(&value()?)?,
            "--duration" => options.duration = parse_duration(&value()?)?,
            "--interval" => options.interval = parse_duration(&value()?)?,
            "--max-down" => options.max_down = parse_duration(&value()?)?,
            "--bin-dir" => options.bin_dir = Some(PathBuf::from(value()?)),
            "--out" => options.out = Some(PathBuf::from(value()?)),
            "--scenario" | "--scenarios" => {
                options.scenarios = value()?.split(',').map(str::to_string).collect();
                if let Some(unknown) = options
                    .scenarios
                    .iter()
                    .find(|s| !available.contains(&s.as_str()))
                {
                    return Err(format!(
                        "unknown scenario {unknown} (one of {})",
                        available.join(", ")
                    ));
                }
            }
            other => return Err(format!("unknown chaos option {other}")),
        }
    }
    if options.seeds.is_empty() {
        return Err("--seed: no seed".into());
    }
    Ok(options)
}

/// What one scenario run gave.
#[derive(Default)]
struct Outcome {
    scenario: String,
    seed: u64,
    faults: BTreeMap<String, u64>,
    requests_failed: u64,
    watches_cut: u64,
    writes: u64,
    write_errors: u64,
    checks: u64,
    passed: u64,
    violations: Vec<String>,
    rss_start: u64,
    rss_end: u64,
    stats: serde_json::Map<String, Value>,
    took: Duration,
}

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let options = parse(args, &available(root))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = match &options.bin_dir {
        Some(dir) => dir.clone(),
        None => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
            eprintln!("== building kube-testserver and chaos-client");
            let mut packages = vec!["build", "-p", "kube-testserver", "-p", "chaos-client"];
            // Built whenever present, so that every selection builds the same feature set.
            if available(root).contains(&"flagship") {
                packages.extend(["-p", "podset-controller"]);
            }
            let built = Command::new(&cargo)
                .current_dir(root)
                .args(&packages)
                .status()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !built.success() {
                return Err(format!("cargo build failed ({built})"));
            }
            target.join("debug")
        }
    };
    let work = options.out.clone().unwrap_or_else(|| target.join("chaos"));
    let mut outcomes = Vec::new();
    for &seed in &options.seeds {
        for scenario in &options.scenarios {
            let dir = work.join(format!("seed-{seed}")).join(scenario);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            eprintln!(
                "== chaos: {scenario}, seed {seed}, {:?} of faults (logs in {})",
                options.duration,
                dir.display()
            );
            let started = Instant::now();
            let mut outcome =
                run_scenario(&bin, &dir, scenario, seed, &options).unwrap_or_else(|error| {
                    Outcome {
                        checks: 1,
                        violations: vec![format!("the scenario could not run: {error}")],
                        ..Outcome::default()
                    }
                });
            outcome.scenario = scenario.clone();
            outcome.seed = seed;
            outcome.took = started.elapsed();
            for violation in &outcome.violations {
                eprintln!("   VIOLATION: {violation}");
            }
            outcomes.push(outcome);
        }
    }
    print_table(&outcomes);
    let violations: usize = outcomes.iter().map(|o| o.violations.len()).sum();
    if violations > 0 {
        return Err(format!(
            "{violations} violations (logs under {})",
            work.display()
        ));
    }
    Ok(())
}

fn run_scenario(
    bin: &Path,
    dir: &Path,
    scenario: &str,
    seed: u64,
    options: &Options,
) -> Result<Outcome, String> {
    let kubeconfig = dir.join("kubeconfig");
    let fault_log = dir.join("faults.jsonl");
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let server_args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--kubeconfig-out",
        &kubeconfig.to_string_lossy(),
        "--kubelet-delay-ms",
        "100",
        "--fault-seed",
        &seed.to_string(),
        "--fault-duration",
        &ms(options.duration),
        "--fault-interval",
        &ms(options.interval),
        "--fault-max-down",
        &ms(options.max_down),
        "--fault-delay",
        "2s",
        "--fault-log",
        &fault_log.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let server = Proc::spawn(&bin.join("kube-testserver"), &server_args, dir, "server")?;
    wait_for_file(&kubeconfig, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_millis(200));
    let client_bin = bin.join("chaos-client");
    let common = |extra: &[String]| -> Vec<String> {
        let mut args = vec![
            "--kubeconfig".to_string(),
            kubeconfig.to_string_lossy().into_owned(),
            "--seed".to_string(),
            seed.to_string(),
        ];
        args.extend_from_slice(extra);
        args
    };
    // The flagship's two replicas, each serving /metrics on its own port.
    let mut replicas = Vec::new();
    let mut extra = Vec::new();
    if scenario == "flagship" {
        let mut addresses = Vec::new();
        for index in 0..2 {
            let address = free_address()?;
            let args: Vec<String> = [
                "run",
                "--kubeconfig",
                &kubeconfig.to_string_lossy(),
                "--identity",
                &format!("replica-{index}"),
                "--metrics-address",
                &address,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let name = format!("replica-{index}");
            replicas.push(Proc::spawn(
                &bin.join("podset-controller"),
                &args,
                dir,
                &name,
            )?);
            addresses.push(address);
        }
        extra = vec!["--metrics".to_string(), addresses.join(",")];
    }
    let mut client = Proc::spawn(
        &client_bin,
        &{
            let mut args = vec![scenario.to_string()];
            args.extend(common(&extra));
            args
        },
        dir,
        scenario,
    )?;
    client.wait_for("ready", Duration::from_secs(120))?;
    // The memory of the client under test: the scenario's process, or the flagship's replicas.
    let rss = |client: &Proc, replicas: &[Proc]| match replicas {
        [] => client.rss_kib(),
        replicas => replicas.iter().map(Proc::rss_kib).sum(),
    };
    let rss_start = rss(&client, &replicas);
    let mut load = Proc::spawn(
        &client_bin,
        &{
            let mut args = vec!["load".to_string()];
            args.extend(common(&[
                "--duration".into(),
                options.duration.as_millis().to_string(),
            ]));
            args
        },
        dir,
        "load",
    )?;
    let writes = load.wait_for("writes", options.duration + Duration::from_secs(180))?;
    load.finish(Duration::from_secs(10));
    let done = wait_for_done(&fault_log, options.duration + Duration::from_secs(60))?;
    let rss_end = rss(&client, &replicas);
    client.send("check")?;
    let report = client.wait_for("report", Duration::from_secs(240))?;
    let saved = serde_json::json!({"writes": writes, "faults": done, "report": report});
    // Kept beside the logs for a later look; the table has the figures anyway.
    let _ = std::fs::write(dir.join("report.json"), format!("{saved:#}\n"));
    client.finish(Duration::from_secs(20));
    for replica in replicas {
        replica.finish(Duration::ZERO);
    }
    server.finish(Duration::ZERO);
    let count = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok(Outcome {
        faults: done
            .get("by_kind")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default(),
        requests_failed: count(&done, "requests_failed"),
        watches_cut: count(&done, "watches_cut"),
        writes: count(&writes, "created") + count(&writes, "updated") + count(&writes, "deleted"),
        write_errors: count(&writes, "failed"),
        checks: count(&report, "checks"),
        passed: count(&report, "passed"),
        violations: report
            .get("violations")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .map(|s| s.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        rss_start,
        rss_end,
        stats: report
            .get("stats")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        ..Outcome::default()
    })
}

/// A free loopback address (the port is released for the child to take).
fn free_address() -> Result<String, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    Ok(address.to_string())
}

/// The fault log's last line, once the schedule is over.
fn wait_for_done(path: &Path, timeout: Duration) -> Result<Value, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(done) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v.get("done").is_some())
        {
            return Ok(done);
        }
        if Instant::now() >= deadline {
            return Err(format!("the fault schedule did not end within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn print_table(outcomes: &[Outcome]) {
    println!();
    println!(
        "| scenario | seed | faults | by kind | requests failed | watches cut | writes (errors) | checks passed | violations | client RSS start → end | time |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for o in outcomes {
        let by_kind: Vec<String> = o.faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
        for (k, v) in &o.faults {
            *totals.entry(k.clone()).or_default() += v;
        }
        println!(
            "| {} | {} | {} | {} | {} | {} | {} ({}) | {}/{} | {} | {:.1} → {:.1} MiB | {:.0} s |",
            o.scenario,
            o.seed,
            o.faults.values().sum::<u64>(),
            by_kind.join(", "),
            o.requests_failed,
            o.watches_cut,
            o.writes,
            o.write_errors,
            o.passed,
            o.checks,
            o.violations.len(),
            o.rss_start as f64 / 1024.0,
            o.rss_end as f64 / 1024.0,
            o.took.as_secs_f64(),
        );
    }
    println!();
    for o in outcomes {
        let stats: Vec<String> = o.stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{} seed {}: {}", o.scenario, o.seed, stats.join(" "));
    }
    let total: u64 = totals.values().sum();
    let kinds: Vec<String> = totals.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let checks: u64 = outcomes.iter().map(|o| o.checks).sum();
    let passed: u64 = outcomes.iter().map(|o| o.passed).sum();
    let writes: u64 = outcomes.iter().map(|o| o.writes).sum();
    let violations: usize = outcomes.iter().map(|o| o.violations.len()).sum();
    let time: f64 = outcomes.iter().map(|o| o.took.as_secs_f64()).sum();
    println!(
        "\ntotal: {} runs, {total} faults ({}), {writes} writes, {passed}/{checks} checks passed, {violations} violations, {:.0} s",
        outcomes.len(),
        kinds.join(", "),
        time
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_durations() {
        assert_eq!(parse_seeds("1,3-5").unwrap(), [1, 3, 4, 5]);
        assert!(parse_seeds("x").is_err());
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        let available = ["informers", "leader"];
        let options = parse(&["--scenario".into(), "leader".into()], &available).unwrap();
        assert_eq!(options.scenarios, ["leader"]);
        assert!(parse(&["--scenario".into(), "nope".into()], &available).is_err());
        assert!(parse(&["--scenario".into(), "flagship".into()], &available).is_err());
    }
}
