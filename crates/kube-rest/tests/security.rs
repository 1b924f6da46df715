//! Security guarantees (docs/security.md):
//!
//! * TLS verification is on by default: a server whose certificate was issued by a CA the
//!   client does not trust is refused, unless `insecure-skip-tls-verify` is set;
//! * tokens, passwords, client keys and exec-provided tokens never show in `Debug`, in error
//!   messages, nor in anything logged through `tracing` during a full run;
//! * a redirect is never followed (so neither the `Authorization` header nor the client
//!   certificate goes to another host), and an HTTP CONNECT proxy only ever sees TLS records.
#![cfg(unix)]

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_rest::config::Credentials;
use kube_rest::kubeconfig::{ExecConfig, ExecEnvVar};
use kube_rest::{
    Api, Client, Config, DeleteParams, Error, Kubeconfig, ListParams, PostParams, Source,
    WatchEvent, WatchParams,
};
use kube_testserver::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The token every test server of this file accepts: it must never be seen in output.
const TOKEN: &str = "kt-secret-token-5f2c9a81d7";
/// The token the exec plugin returns on its first run (refused by the server: a 401).
const WRONG_TOKEN: &str = "kt-wrong-exec-token-77e1b0";
/// A basic-auth password.
const PASSWORD: &str = "kt-basic-password-3a9d";
/// A proxy password (`proxy-url`'s userinfo).
const PROXY_PASSWORD: &str = "kt-proxy-password-c4e2";

fn kubeconfig_of(server: &TestServer) -> Kubeconfig {
    Kubeconfig::parse(
        &server.kubeconfig_yaml(),
        Path::new("/testserver/kubeconfig"),
    )
    .unwrap()
}

fn config_of(server: &TestServer) -> Config {
    Config::from_kubeconfig(&kubeconfig_of(server))
        .unwrap()
        .without_throttle()
        .without_env_proxy()
}

async fn server() -> TestServer {
    TestServer::builder().token(TOKEN).start().await.unwrap()
}

/// Every secret of this file, for the "never shown" assertions.
fn assert_no_secret(what: &str, text: &str) {
    for secret in [TOKEN, WRONG_TOKEN, PASSWORD, PROXY_PASSWORD, KEY_MARKER] {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret:?}:\n{text}"
        );
    }
}

/// A line of the client key used below: a key's PEM body must never be shown either.
const KEY_MARKER: &str = "MC4CAQAwBQYDK2VwBCIEIKt3secretkeymarker";

