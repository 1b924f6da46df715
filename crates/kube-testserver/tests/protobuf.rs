//! Kubernetes protobuf over HTTP: bodies sent and answers read as kubectl and client-go's typed
//! clients do (`Content-Type: application/vnd.kubernetes.protobuf`, `Accept:
//! application/vnd.kubernetes.protobuf, application/json`).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube_testserver::TestServer;
use kube_testserver::protobuf::{self, MEDIA_TYPE, WATCH_MEDIA_TYPE};
use serde_json::{Value, json};

const BOTH: &str = "application/vnd.kubernetes.protobuf, application/json";

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Bytes,
}

impl Reply {
    fn object(&self) -> Value {
        if self.content_type.starts_with(MEDIA_TYPE) {
            protobuf::decode(&self.body).unwrap_or_else(|e| panic!("protobuf answer: {e}"))
        } else {
            serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("JSON answer: {e}"))
        }
    }
}

struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: String,
}

impl Http {
    async fn start() -> (TestServer, Http) {
        let server = TestServer::builder()
            .plain_http()
            .simulated_kubelet(None)
            .start()
            .await
            .expect("server");
        let http = Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: server.url().to_string(),
            token: server.token().to_string(),
        };
        (server, http)
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if !accept.is_empty() {
            builder = builder.header(header::ACCEPT, accept);
        }
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        builder.body(Full::new(Bytes::from(body))).expect("request")
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let request = self.request(method, path, accept, content_type, body);
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .expect("in time")
            .expect("response");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            content_type,
            body,
        }
    }

    async fn post_protobuf(&self, path: &str, object: &Value) -> Reply {
        let body = protobuf::encode(object).expect("encode");
        self.send(Method::POST, path, BOTH, Some(MEDIA_TYPE), body)
            .await
    }

    async fn post_json(&self, path: &str, object: &Value) -> Reply {
        let body = serde_json::to_vec(object).expect("json");
        self.send(
            Method::POST,
            path,
            "application/json",
            Some("application/json"),
            body,
        )
        .await
    }

    async fn get(&self, path: &str, accept: &str) -> Reply {
        self.send(Method::GET, path, accept, None, Vec::new()).await
    }
}

fn config_map(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "data": {"a": "b"},
        "binaryData": {"bin": "AP8="}
    })
}

const CONFIG_MAPS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn a_protobuf_body_is_stored_and_answered_as_asked() {
    let (_server, http) = Http::start().await;
    let created = http.post_protobuf(CONFIG_MAPS, &config_map("cm")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.content_type, MEDIA_TYPE);
    let object = created.object();
    assert_eq!(object["kind"], "ConfigMap");
    assert_eq!(object["data"]["a"], "b");
    assert_eq!(object["binaryData"]["bin"], "AP8=");
    assert!(object["metadata"]["uid"].is_string());
    assert!(object["metadata"]["creationTimestamp"].is_string());

    let as_json = http
        .get(&format!("{CONFIG_MAPS}/cm"), "application/json")
        .await;
    assert_eq!(as_json.status, StatusCode::OK);
    assert!(as_json.content_type.starts_with("application/json"));
    let as_protobuf = http.get(&format!("{CONFIG_MAPS}/cm"), BOTH).await;
    assert_eq!(as_protobuf.content_type, MEDIA_TYPE);
    assert!(as_protobuf.body.starts_with(b"k8s\0"));
    // The same object either way.
    assert_eq!(as_protobuf.object(), as_json.object());
    // JSON first in Accept: JSON.
    let json_first = http
        .get(
            &format!("{CONFIG_MAPS}/cm"),
            "application/json, application/vnd.kubernetes.protobuf",
        )
        .await;
    assert!(json_first.content_type.starts_with("application/json"));
    // Weights count: protobuf at q=0.5 loses to JSON.
    let weighted = http
        .get(
            &format!("{CONFIG_MAPS}/cm"),
            "application/vnd.kubernetes.protobuf;q=0.5, application/json",
        )
        .await;
    assert!(weighted.content_type.starts_with("application/json"));
}

