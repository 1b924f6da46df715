//! Hot paths of kube-flowcontrol, against client-go's figures (see docs/perf.md).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kube_flowcontrol::throttle::{RateLimiter, TokenBucketRateLimiter};
use kube_flowcontrol::{Limit, Limiter, PerKeyBackoff, RealClock};

/// A limit so high the bucket never runs dry during the benchmark: measures the bookkeeping,
/// as client-go's benchmark does.
const HIGH_RATE: f64 = 1e12;

fn allow_uncontended(c: &mut Criterion) {
    let limiter = Limiter::new(Limit::per_second(HIGH_RATE), 1_000_000);
    c.bench_function("rate/allow/uncontended", |b| {
        b.iter(|| black_box(limiter.allow()))
    });
}

/// `allow()` from `tasks` tokio tasks at once on a multi-threaded runtime with one worker per
/// core (the analogue of Go's goroutines on GOMAXPROCS threads); reports wall time divided by
/// the total number of calls, like Go's `RunParallel` ns/op.
fn allow_contended(c: &mut Criterion, tasks: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .build()
        .expect("tokio runtime");
    let limiter = Arc::new(Limiter::new(Limit::per_second(HIGH_RATE), 1_000_000));
    c.bench_function(&format!("rate/allow/{tasks}-tasks"), |b| {
        b.iter_custom(|iters| {
            let per_task = iters.div_ceil(tasks as u64);
            runtime.block_on(async {
                let start = std::time::Instant::now();
                let handles: Vec<_> = (0..tasks)
                    .map(|_| {
                        let limiter = Arc::clone(&limiter);
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                black_box(limiter.allow());
                            }
                        })
                    })
                    .collect();
                for handle in handles {
                    handle.await.expect("bench task");
                }
                start.elapsed()
            })
        })
    });
}

fn allow_2_tasks(c: &mut Criterion) {
    allow_contended(c, 2);
}

fn allow_8_tasks(c: &mut Criterion) {
    allow_contended(c, 8);
}

fn throttle_try_accept(c: &mut Criterion) {
    let throttle = TokenBucketRateLimiter::new(HIGH_RATE as f32, 1_000_000);
    c.bench_function("throttle/try_accept", |b| {
        b.iter(|| black_box(throttle.try_accept()))
    });
}

fn backoff_next_1000_ids(c: &mut Criterion) {
    let clock = RealClock::shared();
    let backoff = PerKeyBackoff::<String>::with_clock(
        Duration::from_millis(1),
        Duration::from_secs(60),
        clock.clone(),
    );
    let ids: Vec<String> = (0..1000).map(|i| format!("namespace/object-{i}")).collect();
    // The event time is the caller's (typically when the failure was observed): it is read
    // once per pass over the 1000 ids, so the figure is the cost of next() itself.
    let mut i = 0usize;
    let mut event_time = clock.now();
    c.bench_function("backoff/next/1000-ids", |b| {
        b.iter(|| {
            let id = &ids[i];
            i += 1;
            if i == ids.len() {
                i = 0;
                event_time = clock.now();
            }
            backoff.next(id.as_str(), event_time);
        })
    });
}

criterion_group!(
    benches,
    allow_uncontended,
    allow_2_tasks,
    allow_8_tasks,
    throttle_try_accept,
    backoff_next_1000_ids
);
criterion_main!(benches);
