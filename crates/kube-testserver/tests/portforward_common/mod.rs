//! HTTPS helpers for the port-forward tests: a rustls client trusting the server's CA, raw
//! HTTP/1.1 requests over it (hyper's connection API), and pods the simulated kubelet runs.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use kube_testserver::TestServer;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The longest a test waits for anything.
pub const LIMIT: Duration = Duration::from_secs(10);

/// A TLS server whose kubelet starts pods after 20 ms.
pub async fn server() -> TestServer {
    TestServer::builder()
        .simulated_kubelet(Some(Duration::from_millis(20)))
        .start()
        .await
        .expect("server")
}

/// A TLS connection to the server, verified against its CA.
pub async fn tls(server: &TestServer) -> TlsStream<TcpStream> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let pem = server.ca_certificate_pem().expect("TLS server");
    for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
        roots
            .add(cert.expect("CA certificate"))
            .expect("trusted CA");
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(server.address()).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// A reply: status, headers and body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTPS request with the server's token and `headers`.
pub async fn request(
    server: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let io = TokioIo::new(tls(server).await);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection.with_upgrades());
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, server.address().to_string())
        .header(header::AUTHORIZATION, format!("Bearer {}", server.token()));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        Some(value) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(serde_json::to_vec(value).expect("json"))
        }
        None => Bytes::new(),
    };
    let response = tokio::time::timeout(
        LIMIT,
        sender.send_request(builder.body(Full::new(body)).expect("request")),
    )
    .await
    .expect("response in time")
    .expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let body = if status == StatusCode::SWITCHING_PROTOCOLS {
        Bytes::new()
    } else {
        tokio::time::timeout(LIMIT, response.into_body().collect())
            .await
            .expect("body in time")
            .expect("body")
            .to_bytes()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A pod of one container with `image` declaring `ports`.
pub fn pod(name: &str, image: &str, ports: &[u16]) -> Value {
    let ports: Vec<Value> = ports.iter().map(|p| json!({"containerPort": p})).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "main", "image": image, "ports": ports}],
            "terminationGracePeriodSeconds": 0
        }
    })
}

/// Creates `body` in `default` and waits until the kubelet reports it Running.
pub async fn running_pod(server: &TestServer, body: Value) {
    let name = body["metadata"]["name"].as_str().expect("name").to_string();
    let reply = request(
        server,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        &[],
        Some(&body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    tokio::time::timeout(LIMIT, async {
        loop {
            let pod = request(
                server,
                Method::GET,
                &format!("/api/v1/namespaces/default/pods/{name}"),
                &[],
                None,
            )
            .await
            .json();
            if pod["status"]["phase"] == "Running" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("pod running");
}

/// Deletes pod `name` in `default`.
pub async fn delete_pod(server: &TestServer, name: &str) {
    let reply = request(
        server,
        Method::DELETE,
        &format!("/api/v1/namespaces/default/pods/{name}"),
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// Waits until `condition` holds (polled every 5 ms), or panics after [`LIMIT`].
pub async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let waited = tokio::time::timeout(LIMIT, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}
