//! `cargo xtask bench --peers`: our primitives and client-go's, measured side by side.
//!
//! client-go's benchmarks are `../shared/peers/go/peermicro_test.go` (next to the workspace, or
//! `PEERS_GO`). They build inside a Kubernetes source tree with its `vendor/` directory (found at
//! `K8S_SRC`, else `/tmp/k8s-src`; `../shared/realk8s/README.md` says how to get one), with the Go
//! toolchain named by `GO` or found on `PATH`, offline:
//! `GOTOOLCHAIN=local GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0 go test -c`.
//!
//! Each round runs every benchmark on each side one after the other, benchmark by benchmark and in
//! a rotating order, so that both sides see the same machine; the table gives the median of the
//! rounds for each side and their ratio. Without Go or the source tree, it says
//! what is missing and runs ours alone.
//!
//! `--baseline EXE` (repeatable) also runs an older build's criterion executables (say the
//! `target/release/deps/workqueue-*` and `flowcontrol-*` of a previous commit, copied aside) in
//! every round, and adds their figures as a "before" column: a before/after table from one
//! sitting.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::{Row, collect_estimates, human_time, target_dir};

/// How a benchmark's figure reads.
#[derive(Clone, Copy)]
enum Kind {
    /// Nanoseconds per operation (lower is better).
    Time,
    /// Items per second over runs of this many items (higher is better); Go reports it as
    /// its `Mitems/s` metric.
    Throughput(f64),
}

/// One row of the table: what it measures, Go's benchmark name (without the `-GOMAXPROCS`
/// suffix), our criterion id, how to read it.
struct Pair {
    label: &'static str,
    go: &'static str,
    ours: &'static str,
    kind: Kind,
}

const PAIRS: &[Pair] = &[
    Pair {
        label: "workqueue add+get+done",
        go: "BenchmarkQueueAddGetDoneDistinctKeys",
        ours: "queue/add_get_done_distinct_keys",
        kind: Kind::Time,
    },
    Pair {
        label: "workqueue add, dedup hit",
        go: "BenchmarkQueueAddDedupHit",
        ours: "queue/add_dedup_hit",
        kind: Kind::Time,
    },
    Pair {
        label: "8 producers, 1 worker",
        go: "BenchmarkQueue8Producers/1_workers",
        ours: "queue/8_producers/1_workers",
        kind: Kind::Throughput(80_000.0),
    },
    Pair {
        label: "8 producers, 2 workers",
        go: "BenchmarkQueue8Producers/2_workers",
        ours: "queue/8_producers/2_workers",
        kind: Kind::Throughput(80_000.0),
    },
    Pair {
        label: "8 producers, 8 workers",
        go: "BenchmarkQueue8Producers/8_workers",
        ours: "queue/8_producers/8_workers",
        kind: Kind::Throughput(80_000.0),
    },
    Pair {
        label: "delaying queue, 100k add_after over 0..50 ms",
        go: "BenchmarkDelayingAddAfter100kOver0to50ms",
        ours: "delaying/add_after_100k_over_0_50ms",
        kind: Kind::Time,
    },
    Pair {
        label: "default controller rate limiter `when`",
        go: "BenchmarkDefaultControllerWhen1000Keys",
        ours: "rate_limiter/default_controller_when_1000_keys",
        kind: Kind::Time,
    },
    Pair {
        label: "token bucket allow, uncontended",
        go: "BenchmarkRateAllowUncontended",
        ours: "rate/allow/uncontended",
        kind: Kind::Time,
    },
    Pair {
        label: "token bucket allow, 2 tasks",
        go: "BenchmarkRateAllowParallel/2-goroutines",
        ours: "rate/allow/2-tasks",
        kind: Kind::Time,
    },
    Pair {
        label: "token bucket allow, 8 tasks",
        go: "BenchmarkRateAllowParallel/8-goroutines",
        ours: "rate/allow/8-tasks",
        kind: Kind::Time,
    },
    Pair {
        label: "throttle try_accept",
        go: "BenchmarkThrottleTryAccept",
        ours: "throttle/try_accept",
        kind: Kind::Time,
    },
    Pair {
        label: "per-key backoff next, 1000 ids",
        go: "BenchmarkBackoffNext1000Ids",
        ours: "backoff/next/1000-ids",
        kind: Kind::Time,
    },
];

/// The crates whose criterion benchmarks the table uses.
const OUR_CRATES: &[&str] = &["kube-workqueue", "kube-flowcontrol"];

/// Options of `bench --peers`.
pub struct Options {
    pub quick: bool,
    pub rounds: usize,
    /// Criterion executables of an older build, run each round as the "before" column.
    pub baseline: Vec<PathBuf>,
}

/// What the Go side needs, once found.
struct GoSide {
    go: PathBuf,
    go_version: String,
    source_tree: PathBuf,
    client_go: String,
    benchmarks: PathBuf,
}

