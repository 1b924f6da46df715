//! A real control plane for tests, started the way controller-runtime's envtest starts one: an
//! `etcd` and a `kube-apiserver` from binaries on disk, on free loopback ports, with a fresh
//! temporary directory and PKI, and no controller-manager, scheduler or kubelet.
//!
//! * `cargo xtask e2e --envtest` runs the examples against it (those that need a kubelet are
//!   skipped with the reason printed) and stops it.
//! * `cargo xtask envtest [--kubeconfig-out PATH]` starts it, prints the kubeconfig path and
//!   serves until Ctrl-C: what `KUBE_TOOLKIT_TEST_KUBECONFIG` wants for the integration tests.
//!
//! The binaries are found as envtest finds them (`BinPathFinder`): `$TEST_ASSET_KUBE_APISERVER`
//! and `$TEST_ASSET_ETCD` name each binary; otherwise both are in `$KUBEBUILDER_ASSETS`
//! (`setup-envtest use -p path` prints such a directory); otherwise in
//! `/usr/local/kubebuilder/bin`. `$KUBEBUILDER_CONTROLPLANE_START_TIMEOUT` (`90s`, `2m`, or
//! seconds) bounds the start, as in envtest.
//!
//! The apiserver gets envtest's defaults: `--authorization-mode=RBAC`, the `ServiceAccount`
//! admission plugin disabled (no controller creates the `default` service account, so pods
//! could not be created otherwise), `--allow-privileged`, a `10.0.0.0/24` service range, a
//! service-account issuer and signing keys, and an admin user (`envtest-admin` in
//! `system:masters`) known by a client certificate (the `kubeconfig` written) and by a bearer
//! token (`kubeconfig-token`). Both processes are killed and the directory removed when the
//! [`ControlPlane`] is dropped, when xtask panics, and on SIGINT, SIGTERM or SIGHUP.

mod pki;
mod probe;
mod process;

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use pki::Pki;
use process::{Running, Shared, has_flag, spawn, wait_until};

/// Where envtest looks last (`AssetsDefaultPath`).
const DEFAULT_ASSETS: &str = "/usr/local/kubebuilder/bin";
/// How long etcd and kube-apiserver may take to become ready unless
/// `$KUBEBUILDER_CONTROLPLANE_START_TIMEOUT` says otherwise (envtest waits 20 s; a loaded
/// 2-core machine needs more for a cold apiserver).
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(90);
/// Between two readiness probes.
const POLL: Duration = Duration::from_millis(250);

/// Examples that cannot pass without a kubelet, with the reason printed when skipping them.
const NEEDS_KUBELET: &[(&str, &str, &str)] = &[
    (
        "kube-rest",
        "pod_lifecycle",
        "its pod must run (Ready, a restart, logs, exec) and envtest has no scheduler or kubelet",
    ),
    (
        "kube-rest",
        "exec",
        "exec streams come from a kubelet and envtest has none",
    ),
    (
        "kube-portforward",
        "port_forward",
        "it forwards to a running nginx pod and envtest has no kubelet to run it or to serve the stream",
    ),
];

/// Why an example cannot run against envtest, if it cannot.
pub fn needs_kubelet(package: &str, example: &str) -> Option<&'static str> {
    NEEDS_KUBELET
        .iter()
        .find(|(p, e, _)| *p == package && *e == example)
        .map(|(_, _, reason)| *reason)
}

/// The two binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    pub apiserver: PathBuf,
    pub etcd: PathBuf,
}

