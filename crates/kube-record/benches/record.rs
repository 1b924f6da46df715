//! `event()` as the caller sees it while the sink is stuck, and events per second through the
//! correlator to an in-memory sink.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube_flowcontrol::FakeClock;
use kube_record::correlator::CorrelatorOptions;
use kube_record::{EventBroadcaster, EventType, MemorySink};

fn pod(name: String) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name);
    pod.metadata.namespace = Some("bench".into());
    pod.metadata.uid = Some("0b0c5d1e-5f0a-4c8e-9a57-3d1f7a3c2b11".into());
    pod
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The caller's cost of `event()` while the sink never answers (a stuck API server): the
/// event is built and queued; the queue is large enough that nothing is dropped.
fn record_while_sink_is_stuck(c: &mut Criterion) {
    let rt = runtime();
    let pods: Vec<Pod> = (0..64).map(|i| pod(format!("web-{i}"))).collect();
    c.bench_function("event() while the sink is stuck", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let clock = FakeClock::new();
                let sink = MemorySink::with_clock(clock.shared());
                sink.set_latency(Some(Duration::from_secs(3600)));
                let broadcaster = EventBroadcaster::builder()
                    .queue_capacity(iters as usize + 16)
                    .flush_timeout(Duration::ZERO)
                    .build();
                broadcaster.start_recording_to_sink(sink).unwrap();
                let recorder = broadcaster.new_recorder("bench");
                let start = Instant::now();
                for i in 0..iters as usize {
                    let _ = recorder.event(
                        &pods[i % pods.len()],
                        EventType::Normal,
                        "Synced",
                        "synced",
                    );
                }
                let elapsed = start.elapsed();
                broadcaster.shutdown().await;
                elapsed
            })
        });
    });
}

/// Events per second from `event()` to stored in the in-memory sink, through the correlator.
fn throughput(c: &mut Criterion, name: &str, distinct_objects: bool) {
    let rt = runtime();
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let sink = MemorySink::new();
                let broadcaster = EventBroadcaster::builder()
                    .queue_capacity(iters as usize + 16)
                    // Repeats are not throttled here: the patch path is what is measured.
                    .correlator(CorrelatorOptions::default().burst(usize::MAX / 2))
                    .build();
                broadcaster.start_recording_to_sink(sink.clone()).unwrap();
                let recorder = broadcaster.new_recorder("bench");
                let objects: Vec<Pod> = (0..1000).map(|i| pod(format!("web-{i}"))).collect();
                let start = Instant::now();
                for i in 0..iters as usize {
                    let object = if distinct_objects {
                        &objects[i % 1000]
                    } else {
                        &objects[0]
                    };
                    let _ = recorder.event(object, EventType::Normal, "Synced", "synced");
                }
                // Poll (cheaply) rather than be woken by every write.
                while broadcaster.counters().written < iters {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                let elapsed = start.elapsed();
                broadcaster.shutdown().await;
                elapsed
            })
        });
    });
}

fn throughput_creates(c: &mut Criterion) {
    throughput(
        c,
        "events through the correlator to memory (1000 objects)",
        true,
    );
}

fn throughput_repeats(c: &mut Criterion) {
    throughput(
        c,
        "events through the correlator to memory (repeats: patches)",
        false,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = record_while_sink_is_stuck, throughput_creates, throughput_repeats
}
criterion_main!(benches);