pub fn run(root: &Path, options: &Options) -> Result<(), String> {
    let go_side = match find_go_side(root) {
        Ok(side) => Some(side),
        Err(missing) => {
            eprintln!(
                "xtask: client-go's benchmarks cannot run ({missing}); running ours alone.\n\
                 Set GO (a Go toolchain), K8S_SRC (a Kubernetes source tree with vendor/, see \
                 ../shared/realk8s/README.md) and PEERS_GO (peermicro_test.go) to compare."
            );
            None
        }
    };
    let binary = match &go_side {
        Some(side) => Some(build_go(root, side)?),
        None => None,
    };
    let ours = build_ours(root)?;
    let our_home = target_dir(root).join("criterion");
    let before_home = target_dir(root).join("peers").join("baseline-criterion");

    let load_before = load_average();
    let mut go_samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut our_samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut before_samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for round in 1..=options.rounds {
        eprintln!("== round {round}/{}", options.rounds);
        for (index, pair) in PAIRS.iter().enumerate() {
            // Benchmark by benchmark, in an order that rotates, so that a change in the
            // machine's load falls on every side alike.
            let mut sides = [Side::Before, Side::Go, Side::Ours];
            sides.rotate_left((index + round) % 3);
            for side in sides {
                match side {
                    Side::Go => {
                        let Some(binary) = &binary else { continue };
                        if let Some(value) = run_go(binary, pair.go, options.quick)? {
                            go_samples
                                .entry(pair.go.to_string())
                                .or_default()
                                .push(value);
                        }
                    }
                    Side::Ours => {
                        if let Some(mean) =
                            run_criterion(root, &ours, &our_home, pair.ours, options.quick)?
                        {
                            our_samples
                                .entry(pair.ours.to_string())
                                .or_default()
                                .push(mean);
                        }
                    }
                    Side::Before => {
                        if options.baseline.is_empty() {
                            continue;
                        }
                        if let Some(mean) = run_criterion(
                            root,
                            &options.baseline,
                            &before_home,
                            pair.ours,
                            options.quick,
                        )? {
                            before_samples
                                .entry(pair.ours.to_string())
                                .or_default()
                                .push(mean);
                        }
                    }
                }
            }
        }
    }
    let load_after = load_average();

    let table = render(
        go_side.as_ref(),
        &go_samples,
        &our_samples,
        &before_samples,
        options,
        &load_before,
        &load_after,
    );
    println!("{table}");
    let out = target_dir(root).join("peers").join("table.md");
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    fs::write(&out, &table).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("xtask: table written to {}", out.display());
    Ok(())
}

fn find_go_side(root: &Path) -> Result<GoSide, String> {
    let go = env::var_os("GO").map_or_else(|| PathBuf::from("go"), PathBuf::from);
    let go_version = Command::new(&go)
        .arg("version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .ok_or_else(|| format!("no Go toolchain (`{} version` failed)", go.display()))?;
    let source_tree =
        env::var_os("K8S_SRC").map_or_else(|| PathBuf::from("/tmp/k8s-src"), PathBuf::from);
    for needed in [
        "vendor/modules.txt",
        "staging/src/k8s.io/client-go/util/workqueue",
    ] {
        if !source_tree.join(needed).exists() {
            return Err(format!(
                "no Kubernetes source tree with vendor/ at {} (missing {needed})",
                source_tree.display()
            ));
        }
    }
    let client_go = kube_version(&source_tree);
    let benchmarks = env::var_os("PEERS_GO").map_or_else(
        || root.join("../shared/peers/go/peermicro_test.go"),
        PathBuf::from,
    );
    if !benchmarks.is_file() {
        return Err(format!("no Go benchmark file at {}", benchmarks.display()));
    }
    Ok(GoSide {
        go,
        go_version,
        source_tree,
        client_go,
        benchmarks,
    })
}

/// The Kubernetes minor version of the source tree (component-base's
/// `DefaultKubeBinaryVersion`), as "client-go of the v1.N line".
fn kube_version(source_tree: &Path) -> String {
    let base = source_tree.join("staging/src/k8s.io/component-base/version/base.go");
    let version = fs::read_to_string(base).ok().and_then(|text| {
        text.lines()
            .find(|line| line.contains("DefaultKubeBinaryVersion ="))
            .and_then(|line| line.split('"').nth(1).map(str::to_string))
    });
    match version {
        Some(version) => format!(
            "client-go of the v{version} line ({})",
            source_tree.display()
        ),
        None => format!("client-go from {}", source_tree.display()),
    }
}

fn build_go(root: &Path, side: &GoSide) -> Result<PathBuf, String> {
    let package = side.source_tree.join("cmd/kube-toolkit-peermicro");
    fs::create_dir_all(&package)
        .map_err(|e| format!("cannot create {}: {e}", package.display()))?;
    fs::copy(&side.benchmarks, package.join("peermicro_test.go"))
        .map_err(|e| format!("cannot copy {}: {e}", side.benchmarks.display()))?;
    let out_dir = target_dir(root).join("peers");
    fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let binary = out_dir.join("peermicro.test");
    eprintln!(
        "== go test -c ./cmd/kube-toolkit-peermicro ({})",
        side.go_version
    );
    let mut command = Command::new(&side.go);
    command
        .current_dir(&side.source_tree)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=vendor")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
        .args(["test", "-c", "-o"])
        .arg(&binary)
        .arg("./cmd/kube-toolkit-peermicro");
    if env::var_os("GOCACHE").is_none() {
        command.env("GOCACHE", out_dir.join("gocache"));
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run {}: {e}", side.go.display()))?;
    if !status.success() {
        return Err(format!("building client-go's benchmarks failed ({status})"));
    }
    Ok(binary)
}

/// Builds our benchmark executables; returns their paths (from cargo's "Executable" lines).
fn build_ours(root: &Path) -> Result<Vec<PathBuf>, String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["bench", "--no-run"]);
    for krate in OUR_CRATES {
        command.args(["-p", krate]);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("building our benchmarks failed: {stderr}"));
    }
    let executables: Vec<PathBuf> = stderr
        .lines()
        .filter(|line| line.trim_start().starts_with("Executable benches/"))
        .filter_map(|line| {
            let (_, path) = line.rsplit_once('(')?;
            Some(root.join(path.trim_end_matches(')')))
        })
        .collect();
    if executables.is_empty() {
        return Err("cargo bench --no-run named no benchmark executable".to_string());
    }
    Ok(executables)
}

