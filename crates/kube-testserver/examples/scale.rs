//! Scale check: 100k small objects, listed in pages of 500 (with and without a write after
//! the first page, which makes the next pages read the first page's version), 200 concurrent
//! watches, and as many writes per second as the server takes, with every watcher checked to
//! have seen every write.
//!
//! `cargo run --release -p kube-testserver --example scale [OBJECTS] [WATCHERS] [SECONDS]`
//! (defaults 100000, 200, 5). Prints the figures reported in docs/perf.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube_testserver::TestServer;
use serde_json::json;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Only what the watchers check of an event, so the clients cost little next to the server.
#[derive(serde::Deserialize)]
struct WatchLine {
    object: WatchObject,
}

#[derive(serde::Deserialize)]
struct WatchObject {
    metadata: WatchMetadata,
}

#[derive(serde::Deserialize)]
struct WatchMetadata {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn send(
    client: &HttpClient,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> u16 {
    let request = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    match client.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            status
        }
        Err(_) => 0,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let objects = args.first().copied().unwrap_or(100_000) as usize;
    let watchers = args.get(1).copied().unwrap_or(200) as usize;
    let seconds = args.get(2).copied().unwrap_or(5);

    let server = TestServer::builder()
        .plain_http()
        // No pods here; and its feed would count as one of the watchers awaited below.
        .simulated_kubelet(None)
        .history_limit(200_000)
        .start()
        .await
        .expect("server");
    let base = server.url().to_string();
    let token = server.token().to_string();
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build_http();

    // 1. Load: small configmaps in a separate namespace, 32 requests in flight.
    let started = Instant::now();
    send(
        &client,
        &base,
        &token,
        Method::POST,
        "/api/v1/namespaces",
        serde_json::to_vec(&json!({"metadata": {"name": "bulk"}})).unwrap_or_default(),
    )
    .await;
    let next = Arc::new(AtomicUsize::new(0));
    let mut loaders = Vec::new();
    for _ in 0..32 {
        let (client, base, token, next) = (
            client.clone(),
            base.clone(),
            token.clone(),
            Arc::clone(&next),
        );
        loaders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= objects {
                    break;
                }
                let body = json!({"metadata": {"name": format!("cm-{i}"), "labels": {"shard": (i % 16).to_string()}}, "data": {"k": "v"}});
                let status = send(&client, &base, &token, Method::POST, "/api/v1/namespaces/bulk/configmaps", serde_json::to_vec(&body).unwrap_or_default()).await;
                assert_eq!(status, 201, "create cm-{i}");
            }
        }));
    }
    for loader in loaders {
        loader.await.expect("loader");
    }
    let load_time = started.elapsed();
    println!(
        "loaded {objects} objects in {:.1}s ({:.0} creates/s), {} objects stored, RSS {:.0} MiB",
        load_time.as_secs_f64(),
        objects as f64 / load_time.as_secs_f64(),
        server.object_count(),
        rss_mib()
    );

    // 1b. The objects in pages of 500, as a reflector lists them: the continue pages at the
    // first page's version. Once quiet, once with a write after the first page (the
    // following pages then read an older version than the current one).
    for write_between in [false, true] {
        let started = Instant::now();
        let (pages, items) = list_in_pages(&client, &base, &token, 500, || async {
            if write_between {
                let body = json!({"metadata": {"name": "between"}});
                send(
                    &client,
                    &base,
                    &token,
                    Method::POST,
                    "/api/v1/namespaces/default/configmaps",
                    serde_json::to_vec(&body).unwrap_or_default(),
                )
                .await;
            }
        })
        .await;
        assert_eq!(items, objects, "every object listed once");
        println!(
            "listed {items} objects in {pages} pages of 500 in {:.2}s{}",
            started.elapsed().as_secs_f64(),
            if write_between {
                " (a write after the first page)"
            } else {
                ""
            }
        );
    }

    // 2. Watchers on the namespace the writers write to, each on its own connection.
    let start_rv = server.resource_version();
    let received = Arc::new(AtomicUsize::new(0));
    let mut watch_tasks = Vec::new();
    for _ in 0..watchers {
        let base = base.clone();
        let token = token.clone();
        let received = Arc::clone(&received);
        watch_tasks.push(tokio::spawn(async move {
            let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
            let request = Request::get(format!(
                "{base}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={start_rv}&timeoutSeconds={}",
                seconds + 5
            ))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
            let response = client.request(request).await.expect("watch");
            let mut body = response.into_body();
            let mut lines = 0usize;
            let mut last_rv = 0u64;
            let mut buffer = Vec::new();
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Some(data) = frame.data_ref() {
                    buffer.extend_from_slice(data);
                    while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buffer.drain(..=end).collect();
                        let event: WatchLine = serde_json::from_slice(&line).expect("event");
                        let rv: u64 = event.object.metadata.resource_version.parse().unwrap_or(0);
                        assert!(rv > last_rv, "events in order");
                        last_rv = rv;
                        lines += 1;
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lines
        }));
    }
    // Let the watches connect.
    while server.watch_count() < watchers {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 3. Writers: 32 in flight for `seconds`, updating a rotating set of 1,000 objects.
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let writes = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..32usize {
        let (client, base, token, writes) = (
            client.clone(),
            base.clone(),
            token.clone(),
            Arc::clone(&writes),
        );
        writers.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                let name = format!("w-{}", i % 1000);
                let body = json!({"metadata": {"name": name}, "data": {"i": i.to_string()}});
                let status = send(
                    &client,
                    &base,
                    &token,
                    Method::POST,
                    "/api/v1/namespaces/default/configmaps",
                    serde_json::to_vec(&body).unwrap_or_default(),
                )
                .await;
                let status = if status == 409 {
                    send(
                        &client,
                        &base,
                        &token,
                        Method::PUT,
                        &format!("/api/v1/namespaces/default/configmaps/{name}"),
                        serde_json::to_vec(&body).unwrap_or_default(),
                    )
                    .await
                } else {
                    status
                };
                assert!(status == 200 || status == 201, "write status {status}");
                writes.fetch_add(1, Ordering::Relaxed);
                i += 32;
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let write_time = started.elapsed();
    let total_writes = writes.load(Ordering::Relaxed);
    println!(
        "{total_writes} writes in {:.1}s = {:.0} writes/s with {watchers} watches open",
        write_time.as_secs_f64(),
        total_writes as f64 / write_time.as_secs_f64()
    );
    let mut complete = 0;
    for task in watch_tasks {
        if task.await.expect("watcher") == total_writes {
            complete += 1;
        }
    }
    println!(
        "{complete}/{watchers} watchers saw all {total_writes} events in order ({} events delivered), RSS {:.0} MiB",
        received.load(Ordering::Relaxed),
        rss_mib()
    );
    server.shutdown().await;
}

/// Only what the pager reads of a list.
#[derive(serde::Deserialize)]
struct ListPage {
    metadata: ListMetadata,
    items: Vec<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct ListMetadata {
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
}

/// Lists the `bulk` configmaps in pages of `limit`; calls `after_first` once the first page
/// is in. Returns the number of pages and items.
async fn list_in_pages<F, Fut>(
    client: &HttpClient,
    base: &str,
    token: &str,
    limit: usize,
    after_first: F,
) -> (usize, usize)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut after_first = Some(after_first);
    let mut continue_token = String::new();
    let (mut pages, mut items) = (0, 0);
    loop {
        let mut uri = format!("{base}/api/v1/namespaces/bulk/configmaps?limit={limit}");
        if !continue_token.is_empty() {
            uri.push_str(&format!("&continue={continue_token}"));
        }
        let request = Request::get(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let response = client.request(request).await.expect("list");
        assert_eq!(response.status().as_u16(), 200, "list status");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let page: ListPage = serde_json::from_slice(&body).expect("list page");
        pages += 1;
        items += page.items.len();
        if let Some(after_first) = after_first.take() {
            after_first().await;
        }
        match page.metadata.continue_token.filter(|c| !c.is_empty()) {
            Some(token) => continue_token = token,
            None => return (pages, items),
        }
    }
}
