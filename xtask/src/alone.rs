//! `cargo xtask check-alone`: every library crate builds on its own, as a user who depends on
//! it alone gets it: without the features other workspace members turn on, with no default
//! features, its defaults, and all its features.
//!
//! Cargo's feature unification hides a missing feature in a workspace build (a tokio feature
//! enabled by a sibling, say); `cargo check -p CRATE --lib` resolves the features of that
//! crate alone. k8s-openapi needs one Kubernetes version: where the checked feature set turns
//! none on (a library never does), `K8S_OPENAPI_ENABLED_VERSION` picks one, as for docs.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The Kubernetes version given to k8s-openapi when a crate's features choose none.
const K8S_VERSION: &str = "1.34";

struct Package {
    name: String,
    features: BTreeMap<String, Vec<String>>,
}

fn library_packages(root: &Path, cargo: &str) -> Result<Vec<Package>, String> {
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let mut packages = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let publishable = !matches!(package["publish"].as_array(), Some(list) if list.is_empty());
        let has_lib = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| {
                t["kind"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k == "lib")
            });
        if !publishable || !has_lib {
            continue;
        }
        let features = package["features"]
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(name, entries)| {
                        let entries = entries
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|e| e.as_str().map(str::to_string))
                            .collect();
                        (name.clone(), entries)
                    })
                    .collect()
            })
            .unwrap_or_default();
        packages.push(Package {
            name: package["name"].as_str().unwrap_or_default().to_string(),
            features,
        });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}

/// Every feature entry reachable from `roots` (feature names, `dep:x`, `crate/feature`).
fn closure(package: &Package, roots: &[&str]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
    while let Some(entry) = todo.pop() {
        if !seen.insert(entry.clone()) {
            continue;
        }
        if let Some(children) = package.features.get(&entry) {
            todo.extend(children.iter().cloned());
        }
    }
    seen
}

/// Runs the checks; fails on the first crate that does not build alone.
pub fn run(root: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let packages = library_packages(root, &cargo)?;
    // (crate, flags, whether k8s-openapi gets its version from the environment)
    let mut checks = Vec::new();
    for package in &packages {
        let all: Vec<&str> = package.features.keys().map(String::as_str).collect();
        let mut configurations: Vec<(&str, BTreeSet<String>)> = vec![
            ("--no-default-features", BTreeSet::new()),
            ("", closure(package, &["default"])),
            ("--all-features", closure(package, &all)),
        ];
        // The kube-rs interop feature alone (without `rest`, as a kube-rs user enables it).
        if package.features.contains_key("kube") {
            configurations.push((
                "--no-default-features --features kube",
                closure(package, &["kube"]),
            ));
        }
        for (flags, enabled) in configurations {
            let chooses_version = enabled.iter().any(|e| e.starts_with("k8s-openapi/"));
            checks.push((package.name.clone(), flags, !chooses_version));
        }
    }
    // The environment variable changes k8s-openapi's build: group the checks that set it.
    checks.sort_by_key(|(_, _, env)| !*env);
    for (name, flags, env_version) in &checks {
        let shown = if flags.is_empty() { "(default)" } else { flags };
        eprintln!("== cargo check -p {name} --lib {shown}");
        let mut command = Command::new(&cargo);
        command
            .current_dir(root)
            .args(["check", "--quiet", "-p", name, "--lib"]);
        command.args(flags.split_whitespace());
        if *env_version {
            command.env("K8S_OPENAPI_ENABLED_VERSION", K8S_VERSION);
        } else {
            command.env_remove("K8S_OPENAPI_ENABLED_VERSION");
        }
        let status = command
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!(
                "{name} does not build alone with {shown}: declare every feature it uses in its own Cargo.toml"
            ));
        }
    }
    eprintln!(
        "== {} checks: every library crate builds alone",
        checks.len()
    );
    Ok(())
}
