//! Hostile and wrong requests: whatever one client sends, the server answers it as
//! kube-apiserver would and keeps serving the others.

mod common;

use common::{TestClient, pod};
use http::Method;
use kube_testserver::TestServer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

async fn server() -> (TestServer, TestClient) {
    let server = TestServer::builder()
        .plain_http()
        .simulated_kubelet(None)
        .start()
        .await
        .expect("server");
    let client = TestClient::new(&server);
    (server, client)
}

fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut body = vec![b'['; depth];
    body.extend(std::iter::repeat_n(b']', depth));
    body
}

async fn still_serving(c: &TestClient) {
    assert_eq!(
        c.get("/api/v1/namespaces/default/configmaps").await.status,
        200
    );
}

#[tokio::test]
async fn deeply_nested_bodies_are_refused_not_crashing() {
    let (_server, c) = server().await;
    let body = nested_arrays(100_000);
    let created = c
        .send(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            Some("application/json"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(created.status, 400);
    assert_eq!(
        created.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: exceeded max depth ({} ...)", "5b".repeat(30)),
            "reason": "BadRequest", "code": 400})
    );
    c.post(
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "cm"}}),
    )
    .await;
    let object = "/api/v1/namespaces/default/configmaps/cm";
    let deep_object = {
        let mut body = b"{\"metadata\":".to_vec();
        body.extend(nested_arrays(100_000));
        body.push(b'}');
        body
    };
    for (method, content_type, body) in [
        (Method::PUT, "application/json", &body),
        (Method::PATCH, "application/merge-patch+json", &deep_object),
        (
            Method::PATCH,
            "application/strategic-merge-patch+json",
            &deep_object,
        ),
        (Method::PATCH, "application/json-patch+json", &body),
        (Method::PATCH, "application/apply-patch+yaml", &body),
        (Method::DELETE, "application/json", &deep_object),
    ] {
        let path = if content_type == "application/apply-patch+yaml" {
            format!("{object}?fieldManager=test")
        } else {
            object.to_string()
        };
        let reply = c
            .send(
                method.clone(),
                &path,
                Some(content_type),
                Some(body.clone()),
            )
            .await;
        assert!(
            (400..500).contains(&reply.status.as_u16()),
            "{method} {content_type}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    assert_eq!(c.get(object).await.status, 200, "the object is untouched");
    still_serving(&c).await;
}

#[tokio::test]
async fn bodies_over_three_mebibytes_are_413() {
    let (_server, c) = server().await;
    let data = "x".repeat(3 * 1024 * 1024 - 200);
    let fits = serde_json::to_vec(&json!({"metadata": {"name": "big"}, "data": {"a": data}}))
        .expect("json");
    assert!(fits.len() <= 3 * 1024 * 1024);
    let reply = c
        .send(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            Some("application/json"),
            Some(fits),
        )
        .await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    for size in [3 * 1024 * 1024 + 1, 20 * 1024 * 1024] {
        let reply = c
            .send(
                Method::POST,
                "/api/v1/namespaces/default/configmaps",
                Some("application/json"),
                Some(vec![b' '; size]),
            )
            .await;
        assert_eq!(reply.status, 413);
        assert_eq!(
            reply.json(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Request entity too large: limit is 3145728",
                "reason": "RequestEntityTooLarge", "code": 413})
        );
    }
    still_serving(&c).await;
}

#[tokio::test]
async fn a_body_of_another_kind_is_400() {
    let (server, c) = server().await;
    let before = server.object_count();
    let reply = c
        .post(
            "/api/v1/namespaces/default/configmaps",
            &pod("p", json!({})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["reason"], "BadRequest");
    assert_eq!(
        reply.json()["message"],
        "Pod in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Pod) to (core.ConfigMap): unknown conversion"
    );
    assert_eq!(server.object_count(), before, "nothing was stored");
    // A body without kind takes the endpoint's.
    let reply = c
        .post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "cm"}}),
        )
        .await;
    assert_eq!(reply.status, 201);
}

#[tokio::test]
async fn a_namespace_segment_that_routes_nowhere_is_404() {
    let (_server, c) = server().await;
    let reply = c.get("/api/v1/namespaces/..%2F..%2Fetc/configmaps").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["reason"], "NotFound");
    let malformed = c.get("/api/v1/namespaces/%zz/configmaps").await;
    assert_eq!(malformed.status, 400);
    // Escapes that decode to a plain name route as the name does.
    assert_eq!(
        c.get("/api/v1/namespaces/d%65fault/configmaps")
            .await
            .status,
        200
    );
    still_serving(&c).await;
}

