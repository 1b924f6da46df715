//! The figures of issue 3, against client-go's (see PERF.md):
//!
//! * `queue/add_get_done_distinct_keys`: one task, add + get + done of distinct keys;
//! * `queue/add_dedup_hit`: add of an already-queued key;
//! * `queue/8_producers/{1,2,8}_workers`: 8 producer tasks, N worker tasks doing get + done;
//! * `delaying/add_after_100k_over_0_50ms`: 100k items added with random delays in 0..50 ms,
//!   until all are handed out;
//! * `rate_limiter/default_controller_when_1000_keys`: `when` over 1000 keys.
//!
//! Keys are `String`s like `namespace/name`, as controllers use. Multi-task benchmarks run on a
//! multi-threaded tokio runtime with one worker thread per core (Go's GOMAXPROCS goroutines).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kube_workqueue::rate_limiter::ItemRateLimiter;
use kube_workqueue::{DelayingQueue, WorkQueue, default_controller_rate_limiter};

fn keys(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}/pod-{i}")).collect()
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One task adds a key, gets it and marks it done; the keys differ from cycle to cycle (the
/// queue forgets a key once it is done, so 1024 keys in rotation are all new to it).
fn add_get_done_distinct_keys(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let queue = WorkQueue::<String>::new();
    let keys = keys("default", 1024);
    c.bench_function("queue/add_get_done_distinct_keys", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for i in 0..iters as usize {
                    queue.add(keys[i % keys.len()].clone());
                    let item = queue.get().await.expect("an item");
                    queue.done(black_box(&item));
                }
                start.elapsed()
            })
        })
    });
}

/// Adding a key that is already waiting: a lookup, nothing else (borrowed, so nothing is
/// allocated either).
fn add_dedup_hit(c: &mut Criterion) {
    let queue = WorkQueue::<String>::new();
    for key in keys("default", 1000) {
        queue.add(key);
    }
    let key = "default/pod-500";
    c.bench_function("queue/add_dedup_hit", |b| {
        b.iter(|| queue.add_ref(black_box(key)))
    });
    assert_eq!(queue.len(), 1000);
}

const PRODUCERS: usize = 8;
const PER_PRODUCER: usize = 10_000;

/// 8 producers add 10k distinct keys each while `workers` workers get and mark them done; the
/// time until the last one is done.
async fn producers_and_workers(key_sets: Vec<Vec<String>>, workers: usize) -> Duration {
    let total: usize = key_sets.iter().map(Vec::len).sum();
    let queue = WorkQueue::<String>::new();
    let processed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let worker_tasks: Vec<_> = (0..workers)
        .map(|_| {
            let queue = queue.clone();
            let processed = Arc::clone(&processed);
            tokio::spawn(async move {
                while let Some(item) = queue.get().await {
                    queue.done(&item);
                    if processed.fetch_add(1, Ordering::Relaxed) + 1 == total {
                        queue.shut_down();
                    }
                }
            })
        })
        .collect();
    let producer_tasks: Vec<_> = key_sets
        .into_iter()
        .map(|keys| {
            let queue = queue.clone();
            tokio::spawn(async move {
                for (i, key) in keys.into_iter().enumerate() {
                    queue.add(key);
                    if i % 256 == 255 {
                        // Like an informer's event loop, a producer is a task that yields now
                        // and then (a woken worker may wait in this thread's LIFO slot).
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in producer_tasks.into_iter().chain(worker_tasks) {
        task.await.expect("bench task");
    }
    let elapsed = start.elapsed();
    assert_eq!(processed.load(Ordering::Relaxed), total);
    elapsed
}

fn producers_workers(c: &mut Criterion) {
    let runtime = multi_thread_runtime();
    let mut group = c.benchmark_group("queue/8_producers");
    group.sample_size(10);
    group.throughput(Throughput::Elements((PRODUCERS * PER_PRODUCER) as u64));
    for workers in [1, 2, 8] {
        group.bench_function(
            BenchmarkId::from_parameter(format!("{workers}_workers")),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let key_sets = (0..PRODUCERS)
                            .map(|p| keys(&format!("ns-{p}"), PER_PRODUCER))
                            .collect();
                        total += runtime.block_on(producers_and_workers(key_sets, workers));
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

const DELAYED_ITEMS: usize = 100_000;

/// Adds 100k keys with random delays in 0..50 ms on the real clock while one worker gets and
/// marks them done; the time until the last one is handed out.
async fn delaying_run(keys: Vec<String>, delays: Vec<Duration>) -> Duration {
    let queue = DelayingQueue::<String>::new();
    let start = Instant::now();
    let worker = tokio::spawn({
        let queue = queue.clone();
        async move {
            for _ in 0..DELAYED_ITEMS {
                let item = queue.get().await.expect("an item");
                queue.done(&item);
            }
        }
    });
    for (key, delay) in keys.into_iter().zip(delays) {
        queue.add_after(key, delay);
    }
    worker.await.expect("worker");
    let elapsed = start.elapsed();
    queue.shut_down();
    elapsed
}

fn delaying_add_after(c: &mut Criterion) {
    let runtime = multi_thread_runtime();
    let mut group = c.benchmark_group("delaying");
    group.sample_size(10);
    group.throughput(Throughput::Elements(DELAYED_ITEMS as u64));
    let mut rng = fastrand::Rng::with_seed(7);
    group.bench_function("add_after_100k_over_0_50ms", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let keys = keys("default", DELAYED_ITEMS);
                let delays = (0..DELAYED_ITEMS)
                    .map(|_| Duration::from_nanos(rng.u64(0..50_000_000)))
                    .collect();
                total += runtime.block_on(delaying_run(keys, delays));
            }
            total
        })
    });
    group.finish();
}

/// client-go's default controller rate limiter (per-item exponential backoff and an overall
/// token bucket), `when` for 1000 keys in rotation.
fn default_controller_when(c: &mut Criterion) {
    let limiter = default_controller_rate_limiter::<String>();
    let keys = keys("default", 1000);
    let mut i = 0;
    c.bench_function("rate_limiter/default_controller_when_1000_keys", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(limiter.when(&keys[i]))
        })
    });
}

criterion_group!(
    benches,
    add_get_done_distinct_keys,
    add_dedup_hit,
    producers_workers,
    delaying_add_after,
    default_controller_when
);
criterion_main!(benches);
