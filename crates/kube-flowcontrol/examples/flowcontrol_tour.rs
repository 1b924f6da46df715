//! A tour of kube-flowcontrol, ported from the seed's client-go flowcontrol tests
//! (backoff_test.go, retry_test.go, throttle_test.go) into a readable demo.
//!
//! Run it with `cargo run -p kube-flowcontrol --example flowcontrol_tour`; it takes about a
//! second, most of it in the real-clock `until` and `backoff_until` sections.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube_flowcontrol::retry::{self, IsConflict};
use kube_flowcontrol::throttle::{RateLimiter, TokenBucketRateLimiter};
use kube_flowcontrol::wait::{self, Backoff, ExponentialBackoffManager, WaitError};
use kube_flowcontrol::{Clock, FakeClock, PerKeyBackoff, RealClock};
use tokio_util::sync::CancellationToken;

const MS: Duration = Duration::from_millis(1);

#[tokio::main(flavor = "current_thread")]
async fn main() {
    per_key_backoff();
    until().await;
    backoff_until().await;
    exponential_backoff().await;
    poll().await;
    retry_on_conflict().await;
    throttle();
}

/// TestFlowControlBackoff: per-item backoff on a fake clock.
fn per_key_backoff() {
    println!("== per-key backoff (fake clock)");
    let clock = FakeClock::new();
    let backoff = PerKeyBackoff::<String>::with_clock(MS, Duration::from_secs(1), clock.shared());
    let id = "test1";
    println!("first try, backoff {:?}", backoff.get(id));
    for attempt in 2..=3 {
        backoff.next(id, clock.now()); // it failed
        let delay = backoff.get(id);
        clock.step(delay);
        println!("retry #{attempt} after {delay:?}");
    }
    backoff.reset(id); // it succeeded
    println!("after success, backoff {:?}", backoff.get(id));
    backoff.next(id, clock.now());
    let begin = clock.now();
    println!(
        "failed again: in backoff since now? {}; since update? {}",
        backoff.is_in_backoff_since(id, begin),
        backoff.is_in_backoff_since_update(id, clock.now())
    );
    clock.step(3 * MS);
    println!(
        "3ms later: in backoff since begin? {}",
        backoff.is_in_backoff_since(id, begin)
    );
    clock.step(Duration::from_secs(3));
    backoff.gc();
    println!("idle for 3s > 2 x max, gc'd: backoff {:?}", backoff.get(id));
}

/// TestUntil: run every 10ms until stopped after 100ms (real clock).
async fn until() {
    println!("== until: every 10ms, stopped after 100ms");
    let cancel = CancellationToken::new();
    let count = Arc::new(AtomicUsize::new(0));
    let stopper = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(100 * MS).await;
            cancel.cancel();
        }
    });
    let counter = Arc::clone(&count);
    wait::until(&RealClock, 10 * MS, &cancel, || {
        counter.fetch_add(1, Ordering::Relaxed);
        std::future::ready(())
    })
    .await;
    stopper.await.ok();
    println!("ran {} times", count.load(Ordering::Relaxed));
}

/// TestBackoffUntil: exponential 1ms..20ms with jitter, for 300ms.
async fn backoff_until() {
    println!("== backoff_until: 1ms doubling to 20ms, for 300ms");
    let begin = Instant::now();
    let mut manager = ExponentialBackoffManager::new(
        MS,
        20 * MS,
        Duration::from_secs(1),
        2.0,
        0.1,
        RealClock::shared(),
    );
    let cancel = CancellationToken::new();
    let stopper = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(300 * MS).await;
            cancel.cancel();
        }
    });
    let mut runs = Vec::new();
    wait::backoff_until(&RealClock, &mut manager, false, &cancel, || {
        runs.push(begin.elapsed().as_millis());
        std::future::ready(())
    })
    .await;
    stopper.await.ok();
    println!("ran at (ms): {runs:?}");
}

/// TestExponentialBackoff: a condition that succeeds on its third check.
async fn exponential_backoff() {
    println!("== exponential_backoff: 1ms x2, 5 steps, cap 20ms");
    let backoff = Backoff {
        duration: MS,
        factor: 2.0,
        jitter: 0.1,
        steps: 5,
        cap: 20 * MS,
    };
    let begin = Instant::now();
    let mut counter = 3;
    let result: Result<(), WaitError<Infallible>> =
        wait::exponential_backoff(&RealClock, backoff, || {
            println!("  check at {:?}", begin.elapsed());
            counter -= 1;
            std::future::ready(Ok(counter == 0))
        })
        .await;
    println!("result: {result:?}");
}

/// TestPoll: a condition that never holds times out (fake clock, so instantly).
async fn poll() {
    println!("== poll: every 10ms for 50ms, never done (fake clock)");
    let clock = FakeClock::new();
    let task = tokio::spawn({
        let clock = clock.clone();
        async move {
            wait::poll(&clock, 10 * MS, 50 * MS, || {
                std::future::ready(Ok::<_, Infallible>(false))
            })
            .await
        }
    });
    while !task.is_finished() {
        clock.wait_for_waiters(1).await;
        clock.step_to_next_deadline();
        tokio::task::yield_now().await;
    }
    match task.await {
        Ok(Err(error)) => println!("result: {error}"),
        other => println!("unexpected: {other:?}"),
    }
}

#[derive(Debug)]
struct Conflict;

impl IsConflict for Conflict {
    fn is_conflict(&self) -> bool {
        true
    }
}

/// TestRetry: retry.RetryOnConflict with DefaultRetry.
async fn retry_on_conflict() {
    println!("== retry_on_conflict with DEFAULT_RETRY");
    let mut attempts = 0;
    let result = retry::retry_on_conflict(&RealClock, retry::DEFAULT_RETRY, || {
        attempts += 1;
        println!("  attempt {attempts}");
        std::future::ready(if attempts < 3 {
            Err(Conflict)
        } else {
            Ok(attempts)
        })
    })
    .await;
    println!("result: {result:?}");
    let result: Result<(), Conflict> =
        retry::retry_on_conflict(&RealClock, retry::DEFAULT_RETRY, || {
            std::future::ready(Err(Conflict))
        })
        .await;
    println!(
        "always conflicting: {result:?} (exhausted retries so far: {})",
        retry::exhausted_total()
    );
}

/// TestThrottle: 1 QPS with burst 3 on a fake clock.
fn throttle() {
    println!("== throttle: 1 qps, burst 3 (fake clock)");
    let clock = FakeClock::new();
    let throttle = TokenBucketRateLimiter::with_clock(1.0, 3, clock.shared());
    let accepted: Vec<bool> = (0..5).map(|_| throttle.try_accept()).collect();
    println!("5 tries at once: {accepted:?}");
    clock.step(Duration::from_secs(1));
    println!("one second later: {}", throttle.try_accept());
    println!("qps {}", throttle.qps());
}
