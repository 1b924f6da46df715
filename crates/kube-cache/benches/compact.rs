//! `kube_apimachinery::Compact<Pod>` against `Pod`, on a list page of 500 realistic pods
//! (`shared/fixtures/pod-realistic.json`, or the file named by `POD_FIXTURE`):
//!
//! * `list/compact_pod` and `list/pod`: the page decoded into `Compact<Pod>` or `Pod`,
//!   managedFields skipped (what `ApiListerWatcher` does for an informer);
//! * `decode/pod`: `Compact::decode` of the 500 compact pods to typed `Pod`s;
//! * `serialize/json`: the 500 compact pods written back as JSON.
//!
//! Run: `cargo bench -p kube-cache --features rest --bench compact`.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::Compact;
use kube_cache::rest::decode_page;

mod common;

const PAGE: usize = 500;

fn bench(c: &mut Criterion) {
    let Some(json) = common::page_json(PAGE) else {
        return;
    };
    let mut group = c.benchmark_group("compact_500_pods");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function(BenchmarkId::new("list", "compact_pod"), |b| {
        b.iter(|| decode_page::<Compact<Pod>>(&json, true).unwrap())
    });
    group.bench_function(BenchmarkId::new("list", "pod"), |b| {
        b.iter(|| decode_page::<Pod>(&json, true).unwrap())
    });

    let pods = decode_page::<Compact<Pod>>(&json, true).unwrap().items;
    assert_eq!(pods.len(), PAGE);
    group.bench_function(BenchmarkId::new("decode", "pod"), |b| {
        b.iter(|| {
            pods.iter()
                .map(|pod| pod.decode().unwrap())
                .collect::<Vec<Pod>>()
        })
    });
    group.bench_function(BenchmarkId::new("serialize", "json"), |b| {
        b.iter(|| {
            pods.iter()
                .map(|pod| serde_json::to_vec(pod).unwrap())
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