/// Request bodies a hostile client might send.
fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        (1usize..60_000).prop_map(nested_arrays),
        (1usize..20_000, any::<bool>()).prop_map(|(depth, close)| {
            let mut body = b"{\"metadata\":{\"name\":\"x\"},\"data\":".to_vec();
            body.extend(std::iter::repeat_n(b"{\"a\":".as_slice(), depth).flatten());
            body.extend(b"1");
            if close {
                body.extend(std::iter::repeat_n(b'}', depth + 1));
            }
            body
        }),
        (3 * 1024 * 1024 - 16usize..3 * 1024 * 1024 + 16).prop_map(|size| vec![b'{'; size]),
        proptest::string::string_regex("[{}\\[\\]\",:a-z0-9 \\\\]{0,300}")
            .expect("regex")
            .prop_map(String::into_bytes),
    ]
}

fn hostile_path() -> impl Strategy<Value = String> {
    let endpoints = prop_oneof![
        Just("/api/v1/namespaces/default/configmaps".to_string()),
        Just("/api/v1/namespaces/default/configmaps/cm".to_string()),
        Just("/api/v1/namespaces/default/pods".to_string()),
        Just("/api/v1/namespaces/default/pods/p/status".to_string()),
        Just("/apis/apps/v1/namespaces/default/deployments".to_string()),
        Just("/apis/coordination.k8s.io/v1/namespaces/default/leases/l".to_string()),
        Just("/api/v1/namespaces".to_string()),
        Just("/api/v1/namespaces/default".to_string()),
        Just("/apis/apiextensions.k8s.io/v1/customresourcedefinitions".to_string()),
    ];
    let segment = || proptest::string::string_regex("[a-zA-Z0-9.%_~-]{0,12}").expect("regex");
    prop_oneof![
        4 => endpoints,
        1 => (segment(), segment()).prop_map(|(a, b)| format!("/api/v1/namespaces/{a}/configmaps/{b}")),
    ]
}

/// How much of an unread request body Go's HTTP server discards after answering before it
/// closes the connection instead (`maxPostHandlerReadBytes`).
const GO_DISCARD_LIMIT: usize = 256 << 10;

#[test]
fn any_request_is_answered_and_the_server_keeps_serving() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, _) = runtime.block_on(server());
    // The hostile client sends each request on a connection of its own; the other one keeps
    // its connection.
    let c = TestClient::without_pool(&server);
    let other = TestClient::new(&server);
    runtime.block_on(async {
        c.post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "cm"}}),
        )
        .await;
    });
    let methods = prop_oneof![
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::DELETE),
        Just(Method::GET),
    ];
    let content_types = prop_oneof![
        Just("application/json"),
        Just("application/merge-patch+json"),
        Just("application/strategic-merge-patch+json"),
        Just("application/json-patch+json"),
        Just("application/apply-patch+yaml"),
        Just("application/yaml"),
        Just("text/plain"),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(methods, hostile_path(), content_types, hostile_body()),
            |(method, path, content_type, body)| {
                runtime.block_on(async {
                    let path = if content_type == "application/apply-patch+yaml" {
                        format!("{path}?fieldManager=fuzz")
                    } else {
                        path
                    };
                    let large = body.len() > GO_DISCARD_LIMIT;
                    let reply = match c
                        .try_send(method.clone(), &path, Some(content_type), Some(body))
                        .await
                    {
                        Ok(reply) => reply,
                        // Answered before the body was read (a refused path or method): the
                        // server closes the connection rather than read megabytes nobody
                        // needs, as Go's server does past 256 KiB, and the client, still
                        // sending, may see the close before the answer.
                        Err(error) if large => {
                            let health = other.get("/api/v1/namespaces/default/configmaps").await;
                            prop_assert_eq!(health.status.as_u16(), 200, "after {}", error);
                            return Ok(());
                        }
                        Err(error) => {
                            return Err(TestCaseError::fail(format!(
                                "{method} {path} {content_type}: no answer: {error}"
                            )));
                        }
                    };
                    // The real server answers none of these with a 5xx.
                    prop_assert!(
                        reply.status.as_u16() < 500,
                        "{method} {path} {content_type}: {} {}",
                        reply.status,
                        String::from_utf8_lossy(&reply.body)
                    );
                    let health = other.get("/api/v1/namespaces/default/configmaps").await;
                    prop_assert_eq!(health.status.as_u16(), 200);
                    Ok(())
                })
            },
        )
        .expect("every request answered, the server still serving");
}