/// Which build a measurement comes from.
#[derive(Clone, Copy)]
enum Side {
    Go,
    Ours,
    Before,
}

/// Runs one of Go's benchmarks (`name`, sub-benchmark after a `/`); returns its ns/op or
/// M items/s.
fn run_go(binary: &Path, name: &str, quick: bool) -> Result<Option<f64>, String> {
    let pattern = name
        .split('/')
        .map(|part| format!("^{part}$"))
        .collect::<Vec<_>>()
        .join("/");
    let output = Command::new(binary)
        .args(["-test.run", "^$", "-test.bench"])
        .arg(&pattern)
        .arg("-test.benchtime")
        .arg(if quick { "300ms" } else { "1s" })
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "client-go's benchmark {name} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(parse_go(&String::from_utf8_lossy(&output.stdout))
        .into_iter()
        .find(|(found, _)| found == name)
        .map(|(_, value)| value))
}

/// Parses `go test -bench` lines: `BenchmarkX-2  N  123 ns/op  [4.5 Mitems/s]`. A benchmark
/// with a `Mitems/s` metric is reported by it, any other by its ns/op.
fn parse_go(text: &str) -> Vec<(String, f64)> {
    let mut results = Vec::new();
    for line in text.lines().filter(|line| line.starts_with("Benchmark")) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(name) = fields.first() else { continue };
        let name = match name.rsplit_once('-') {
            Some((base, procs)) if procs.chars().all(|c| c.is_ascii_digit()) => base,
            _ => name,
        };
        let metric = |unit: &str| {
            fields
                .windows(2)
                .find(|pair| pair[1] == unit)
                .and_then(|pair| pair[0].parse::<f64>().ok())
        };
        if let Some(value) = metric("Mitems/s").or_else(|| metric("ns/op")) {
            results.push((name.to_string(), value));
        }
    }
    results
}

/// The criterion options of every run.
fn criterion_args(quick: bool) -> [&'static str; 5] {
    [
        "--noplot",
        "--warm-up-time",
        if quick { "1" } else { "2" },
        "--measurement-time",
        if quick { "2" } else { "4" },
    ]
}

