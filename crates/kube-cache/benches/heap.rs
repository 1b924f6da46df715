//! Heap per cached pod, as a multiple of the compact JSON size of what is stored (issue 13).
//!
//! `shared/fixtures/pod-realistic.json` (or the file named by `POD_FIXTURE`) without
//! `managedFields` (as the informer will drop them), 10,000 copies with distinct names, uids,
//! namespaces (100) and pod IPs, each decoded from its own JSON (as a watch delivers them,
//! so no string is shared between copies), added to an `Indexer` with the namespace index.
//! The heap is measured with dhat's global allocator: live bytes after the inserts minus
//! live bytes before (the decoded pods, their `Arc`s, the keys, the item map and the
//! namespace index), divided by the pods' total compact JSON size.
//!
//! Run: `cargo bench -p kube-cache --bench heap`.
#![allow(missing_docs)]

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::Compact;
use kube_cache::Indexer;

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const COPIES: usize = 10_000;

fn fixture() -> Option<serde_json::Value> {
    let mut pod = common::fixture()?;
    pod["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("managedFields");
    Some(pod)
}

/// The JSON of copy `i`, compact.
fn copy_json(template: &serde_json::Value, i: usize) -> Vec<u8> {
    let mut pod = template.clone();
    pod["metadata"]["name"] = format!("web-7d9f8c6b5d-{i:05}").into();
    pod["metadata"]["namespace"] = format!("shop-{:02}", i % 100).into();
    pod["metadata"]["uid"] = format!("5f0c1a2e-8b7d-4c6e-9a1b-{i:012}").into();
    let ip = format!("10.244.{}.{}", (i / 250) % 250, i % 250 + 2);
    pod["status"]["podIP"] = ip.clone().into();
    if let Some(ips) = pod["status"]["podIPs"].as_array_mut() {
        for entry in ips {
            entry["ip"] = ip.clone().into();
        }
    }
    serde_json::to_vec(&pod).expect("serializable")
}

fn main() {
    // Bench harness arguments (`--bench`, filters) are accepted and ignored.
    let _profiler = dhat::Profiler::builder().testing().build();
    let Some(template) = fixture() else { return };
    let jsons: Vec<Vec<u8>> = (0..COPIES).map(|i| copy_json(&template, i)).collect();
    let json_bytes: usize = jsons.iter().map(Vec::len).sum();

    let indexer = Indexer::<Pod>::new();
    let before = dhat::HeapStats::get().curr_bytes;
    for json in &jsons {
        let pod: Pod = serde_json::from_slice(json).expect("a pod");
        indexer.add(Arc::new(pod));
    }
    let after = dhat::HeapStats::get().curr_bytes;
    assert_eq!(indexer.len(), COPIES);

    let heap = after - before;
    let per_pod = heap as f64 / COPIES as f64;
    let json_per_pod = json_bytes as f64 / COPIES as f64;
    println!(
        "heap/indexer_10k_realistic_pods: {per_pod:.0} B per pod, compact JSON {json_per_pod:.0} B, ratio {:.2}x",
        per_pod / json_per_pod
    );

    // The same pods without the store: what the objects alone cost.
    drop(indexer);
    let before = dhat::HeapStats::get().curr_bytes;
    let pods: Vec<Pod> = jsons
        .iter()
        .map(|json| serde_json::from_slice(json).expect("a pod"))
        .collect();
    let objects = dhat::HeapStats::get().curr_bytes - before;
    println!(
        "heap/pod_objects_alone: {:.0} B per pod (ratio {:.2}x), size_of::<Pod>() = {} B",
        objects as f64 / COPIES as f64,
        objects as f64 / json_bytes as f64,
        std::mem::size_of::<Pod>()
    );
    drop(pods);

    // Other representations of the same objects, for the record.
    let before = dhat::HeapStats::get().curr_bytes;
    let dynamic: Vec<kube_apimachinery::DynamicObject> = jsons
        .iter()
        .map(|json| serde_json::from_slice(json).expect("an object"))
        .collect();
    let bytes = dhat::HeapStats::get().curr_bytes - before;
    println!(
        "heap/dynamic_objects_alone: {:.0} B per pod (ratio {:.2}x)",
        bytes as f64 / COPIES as f64,
        bytes as f64 / json_bytes as f64
    );
    drop(dynamic);

    // kube_apimachinery::Compact<Pod>: typed metadata, everything else kept as compact JSON
    // text, in an Indexer with the namespace index.
    let indexer = Indexer::<Compact<Pod>>::new();
    let before = dhat::HeapStats::get().curr_bytes;
    for json in &jsons {
        let pod: Compact<Pod> = serde_json::from_slice(json).expect("a pod");
        indexer.add(Arc::new(pod));
    }
    let bytes = dhat::HeapStats::get().curr_bytes - before;
    assert_eq!(indexer.len(), COPIES);
    println!(
        "heap/indexer_10k_compact_pods: {:.0} B per pod (ratio {:.2}x)",
        bytes as f64 / COPIES as f64,
        bytes as f64 / json_bytes as f64
    );
    drop(indexer);

    // The compact JSON itself, plus what a store and a lister read without decoding: name,
    // namespace, labels (a possible compact K whose typed view is decoded on demand).
    let before = dhat::HeapStats::get().curr_bytes;
    type Labels = std::collections::BTreeMap<String, String>;
    let raw: Vec<(String, String, Labels, Box<[u8]>)> = jsons
        .iter()
        .map(|json| {
            let value: serde_json::Value = serde_json::from_slice(json).expect("an object");
            let meta = &value["metadata"];
            let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
            let labels: Labels = serde_json::from_value(meta["labels"].clone()).unwrap_or_default();
            (
                text(&meta["name"]),
                text(&meta["namespace"]),
                labels,
                json.clone().into_boxed_slice(),
            )
        })
        .collect();
    let bytes = dhat::HeapStats::get().curr_bytes - before;
    println!(
        "heap/json_bytes_plus_name_namespace_labels: {:.0} B per pod (ratio {:.2}x)",
        bytes as f64 / COPIES as f64,
        bytes as f64 / json_bytes as f64
    );
    drop(raw);
}
