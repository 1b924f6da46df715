//! The server's rules beyond the recorded exchanges, over real HTTP with a plain hyper client.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{TestClient, pod};
use http::{Method, StatusCode};
use kube_testserver::TestServer;
use serde_json::{Value, json};

/// A server without the simulated kubelet: these tests check the API server's own rules, and
/// count the events of pods that must not change under them.
async fn plain_server() -> (TestServer, TestClient) {
    let server = TestServer::builder()
        .plain_http()
        .simulated_kubelet(None)
        .bookmark_interval(Duration::from_millis(100))
        .start()
        .await
        .expect("server");
    let client = TestClient::new(&server);
    (server, client)
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_watch_cache_ignores_the_limit_of_a_list_at_resource_version_0() {
    let (_server, c) = plain_server().await;
    for i in 0..5 {
        let reply = c
            .post(
                "/api/v1/namespaces/default/configmaps",
                &json!({"metadata": {"name": format!("cm{i}")}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    // As kube-apiserver v1.35 answers it: every item, no continue token.
    for query in [
        "limit=2&resourceVersion=0",
        "limit=2&resourceVersion=0&resourceVersionMatch=NotOlderThan",
    ] {
        let list = c
            .get(&format!("/api/v1/namespaces/default/configmaps?{query}"))
            .await
            .json();
        assert_eq!(names(&list), ["cm0", "cm1", "cm2", "cm3", "cm4"], "{query}");
        assert!(list["metadata"]["continue"].is_null(), "{query}: {list}");
    }
    // Any other resourceVersion still pages.
    let list = c
        .get("/api/v1/namespaces/default/configmaps?limit=2&resourceVersion=1")
        .await
        .json();
    assert_eq!(names(&list), ["cm0", "cm1"]);
}

#[tokio::test]
async fn paging_is_a_consistent_snapshot() {
    let (_server, c) = plain_server().await;
    for i in 0..5 {
        let reply = c
            .post(
                "/api/v1/namespaces/default/configmaps",
                &json!({"metadata": {"name": format!("cm{i}")}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let first = c
        .get("/api/v1/namespaces/default/configmaps?limit=2")
        .await
        .json();
    assert_eq!(names(&first), ["cm0", "cm1"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    // Changes after the first page do not show up in the next pages.
    assert_eq!(
        c.delete("/api/v1/namespaces/default/configmaps/cm2")
            .await
            .status,
        200
    );
    c.post(
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "cm9"}}),
    )
    .await;
    let second = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?limit=2&continue={token}"
        ))
        .await
        .json();
    assert_eq!(names(&second), ["cm2", "cm3"]);
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    let token = second["metadata"]["continue"].as_str().unwrap().to_string();
    let third = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?limit=2&continue={token}"
        ))
        .await
        .json();
    assert_eq!(names(&third), ["cm4"]);
    assert!(third["metadata"].get("continue").is_none());
}

/// Pages across namespaces follow etcd's path order (`team-a/...` before `team/...`), so a
/// namespace that prefixes another loses nothing at a page boundary.
#[tokio::test]
async fn paging_across_namespaces_follows_path_order() {
    let (_server, c) = plain_server().await;
    for ns in ["team", "team-a"] {
        let reply = c
            .post("/api/v1/namespaces", &json!({"metadata": {"name": ns}}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        for name in ["x", "y"] {
            let reply = c
                .post(
                    &format!("/api/v1/namespaces/{ns}/configmaps"),
                    &json!({"metadata": {"name": name}}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::CREATED);
        }
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .get(&format!("/api/v1/configmaps?limit=1&continue={token}"))
            .await
            .json();
        for item in page["items"].as_array().unwrap() {
            let ns = item["metadata"]["namespace"].as_str().unwrap();
            if ns.starts_with("team") {
                seen.push(format!(
                    "{ns}/{}",
                    item["metadata"]["name"].as_str().unwrap()
                ));
            }
        }
        match page["metadata"]["continue"].as_str() {
            Some(next) => token = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, ["team-a/x", "team-a/y", "team/x", "team/y"]);
}

#[tokio::test]
async fn expired_continue_token_is_410() {
    let (server, c) = plain_server().await;
    for i in 0..3 {
        c.post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": format!("cm{i}")}}),
        )
        .await;
    }
    let first = c
        .get("/api/v1/namespaces/default/configmaps?limit=1")
        .await
        .json();
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    c.post(
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "late"}}),
    )
    .await;
    server.compact();
    let reply = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?limit=1&continue={token}"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert_eq!(reply.json()["reason"], "Expired");
}

#[tokio::test]
async fn watch_list_ends_initial_events_with_an_annotated_bookmark() {
    let (_server, c) = plain_server().await;
    c.post("/api/v1/namespaces/default/pods", &pod("a", json!({})))
        .await;
    c.post("/api/v1/namespaces/default/pods", &pod("b", json!({})))
        .await;
    let reply = c
        .get("/api/v1/namespaces/default/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")
        .await;
    let events = reply.events();
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[1]["type"], "ADDED");
    assert_eq!(events[2]["type"], "BOOKMARK");
    assert_eq!(
        events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // Without bookmarks the request is invalid.
    let reply = c
        .get("/api/v1/namespaces/default/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan")
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn single_object_watch_and_timeout() {
    let (_server, c) = plain_server().await;
    c.post("/api/v1/namespaces/default/pods", &pod("a", json!({})))
        .await;
    c.post("/api/v1/namespaces/default/pods", &pod("b", json!({})))
        .await;
    let started = std::time::Instant::now();
    let reply = c
        .get("/api/v1/namespaces/default/pods?watch=1&fieldSelector=metadata.name%3Db&timeoutSeconds=1")
        .await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    let events = reply.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["object"]["metadata"]["name"], "b");
    assert_eq!(events[0]["object"]["kind"], "Pod");
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let (_server, c) = plain_server().await;
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"replicas": 99}
    });
    let created = c
        .post("/apis/apps/v1/namespaces/default/deployments", &deployment)
        .await
        .json();
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(
        created.get("status").is_none(),
        "status is not set on create"
    );
    // A status update changes only the status.
    let mut with_status = created.clone();
    with_status["status"] = json!({"replicas": 1});
    with_status["spec"]["replicas"] = json!(5);
    let updated = c
        .put(
            "/apis/apps/v1/namespaces/default/deployments/web/status",
            &with_status,
        )
        .await
        .json();
    assert_eq!(updated["status"]["replicas"], 1);
    assert_eq!(updated["spec"]["replicas"], 1);
    assert_eq!(updated["metadata"]["generation"], 1);
    // A spec change bumps the generation; the main resource ignores status.
    let mut scaled = updated.clone();
    scaled["spec"]["replicas"] = json!(3);
    scaled["status"] = json!({"replicas": 42});
    let scaled = c
        .put("/apis/apps/v1/namespaces/default/deployments/web", &scaled)
        .await
        .json();
    assert_eq!(scaled["metadata"]["generation"], 2);
    assert_eq!(scaled["status"]["replicas"], 1);
    // An update that changes nothing keeps the resourceVersion.
    let again = c
        .put("/apis/apps/v1/namespaces/default/deployments/web", &scaled)
        .await
        .json();
    assert_eq!(
        again["metadata"]["resourceVersion"],
        scaled["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn custom_resources_are_served_after_their_crd() {
    let (_server, c) = plain_server().await;
    assert_eq!(
        c.get("/apis/example.com/v1/namespaces/default/widgets")
            .await
            .status,
        404
    );
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}}]}
    });
    let created = c
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        created.json()["status"]["conditions"][1]["type"],
        "Established"
    );
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}});
    assert_eq!(
        c.post("/apis/example.com/v1/namespaces/default/widgets", &widget)
            .await
            .status,
        StatusCode::CREATED
    );
    let list = c
        .get("/apis/example.com/v1/namespaces/default/widgets")
        .await
        .json();
    assert_eq!(list["kind"], "WidgetList");
    assert_eq!(
        list["items"][0]["kind"], "Widget",
        "custom resource items keep their kind"
    );
    let discovery = c.get("/apis/example.com/v1").await.json();
    assert_eq!(discovery["resources"][0]["name"], "widgets");
    assert_eq!(
        c.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
            .await
            .status,
        200
    );
    assert_eq!(
        c.get("/apis/example.com/v1/namespaces/default/widgets")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_content() {
    let (_server, c) = plain_server().await;
    c.post("/api/v1/namespaces", &json!({"metadata": {"name": "temp"}}))
        .await;
    c.post(
        "/api/v1/namespaces/temp/configmaps",
        &json!({"metadata": {"name": "a"}}),
    )
    .await;
    let deleted = c.delete("/api/v1/namespaces/temp").await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["status"]["phase"], "Terminating");
    assert_eq!(
        c.get("/api/v1/namespaces/temp/configmaps/a").await.status,
        404
    );
    assert_eq!(c.get("/api/v1/namespaces/temp").await.status, 404);
}