/// Runs the criterion benchmark `id` from whichever of `executables` has it, its results going
/// under `home`; returns its mean time per iteration in ns.
fn run_criterion(
    root: &Path,
    executables: &[PathBuf],
    home: &Path,
    id: &str,
    quick: bool,
) -> Result<Option<f64>, String> {
    let started = SystemTime::now();
    for exe in executables {
        let status = Command::new(exe)
            .current_dir(root)
            .env("CRITERION_HOME", home)
            .arg("--bench")
            .args(criterion_args(quick))
            .arg(format!("^{id}$"))
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !status.success() {
            return Err(format!("{} failed ({status})", exe.display()));
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    collect_estimates(home, started, &mut rows);
    Ok(rows
        .into_iter()
        .find(|(found, _, _)| found == id)
        .map(|(_, mean, _)| mean))
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

fn render(
    go_side: Option<&GoSide>,
    go_samples: &BTreeMap<String, Vec<f64>>,
    our_samples: &BTreeMap<String, Vec<f64>>,
    before_samples: &BTreeMap<String, Vec<f64>>,
    options: &Options,
    load_before: &str,
    load_after: &str,
) -> String {
    let mut out = String::new();
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let head = command_line("git", &["rev-parse", "--short", "HEAD"]);
    out.push_str(&format!(
        "Measured {date} on {} ({} cores), ours at {head}; {} round(s){}, medians.\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        options.rounds,
        if options.quick { " (quick)" } else { "" },
    ));
    match go_side {
        Some(side) => out.push_str(&format!(
            "Peer: {}, built with {}, run interleaved with ours.\n",
            side.client_go, side.go_version
        )),
        None => out.push_str("Peer: not run (no Go toolchain or Kubernetes source tree).\n"),
    }
    out.push_str(&format!(
        "Load average (1/5/15 min): {load_before} before, {load_after} after.\n\n"
    ));
    let with_before = !before_samples.is_empty();
    if with_before {
        out.push_str(&format!(
            "Before: {}.\n\n",
            options
                .baseline
                .iter()
                .map(|exe| exe.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.push_str(
            "| operation | client-go | ours before | ours | before vs client-go | ours vs client-go |\n",
        );
        out.push_str("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    } else {
        out.push_str("| operation | client-go | ours | ours vs client-go |\n");
        out.push_str("| --- | ---: | ---: | ---: |\n");
    }
    for pair in PAIRS {
        let go = go_samples.get(pair.go).and_then(|v| median(v));
        let ours = figure(
            pair.kind,
            our_samples.get(pair.ours).and_then(|v| median(v)),
        );
        let before = figure(
            pair.kind,
            before_samples.get(pair.ours).and_then(|v| median(v)),
        );
        let go_text = go.map(|go| match pair.kind {
            Kind::Time => human_time(go),
            Kind::Throughput(_) => format!("{go:.2} M items/s"),
        });
        let dash = || "-".to_string();
        if with_before {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                pair.label,
                go_text.unwrap_or_else(dash),
                before.as_ref().map(|f| f.text.clone()).unwrap_or_else(dash),
                ours.as_ref().map(|f| f.text.clone()).unwrap_or_else(dash),
                ratio(pair.kind, go, before.as_ref().map(|f| f.value)),
                ratio(pair.kind, go, ours.as_ref().map(|f| f.value)),
            ));
        } else {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                pair.label,
                go_text.unwrap_or_else(dash),
                ours.as_ref().map(|f| f.text.clone()).unwrap_or_else(dash),
                ratio(pair.kind, go, ours.as_ref().map(|f| f.value)),
            ));
        }
    }
    out
}

/// One of our figures, as the table shows it.
#[derive(Clone)]
struct Figure {
    /// ns per operation, or M items/s.
    value: f64,
    text: String,
}

/// Our criterion mean (ns per iteration) as the row reads: time, or M items/s for a run of
/// `items` (Go reports its M items/s directly).
fn figure(kind: Kind, mean_ns: Option<f64>) -> Option<Figure> {
    let mean_ns = mean_ns?;
    Some(match kind {
        Kind::Time => Figure {
            value: mean_ns,
            text: human_time(mean_ns),
        },
        Kind::Throughput(items) => {
            let per_second = items / (mean_ns / 1e9) / 1e6;
            Figure {
                value: per_second,
                text: format!("{per_second:.2} M items/s"),
            }
        }
    })
}

/// How ours compares with Go's: "1.50x faster" or "1.20x slower".
fn ratio(kind: Kind, go: Option<f64>, ours: Option<f64>) -> String {
    let Some((go, ours)) = go.zip(ours) else {
        return "-".to_string();
    };
    let speedup = match kind {
        Kind::Time => go / ours,
        Kind::Throughput(_) => ours / go,
    };
    if speedup >= 1.0 {
        format!("{speedup:.2}x faster")
    } else {
        format!("{:.2}x slower", 1.0 / speedup)
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map_or_else(
            || "?".to_string(),
            |out| String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".to_string())
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_benchmark_lines() {
        let text = "goos: linux\n\
            BenchmarkQueueAddDedupHit-2   \t57000000\t        20.9 ns/op\n\
            BenchmarkQueue8Producers/1_workers-2 \t 30\t  44000000 ns/op\t 1.81 Mitems/s\n\
            BenchmarkRateAllowParallel/2-goroutines-2 \t 1000\t 85.0 ns/op\n\
            PASS\n";
        assert_eq!(
            parse_go(text),
            vec![
                ("BenchmarkQueueAddDedupHit".to_string(), 20.9),
                ("BenchmarkQueue8Producers/1_workers".to_string(), 1.81),
                ("BenchmarkRateAllowParallel/2-goroutines".to_string(), 85.0),
            ]
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
