//! The latency distribution of `event()` seen by the caller while the sink is slow (every
//! write takes 20 ms, as an overloaded API server): p50, p99, p99.9 and max over many calls.
//! criterion reports means only.
//!
//! `cargo bench -p kube-record --bench latency`

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube_record::{EventBroadcaster, EventType, MemorySink};

fn pod(i: usize) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(format!("web-{i}"));
    pod.metadata.namespace = Some("bench".into());
    pod.metadata.uid = Some("0b0c5d1e-5f0a-4c8e-9a57-3d1f7a3c2b11".into());
    pod
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn run(label: &str, calls: usize, queue_capacity: usize, logging_watcher: bool) {
    let sink = MemorySink::new();
    sink.set_latency(Some(Duration::from_millis(20)));
    let broadcaster = EventBroadcaster::builder()
        .queue_capacity(queue_capacity)
        .flush_timeout(Duration::ZERO)
        .build();
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    if logging_watcher {
        // A second, fast watcher (as `start_logging`): every event wakes its task.
        broadcaster.start_event_watcher(|_| {}).unwrap();
    }
    let recorder = broadcaster.new_recorder("bench");
    let pods: Vec<Pod> = (0..256).map(pod).collect();
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls {
        let pod = &pods[i % pods.len()];
        let start = Instant::now();
        let _ = recorder.eventf(
            pod,
            EventType::Normal,
            "Synced",
            format_args!("synced {}", i % 7),
        );
        samples.push(start.elapsed());
        if i % 1024 == 0 {
            // Let the watcher tasks run now and then, as a controller would.
            tokio::task::yield_now().await;
        }
    }
    let counters = broadcaster.counters();
    broadcaster.shutdown().await;
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{label}: {calls} calls, p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}, mean {:?} (recorded {}, dropped {}; sink wrote {})",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        percentile(&samples, 0.999),
        samples[samples.len() - 1],
        mean,
        counters.recorded,
        counters.dropped(),
        sink.events().len(),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Warm up allocator and caches.
        run("warm-up", 20_000, 1 << 20, false).await;
        // Room in the queue: every event is accepted while the sink crawls.
        run("slow sink, queue with room", 200_000, 1 << 20, false).await;
        run(
            "slow sink + a fast watcher, queue with room",
            200_000,
            1 << 20,
            true,
        )
        .await;
        // client-go's 1000-event queue: after 1000, events are dropped (and counted).
        run("slow sink, 1000-event queue (drops)", 200_000, 1000, false).await;
    });
}