#[tokio::test]
async fn a_body_assembled_by_hand_is_read() {
    // k8s\0 + runtime.Unknown{typeMeta{"v1", "ConfigMap"}, raw: ConfigMap{metadata{name:
    // "hand"}, data{"k": "v"}}, "", ""}, written byte by byte as Go's marshaller does.
    let mut raw = vec![0x0a, 0x06, 0x0a, 0x04];
    raw.extend_from_slice(b"hand");
    raw.extend_from_slice(&[0x12, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v']);
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(&[0x0a, 0x0f, 0x0a, 0x02, b'v', b'1', 0x12, 0x09]);
    body.extend_from_slice(b"ConfigMap");
    body.push(0x12);
    body.push(raw.len() as u8);
    body.extend_from_slice(&raw);
    body.extend_from_slice(&[0x1a, 0x00, 0x22, 0x00]);
    let created = http_post_raw(&body).await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
    assert_eq!(created.1["metadata"]["name"], "hand");
    assert_eq!(created.1["data"], json!({"k": "v"}));
}

async fn http_post_raw(body: &[u8]) -> (StatusCode, Value) {
    let (_server, http) = Http::start().await;
    let reply = http
        .send(
            Method::POST,
            CONFIG_MAPS,
            "application/json",
            Some(MEDIA_TYPE),
            body.to_vec(),
        )
        .await;
    (reply.status, reply.object())
}

#[tokio::test]
async fn updates_lists_and_deletes_in_protobuf() {
    let (_server, http) = Http::start().await;
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx",
                    "resources": {"requests": {"cpu": "100m"}}}]}
            }
        }
    });
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let created = http.post_protobuf(path, &deployment).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let mut object = created.object();
    // replicas: 0 is a pointer's zero: it must survive protobuf.
    object["spec"]["replicas"] = json!(0);
    let updated = http
        .send(
            Method::PUT,
            &format!("{path}/web"),
            BOTH,
            Some(MEDIA_TYPE),
            protobuf::encode(&object).expect("encode"),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    let stored = http
        .get(&format!("{path}/web"), "application/json")
        .await
        .object();
    assert_eq!(stored["spec"]["replicas"], json!(0));
    assert_eq!(
        stored["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": "25%", "maxUnavailable": 0})
    );
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "100m"
    );
    assert_eq!(stored["metadata"]["generation"], json!(2));

    // The scale subresource, in protobuf both ways.
    let scale = http.get(&format!("{path}/web/scale"), BOTH).await;
    assert_eq!(scale.content_type, MEDIA_TYPE);
    let mut scale = scale.object();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["status"]["selector"], "app=web");
    scale["spec"]["replicas"] = json!(5);
    let scaled = http
        .send(
            Method::PUT,
            &format!("{path}/web/scale"),
            BOTH,
            Some(MEDIA_TYPE),
            protobuf::encode(&scale).expect("encode"),
        )
        .await;
    assert_eq!(scaled.status, StatusCode::OK);
    assert_eq!(scaled.object()["spec"]["replicas"], json!(5));
    let patched = http
        .send(
            Method::PATCH,
            &format!("{path}/web/scale"),
            BOTH,
            Some("application/merge-patch+json"),
            br#"{"spec":{"replicas":3}}"#.to_vec(),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.object()["spec"]["replicas"], json!(3));
    let stored = http
        .get(&format!("{path}/web"), "application/json")
        .await
        .object();
    assert_eq!(stored["spec"]["replicas"], json!(3));

    // Lists are XxxList messages.
    for name in ["a", "b"] {
        http.post_protobuf(CONFIG_MAPS, &config_map(name)).await;
    }
    let list = http.get(&format!("{CONFIG_MAPS}?limit=1"), BOTH).await;
    assert_eq!(list.content_type, MEDIA_TYPE);
    let list = list.object();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert!(list["metadata"]["continue"].is_string());
    assert!(list["metadata"]["resourceVersion"].is_string());

    // DeleteOptions in protobuf, as client-go's typed Delete sends them.
    let options = json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
        "preconditions": {"resourceVersion": "1"}});
    let refused = http
        .send(
            Method::DELETE,
            &format!("{CONFIG_MAPS}/a"),
            BOTH,
            Some(MEDIA_TYPE),
            protobuf::encode(&options).expect("encode"),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::CONFLICT,
        "the precondition was read"
    );
    let status = refused.object();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], json!(409));
    let options = json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0});
    let deleted = http
        .send(
            Method::DELETE,
            &format!("{CONFIG_MAPS}/a"),
            BOTH,
            Some(MEDIA_TYPE),
            protobuf::encode(&options).expect("encode"),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
}