// ---------------------------------------------------------------------------------------------
// (a) TLS verification
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_an_unknown_ca_is_refused() {
    if common::skip_on_cluster(
        "a_server_certificate_from_an_unknown_ca_is_refused",
        "it needs kube-testserver's own CA",
    ) {
        return;
    }
    let server = server().await;
    let trusted = config_of(&server);
    assert!(
        !trusted.insecure_skip_tls_verify,
        "verification is on by default"
    );
    let api: Api<ConfigMap> =
        Api::default_namespaced(Client::try_from_config(trusted.clone()).unwrap());
    api.list(&ListParams::default()).await.unwrap();

    // Another CA than the server's: the handshake fails, nothing is sent.
    let other_ca = rcgen::KeyPair::generate()
        .and_then(|key| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.self_signed(&key)
        })
        .unwrap();
    let untrusted = trusted
        .clone()
        .with_root_ca(Source::Data(other_ca.pem().into_bytes()));
    let client = Client::try_from_config(untrusted).unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert_no_secret("the TLS error", &format!("{err} {err:?}"));
    // WebSocket upgrades (exec, attach, port-forward) use the same TLS configuration.
    #[cfg(feature = "ws")]
    {
        let err = client
            .request(http::Method::GET)
            .abs_path("/api/v1/namespaces/default/pods/p/exec")
            .connect_websocket(&["v5.channel.k8s.io"])
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    }

    // The system roots (no CA configured) do not know kube-testserver's CA either: refused
    // (at the handshake, or when building the client if the system has no roots at all).
    let mut system_roots = trusted.clone();
    system_roots.root_ca = None;
    match Client::try_from_config(system_roots) {
        Ok(client) => {
            let api: Api<ConfigMap> = Api::default_namespaced(client);
            let err = api.list(&ListParams::default()).await.unwrap_err();
            assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        }
        Err(err) => assert!(matches!(err, Error::Tls { .. }), "{err:?}"),
    }

    // The same, from a kubeconfig without certificate-authority-data.
    let mut kubeconfig = kubeconfig_of(&server);
    let cluster = kubeconfig.clusters[0].cluster.as_mut().unwrap();
    cluster.certificate_authority_data = None;
    let config = Config::from_kubeconfig(&kubeconfig).unwrap();
    assert!(!config.insecure_skip_tls_verify);
    if let Ok(client) = Client::try_from_config(config) {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let err = api.list(&ListParams::default()).await.unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    }

    // Only insecure-skip-tls-verify lets it through.
    kubeconfig.clusters[0]
        .cluster
        .as_mut()
        .unwrap()
        .insecure_skip_tls_verify = true;
    let insecure = Config::from_kubeconfig(&kubeconfig)
        .unwrap()
        .without_env_proxy();
    assert!(insecure.insecure_skip_tls_verify);
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(insecure).unwrap());
    api.list(&ListParams::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_name_is_verified() {
    if common::skip_on_cluster(
        "the_server_name_is_verified",
        "it needs kube-testserver's own CA",
    ) {
        return;
    }
    let server = server().await;
    // The right CA, the wrong name: refused.
    let mut config = config_of(&server);
    config.tls_server_name = Some("not-the-server.example".into());
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// (b) Debug and error messages
// ---------------------------------------------------------------------------------------------

fn secret_kubeconfig() -> String {
    format!(
        r#"
apiVersion: v1
kind: Config
current-context: ctx
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
    proxy-url: http://alice:{PROXY_PASSWORD}@127.0.0.1:3128
contexts:
- name: ctx
  context: {{cluster: c, user: u}}
- name: basic
  context: {{cluster: c, user: b}}
- name: exec
  context: {{cluster: c, user: e}}
users:
- name: u
  user:
    token: {TOKEN}
    client-certificate-data: Y2VydA==
    client-key-data: {KEY_MARKER}
- name: b
  user:
    username: bob
    password: {PASSWORD}
- name: e
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: /bin/plugin
      env: [{{name: SECRET, value: {TOKEN}}}]
"#
    )
}

#[test]
fn config_debug_hides_a_password_in_the_server_url() {
    let url = format!("https://carol:{PASSWORD}@127.0.0.1:6443/prefix");
    let config = Config::new(url.parse().unwrap());
    let shown = format!("{config:?} {config:#?}");
    assert_no_secret("Config's Debug", &shown);
    assert!(
        shown.contains("<redacted>@127.0.0.1:6443/prefix"),
        "{shown}"
    );
    // Without userinfo the URL shows as it is.
    let plain = Config::new("https://127.0.0.1:6443".parse().unwrap());
    assert!(format!("{plain:?}").contains("cluster_url: \"https://127.0.0.1:6443/\""));
}

#[test]
fn debug_never_shows_secrets() {
    let kubeconfig = Kubeconfig::parse(&secret_kubeconfig(), Path::new("/k")).unwrap();
    assert_no_secret(
        "Kubeconfig's Debug",
        &format!("{kubeconfig:?} {kubeconfig:#?}"),
    );
    for user in &kubeconfig.auth_infos {
        assert_no_secret("AuthInfo's Debug", &format!("{:?}", user.user));
    }
    for cluster in &kubeconfig.clusters {
        assert_no_secret("Cluster's Debug", &format!("{:?}", cluster.cluster));
    }
    for context in ["ctx", "basic", "exec"] {
        let mut kubeconfig = kubeconfig.clone();
        kubeconfig.current_context = Some(context.into());
        // The token user's client key is not valid base64: that is an error, and its
        // message must not quote the key either.
        match Config::from_kubeconfig(&kubeconfig) {
            Ok(config) => {
                assert_no_secret("Config's Debug", &format!("{config:?} {config:#?}"));
                assert_no_secret("Credentials' Debug", &format!("{:?}", config.credentials));
                assert_no_secret("ProxyUrl's Debug", &format!("{:?}", config.proxy_url));
                if let Ok(client) = Client::try_from_config(config) {
                    assert_no_secret("Client's Debug", &format!("{client:?}"));
                }
            }
            Err(err) => assert_no_secret("a configuration error", &format!("{err} {err:?}")),
        }
    }
    let credentials = [
        Credentials::Token(TOKEN.into()),
        Credentials::Basic {
            username: "bob".into(),
            password: PASSWORD.into(),
        },
        Credentials::Exec(ExecConfig {
            command: "/bin/plugin".into(),
            env: vec![ExecEnvVar {
                name: "SECRET".into(),
                value: TOKEN.into(),
            }],
            ..ExecConfig::default()
        }),
    ];
    for credentials in credentials {
        assert_no_secret("Credentials' Debug", &format!("{credentials:?}"));
        let config = Config::new("https://127.0.0.1:6443".parse().unwrap())
            .with_credentials(credentials)
            .with_client_identity(
                Source::Data(b"cert".to_vec()),
                Source::Data(KEY_MARKER.as_bytes().to_vec()),
            );
        assert_no_secret("Config's Debug", &format!("{config:?}"));
        // A client identity that is not PEM: the error names the key, never its bytes.
        let err = Client::try_from_config(config).unwrap_err();
        assert_no_secret("a client error", &format!("{err} {err:?}"));
    }
}

/// Secrets of the wrong YAML type (a numeric password, a token written as a list) make the
/// kubeconfig invalid; the parse error must not quote them (serde quotes unexpected scalars).
#[test]
fn kubeconfig_errors_never_quote_secrets() {
    let numeric = "8127734419";
    let cases = [
        format!("users: [{{name: u, user: {{password: {numeric}}}}}]"),
        format!("users: [{{name: u, user: {{token: {numeric}}}}}]"),
        format!("users: [{{name: u, user: {{token: {numeric}.5}}}}]"),
        format!("users: [{{name: u, user: {{client-key-data: {numeric}}}}}]"),
        format!("users: [{{name: u, user: {{client-certificate-data: {numeric}}}}}]"),
        format!("users: [{{name: u, user: {{token: true, password: {numeric}}}}}]"),
        format!(
            "users: [{{name: u, user: {{exec: {{command: x, env: [{{name: A, value: {numeric}}}]}}}}}}]"
        ),
        format!("users: [{{name: u, user: {{token: [{TOKEN}]}}}}]"),
        format!("users: [{{name: u, user: {{token: {{{TOKEN}: 1}}}}}}]"),
        format!("clusters: [{{name: c, cluster: {{proxy-url: {numeric}}}}}]"),
    ];
    for text in cases {
        let err = Kubeconfig::parse(&text, Path::new("/k")).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains(numeric) && !shown.contains(TOKEN),
            "{text}\n => {shown}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Nothing logged through tracing carries a secret
// ---------------------------------------------------------------------------------------------

/// Everything written by the global `tracing` subscriber of this test binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

fn capture_all_tracing() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(captured.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("the only subscriber of this test binary");
            captured
        })
        .clone()
}

const PLUGIN: &str = r#"#!/bin/sh
n=$(cat "$COUNT" 2>/dev/null || echo 0)
n=$((n+1))
echo "$n" > "$COUNT"
if [ "$n" -le 1 ]; then tok="$WRONG"; else tok="$TOKEN"; fi
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$tok"
"#;

fn plugin_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kube-rest-security-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("plugin.sh");
    let mut file = std::fs::File::create(&plugin).unwrap();
    file.write_all(PLUGIN.as_bytes()).unwrap();
    drop(file);
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_never_logs_a_secret() {
    if common::skip_on_cluster(
        "a_full_run_never_logs_a_secret",
        "it needs kube-testserver's token",
    ) {
        return;
    }
    let captured = capture_all_tracing();
    let server = server().await;
    assert_eq!(server.token(), TOKEN);

    // A client from a kubeconfig carrying the token: requests, errors, a watch.
    let dir = plugin_dir();
    let path = dir.join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let config = Config::from_kubeconfig(&Kubeconfig::read(&path).unwrap())
        .unwrap()
        .without_env_proxy();
    tracing::info!(?config, "loaded");
    let client = Client::try_from_config(config).unwrap();
    tracing::info!(?client, "built");
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let mut watch = api
        .watch(&WatchParams::default().timeout(5), "")
        .await
        .unwrap();
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "security"}, "data": {"k": "v"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let err = api.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    tracing::error!(error = %err, debug = ?err, "expected conflict");
    let err = api.get("missing").await.unwrap_err();
    tracing::error!(error = %err, debug = ?err, "expected not found");
    match watch.next().await {
        Some(Ok(WatchEvent::Added(cm))) => {
            assert_eq!(cm.metadata.name.as_deref(), Some("security"))
        }
        other => panic!("{other:?}"),
    }
    api.delete("security", &DeleteParams::default())
        .await
        .unwrap();
    drop(watch);

    // A wrong static token: 401, logged.
    let wrong = config_of(&server).with_credentials(Credentials::Token(WRONG_TOKEN.into()));
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(wrong).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    tracing::error!(error = %err, debug = ?err, "expected unauthorized");

    // Basic auth (refused by kube-testserver: its password is still secret).
    let basic = config_of(&server).with_credentials(Credentials::Basic {
        username: "bob".into(),
        password: PASSWORD.into(),
    });
    tracing::info!(config = ?basic, "basic auth");
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(basic).unwrap());
    if let Err(err) = api.list(&ListParams::default()).await {
        tracing::error!(error = %err, debug = ?err, "basic auth");
    }

    // An exec plugin whose first token is refused: a 401, a second run, success.
    let var = |name: &str, value: &str| ExecEnvVar {
        name: name.into(),
        value: value.into(),
    };
    let exec = ExecConfig {
        command: dir.join("plugin.sh").to_string_lossy().into_owned(),
        env: vec![
            var("COUNT", &dir.join("count").to_string_lossy()),
            var("TOKEN", TOKEN),
            var("WRONG", WRONG_TOKEN),
        ],
        api_version: "client.authentication.k8s.io/v1".into(),
        interactive_mode: Some("Never".into()),
        ..ExecConfig::default()
    };
    let config = config_of(&server).with_credentials(Credentials::Exec(exec));
    tracing::info!(?config, "exec");
    let client = Client::try_from_config(config).unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("count")).unwrap().trim(),
        "2",
        "the 401 made the plugin run again"
    );
    let mut watch = api
        .watch(&WatchParams::default().timeout(1), "")
        .await
        .unwrap();
    while let Some(event) = watch.next().await {
        tracing::debug!(?event, "exec watch");
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("expected unauthorized") && logs.contains("401"),
        "the capture works: {logs}"
    );
    assert_no_secret("the tracing output", &logs);
}

