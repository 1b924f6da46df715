//! Exec credential plugins against kube-testserver: caching until expirationTimestamp, re-run
//! on expiry and on 401, failures, kubeconfig resolution of a relative command.
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ConfigMap;
use kube_flowcontrol::clock::FakeClock;
use kube_rest::config::Credentials;
use kube_rest::kubeconfig::{ExecConfig, ExecEnvVar};
use kube_rest::{Api, Client, Config, Error, Kubeconfig, ListParams};
use kube_testserver::TestServer;

const PLUGIN: &str = r#"#!/bin/sh
n=$(cat "$COUNT" 2>/dev/null || echo 0)
n=$((n+1))
echo "$n" > "$COUNT"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$COUNT.info"
if [ "$n" -le "$BAD_RUNS" ]; then tok=wrong; else tok="$TOKEN"; fi
if [ "$1" = "fail" ]; then echo "no credentials for you" >&2; exit 3; fi
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}' "$tok" "$EXPIRY"
"#;

/// The plugin, written once per test process before any test runs it: writing an executable
/// while another thread forks can make its execution fail with ETXTBSY.
fn plugin() -> &'static Path {
    static PLUGIN_PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PLUGIN_PATH.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("kube-rest-exec-plugin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plugin = dir.join("plugin.sh");
        std::fs::write(&plugin, PLUGIN).unwrap();
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
        plugin
    })
}

/// A directory for one test's invocation counter.
fn temp_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kube-rest-exec-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn exec(dir: &Path, token: &str, bad_runs: u32, args: &[&str]) -> ExecConfig {
    let var = |name: &str, value: &str| ExecEnvVar {
        name: name.into(),
        value: value.into(),
    };
    ExecConfig {
        command: plugin().to_string_lossy().into_owned(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![
            var("COUNT", &dir.join("count").to_string_lossy()),
            var("TOKEN", token),
            var("BAD_RUNS", &bad_runs.to_string()),
            var("EXPIRY", "2030-01-01T00:10:00Z"),
        ],
        api_version: "client.authentication.k8s.io/v1".into(),
        install_hint: Some("install the plugin".into()),
        provide_cluster_info: false,
        interactive_mode: Some("Never".into()),
    }
}

fn runs(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("count"))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(0)
}

fn config_of(server: &TestServer) -> Config {
    let kubeconfig = Kubeconfig::parse(
        &server.kubeconfig_yaml(),
        Path::new("/testserver/kubeconfig"),
    )
    .unwrap();
    Config::from_kubeconfig(&kubeconfig)
        .unwrap()
        .without_throttle()
}

fn fake_clock() -> FakeClock {
    // 2030-01-01T00:00:00Z
    FakeClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_token_is_cached_until_it_expires() {
    if common::skip_on_cluster(
        "exec_token_is_cached_until_it_expires",
        "the plugin's tokens are kube-testserver's",
    ) {
        return;
    }
    let server = TestServer::builder().start().await.unwrap();
    let dir = temp_dir();
    let fake = fake_clock();
    let config =
        config_of(&server).with_credentials(Credentials::Exec(exec(&dir, server.token(), 0, &[])));
    let client = Client::builder(config)
        .clock(fake.shared())
        .build()
        .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.list(&ListParams::default()).await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(runs(&dir), 1);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("count.info")).unwrap()).unwrap();
    assert_eq!(info["spec"]["interactive"], false);
    assert_eq!(info["apiVersion"], "client.authentication.k8s.io/v1");

    fake.step(Duration::from_secs(9 * 60));
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(runs(&dir), 1);
    fake.step(Duration::from_secs(60));
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(runs(&dir), 2, "an expired token is fetched again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_plugin_reruns_once_on_401() {
    if common::skip_on_cluster(
        "exec_plugin_reruns_once_on_401",
        "the plugin's tokens are kube-testserver's",
    ) {
        return;
    }
    let server = TestServer::builder().start().await.unwrap();
    let dir = temp_dir();
    let config =
        config_of(&server).with_credentials(Credentials::Exec(exec(&dir, server.token(), 1, &[])));
    let client = Client::builder(config)
        .clock(fake_clock().shared())
        .build()
        .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(runs(&dir), 2);

    // A plugin that always yields a rejected token: one re-run, then the 401 surfaces.
    let dir = temp_dir();
    let config =
        config_of(&server).with_credentials(Credentials::Exec(exec(&dir, "also-wrong", 0, &[])));
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert_eq!(runs(&dir), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_failures_are_auth_errors() {
    if common::skip_on_cluster(
        "exec_failures_are_auth_errors",
        "it compares with kube-testserver answers",
    ) {
        return;
    }
    let server = TestServer::builder().start().await.unwrap();
    let dir = temp_dir();
    let config =
        config_of(&server).with_credentials(Credentials::Exec(exec(&dir, "t", 0, &["fail"])));
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, Error::Auth { .. } if err.to_string().contains("no credentials for you")),
        "{err}"
    );

    let mut missing = exec(&dir, "t", 0, &[]);
    missing.command = dir.join("absent").to_string_lossy().into_owned();
    let config = config_of(&server).with_credentials(Credentials::Exec(missing));
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, Error::Auth { .. } if err.to_string().contains("install the plugin")),
        "{err}"
    );

    let mut version = exec(&dir, "t", 0, &[]);
    version.api_version = "client.authentication.k8s.io/v1beta1".into();
    let config = config_of(&server).with_credentials(Credentials::Exec(version));
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, Error::Auth { .. } if err.to_string().contains("expected ExecCredential")),
        "{err}"
    );
}

