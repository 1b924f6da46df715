//! Decoding a list page of 500 realistic pods (`shared/fixtures/pod-realistic.json`, or the
//! file named by `POD_FIXTURE`; about a third of each pod is managedFields), three ways:
//!
//! * `full`: every field decoded (what `Api::list` does), managedFields kept;
//! * `full_then_strip`: every field decoded, then managedFields dropped by the reflector's
//!   transform (what a reflector over plain `Api<K>` does);
//! * `skip_at_decode`: managedFields skipped while decoding ([`WithoutManagedFields`], what
//!   `ApiListerWatcher` does when the reflector drops them);
//! * `peek_continue`: only the list's metadata (the items scanned, not built), what the
//!   pipelined pager does before requesting the next page.
//!
//! Run: `cargo bench -p kube-cache --features rest --bench decode`.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::{ListMeta, Object};
use kube_cache::rest::decode_page;
use kube_cache::strip_managed_fields;

const PAGE: usize = 500;

fn page_json() -> Option<Vec<u8>> {
    let path = std::env::var("POD_FIXTURE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/pod-realistic.json"
        )
        .to_string()
    });
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("decode: skipped, no pod fixture ({path}: {e}); set POD_FIXTURE");
            return None;
        }
    };
    let template: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    let items: Vec<serde_json::Value> = (0..PAGE)
        .map(|i| {
            let mut pod = template.clone();
            pod["metadata"]["name"] = format!("web-7d9f8c6b5d-{i:05}").into();
            pod["metadata"]["uid"] = format!("5f0c1a2e-8b7d-4c6e-9a1b-{i:012}").into();
            pod
        })
        .collect();
    let list = serde_json::json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "184467", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"},
        "items": items,
    });
    Some(serde_json::to_vec(&list).expect("serializable"))
}

fn bench(c: &mut Criterion) {
    let Some(json) = page_json() else {
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
    group.bench_function(BenchmarkId::from_parameter("peek_continue"), |b| {
        #[derive(serde::Deserialize)]
        struct Peek {
            #[allow(dead_code)]
            metadata: ListMeta,
        }
        b.iter(|| serde_json::from_slice::<Peek>(&json).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
