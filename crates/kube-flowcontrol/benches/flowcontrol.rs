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

/// `allow()` from `tasks` threads at once; reports the time per call seen by one caller.
fn allow_contended(c: &mut Criterion, tasks: usize) {
    let limiter = Arc::new(Limiter::new(Limit::per_second(HIGH_RATE), 1_000_000));
    c.bench_function(&format!("rate/allow/{tasks}-tasks"), |b| {
        b.iter_custom(|iters| {
            let per_task = iters.div_ceil(tasks as u64);
            let start = std::time::Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..tasks {
                    let limiter = Arc::clone(&limiter);
                    scope.spawn(move || {
                        for _ in 0..per_task {
                            black_box(limiter.allow());
                        }
                    });
                }
            });
            // Total wall time divided by total calls, like Go's RunParallel ns/op.
            start.elapsed() / tasks as u32
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
    let mut i = 0usize;
    c.bench_function("backoff/next/1000-ids", |b| {
        b.iter(|| {
            let id = &ids[i % ids.len()];
            i = i.wrapping_add(1);
            backoff.next(id.as_str(), clock.now());
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