/// envtest's `BinPathFinder`: `TEST_ASSET_<NAME>`, then `$KUBEBUILDER_ASSETS/<name>`, then the
/// default directory. Returns the path and where it came from.
fn asset_path(name: &str, env: &dyn Fn(&str) -> Option<OsString>) -> (PathBuf, String) {
    let variable = format!("TEST_ASSET_{}", name.to_uppercase().replace('-', "_"));
    if let Some(path) = env(&variable) {
        return (PathBuf::from(path), format!("${variable}"));
    }
    if let Some(dir) = env("KUBEBUILDER_ASSETS") {
        return (
            PathBuf::from(dir).join(name),
            "$KUBEBUILDER_ASSETS".to_string(),
        );
    }
    (
        Path::new(DEFAULT_ASSETS).join(name),
        "the default directory (KUBEBUILDER_ASSETS is not set)".to_string(),
    )
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// Finds both binaries, or says precisely which is missing and how to provide it.
pub fn find_assets(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Assets, String> {
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for name in ["kube-apiserver", "etcd"] {
        let (path, source) = asset_path(name, env);
        if is_executable(&path) {
            found.push(path);
        } else {
            missing.push(format!(
                "{name}: no executable at {} (from {source})",
                path.display()
            ));
        }
    }
    match <[PathBuf; 2]>::try_from(found) {
        Ok([apiserver, etcd]) => Ok(Assets { apiserver, etcd }),
        Err(_) => Err(format!(
            "envtest needs the kube-apiserver and etcd binaries:\n  {}\n\
             Set KUBEBUILDER_ASSETS to a directory holding both (controller-runtime's \
             `setup-envtest use -p path` downloads them and prints one), or \
             TEST_ASSET_KUBE_APISERVER and TEST_ASSET_ETCD to each binary.",
            missing.join("\n  ")
        )),
    }
}

/// Parses envtest's start timeout: a Go duration in seconds or minutes (`90s`, `2m`, `1m30s`)
/// or plain seconds.
fn parse_timeout(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        match c {
            '0'..='9' => number.push(c),
            'm' | 's' | 'h' => {
                let value: u64 = number.parse().ok()?;
                number.clear();
                total += value
                    * match c {
                        'h' => 3600,
                        'm' => 60,
                        _ => 1,
                    };
            }
            _ => return None,
        }
    }
    (number.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

fn start_timeout() -> Result<Duration, String> {
    match std::env::var("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT") {
        Ok(text) => parse_timeout(&text).ok_or_else(|| {
            format!("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT={text:?} is not a duration like 90s")
        }),
        Err(_) => Ok(DEFAULT_START_TIMEOUT),
    }
}

/// A started etcd + kube-apiserver. Dropping it stops both and removes its directory.
pub struct ControlPlane {
    running: Shared,
    /// The kubeconfig authenticating the admin with its client certificate.
    pub kubeconfig: PathBuf,
    /// The same with the admin's bearer token.
    pub token_kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The apiserver's `gitVersion`.
    pub version: String,
    /// The directory holding the PKI, etcd's data and both logs.
    pub dir: PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        process::stop_shared(&self.running);
    }
}

fn free_ports<const N: usize>() -> Result<[u16; N], String> {
    // All listeners are held until every port is known, so the ports differ.
    let mut listeners = Vec::with_capacity(N);
    for _ in 0..N {
        listeners.push(TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?);
    }
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .map_err(|e| format!("no free port: {e}"))?
            .port();
    }
    Ok(ports)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn create_private_dir(path: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn kubeconfig_yaml(url: &str, pki: &Pki, user: &str) -> String {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: {url}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: envtest-admin\n  user:\n{user}\
         contexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: envtest-admin\n\
         current-context: envtest\n",
        ca = b64(&pki.ca_pem),
    )
}

/// Starts etcd and kube-apiserver and waits until the apiserver is ready and has created the
/// `default` namespace.
pub fn start(assets: &Assets) -> Result<ControlPlane, String> {
    let timeout = start_timeout()?;
    process::install_signal_handler()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "kube-toolkit-envtest-{}-{nanos:x}",
        std::process::id()
    ));
    create_private_dir(&dir)?;
    // From here on, dropping `running` (on any error below) cleans up.
    let running = process::track(Running {
        etcd: None,
        apiserver: None,
        dir: dir.clone(),
    });
    let plane = ControlPlane {
        running,
        kubeconfig: dir.join("kubeconfig"),
        token_kubeconfig: dir.join("kubeconfig-token"),
        url: String::new(),
        version: String::new(),
        dir: dir.clone(),
    };
    boot(plane, assets, timeout)
}