// ---------------------------------------------------------------------------------------------
// (d) Redirects and proxies
// ---------------------------------------------------------------------------------------------

/// A listener that counts connections and records what it receives.
async fn recorder() -> (std::net::SocketAddr, Arc<AtomicUsize>, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (count, record) = (connections.clone(), received.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                        .await;
                }
            });
        }
    });
    (address, connections, received)
}

/// A plain HTTP server answering every request with `status` and a `Location` on `target`.
async fn redirector(status: u16, target: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        head.clear();
                        let answer = format!(
                            "HTTP/1.1 {status} Moved\r\nLocation: http://{target}/api/v1/namespaces/default/configmaps\r\nContent-Length: 0\r\n\r\n"
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_so_credentials_stay_home() {
    let (other, connections, received) = recorder().await;
    for status in [301u16, 302, 303, 307, 308] {
        let from = redirector(status, other).await;
        let config = Config::new(format!("http://{from}").parse().unwrap())
            .with_credentials(Credentials::Token(TOKEN.into()))
            .without_env_proxy()
            .without_throttle();
        let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
        let err = api.list(&ListParams::default()).await.unwrap_err();
        assert_eq!(err.status().map(|s| s.code), Some(status), "{err:?}");
        let err = api
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}})).unwrap(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.status().map(|s| s.code), Some(status), "{err:?}");
        let err = api
            .watch(&WatchParams::default(), "")
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.status().map(|s| s.code), Some(status), "{err:?}");
        #[cfg(feature = "ws")]
        {
            let err = client_of(from)
                .request(http::Method::GET)
                .abs_path("/api/v1/namespaces/default/pods/p/exec")
                .connect_websocket(&["v5.channel.k8s.io"])
                .await
                .map(|_| ())
                .unwrap_err();
            assert_eq!(err.status().map(|s| s.code), Some(status), "{err:?}");
        }
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the redirect target was contacted: {:?}",
        String::from_utf8_lossy(&received.lock().unwrap())
    );
}