#[tokio::test]
async fn errors_are_protobuf_status_objects() {
    let (_server, http) = Http::start().await;
    let missing = http.get(&format!("{CONFIG_MAPS}/nope"), BOTH).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.content_type, MEDIA_TYPE);
    let status = missing.object();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["code"], json!(404));
    assert_eq!(status["details"]["name"], "nope");

    let garbage = http
        .send(
            Method::POST,
            CONFIG_MAPS,
            "application/json",
            Some(MEDIA_TYPE),
            b"k8s\0\xff\xff".to_vec(),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    let message = garbage.object()["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        message.starts_with("the object provided is unrecognized (must be of type ConfigMap)"),
        "{message}"
    );
    let no_magic = http
        .send(
            Method::POST,
            CONFIG_MAPS,
            "application/json",
            Some(MEDIA_TYPE),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(no_magic.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn custom_resources_never_speak_protobuf() {
    let (_server, http) = Http::start().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    });
    // The CRD itself is a built-in kind: protobuf is fine.
    let created = http
        .post_protobuf(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd,
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{:?}",
        created.object()
    );
    assert_eq!(created.content_type, MEDIA_TYPE);
    assert_eq!(
        created.object()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-preserve-unknown-fields"],
        json!(true)
    );
    let path = "/apis/stable.example.com/v1/namespaces/default/crontabs";
    let cron = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "c"}, "spec": {"x": 1}});
    // A protobuf body for a custom resource: 415.
    let body = protobuf::encode(&config_map("c")).expect("encode");
    let refused = http
        .send(Method::POST, path, BOTH, Some(MEDIA_TYPE), body)
        .await;
    assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        http.post_json(path, &cron).await.status,
        StatusCode::CREATED
    );
    // Protobuf first with a JSON fallback: JSON.
    let fallback = http.get(&format!("{path}/c"), BOTH).await;
    assert_eq!(fallback.status, StatusCode::OK);
    assert!(fallback.content_type.starts_with("application/json"));
    assert_eq!(fallback.object()["spec"]["x"], json!(1));
    // Protobuf only: 406.
    let only = http.get(&format!("{path}/c"), MEDIA_TYPE).await;
    assert_eq!(only.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(only.object()["reason"], "NotAcceptable");
}

#[tokio::test]
async fn watch_streams_length_prefixed_watch_events() {
    let (_server, http) = Http::start().await;
    let request = http.request(
        Method::GET,
        &format!("{CONFIG_MAPS}?watch=1"),
        BOTH,
        None,
        Vec::new(),
    );
    let response = http.client.request(request).await.expect("watch");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some(WATCH_MEDIA_TYPE)
    );
    let mut body = response.into_body();
    assert_eq!(
        http.post_protobuf(CONFIG_MAPS, &config_map("w1"))
            .await
            .status,
        StatusCode::CREATED
    );
    let patch = http.request(
        Method::PATCH,
        &format!("{CONFIG_MAPS}/w1"),
        BOTH,
        Some("application/merge-patch+json"),
        br#"{"data":{"a":"c"}}"#.to_vec(),
    );
    http.client.request(patch).await.expect("patch");
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    while events.len() < 2 {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("an event in time")
            .expect("the stream is open")
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            buffer.extend_from_slice(&data);
        }
        while buffer.len() >= 4 {
            let length = u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize;
            if buffer.len() < 4 + length {
                break;
            }
            let payload: Vec<u8> = buffer.drain(..4 + length).skip(4).collect();
            events.push(protobuf::decode_watch_event(&payload).expect("a WatchEvent"));
        }
    }
    assert_eq!(events[0].0, "ADDED");
    assert_eq!(events[0].1["metadata"]["name"], "w1");
    assert_eq!(events[0].1["kind"], "ConfigMap");
    assert_eq!(events[1].0, "MODIFIED");
    assert_eq!(events[1].1["data"]["a"], "c");
}
