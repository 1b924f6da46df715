//! The server's hot paths through its public HTTP API: creating, patching and listing with a
//! label selector (the store, patching and selector matching underneath).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube_testserver::TestServer;
use serde_json::{Value, json};

struct Bench {
    runtime: tokio::runtime::Runtime,
    server: TestServer,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Bench {
    fn new() -> Bench {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(async {
            TestServer::builder()
                .plain_http()
                .simulated_kubelet(None)
                .history_limit(10_000)
                .start()
                .await
                .expect("server")
        });
        let client = Client::builder(TokioExecutor::new()).build_http();
        Bench {
            runtime,
            server,
            client,
        }
    }

    fn send(&self, method: Method, path: &str, content_type: &str, body: Option<&Value>) -> Bytes {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.server.url()))
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.server.token()),
            )
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .expect("request");
        self.runtime.block_on(async {
            let response = self.client.request(request).await.expect("response");
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            assert!(
                status == StatusCode::OK || status == StatusCode::CREATED,
                "{status}: {}",
                String::from_utf8_lossy(&body)
            );
            body
        })
    }
}

fn configmap(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": format!("cm-{i}"), "labels": {"shard": (i % 16).to_string()}},
           "data": {"k": "v"}})
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn api(c: &mut Criterion) {
    let bench = Bench::new();
    // The list runs first, over exactly 1000 configmaps (the create benchmark adds more).
    for i in 0..1000 {
        bench.send(
            Method::POST,
            CONFIGMAPS,
            "application/json",
            Some(&configmap(i)),
        );
    }
    c.bench_function("api/list-select", |b| {
        b.iter(|| {
            let body = bench.send(
                Method::GET,
                &format!("{CONFIGMAPS}?labelSelector=shard%20in%20(1,2)"),
                "application/json",
                None,
            );
            black_box(body.len())
        })
    });
    let mut i = 0usize;
    c.bench_function("api/merge-patch", |b| {
        b.iter(|| {
            i = (i + 1) % 1000;
            let patch = json!({"data": {"k": i.to_string()}});
            bench.send(
                Method::PATCH,
                &format!("{CONFIGMAPS}/cm-{i}"),
                "application/merge-patch+json",
                Some(&patch),
            )
        })
    });
    let mut next = 1000;
    c.bench_function("api/create", |b| {
        b.iter(|| {
            next += 1;
            bench.send(
                Method::POST,
                CONFIGMAPS,
                "application/json",
                Some(&configmap(next)),
            )
        })
    });
}

criterion_group!(benches, api);
criterion_main!(benches);