fn boot(
    mut plane: ControlPlane,
    assets: &Assets,
    timeout: Duration,
) -> Result<ControlPlane, String> {
    let dir = plane.dir.clone();
    let certs = dir.join("pki");
    let data = dir.join("etcd");
    create_private_dir(&certs)?;
    create_private_dir(&data)?;
    let pki = Pki::generate()?;
    let file = |name: &str| certs.join(name);
    write(&file("ca.crt"), &pki.ca_pem)?;
    write(&file("apiserver.crt"), &pki.server_cert_pem)?;
    write(&file("apiserver.key"), &pki.server_key_pem)?;
    write(&file("sa.key"), &pki.sa_key_pem)?;
    write(&file("sa.pub"), &pki.sa_pub_pem)?;
    write(&file("tokens.csv"), &pki.token_file())?;
    let p = |path: PathBuf| path.display().to_string();
    let [etcd_port, peer_port, secure_port] = free_ports::<3>()?;
    let deadline = Instant::now() + timeout;

    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let mut etcd_args = vec![
        "--name=envtest".to_string(),
        format!("--data-dir={}", p(data)),
        format!("--listen-client-urls={etcd_url}"),
        format!("--advertise-client-urls={etcd_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=envtest={peer_url}"),
        "--initial-cluster-state=new".to_string(),
    ];
    // As envtest does from etcd 3.5 on: the data is thrown away, so no fsync.
    if has_flag(&assets.etcd, "unsafe-no-fsync") {
        etcd_args.push("--unsafe-no-fsync=true".to_string());
    }
    let etcd_log = dir.join("etcd.log");
    fn etcd(r: &mut Running) -> &mut Option<Child> {
        &mut r.etcd
    }
    fn apiserver(r: &mut Running) -> &mut Option<Child> {
        &mut r.apiserver
    }
    spawn(&plane.running, etcd, &assets.etcd, &etcd_args, &etcd_log)?;
    wait_until("etcd", &plane.running, etcd, &etcd_log, deadline, || {
        let health = probe::http_get(etcd_port, "/health")?;
        Ok((health.status == 200 && health.body.contains("\"health\":\"true\"")).then_some(()))
    })?;

    let url = format!("https://127.0.0.1:{secure_port}");
    let apiserver_args = vec![
        "--advertise-address=127.0.0.1".to_string(),
        "--bind-address=127.0.0.1".to_string(),
        format!("--secure-port={secure_port}"),
        format!("--etcd-servers={etcd_url}"),
        format!("--cert-dir={}", p(certs.clone())),
        format!("--tls-cert-file={}", p(file("apiserver.crt"))),
        format!("--tls-private-key-file={}", p(file("apiserver.key"))),
        format!("--client-ca-file={}", p(file("ca.crt"))),
        format!("--token-auth-file={}", p(file("tokens.csv"))),
        "--authorization-mode=RBAC".to_string(),
        "--disable-admission-plugins=ServiceAccount".to_string(),
        "--allow-privileged=true".to_string(),
        "--service-cluster-ip-range=10.0.0.0/24".to_string(),
        format!("--service-account-issuer={url}/"),
        format!("--service-account-key-file={}", p(file("sa.pub"))),
        format!("--service-account-signing-key-file={}", p(file("sa.key"))),
        // 127.0.0.1 is not a valid Endpoints address: the default lease reconciler would log
        // an error every 10 s trying to publish it for the `kubernetes` Service.
        "--endpoint-reconciler-type=none".to_string(),
    ];
    let apiserver_log = dir.join("kube-apiserver.log");
    spawn(
        &plane.running,
        apiserver,
        &assets.apiserver,
        &apiserver_args,
        &apiserver_log,
    )?;
    let tls = pki.client_config()?;
    let started = Instant::now();
    let readyz = |path: &'static str| {
        let tls = Arc::clone(&tls);
        move || {
            let answer = probe::https_get(secure_port, path, &tls)?;
            if answer.status == 200 {
                Ok(Some(answer.body))
            } else {
                Err(format!(
                    "{path} answered {}: {}",
                    answer.status,
                    answer.body.trim()
                ))
            }
        }
    };
    wait_until(
        "kube-apiserver",
        &plane.running,
        apiserver,
        &apiserver_log,
        deadline,
        readyz("/readyz"),
    )?;
    // The `default` namespace is made by a post-start hook shortly after readiness; the
    // examples create their objects in it.
    wait_until(
        "kube-apiserver",
        &plane.running,
        apiserver,
        &apiserver_log,
        deadline,
        readyz("/api/v1/namespaces/default"),
    )?;
    let version = readyz("/version")()?.unwrap_or_default();
    plane.version = version
        .split("\"gitVersion\":")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap_or("unknown version")
        .to_string();
    eprintln!(
        "envtest: kube-apiserver {} ready at {url} after {:.1} s (etcd at {etcd_url})",
        plane.version,
        started.elapsed().as_secs_f64()
    );
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let cert_user = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&pki.client_cert_pem),
        b64(&pki.client_key_pem)
    );
    write(&plane.kubeconfig, &kubeconfig_yaml(&url, &pki, &cert_user))?;
    let token_user = format!("    token: {}\n", pki.token);
    write(
        &plane.token_kubeconfig,
        &kubeconfig_yaml(&url, &pki, &token_user),
    )?;
    plane.url = url;
    Ok(plane)
}

