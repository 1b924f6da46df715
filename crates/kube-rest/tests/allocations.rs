//! Allocations per decoded watch event (a pod), counted with dhat's allocator: a regression
//! guard and the figure quoted in the README.

use std::collections::VecDeque;

use k8s_openapi::api::core::v1::Pod;
use kube_rest::Error;
use kube_rest::WatchEvent;
use kube_rest::watch::WatchDecoder;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn stream(events: usize) -> Vec<u8> {
    let mut stream = Vec::new();
    for i in 0..events {
        let line = serde_json::json!({"type": "MODIFIED", "object": {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("p-{i}"), "namespace": "ns", "resourceVersion": i.to_string(),
                         "labels": {"app": "bench", "tier": "web"}},
            "spec": {"containers": [{"name": "main", "image": "registry.example/app:1.2.3",
                                     "ports": [{"containerPort": 8080}],
                                     "env": [{"name": "MODE", "value": "bench"}]}]}}});
        stream.extend_from_slice(line.to_string().as_bytes());
        stream.push(b'\n');
    }
    stream
}

#[test]
fn allocations_per_decoded_pod() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let events = 400;
    let stream = stream(events);
    let mut decoder = WatchDecoder::new();
    let mut out: VecDeque<Result<WatchEvent<Pod>, Error>> = VecDeque::with_capacity(64);
    let before = dhat::HeapStats::get();
    let mut decoded = 0;
    for chunk in stream.chunks(16 * 1024) {
        decoder.push(chunk, &mut out);
        for event in out.drain(..) {
            assert!(matches!(event, Ok(WatchEvent::Modified(_))));
            decoded += 1;
        }
    }
    decoder.finish().unwrap();
    let after = dhat::HeapStats::get();
    assert_eq!(decoded, events);
    let per_pod = (after.total_blocks - before.total_blocks) as f64 / events as f64;

    // The baseline: the same pods decoded one by one straight from their own JSON.
    let objects: Vec<String> = stream
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice::<serde_json::Value>(line).unwrap()["object"].to_string()
        })
        .collect();
    let before = dhat::HeapStats::get();
    for object in &objects {
        let pod: Pod = serde_json::from_str(object).unwrap();
        std::hint::black_box(pod);
    }
    let after = dhat::HeapStats::get();
    let baseline = (after.total_blocks - before.total_blocks) as f64 / events as f64;
    println!("allocations per decoded pod: {per_pod:.1} (the pod itself: {baseline:.1})");
    // The decoder adds about one allocation per event on top of the object's own (measured:
    // 18.1 against 17.0); more would be a regression.
    assert!(
        per_pod <= baseline + 1.5,
        "{per_pod} allocations per decoded pod, baseline {baseline}"
    );
}