#[test]
fn kubeconfig_exec_command_is_relative_to_the_file() {
    let dir = temp_dir();
    let text = r#"
current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://c"}}]
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: ./plugin.sh
      args: [a, b]
      env: [{name: X, value: "1"}]
"#;
    std::fs::write(dir.join("kubeconfig"), text).unwrap();
    let config =
        Config::from_kubeconfig(&Kubeconfig::read(dir.join("kubeconfig")).unwrap()).unwrap();
    let Credentials::Exec(exec) = config.credentials else {
        panic!("exec credentials expected")
    };
    assert_eq!(PathBuf::from(&exec.command), dir.join("./plugin.sh"));
    assert_eq!(exec.args, ["a", "b"]);
    assert_eq!(exec.env[0].name, "X");
}

/// An ExecCredential printed by `/bin/cat` from a file.
fn cat_plugin(dir: &Path, name: &str, status: serde_json::Value) -> ExecConfig {
    let path = dir.join(name);
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": status,
    });
    std::fs::write(&path, credential.to_string()).unwrap();
    ExecConfig {
        command: "/bin/cat".into(),
        args: vec![path.to_string_lossy().into_owned()],
        api_version: "client.authentication.k8s.io/v1".into(),
        interactive_mode: Some("Never".into()),
        ..ExecConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_plugins_may_return_client_certificates() {
    if common::skip_on_cluster(
        "exec_plugins_may_return_client_certificates",
        "it needs kube-testserver's client-certificate authentication",
    ) {
        return;
    }
    let server = TestServer::builder()
        .client_cert_auth(true)
        .start()
        .await
        .unwrap();
    let dir = temp_dir();
    let mut config = config_of(&server);
    let Some((kube_rest::Source::Data(cert), kube_rest::Source::Data(key))) =
        config.client_identity.take()
    else {
        panic!("the test server's kubeconfig carries a client certificate");
    };
    let (cert, key) = (
        String::from_utf8(cert).unwrap(),
        String::from_utf8(key).unwrap(),
    );
    // Without the plugin's certificate the server does not know us.
    let anonymous = config.clone().with_credentials(Credentials::None);
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(anonymous).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(err.is_forbidden() || err.is_unauthorized(), "{err}");

    let plugin = cat_plugin(
        &dir,
        "cert.json",
        serde_json::json!({"clientCertificateData": cert, "clientKeyData": key}),
    );
    let with_plugin = config.clone().with_credentials(Credentials::Exec(plugin));
    let api: Api<ConfigMap> =
        Api::default_namespaced(Client::try_from_config(with_plugin).unwrap());
    api.list(&ListParams::default()).await.unwrap();

    // Half a certificate is refused with a clear message.
    let half = cat_plugin(
        &dir,
        "half.json",
        serde_json::json!({"clientCertificateData": cert}),
    );
    let api: Api<ConfigMap> = Api::default_namespaced(
        Client::try_from_config(config.with_credentials(Credentials::Exec(half))).unwrap(),
    );
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, Error::Auth { .. } if err.to_string().contains("only one of clientCertificateData")),
        "{err}"
    );
}