impl ControlPlane {
    /// Why the control plane is no longer serving, if one of its processes exited.
    pub fn exited(&self) -> Option<String> {
        let mut guard = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let running = guard.as_mut()?;
        for (name, child) in [
            ("kube-apiserver", running.apiserver.as_mut()),
            ("etcd", running.etcd.as_mut()),
        ] {
            if let Some(status) = child.and_then(|c| c.try_wait().ok().flatten()) {
                return Some(format!("{name} exited ({status})"));
            }
        }
        None
    }
}

/// `cargo xtask envtest [--kubeconfig-out PATH]`: starts a control plane, prints how to use it
/// and serves until Ctrl-C (or until one of its processes exits).
pub fn serve(args: &[String]) -> Result<(), String> {
    let mut out = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kubeconfig-out" => {
                out = Some(PathBuf::from(
                    args.next().ok_or("--kubeconfig-out needs a path")?,
                ))
            }
            other => return Err(format!("unknown envtest option {other}")),
        }
    }
    let assets = find_assets(&|name| std::env::var_os(name))?;
    let plane = start(&assets)?;
    let kubeconfig = match out {
        Some(path) => {
            std::fs::copy(&plane.kubeconfig, &path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            path
        }
        None => plane.kubeconfig.clone(),
    };
    println!("{}", kubeconfig.display());
    eprintln!(
        "envtest: KUBECONFIG={} (client certificate of envtest-admin, system:masters); \
         {} authenticates with a bearer token. No controllers, scheduler or kubelet. \
         Ctrl-C stops both processes.",
        kubeconfig.display(),
        plane.token_kubeconfig.display()
    );
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if let Some(reason) = plane.exited() {
            return Err(format!(
                "{reason}; logs were in {} (removed)",
                plane.dir.display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn asset_paths_follow_envtests_precedence() {
        let both = env(&[
            ("KUBEBUILDER_ASSETS", "/assets"),
            ("TEST_ASSET_KUBE_APISERVER", "/custom/apiserver"),
        ]);
        assert_eq!(
            asset_path("kube-apiserver", &both).0,
            PathBuf::from("/custom/apiserver")
        );
        assert_eq!(asset_path("etcd", &both).0, PathBuf::from("/assets/etcd"));
        let none = env(&[]);
        assert_eq!(
            asset_path("etcd", &none).0,
            PathBuf::from("/usr/local/kubebuilder/bin/etcd")
        );
    }

    #[test]
    fn missing_binaries_are_named_with_the_way_to_provide_them() {
        let error =
            find_assets(&env(&[("KUBEBUILDER_ASSETS", "/nonexistent-assets")])).unwrap_err();
        assert!(error.contains("kube-apiserver: no executable at /nonexistent-assets/kube-apiserver (from $KUBEBUILDER_ASSETS)"), "{error}");
        assert!(
            error.contains("etcd: no executable at /nonexistent-assets/etcd"),
            "{error}"
        );
        assert!(error.contains("TEST_ASSET_KUBE_APISERVER"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn executables_in_the_assets_directory_are_found() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("envtest-assets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["kube-apiserver", "etcd"] {
            let path = dir.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let vars = env(&[("KUBEBUILDER_ASSETS", dir.to_str().unwrap())]);
        // Not executable yet: both are reported.
        assert!(
            find_assets(&vars)
                .unwrap_err()
                .contains("etcd: no executable")
        );
        for name in ["kube-apiserver", "etcd"] {
            let path = dir.join(name);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let assets = find_assets(&vars).unwrap();
        assert_eq!(assets.apiserver, dir.join("kube-apiserver"));
        assert_eq!(assets.etcd, dir.join("etcd"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn start_timeouts_parse_like_envtests() {
        assert_eq!(parse_timeout("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_timeout("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_timeout("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_timeout("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_timeout("soon"), None);
        assert_eq!(parse_timeout("5x"), None);
        assert_eq!(parse_timeout("10s5"), None);
    }

    #[test]
    fn kubelet_examples_are_known() {
        assert!(needs_kubelet("kube-portforward", "port_forward").is_some());
        assert!(needs_kubelet("kube-leader", "leader").is_none());
    }

    #[test]
    fn kubeconfig_names_server_ca_and_user() {
        let pki = Pki::generate().unwrap();
        let yaml = kubeconfig_yaml("https://127.0.0.1:1234", &pki, "    token: abc\n");
        assert!(yaml.contains("    server: https://127.0.0.1:1234\n"));
        assert!(yaml.contains("  user:\n    token: abc\ncontexts:\n"));
        assert!(yaml.ends_with("current-context: envtest\n"));
    }
}
