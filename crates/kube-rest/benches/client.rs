//! Requests/s for get and list (1, 100 and 5,000 pods) against kube-testserver over TLS on
//! loopback, watch events/s decoded from a chunked body, and exec/log round trips (one exec
//! of `echo`, 1 MiB through `cat`, a 1,000-line log).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::collections::VecDeque;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube_rest::WatchEvent;
use kube_rest::exec::AttachParams;
use kube_rest::logs::LogParams;
use kube_rest::watch::WatchDecoder;
use kube_rest::{Api, Client, Config, Error, Kubeconfig, ListParams, PostParams};
use kube_testserver::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn pod(name: &str, namespace: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "main", "image": "registry.example/app:1.2.3",
                                 "ports": [{"containerPort": 8080}],
                                 "env": [{"name": "MODE", "value": "bench"}]}]}
    }))
    .expect("pod")
}

fn client_of(server: &TestServer) -> Client {
    let kubeconfig = Kubeconfig::parse(&server.kubeconfig_yaml(), Path::new("/bench/kubeconfig"))
        .expect("kubeconfig");
    let config = Config::from_kubeconfig(&kubeconfig)
        .expect("config")
        .without_throttle();
    Client::try_from_config(config).expect("client")
}

fn remote(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, pods) = rt.block_on(async {
        let server = TestServer::builder()
            .simulated_kubelet(Some(Duration::from_millis(1)))
            .log_interval(Duration::from_millis(1))
            .start()
            .await
            .expect("server");
        let pods: Api<Pod> = Api::default_namespaced(client_of(&server));
        pods.create(&PostParams::default(), &pod("shell", "default"))
            .await
            .expect("pod");
        // Running, with at least 1,000 log lines (one per millisecond).
        loop {
            let running = pods
                .get("shell")
                .await
                .expect("get")
                .status
                .and_then(|s| s.phase);
            let lines = pods
                .logs("shell", &LogParams::default())
                .await
                .unwrap_or_default();
            if running.as_deref() == Some("Running") && lines.lines().count() >= 1000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (server, pods)
    });
    let mut group = c.benchmark_group("remote");
    group.throughput(Throughput::Elements(1));
    group.bench_function("exec echo (upgrade, run, status)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let output = pods
                    .exec("shell", ["echo", "hi"], &AttachParams::default())
                    .await
                    .expect("exec")
                    .output()
                    .await
                    .expect("output");
                assert_eq!(output.stdout, b"hi\n");
            })
        })
    });
    let payload = vec![b'x'; 1 << 20];
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("exec cat 1 MiB stdin to stdout", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut process = pods
                    .exec(
                        "shell",
                        ["cat"],
                        &AttachParams::default().stdin(true).stderr(false),
                    )
                    .await
                    .expect("exec");
                let mut stdin = process.stdin().expect("stdin");
                let mut stdout = process.stdout().expect("stdout");
                let data = &payload;
                let write = async move {
                    stdin.write_all(data).await.expect("write");
                    stdin.shutdown().await.expect("close stdin");
                };
                let read = async move {
                    let mut echoed = Vec::with_capacity(1 << 20);
                    stdout.read_to_end(&mut echoed).await.expect("read");
                    echoed.len()
                };
                let ((), echoed) = tokio::join!(write, read);
                assert_eq!(echoed, 1 << 20);
                assert!(process.join().await.expect("status").success());
            })
        })
    });
    group.throughput(Throughput::Elements(1000));
    group.bench_function("logs 1,000 lines", |b| {
        b.iter(|| {
            rt.block_on(async {
                let log = pods
                    .logs("shell", &LogParams::default().tail_lines(1000))
                    .await
                    .expect("logs");
                assert_eq!(log.lines().count(), 1000);
            })
        })
    });
    group.finish();
    rt.block_on(server.shutdown());
}

fn requests(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, client) = rt.block_on(async {
        let server = TestServer::builder()
            .simulated_kubelet(None)
            .start()
            .await
            .expect("server");
        let client = client_of(&server);
        let namespaces: Api<Namespace> = Api::cluster(client.clone());
        for (ns, count) in [("one", 1), ("hundred", 100), ("many", 5000)] {
            let mut namespace = Namespace::default();
            namespace.metadata.name = Some(ns.into());
            namespaces
                .create(&PostParams::default(), &namespace)
                .await
                .expect("namespace");
            let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
            for i in 0..count {
                pods.create(&PostParams::default(), &pod(&format!("p-{i}"), ns))
                    .await
                    .expect("pod");
            }
        }
        (server, client)
    });

    let mut group = c.benchmark_group("client");
    group.throughput(Throughput::Elements(1));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "hundred");
    group.bench_function("get pod", |b| {
        b.iter(|| rt.block_on(pods.get("p-7")).expect("get"))
    });
    for (ns, count) in [("one", 1u64), ("hundred", 100), ("many", 5000)] {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        group.bench_function(format!("list {count} pods"), |b| {
            b.iter(|| {
                let list = rt
                    .block_on(pods.list(&ListParams::default()))
                    .expect("list");
                assert_eq!(list.items.len() as u64, count);
            })
        });
    }
    group.finish();
    drop(client);
    rt.block_on(server.shutdown());
}

fn watch_decoding(c: &mut Criterion) {
    let events = 1000;
    let mut stream = Vec::new();
    for i in 0..events {
        let mut object = serde_json::to_value(pod(&format!("p-{i}"), "ns")).expect("json");
        object["metadata"]["resourceVersion"] = serde_json::json!(i.to_string());
        let line = serde_json::json!({"type": if i % 3 == 0 { "ADDED" } else { "MODIFIED" }, "object": object});
        stream.extend_from_slice(line.to_string().as_bytes());
        stream.push(b'\n');
    }
    let mut group = c.benchmark_group("watch");
    group.throughput(Throughput::Elements(events as u64));
    // 1-byte chunks: a slow or hostile server; each byte is scanned once, each event parsed once.
    for chunk in [1usize, 1024, 16 * 1024] {
        group.bench_function(format!("decode pods, {chunk}-byte chunks"), |b| {
            b.iter(|| {
                let mut decoder = WatchDecoder::new();
                let mut out: VecDeque<Result<WatchEvent<Pod>, Error>> = VecDeque::new();
                let mut decoded = 0;
                for piece in stream.chunks(chunk) {
                    decoder.push(piece, &mut out);
                    decoded += out
                        .drain(..)
                        .map(|e| black_box(e).map(|_| 1).expect("event"))
                        .sum::<usize>();
                }
                decoder.finish().expect("complete");
                assert_eq!(decoded, events);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, requests, watch_decoding, remote);
criterion_main!(benches);
