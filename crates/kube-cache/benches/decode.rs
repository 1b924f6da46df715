//! Decoding a list page of 500 realistic pods (`shared/fixtures/pod-realistic.json`, or the
//! file named by `POD_FIXTURE`; about a third of each pod is managedFields), three ways:
//!
//! * `full`: every field decoded (what `Api::list` does), managedFields kept;
//! * `full_then_strip`: every field decoded, then managedFields dropped by the reflector's
//!   transform (what a reflector over plain `Api<K>` does);
//! * `skip_at_decode`: managedFields skipped while decoding ([`WithoutManagedFields`], what
//!   `ApiListerWatcher` does when the reflector drops them);
//! * `peek_continue`: only the list's metadata (the items scanned, not built), what the
//!   pipelined pager does before requesting the next page;
//! * `protobuf_skip` / `protobuf_compact_skip`: the same page in Kubernetes protobuf (encoded
//!   by kube-testserver), read into `Pod` / `Compact<Pod>` with managedFields skipped, what
//!   `ApiListerWatcher` does by default; `json_compact_skip` is its JSON counterpart.
//!
//! And a watch stream of 500 `MODIFIED` events of the same pods (the body cut in 16 KiB chunks),
//! side by side with kube-rs:
//!
//! * `ours_full` / `ours_skip_managed_fields`: kube-rest's `WatchDecoder` (what `Api::watch`
//!   and `ApiListerWatcher` run), every field or managedFields skipped;
//! * `kube_rs`: what kube-rs's `Client::request_events` does per event: the line as a `String`
//!   (its `LinesCodec`), then `serde_json::from_str::<kube::core::WatchEvent<Pod>>`.
//!
//! Run: `cargo bench -p kube-cache --features rest,kube --bench decode`.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::{Compact, ListMeta, Object};
use kube_cache::rest::decode_page;
use kube_cache::strip_managed_fields;

mod common;

const PAGE: usize = 500;

fn bench(c: &mut Criterion) {
    let Some(json) = common::page_json(PAGE) else {
        return;
    };
    let mut group = c.benchmark_group("decode_page_500_pods");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.sample_size(20);
    group.bench_function(BenchmarkId::from_parameter("full"), |b| {
        b.iter(|| decode_page::<Pod>(&json, false).unwrap())
    });
    group.bench_function(BenchmarkId::from_parameter("full_then_strip"), |b| {
        b.iter(|| {
            let mut page = decode_page::<Pod>(&json, false).unwrap();
            page.items.iter_mut().for_each(strip_managed_fields);
            page
        })
    });
    group.bench_function(BenchmarkId::from_parameter("skip_at_decode"), |b| {
        b.iter(|| {
            let page = decode_page::<Pod>(&json, true).unwrap();
            debug_assert!(page.items[0].meta().managed_fields.is_none());
            page
        })
    });
    let list: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    let protobuf = kube_testserver::protobuf::encode(&list).expect("encodable");
    let decoder = kube_apimachinery::protobuf::Decoder::new().skip_managed_fields(true);
    group.bench_function(BenchmarkId::from_parameter("protobuf_skip"), |b| {
        b.iter(|| decoder.list::<Pod>(&protobuf).unwrap())
    });
    group.bench_function(BenchmarkId::from_parameter("protobuf_compact_skip"), |b| {
        b.iter(|| decoder.list::<Compact<Pod>>(&protobuf).unwrap())
    });
    group.bench_function(BenchmarkId::from_parameter("json_compact_skip"), |b| {
        b.iter(|| decode_page::<Compact<Pod>>(&json, true).unwrap())
    });
    group.bench_function(BenchmarkId::from_parameter("peek_continue"), |b| {
        #[derive(serde::Deserialize)]
        struct Peek {
            #[allow(dead_code)]
            metadata: ListMeta,
        }
        b.iter(|| serde_json::from_slice::<Peek>(&json).unwrap())
    });
    group.finish();

    // The same pods as a watch stream.
    let page: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    let mut stream = Vec::new();
    for pod in page["items"].as_array().expect("items") {
        let event = serde_json::json!({"type": "MODIFIED", "object": pod});
        serde_json::to_writer(&mut stream, &event).expect("serializable");
        stream.push(b'\n');
    }
    let chunks: Vec<&[u8]> = stream.chunks(16 * 1024).collect();
    let mut group = c.benchmark_group("watch_events_500_pods");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.sample_size(20);
    group.bench_function(BenchmarkId::from_parameter("ours_full"), |b| {
        b.iter(|| {
            let mut decoder = kube_rest::watch::WatchDecoder::new();
            let mut out = std::collections::VecDeque::new();
            for chunk in &chunks {
                decoder.push::<Pod>(chunk, &mut out);
            }
            assert_eq!(out.len(), PAGE);
            out
        })
    });
    group.bench_function(
        BenchmarkId::from_parameter("ours_skip_managed_fields"),
        |b| {
            b.iter(|| {
                let mut decoder = kube_rest::watch::WatchDecoder::new();
                let mut out = std::collections::VecDeque::new();
                for chunk in &chunks {
                    decoder.push::<kube_cache::rest::WithoutManagedFields<Pod>>(chunk, &mut out);
                }
                assert_eq!(out.len(), PAGE);
                out
            })
        },
    );
    group.bench_function(BenchmarkId::from_parameter("kube_rs"), |b| {
        b.iter(|| {
            // As tokio-util's LinesCodec: a BytesMut buffer, each line split off and copied
            // into a String.
            let mut buffer = bytes::BytesMut::new();
            let mut out = Vec::with_capacity(PAGE);
            for chunk in &chunks {
                buffer.extend_from_slice(chunk);
                while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
                    let line = buffer.split_to(newline + 1);
                    let line = String::from_utf8(line[..newline].to_vec()).expect("UTF-8");
                    let event: kube::core::WatchEvent<Pod> =
                        serde_json::from_str(line.trim_end()).expect("an event");
                    out.push(event);
                }
            }
            assert_eq!(out.len(), PAGE);
            out
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