#[cfg(feature = "ws")]
fn client_of(address: std::net::SocketAddr) -> Client {
    let config = Config::new(format!("http://{address}").parse().unwrap())
        .with_credentials(Credentials::Token(TOKEN.into()))
        .without_env_proxy()
        .without_throttle();
    Client::try_from_config(config).unwrap()
}

/// A CONNECT proxy that records the CONNECT request and every byte it forwards.
async fn recording_proxy() -> (String, Arc<Mutex<Vec<u8>>>, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let traffic = Arc::new(Mutex::new(Vec::new()));
    let (heads_in, traffic_in) = (heads.clone(), traffic.clone());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let heads = heads_in.clone();
            let traffic = traffic_in.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                heads.lock().unwrap().extend_from_slice(&head);
                let head = String::from_utf8_lossy(&head).to_string();
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let Ok(upstream) = TcpStream::connect(&target).await else {
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let (mut client_read, mut client_write) = client.into_split();
                let (mut upstream_read, mut upstream_write) = upstream.into_split();
                let up_traffic = traffic.clone();
                let up = tokio::spawn(async move {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = client_read.read(&mut buf).await {
                        if n == 0 || upstream_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        up_traffic.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
                let mut buf = [0u8; 8192];
                while let Ok(n) = upstream_read.read(&mut buf).await {
                    if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    traffic.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = up.await;
            });
        }
    });
    (
        format!("http://alice:{PROXY_PASSWORD}@{address}"),
        heads,
        traffic,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_proxy_never_sees_the_token() {
    if common::skip_on_cluster(
        "a_connect_proxy_never_sees_the_token",
        "it puts a proxy in front of kube-testserver",
    ) {
        return;
    }
    let server = server().await;
    let (proxy, heads, traffic) = recording_proxy().await;
    let config = config_of(&server).with_proxy_url(&proxy).unwrap();
    assert_no_secret("Config's Debug", &format!("{config:?}"));
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    api.list(&ListParams::default()).await.unwrap();
    api.get("missing").await.unwrap_err();

    let heads = String::from_utf8_lossy(&heads.lock().unwrap()).to_string();
    assert!(heads.starts_with("CONNECT "), "{heads}");
    assert!(
        !heads.to_ascii_lowercase().contains("\r\nauthorization:"),
        "the CONNECT request carries the server's credentials: {heads}"
    );
    assert!(!heads.contains(TOKEN), "{heads}");
    // The proxy's own credentials are for the proxy (Proxy-Authorization, base64).
    assert!(heads.contains("Proxy-Authorization: Basic "), "{heads}");
    let traffic = traffic.lock().unwrap().clone();
    assert!(traffic.len() > 1000, "the requests went through the tunnel");
    assert!(
        !traffic.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "the token crossed the proxy in the clear"
    );
}

/// A plain HTTP server answering every request with a 500 whose chunked body never ends.
async fn endless_error() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let Ok(n) = socket.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                let head = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
                // Until the client stops reading and closes.
                while socket.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_error_body_is_cut_not_read_forever() {
    let address = endless_error().await;
    let mut config = Config::new(format!("http://{address}").parse().unwrap())
        .without_env_proxy()
        .without_throttle();
    config.max_retries = 0;
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        api.list(&ListParams::default()),
    )
    .await
    .expect("the error answer is cut at its size limit, not read forever")
    .unwrap_err();
    assert_eq!(err.status().map(|s| s.code), Some(500), "{err:?}");
}