#[tokio::test]
async fn injected_faults() {
    let (server, c) = plain_server().await;
    server
        .faults()
        .fail_next(Some(Method::GET), "/api/v1/namespaces/default/pods", 503, 1);
    let failed = c.get("/api/v1/namespaces/default/pods").await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failed.json()["reason"], "ServiceUnavailable");
    assert_eq!(
        c.get("/api/v1/namespaces/default/pods").await.status,
        StatusCode::OK
    );

    server.faults().fail_next(None, "/api", 429, 1);
    assert_eq!(
        c.get("/api/v1/namespaces").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    server
        .faults()
        .set_latency(Some(Duration::from_millis(200)));
    let started = std::time::Instant::now();
    c.get("/api/v1/namespaces").await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    server.faults().clear();

    // Closing all watches ends open streams early.
    let watcher = {
        let c = TestClient::new(&server);
        tokio::spawn(async move {
            c.get("/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=30")
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.close_all_watches();
    let reply = tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("watch closed")
        .expect("watch task");
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn listener_restarts_on_the_same_port() {
    let (server, c) = plain_server().await;
    c.post(
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "kept"}}),
    )
    .await;
    server.stop_listener().await;
    server.restart_listener().await.expect("restart");
    let c = TestClient::new(&server);
    assert_eq!(
        c.get("/api/v1/namespaces/default/configmaps/kept")
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_writers_never_lose_an_update() {
    let (server, _c) = plain_server().await;
    let c = TestClient::new(&server);
    c.post(
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "counter"}, "data": {"n": "0"}}),
    )
    .await;
    let server = Arc::new(server);
    let writers = 8;
    let increments = 10;
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let server = Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            let c = TestClient::new(&server);
            let mut conflicts = 0;
            let mut done = 0;
            while done < increments {
                let current = c
                    .get("/api/v1/namespaces/default/configmaps/counter")
                    .await
                    .json();
                let n: u64 = current["data"]["n"].as_str().unwrap().parse().unwrap();
                let mut next = current.clone();
                next["data"]["n"] = json!((n + 1).to_string());
                let reply = c
                    .put("/api/v1/namespaces/default/configmaps/counter", &next)
                    .await;
                match reply.status {
                    StatusCode::OK => done += 1,
                    StatusCode::CONFLICT => conflicts += 1,
                    other => panic!("unexpected {other}"),
                }
            }
            conflicts
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let c = TestClient::new(&server);
    let last = c
        .get("/api/v1/namespaces/default/configmaps/counter")
        .await
        .json();
    assert_eq!(last["data"]["n"], (writers * increments).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_watcher_sees_every_event_in_order() {
    let (server, _c) = plain_server().await;
    let server = Arc::new(server);
    let start_rv = server.resource_version();
    let mut watchers = Vec::new();
    for _ in 0..10 {
        let server = Arc::clone(&server);
        watchers.push(tokio::spawn(async move {
            let c = TestClient::new(&server);
            c.get(&format!(
                "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={start_rv}&timeoutSeconds=2"
            ))
            .await
            .events()
        }));
    }
    let c = TestClient::new(&server);
    for i in 0..50 {
        c.post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": format!("cm{i}")}}),
        )
        .await;
        if i % 5 == 0 {
            c.delete(&format!("/api/v1/namespaces/default/configmaps/cm{i}"))
                .await;
        }
    }
    for watcher in watchers {
        let events = watcher.await.expect("watcher");
        assert_eq!(events.len(), 60, "50 creates and 10 deletes");
        let rvs: Vec<u64> = events
            .iter()
            .map(|e| {
                e["object"]["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(
            rvs.windows(2).all(|w| w[0] < w[1]),
            "in resourceVersion order"
        );
        let distinct: HashSet<u64> = rvs.iter().copied().collect();
        assert_eq!(distinct.len(), rvs.len());
    }
}

#[tokio::test]
async fn serves_tls_with_http2_and_its_own_ca() {
    let server = TestServer::builder().start().await.expect("server");
    let ca = server.ca_certificate_pem().expect("ca").to_string();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.address())
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("h2");
    tokio::spawn(connection);
    let request = http::Request::get(format!("{}/api/v1/namespaces/default", server.url()))
        .header("authorization", format!("Bearer {}", server.token()))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);

    let request = http::Request::get(format!("{}/api/v1/namespaces", server.url()))
        .header("authorization", "Bearer wrong")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn kubeconfig_points_at_the_server() {
    let server = TestServer::builder().start().await.expect("server");
    let yaml = server.kubeconfig_yaml();
    let parsed: Value = serde_yaml_ng::from_str(&yaml).expect("yaml");
    assert_eq!(parsed["clusters"][0]["cluster"]["server"], server.url());
    assert_eq!(parsed["users"][0]["user"]["token"], server.token());
    assert!(parsed["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
    let dir = std::env::temp_dir().join(format!("kts-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    server.write_kubeconfig(dir.join("config")).expect("write");
    assert_eq!(
        std::fs::read_to_string(dir.join("config")).expect("read"),
        yaml
    );
}

async fn tls_get(
    server: &TestServer,
    client_cert: Option<&kube_testserver::ClientCertificate>,
    path: &str,
) -> StatusCode {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut server.ca_certificate_pem().expect("ca").as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client_cert {
        Some(client) => {
            let certs: Vec<_> = rustls_pemfile::certs(&mut client.cert_pem.as_bytes())
                .map(|c| c.expect("cert"))
                .collect();
            let key = rustls_pemfile::private_key(&mut client.key_pem.as_bytes())
                .expect("key pem")
                .expect("key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.address())
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("http1");
    tokio::spawn(connection);
    let request = http::Request::get(format!("{}{path}", server.url()))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    sender
        .send_request(request)
        .await
        .expect("response")
        .status()
}

#[tokio::test]
async fn client_certificates_authenticate() {
    let server = TestServer::builder()
        .client_cert_auth(true)
        .start()
        .await
        .expect("server");
    let client = server
        .client_certificate()
        .expect("client certificate")
        .clone();
    assert_eq!(
        tls_get(&server, Some(&client), "/api/v1/namespaces").await,
        StatusCode::OK
    );
    assert_eq!(
        tls_get(&server, None, "/api/v1/namespaces").await,
        StatusCode::FORBIDDEN
    );
    let kubeconfig = server.kubeconfig();
    assert!(kubeconfig["users"][0]["user"]["client-certificate-data"].is_string());
    assert!(
        TestServer::builder()
            .plain_http()
            .client_cert_auth(true)
            .start()
            .await
            .is_err(),
        "client certificates need TLS"
    );
}

#[tokio::test]
async fn simulated_kubelet_runs_pods_and_restarts_on_new_images() {
    let server = TestServer::builder()
        .plain_http()
        .simulated_kubelet(Some(Duration::from_millis(50)))
        .start()
        .await
        .expect("server");
    let c = TestClient::new(&server);
    let node = c
        .get(&format!("/api/v1/nodes/{}", kube_testserver::NODE_NAME))
        .await
        .json();
    assert_eq!(node["status"]["conditions"][0]["type"], "Ready");
    c.post("/api/v1/namespaces/default/pods", &pod("web", json!({})))
        .await;
    let running = wait_for_pod(&c, "web", |p| p["status"]["phase"] == "Running").await;
    assert_eq!(running["spec"]["nodeName"], kube_testserver::NODE_NAME);
    assert_eq!(running["status"]["containerStatuses"][0]["ready"], true);
    let reply = c
        .patch(
            "/api/v1/namespaces/default/pods/web",
            "application/strategic-merge-patch+json",
            &json!({"spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let restarted = wait_for_pod(&c, "web", |p| {
        p["status"]["containerStatuses"][0]["image"] == "busybox:1.36"
    })
    .await;
    assert_eq!(
        restarted["status"]["containerStatuses"][0]["restartCount"],
        1
    );
}

async fn wait_for_pod(c: &TestClient, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let pod = c
            .get(&format!("/api/v1/namespaces/default/pods/{name}"))
            .await
            .json();
        if done(&pod) {
            return pod;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("pod {name} did not reach the expected state");
}

#[tokio::test]
async fn bad_selectors_get_the_api_servers_messages() {
    let (_server, c) = plain_server().await;
    let cases = [
        // Recorded from kube-apiserver (apiserver-traces, step label-invalid).
        (
            "labelSelector=app%20in%20%28a",
            "unable to parse requirement: found '', expected: ',' or ')'",
        ),
        (
            "labelSelector=-app%3Dx",
            "unable to parse requirement: <nil>: Invalid value: \"-app\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            "labelSelector=n%3Ea",
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "fieldSelector=metadata.name",
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
        ),
        (
            "fieldSelector=metadata.name%3Da%3Db",
            "invalid field selector: unescaped character in value: 61",
        ),
        (
            "fieldSelector=spec.nope%3Dx",
            "field label not supported: spec.nope",
        ),
    ];
    for (query, message) in cases {
        let reply = c
            .get(&format!("/api/v1/namespaces/default/pods?{query}"))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        let status = reply.json();
        assert_eq!(status["reason"], "BadRequest", "{query}");
        assert_eq!(status["message"], message, "{query}");
    }
    // The set-based forms apimachinery accepts are accepted.
    for query in [
        "labelSelector=x%20in%20%28a%2C%29",
        "labelSelector=x%20in%20%28%29",
        "labelSelector=n%3E1",
    ] {
        let reply = c
            .get(&format!("/api/v1/namespaces/default/pods?{query}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{query}");
    }
}
