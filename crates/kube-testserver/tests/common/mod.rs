//! A plain hyper HTTP client for the integration tests (deliberately not kube-rest, so the
//! server is tested on its own).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube_testserver::TestServer;
use serde_json::Value;

/// A response: status, content type and body.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The watch events of a streamed body, one JSON object per line.
    pub fn events(&self) -> Vec<Value> {
        self.body
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).unwrap_or(Value::Null))
            .collect()
    }
}

/// Which credentials to send.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth<'a> {
    Token(&'a str),
    None,
}

pub struct TestClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: String,
}

impl TestClient {
    pub fn new(server: &TestServer) -> TestClient {
        TestClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: server.url().to_string(),
            token: server.token().to_string(),
        }
    }

    /// A client that opens a new connection for every request (nothing pooled).
    pub fn without_pool(server: &TestServer) -> TestClient {
        TestClient {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build_http(),
            base: server.url().to_string(),
            token: server.token().to_string(),
        }
    }

    pub async fn send_as(
        &self,
        auth: Auth<'_>,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        self.try_send_as(auth, method, path, content_type, body)
            .await
            .expect("response")
    }

    /// The request's answer, or the client's error when the connection failed before an
    /// answer arrived (a server may close a connection whose large body it did not read).
    #[allow(dead_code)] // not every test binary uses it
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, hyper_util::client::legacy::Error> {
        let token = self.token.clone();
        self.try_send_as(Auth::Token(&token), method, path, content_type, body)
            .await
    }

    async fn try_send_as(
        &self,
        auth: Auth<'_>,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, hyper_util::client::legacy::Error> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        match auth {
            Auth::Token(token) => {
                builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            Auth::None => {}
        }
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("request");
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .expect("response in time")?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = tokio::time::timeout(Duration::from_secs(30), response.into_body().collect())
            .await
            .expect("body in time")
            .expect("body")
            .to_bytes();
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let token = self.token.clone();
        self.send_as(Auth::Token(&token), method, path, content_type, body)
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            Method::POST,
            path,
            Some("application/json"),
            Some(serde_json::to_vec(body).unwrap_or_default()),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(
            Method::PUT,
            path,
            Some("application/json"),
            Some(serde_json::to_vec(body).unwrap_or_default()),
        )
        .await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Reply {
        self.send(
            Method::PATCH,
            path,
            Some(content_type),
            Some(serde_json::to_vec(body).unwrap_or_default()),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, None).await
    }
}

/// A pod with the given name and labels, like the ones the recorder of the traces made.
pub fn pod(name: &str, labels: Value) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "containers": [{
                "name": "main",
                "image": "busybox",
                "command": ["/bin/sh", "-c", "while :; do date +%s; sleep 1; done"]
            }],
            "terminationGracePeriodSeconds": 0
        }
    })
}
