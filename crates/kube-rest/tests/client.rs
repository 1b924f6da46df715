//! The REST client against kube-testserver: retries, throttling, auth, TLS, timeouts, URLs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Method;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_flowcontrol::clock::{Clock, FakeClock};
use kube_rest::{Api, Client, Config, Credentials, Error, Kubeconfig, ListParams, Source};
use kube_testserver::TestServer;

fn config_of(server: &TestServer) -> Config {
    let kubeconfig = Kubeconfig::parse(
        &server.kubeconfig_yaml(),
        Path::new("/testserver/kubeconfig"),
    )
    .unwrap();
    Config::from_kubeconfig(&kubeconfig).unwrap()
}

fn temp_file(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kube-rest-client-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `task` to completion, moving the fake clock to each deadline it sleeps on.
async fn drive<T: Send + 'static>(fake: &FakeClock, task: tokio::task::JoinHandle<T>) -> T {
    while !task.is_finished() {
        if fake.step_to_next_deadline().is_none() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    task.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_429_with_retry_after_on_the_clock() {
    if common::skip_on_cluster(
        "retries_429_with_retry_after_on_the_clock",
        "it injects 429 and 503 answers (fault injection)",
    ) {
        return;
    }
    let server = TestServer::builder().start().await.unwrap();
    let fake = FakeClock::new();
    let client = Client::builder(config_of(&server).without_throttle())
        .clock(fake.shared())
        .build()
        .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    server.faults().fail_next(
        Some(Method::GET),
        "/api/v1/namespaces/default/configmaps",
        429,
        3,
    );
    let start = fake.now();
    let task = tokio::spawn(async move { api.list(&ListParams::default()).await });
    let list = drive(&fake, task).await.unwrap();
    assert!(list.items.is_empty());
    // Three Retry-After: 1 waits, on the fake clock.
    assert_eq!(fake.now() - start, Duration::from_secs(3));

    // Exhausted retries surface the last error.
    let client = Client::builder(config_of(&server).without_throttle().with_max_retries(2))
        .clock(fake.shared())
        .build()
        .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    server.faults().fail_next(
        Some(Method::GET),
        "/api/v1/namespaces/default/configmaps",
        503,
        3,
    );
    let task = tokio::spawn(async move { api.list(&ListParams::default()).await });
    let err = drive(&fake, task).await.unwrap_err();
    assert!(err.is_server_error(), "{err}");
    assert_eq!(err.status().unwrap().code, 503);
    assert_eq!(
        (client.retry_stats().retries, client.retry_stats().exhausted),
        (2, 1)
    );
    // The third failure was consumed by the last attempt: the next request succeeds.
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.list(&ListParams::default()).await.unwrap();
}

/// A create hit by priority and fairness (429 with `Retry-After`) is sent again, as client-go
/// does for every request whose body it can replay: the create succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_is_retried_after_429_with_retry_after() {
    if common::skip_on_cluster(
        "a_create_is_retried_after_429_with_retry_after",
        "it injects 429 and 503 answers (fault injection)",
    ) {
        return;
    }
    let server = TestServer::builder().start().await.unwrap();
    let fake = FakeClock::new();
    let client = Client::builder(config_of(&server).without_throttle())
        .clock(fake.shared())
        .build()
        .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    server.faults().fail_next(
        Some(Method::POST),
        "/api/v1/namespaces/default/configmaps",
        429,
        2,
    );
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("created-after-429".into());
    let start = fake.now();
    let task = tokio::spawn(async move { api.create(&Default::default(), &cm).await });
    let created = drive(&fake, task).await.unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("created-after-429"));
    // Two `Retry-After: 1` waits on the client's clock, and the body was sent again intact.
    assert_eq!(fake.now() - start, Duration::from_secs(2));
    assert_eq!(client.retry_stats().retries, 2);
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    assert!(api.get("created-after-429").await.is_ok());

    // Updates and deletes too; with retries off, the 429 is the answer.
    server.faults().fail_next(
        Some(Method::DELETE),
        "/api/v1/namespaces/default/configmaps",
        503,
        1,
    );
    let task = tokio::spawn({
        let api = api.clone();
        async move { api.delete("created-after-429", &Default::default()).await }
    });
    drive(&fake, task).await.unwrap();
    let client = Client::builder(config_of(&server).without_throttle().with_max_retries(0))
        .clock(fake.shared())
        .build()
        .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    server.faults().fail_next(
        Some(Method::POST),
        "/api/v1/namespaces/default/configmaps",
        429,
        1,
    );
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("x".into());
    let err = api.create(&Default::default(), &cm).await.unwrap_err();
    assert!(err.is_too_many_requests(), "{err}");
    assert_eq!(client.retry_stats(), Default::default());
    api.create(&Default::default(), &cm).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_paces_a_burst_at_qps_5() {
    let env = common::TestEnv::start("throttle_paces_a_burst_at_qps_5").await;
    if let Some(server) = env.server() {
        // The defaults: QPS 5, burst 10.
        let config = config_of(server);
        assert_eq!((config.qps, config.burst, config.throttle), (5.0, 10, true));
    }
    let fake = FakeClock::new();
    let config = env.config().with_rate_limit(5.0, 10);
    let client = Client::builder(config)
        .clock(fake.shared())
        .build()
        .unwrap();
    let start = fake.now();
    let task = tokio::spawn(async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        for _ in 0..50 {
            api.list(&ListParams::default().limit(1)).await.unwrap();
        }
    });
    drive(&fake, task).await;
    // 10 at once, then 40 at 5/s.
    let elapsed = fake.now() - start;
    assert!(
        elapsed >= Duration::from_millis(7_900) && elapsed <= Duration::from_millis(8_100),
        "{elapsed:?}"
    );

    // Without the throttle nothing waits.
    let client = Client::builder(env.config())
        .clock(fake.shared())
        .build()
        .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let start = fake.now();
    for _ in 0..30 {
        api.list(&ListParams::default().limit(1)).await.unwrap();
    }
    assert_eq!(fake.now(), start);

    // A throttle with qps 0 is a configuration error.
    let err = Client::try_from_config(env.config().with_rate_limit(0.0, 10)).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_file_is_reread_when_it_changes() {
    if common::skip_on_cluster(
        "token_file_is_reread_when_it_changes",
        "it needs kube-testserver's own bearer tokens",
    ) {
        return;
    }
    let server = TestServer::builder()
        .token("the-right-token")
        .start()
        .await
        .unwrap();
    let path = temp_file("token");
    std::fs::write(&path, "a-wrong-token\n").unwrap();
    let config = config_of(&server)
        .without_throttle()
        .with_credentials(Credentials::TokenFile(path.clone()));
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    std::fs::write(&path, "the-right-token\n").unwrap();
    api.list(&ListParams::default()).await.unwrap();

    // A missing token file is reported when the client is built.
    let config = config_of(&server).with_credentials(Credentials::TokenFile(temp_file("absent")));
    let err = Client::try_from_config(config).unwrap_err();
    assert!(
        matches!(err, Error::Auth { .. } if err.to_string().contains("absent")),
        "{err}"
    );
    // The I/O error is kept as the cause, not only as text.
    assert_eq!(
        io_cause(&err).map(std::io::Error::kind),
        Some(std::io::ErrorKind::NotFound),
        "{err:?}"
    );

    // No credentials: 403 Forbidden.
    let config = config_of(&server)
        .without_throttle()
        .with_credentials(Credentials::None);
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(err.is_forbidden(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_from_inline_data_and_files() {
    if common::skip_on_cluster(
        "client_certificates_from_inline_data_and_files",
        "it needs kube-testserver's client-certificate authentication",
    ) {
        return;
    }
    let server = TestServer::builder()
        .client_cert_auth(true)
        .start()
        .await
        .unwrap();
    let config = config_of(&server).without_throttle();
    assert!(matches!(
        config.client_identity,
        Some((Source::Data(_), Source::Data(_)))
    ));
    assert_eq!(config.credentials, Credentials::None);
    let api: Api<ConfigMap> =
        Api::default_namespaced(Client::try_from_config(config.clone()).unwrap());
    api.list(&ListParams::default()).await.unwrap();

    // The same material from files.
    let (Some((Source::Data(cert), Source::Data(key))), Some(Source::Data(ca))) =
        (config.client_identity.clone(), config.root_ca.clone())
    else {
        panic!("inline data expected");
    };
    let (cert_path, key_path, ca_path) = (
        temp_file("cert.pem"),
        temp_file("key.pem"),
        temp_file("ca.pem"),
    );
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    std::fs::write(&ca_path, &ca).unwrap();
    let files = config
        .clone()
        .with_root_ca(Source::File(ca_path))
        .with_client_identity(Source::File(cert_path.clone()), Source::File(key_path));
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(files).unwrap());
    api.list(&ListParams::default()).await.unwrap();

    // A key that is not PEM is a TLS error at build time.
    let bad = config.with_client_identity(Source::File(cert_path.clone()), Source::File(cert_path));
    let err = Client::try_from_config(bad).unwrap_err();
    assert!(
        matches!(err, Error::Tls { .. } if err.to_string().contains("client key")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verification_server_name_and_insecure() {
    if common::skip_on_cluster(
        "tls_verification_server_name_and_insecure",
        "it needs kube-testserver's CA and certificate names",
    ) {
        return;
    }
    let server = TestServer::builder().start().await.unwrap();
    let port = server.address().port();

    // Another CA: the handshake fails with a TLS error.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let config = config_of(&server)
        .without_throttle()
        .with_root_ca(Source::Data(other.cert.pem().into_bytes()));
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    // rustls' error is in the cause chain, and its message in the error's.
    assert!(
        matches!(&err, Error::Tls { source: Some(cause), .. } if cause.has::<rustls::Error>()),
        "{err:?}"
    );
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    // Insecure: any certificate.
    let mut config = config_of(&server).without_throttle();
    config.root_ca = None;
    config.insecure_skip_tls_verify = true;
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    api.list(&ListParams::default()).await.unwrap();

    // tls-server-name replaces the URL's host in verification: a name the certificate does
    // not carry fails, `localhost` (in the certificate) works with an IP URL.
    let mut config = config_of(&server).without_throttle();
    config.cluster_url = format!("https://127.0.0.1:{port}").parse().unwrap();
    config.tls_server_name = Some("wrong.example".into());
    let api: Api<ConfigMap> =
        Api::default_namespaced(Client::try_from_config(config.clone()).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, Error::Tls { .. } if err.to_string().contains("certificate")),
        "{err:?}"
    );
    config.tls_server_name = Some("localhost".into());
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    api.list(&ListParams::default()).await.unwrap();

    // HTTP/2 is negotiated.
    let client = Client::try_from_config(config_of(&server).without_throttle()).unwrap();
    let response = client
        .request(Method::GET)
        .abs_path("/version")
        .send_streaming()
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_plain_http_and_transport_errors() {
    if common::skip_on_cluster(
        "timeouts_plain_http_and_transport_errors",
        "it injects latency and starts a plain-HTTP kube-testserver",
    ) {
        return;
    }
    let server = TestServer::builder().start().await.unwrap();
    server
        .faults()
        .set_latency(Some(Duration::from_millis(300)));
    let config = config_of(&server)
        .without_throttle()
        .with_timeout(Some(Duration::from_millis(30)));
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout(_)) && err.is_timeout(),
        "{err}"
    );
    server.faults().set_latency(None);

    let plain = TestServer::builder().plain_http().start().await.unwrap();
    let config = config_of(&plain).without_throttle();
    assert_eq!(config.cluster_url.scheme_str(), Some("http"));
    let client = Client::try_from_config(config).unwrap();
    let version: serde_json::Value = client
        .request(Method::GET)
        .abs_path("/version")
        .json()
        .await
        .unwrap();
    assert!(version.get("gitVersion").is_some(), "{version}");
    let address = plain.address();
    plain.shutdown().await;

    let config = Config::new(format!("http://{address}").parse().unwrap()).without_throttle();
    let client = Client::try_from_config(config).unwrap();
    let err = client
        .request(Method::GET)
        .abs_path("/version")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(
        io_cause(&err).map(std::io::Error::kind),
        Some(std::io::ErrorKind::ConnectionRefused),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("GET http://{address}/version")),
        "{err}"
    );
}

/// The first `std::io::Error` in the `source()` chain of `error`.
fn io_cause(error: &Error) -> Option<&std::io::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        next = cause.source();
    }
    None
}

#[test]
fn request_urls() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let client = Client::try_from_config(
        Config::new("https://example.com:6443/prefix/".parse().unwrap()).with_root_ca(
            Source::Data(
                rcgen::generate_simple_self_signed(vec!["x".into()])
                    .unwrap()
                    .cert
                    .pem()
                    .into_bytes(),
            ),
        ),
    )
    .unwrap();
    assert_eq!(client.base_url(), "https://example.com:6443/prefix");
    let cases: Vec<(kube_rest::RequestBuilder<'_>, Result<&str, &str>)> = vec![
        (
            client.request(Method::GET).resource("pods"),
            Ok("/prefix/api/v1/pods"),
        ),
        (
            client
                .request(Method::GET)
                .namespace(Some("ns"))
                .resource("pods")
                .name("p")
                .subresource("log"),
            Ok("/prefix/api/v1/namespaces/ns/pods/p/log"),
        ),
        (
            client
                .request(Method::GET)
                .group_version("apps", "v1")
                .namespace(Some("ns"))
                .resource("deployments"),
            Ok("/prefix/apis/apps/v1/namespaces/ns/deployments"),
        ),
        (
            client
                .request(Method::GET)
                .resource("namespaces")
                .name("kube-system"),
            Ok("/prefix/api/v1/namespaces/kube-system"),
        ),
        // An empty namespace is refused (client-go's preflight check), never widened to all
        // namespaces.
        (
            client
                .request(Method::GET)
                .namespace(Some(""))
                .resource("pods"),
            Err("an empty namespace may not be set"),
        ),
        (
            client
                .request(Method::POST)
                .namespace(Some(""))
                .resource("pods"),
            Err("an empty namespace may not be set during creation"),
        ),
        (
            client
                .request(Method::GET)
                .namespace(Some(""))
                .resource("pods")
                .name("x"),
            Err("an empty namespace may not be set when a resource name is provided"),
        ),
        (
            client.request(Method::GET).namespace(None).resource("pods"),
            Ok("/prefix/api/v1/pods"),
        ),
        (
            client
                .request(Method::GET)
                .resource("pods")
                .param("labelSelector", "a in (b,c)")
                .param("limit", "5"),
            Ok("/prefix/api/v1/pods?labelSelector=a+in+%28b%2Cc%29&limit=5"),
        ),
        (
            client.request(Method::GET).abs_path("/version"),
            Ok("/prefix/version"),
        ),
        (
            client.request(Method::GET).resource("pods").name("a/b"),
            Err("may not contain '/'"),
        ),
        (
            client.request(Method::GET).resource("pods").name(".."),
            Err("may not be \"..\""),
        ),
        (
            client.request(Method::GET).resource("pods").name(""),
            Err("may not be empty"),
        ),
        (
            client
                .request(Method::GET)
                .namespace(Some("a b"))
                .resource("pods"),
            Err("may not contain ' '"),
        ),
        (
            client.request(Method::GET).name("x"),
            Err("needs a resource"),
        ),
        (
            client
                .request(Method::GET)
                .resource("pods")
                .subresource("status"),
            Err("needs a name"),
        ),
        (
            client.request(Method::GET).abs_path("version"),
            Err("must start with /"),
        ),
    ];
    for (request, expected) in cases {
        match (request.path_and_query(), expected) {
            (Ok(path), Ok(want)) => assert_eq!(path, want),
            (Err(e), Err(want)) => {
                assert!(matches!(e, kube_rest::Error::Request(_)), "{e:?}");
                assert!(e.to_string().contains(want), "{e} lacks {want}");
                assert_eq!(e.to_string().matches("invalid request").count(), 1, "{e}");
            }
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_file_is_reread_every_minute_even_when_unchanged_on_disk() {
    if common::skip_on_cluster(
        "token_file_is_reread_every_minute_even_when_unchanged_on_disk",
        "it needs kube-testserver's own bearer tokens",
    ) {
        return;
    }
    let server = TestServer::builder()
        .token("right-token-1")
        .start()
        .await
        .unwrap();
    let path = temp_file("token");
    std::fs::write(&path, "wrong-token-1").unwrap();
    let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
    let fake = FakeClock::new();
    let config = config_of(&server)
        .without_throttle()
        .with_credentials(Credentials::TokenFile(path.clone()));
    let client = Client::builder(config)
        .clock(fake.shared())
        .build()
        .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap_err()
            .is_unauthorized()
    );

    // A same-size rewrite that keeps the modification time goes unnoticed...
    std::fs::write(&path, "right-token-1").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    fake.step(Duration::from_secs(59));
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap_err()
            .is_unauthorized()
    );
    // ...for at most a minute.
    fake.step(Duration::from_secs(1));
    api.list(&ListParams::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_come_gzip_compressed_and_are_inflated() {
    let server = TestServer::builder().start().await.unwrap();
    let api = Api::<ConfigMap>::namespaced(
        Client::try_from_config(config_of(&server)).unwrap(),
        "default",
    );
    // 6 configmaps of 32 KiB: a list of about 200 KB, over the server's 128 KiB threshold.
    for i in 0..6 {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("cm-{i}")},
            "data": {"blob": "x".repeat(32 * 1024)},
        }))
        .unwrap();
        api.create(&kube_rest::PostParams::default(), &cm)
            .await
            .unwrap();
    }
    let list_configmaps = |client: Client| async move {
        client
            .request(Method::GET)
            .resource("configmaps")
            .namespace(Some("default"))
            .send_streaming()
            .await
    };
    let gzip = Client::try_from_config(config_of(&server)).unwrap();
    let response = list_configmaps(gzip.clone()).await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let body = response.into_body().bytes().await.unwrap();
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 6);

    let mut config = config_of(&server);
    config.disable_compression = true;
    let plain = Client::try_from_config(config).unwrap();
    let response = list_configmaps(plain.clone()).await.unwrap();
    assert!(response.headers().get("content-encoding").is_none());
    // Typed lists agree either way (send() inflates too).
    let compressed = Api::<ConfigMap>::namespaced(gzip, "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    let uncompressed = Api::<ConfigMap>::namespaced(plain, "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(compressed.items, uncompressed.items);
    // Small answers are not compressed.
    let one = api.get("cm-1").await.unwrap();
    assert_eq!(one.metadata.name.as_deref(), Some("cm-1"));
}
