//! Cases from x/time/rate's, client-go's flowcontrol/retry and apimachinery's wait tests,
//! rewritten against our API with the same inputs and expected values.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube_flowcontrol::retry::{self, IsConflict};
use kube_flowcontrol::throttle::{RateLimiter, TokenBucketRateLimiter};
use kube_flowcontrol::wait::{self, Backoff, WaitError};
use kube_flowcontrol::{Clock, FakeClock, Limit, Limiter, PerKeyBackoff};

const D: Duration = Duration::from_millis(100);

struct Bucket {
    clock: FakeClock,
    limiter: Limiter,
    t0: Instant,
}

impl Bucket {
    fn new(limit: f64, burst: usize) -> Bucket {
        let clock = FakeClock::new();
        let t0 = clock.now();
        let limiter = Limiter::with_clock(Limit::per_second(limit), burst, clock.shared());
        Bucket { clock, limiter, t0 }
    }

    fn t(&self, k: u32) -> Instant {
        self.t0 + D * k
    }

    /// Go's `run(t, lim, []allow)`: tokens before the call, then the outcome.
    fn allows(&self, cases: &[(u32, f64, usize, bool)]) {
        for (i, &(k, tokens, n, ok)) in cases.iter().enumerate() {
            let at = self.t(k);
            assert_eq!(
                self.limiter.tokens_at(at),
                tokens,
                "case {i}: tokens at t{k}"
            );
            assert_eq!(
                self.limiter.allow_n(at, n),
                ok,
                "case {i}: allow_n(t{k}, {n})"
            );
        }
    }

    /// Reserves `n` at `tk` and checks the time to act (`None`: not ok).
    fn reserve(&self, k: u32, n: usize, act: Option<u32>) -> kube_flowcontrol::Reservation<'_> {
        let r = self.limiter.reserve_n(self.t(k), n);
        match act {
            Some(a) => {
                assert!(r.ok(), "reserve(t{k}, {n}) should be ok");
                assert_eq!(r.time_to_act(), self.t(a), "reserve(t{k}, {n})");
            }
            None => assert!(!r.ok(), "reserve(t{k}, {n}) should not be ok"),
        }
        r
    }
}

#[test]
fn limiter_burst_1() {
    Bucket::new(10.0, 1).allows(&[
        (0, 1.0, 1, true),
        (0, 0.0, 1, false),
        (0, 0.0, 1, false),
        (1, 1.0, 1, true),
        (1, 0.0, 1, false),
        (1, 0.0, 1, false),
        (2, 1.0, 2, false),
        (2, 1.0, 1, true),
        (2, 0.0, 1, false),
    ]);
}

#[test]
fn limiter_burst_3() {
    Bucket::new(10.0, 3).allows(&[
        (0, 3.0, 2, true),
        (0, 1.0, 2, false),
        (0, 1.0, 1, true),
        (0, 0.0, 1, false),
        (1, 1.0, 4, false),
        (2, 2.0, 1, true),
        (3, 2.0, 1, true),
        (4, 2.0, 1, true),
        (4, 1.0, 1, true),
        (4, 0.0, 1, false),
        (4, 0.0, 1, false),
        (9, 3.0, 3, true),
        (9, 0.0, 0, true),
    ]);
}

#[test]
fn limiter_jump_backwards() {
    Bucket::new(10.0, 3).allows(&[
        (1, 3.0, 1, true),
        (0, 2.0, 1, true),
        (0, 1.0, 1, true),
        (0, 0.0, 1, false),
        (0, 0.0, 1, false),
        (1, 1.0, 1, true),
        (1, 0.0, 1, false),
        (1, 0.0, 1, false),
        (2, 1.0, 1, true),
        (2, 0.0, 1, false),
        (2, 0.0, 1, false),
    ]);
}

#[test]
fn no_truncation_errors() {
    let limiter = Limiter::with_clock(
        Limit::per_second(0.7692307692307693),
        1,
        FakeClock::new().shared(),
    );
    assert!(limiter.allow());
}

#[test]
fn zero_limit() {
    let limiter = Limiter::with_clock(Limit::per_second(0.0), 1, FakeClock::new().shared());
    assert!(limiter.allow());
    assert!(!limiter.allow());
}

#[test]
fn simultaneous_requests() {
    let bucket = Bucket::new(1.0, 5);
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..15 {
            scope.spawn(|| {
                if bucket.limiter.allow() {
                    admitted.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(admitted.load(Ordering::SeqCst), 5);
}

#[test]
fn long_running_qps() {
    let bucket = Bucket::new(100.0, 100);
    let mut ok = 0;
    let mut at = bucket.t0;
    let end = bucket.t0 + Duration::from_secs(5);
    while at < end {
        if bucket.limiter.allow_n(at, 1) {
            ok += 1;
        }
        at += Duration::from_millis(2);
    }
    // burst + 5s x 100/s = 600, give or take one.
    assert!((599..=601).contains(&ok), "admitted {ok}");
}

#[test]
fn simple_reserve() {
    let b = Bucket::new(10.0, 2);
    b.reserve(0, 2, Some(0));
    b.reserve(0, 2, Some(2));
    b.reserve(3, 2, Some(4));
}

#[test]
fn mix() {
    let b = Bucket::new(10.0, 2);
    b.reserve(0, 3, None);
    b.reserve(0, 2, Some(0));
    b.allows(&[(1, 1.0, 2, false)]);
    b.reserve(1, 2, Some(2));
    b.allows(&[(1, -1.0, 1, false), (3, 1.0, 1, true)]);
}

#[test]
fn cancel_invalid() {
    let b = Bucket::new(10.0, 2);
    b.reserve(0, 2, Some(0));
    let r = b.reserve(0, 3, None);
    r.cancel_at(b.t(0));
    b.reserve(0, 2, Some(2));
}

#[test]
fn cancel_last() {
    let b = Bucket::new(10.0, 2);
    b.reserve(0, 2, Some(0));
    let r = b.reserve(0, 2, Some(2));
    r.cancel_at(b.t(1));
    b.reserve(1, 2, Some(2));
}

#[test]
fn cancel_too_late() {
    let b = Bucket::new(10.0, 2);
    b.reserve(0, 2, Some(0));
    let r = b.reserve(0, 2, Some(2));
    r.cancel_at(b.t(3));
    b.reserve(3, 2, Some(4));
}

#[test]
fn cancel_0_tokens() {
    let b = Bucket::new(10.0, 2);
    b.reserve(0, 2, Some(0));
    let r = b.reserve(0, 1, Some(1));
    b.reserve(0, 1, Some(2));
    r.cancel_at(b.t(0));
    b.reserve(0, 1, Some(3));
}

#[test]
fn cancel_1_token() {
    let b = Bucket::new(10.0, 2);
    b.reserve(0, 2, Some(0));
    let r = b.reserve(0, 2, Some(2));
    b.reserve(0, 1, Some(3));
    r.cancel_at(b.t(2));
    b.reserve(2, 2, Some(4));
}

#[test]
fn cancel_multi() {
    let b = Bucket::new(10.0, 4);
    b.reserve(0, 4, Some(0));
    let ra = b.reserve(0, 3, Some(3));
    b.reserve(0, 1, Some(4));
    let rc = b.reserve(0, 1, Some(5));
    rc.cancel_at(b.t(1));
    ra.cancel_at(b.t(1));
    b.reserve(1, 3, Some(5));
}

#[test]
fn reserve_jump_back() {
    let b = Bucket::new(10.0, 2);
    b.reserve(1, 2, Some(1));
    b.reserve(0, 1, Some(1));
    b.reserve(2, 2, Some(3));
}

#[test]
fn reserve_jump_back_cancel() {
    let b = Bucket::new(10.0, 2);
    b.reserve(1, 2, Some(1));
    let r = b.reserve(1, 2, Some(3));
    b.reserve(1, 1, Some(4));
    r.cancel_at(b.t(0));
    b.reserve(1, 2, Some(4));
}

#[test]
fn reserve_set_limit() {
    let b = Bucket::new(5.0, 2);
    b.reserve(0, 2, Some(0));
    b.reserve(0, 2, Some(4));
    b.limiter.set_limit_at(b.t(2), Limit::per_second(10.0));
    b.reserve(2, 1, Some(4));
}

#[test]
fn reserve_set_burst() {
    let b = Bucket::new(5.0, 2);
    b.reserve(0, 2, Some(0));
    b.reserve(0, 2, Some(4));
    b.limiter.set_burst_at(b.t(3), 4);
    b.reserve(0, 4, Some(9));
}

#[test]
fn reserve_set_limit_cancel() {
    let b = Bucket::new(5.0, 2);
    b.reserve(0, 2, Some(0));
    let r = b.reserve(0, 2, Some(4));
    b.limiter.set_limit_at(b.t(2), Limit::per_second(10.0));
    r.cancel_at(b.t(2));
    b.reserve(2, 2, Some(3));
}

#[test]
fn every() {
    let cases = [
        (Duration::from_nanos(1), 1e9),
        (Duration::from_micros(1), 1e6),
        (Duration::from_millis(1), 1e3),
        (Duration::from_millis(10), 100.0),
        (Duration::from_millis(100), 10.0),
        (Duration::from_secs(1), 1.0),
        (Duration::from_secs(2), 0.5),
        (Duration::from_millis(2500), 0.4),
        (Duration::from_secs(4), 0.25),
        (Duration::from_secs(10), 0.1),
    ];
    for (interval, expected) in cases {
        let got = Limit::every(interval).as_f64();
        assert!(
            ((got - expected) / expected).abs() < 1e-9,
            "{interval:?}: {got}"
        );
    }
}

#[tokio::test]
async fn wait_cancel_returns_tokens() {
    let b = Bucket::new(10.0, 3);
    b.limiter.wait_n(2).await.unwrap();
    let mut waiting = Box::pin(b.limiter.wait_n(3));
    assert!(futures_util::FutureExt::now_or_never(&mut waiting).is_none());
    b.clock.step(D);
    drop(waiting);
    assert_eq!(b.limiter.tokens_at(b.clock.now()), 2.0);
    b.limiter.wait_n(2).await.unwrap();
}

#[tokio::test]
async fn wait_inf() {
    let limiter = Limiter::with_clock(Limit::INF, 0, FakeClock::new().shared());
    limiter.wait_n(3).await.unwrap();
}

// client-go util/flowcontrol backoff_test.go

#[test]
fn slow_backoff() {
    let clock = FakeClock::new();
    let b = PerKeyBackoff::<String>::with_clock(
        Duration::from_secs(1),
        Duration::from_secs(50),
        clock.shared(),
    );
    for expected in [0, 1, 2, 4, 8, 16, 32, 50, 50, 50] {
        clock.step(Duration::from_secs(1));
        assert_eq!(b.get("id"), Duration::from_secs(expected));
        b.next("id", clock.now());
    }
    b.reset("id");
    assert_eq!(b.get("id"), Duration::ZERO);
}

#[test]
fn backoff_reset_and_high_water_mark() {
    let clock = FakeClock::new();
    let b = PerKeyBackoff::<String>::with_clock(
        Duration::from_secs(1),
        Duration::from_secs(5),
        clock.shared(),
    );
    for _ in 0..6 {
        clock.step(Duration::from_secs(1));
        b.next("id", clock.now());
    }
    assert!(b.is_in_backoff_since("id", clock.now()));
    let last_update = clock.now();
    clock.step(Duration::from_secs(6));
    b.next("id", clock.now());
    assert_eq!(b.get("id"), Duration::from_secs(5));
    clock.step(Duration::from_secs(11));
    assert!(!b.is_in_backoff_since("id", last_update));
}

#[test]
fn backoff_gc() {
    let clock = FakeClock::new();
    let b = PerKeyBackoff::<String>::with_clock(
        Duration::from_secs(1),
        Duration::from_secs(5),
        clock.shared(),
    );
    for _ in 0..6 {
        clock.step(Duration::from_secs(1));
        b.next("id", clock.now());
    }
    clock.step(Duration::from_secs(6));
    b.gc();
    assert_eq!(b.len(), 1);
    clock.step(Duration::from_secs(6));
    b.gc();
    assert_eq!(b.len(), 0);
}

#[test]
fn is_in_backoff_since_update_walk() {
    let clock = FakeClock::new();
    let start = clock.now();
    let b = PerKeyBackoff::<String>::with_clock(
        Duration::from_secs(1),
        Duration::from_secs(10),
        clock.shared(),
    );
    let not_in_backoff = [0, 1, 3, 7, 15, 25, 35, 56, 57];
    // The ticks of client-go's table: every second up to 35, then 56 and 57.
    for tick in (0..=35u64).chain([56, 57]) {
        clock.set_time(start + Duration::from_secs(tick));
        let now = clock.now();
        let in_backoff = b.is_in_backoff_since_update("id", now);
        assert_eq!(in_backoff, !not_in_backoff.contains(&tick), "tick {tick}");
        if in_backoff {
            let expected = match tick {
                2 => 2,
                4..=6 => 4,
                8..=14 => 8,
                _ => 10,
            };
            assert_eq!(b.get("id"), Duration::from_secs(expected), "tick {tick}");
        } else {
            b.next("id", now);
        }
    }
}

// client-go util/flowcontrol throttle_test.go

#[test]
fn throttle_increments_and_delays() {
    let clock = FakeClock::new();
    let t = TokenBucketRateLimiter::with_clock(1.0, 1, clock.shared());
    assert!(t.try_accept());
    assert!(!t.try_accept());
    clock.step(Duration::from_secs(2));
    assert!(t.try_accept());

    let clock = FakeClock::new();
    let t = TokenBucketRateLimiter::with_clock(10.0, 5, clock.shared());
    let now = clock.now();
    let mut last = Duration::ZERO;
    for _ in 0..16 {
        last = t.limiter().reserve_n(now, 1).delay_from(now);
    }
    assert_eq!(last, Duration::from_millis(1100));
}

#[test]
fn rate_precision_bug() {
    let clock = FakeClock::new();
    let t = TokenBucketRateLimiter::with_clock(1e9f32 / 1_031_425_000f32, 1, clock.shared());
    for round in 0..60 {
        assert!(t.try_accept(), "round {round}");
        clock.step(Duration::from_secs(2));
    }
}

// apimachinery util/wait wait_test.go

#[test]
fn backoff_step_table() {
    let s = Duration::from_secs(1);
    let no_jitter: [(Backoff, [Duration; 3]); 5] = [
        (
            Backoff {
                duration: s,
                ..Backoff::default()
            },
            [s, s, s],
        ),
        (
            Backoff {
                duration: s,
                steps: 1,
                ..Backoff::default()
            },
            [s, s, s],
        ),
        (
            Backoff {
                duration: s,
                factor: 1.0,
                steps: 1,
                ..Backoff::default()
            },
            [s, s, s],
        ),
        (
            Backoff {
                duration: s,
                factor: 2.0,
                steps: 3,
                ..Backoff::default()
            },
            [s, 2 * s, 4 * s],
        ),
        (
            Backoff {
                duration: s,
                factor: 2.0,
                steps: 3,
                cap: 3 * s,
                ..Backoff::default()
            },
            [s, 2 * s, 3 * s],
        ),
    ];
    for (mut backoff, expected) in no_jitter {
        let got = [backoff.step(), backoff.step(), backoff.step()];
        assert_eq!(got, expected);
    }
    let mut jittered = Backoff {
        duration: s,
        factor: 2.0,
        steps: 6,
        jitter: 4.0,
        ..Backoff::default()
    };
    for w in [1u32, 2, 4, 8, 16, 32] {
        let d = jittered.step();
        assert!(d >= s * w && d < s * w * 5, "{d:?} for {w}");
    }
}

#[tokio::test]
async fn exponential_backoff_table() {
    let clock = FakeClock::new();
    // (steps, succeed on call k (0 = never), fail on first call) -> (calls, outcome)
    let cases: [(u32, usize, bool, usize, &str); 6] = [
        (0, 0, false, 0, "timeout"),
        (1, 0, false, 1, "timeout"),
        (1, 1, false, 1, "ok"),
        (5, 0, false, 5, "timeout"),
        (5, 3, false, 3, "ok"),
        (5, 0, true, 1, "error"),
    ];
    for (steps, succeed_on, fail, calls, outcome) in cases {
        let backoff = Backoff {
            duration: Duration::ZERO,
            factor: 1.0,
            steps,
            ..Backoff::default()
        };
        let mut n = 0;
        let result = wait::exponential_backoff(&clock, backoff, || {
            n += 1;
            std::future::ready(if fail {
                Err("boom")
            } else {
                Ok(n == succeed_on)
            })
        })
        .await;
        let got = match result {
            Ok(()) => "ok",
            Err(WaitError::Timeout) => "timeout",
            Err(WaitError::Condition(_)) => "error",
            Err(WaitError::Cancelled) => "cancelled",
        };
        assert_eq!((n, got), (calls, outcome), "steps {steps}");
    }
}

#[tokio::test]
async fn until_with_zero_period_runs_until_cancelled() {
    let clock = FakeClock::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let stopper = cancel.clone();
    wait::until(&clock, Duration::ZERO, &cancel, || {
        if counter.fetch_add(1, Ordering::SeqCst) == 10 {
            stopper.cancel();
        }
        std::future::ready(())
    })
    .await;
    assert_eq!(runs.load(Ordering::SeqCst), 11);
    // Cancelled beforehand: f never runs.
    wait::until(&clock, Duration::ZERO, &cancel, || {
        runs.fetch_add(100, Ordering::SeqCst);
        std::future::ready(())
    })
    .await;
    assert_eq!(runs.load(Ordering::SeqCst), 11);
}

#[tokio::test]
async fn poll_with_zero_timeout_never_times_out() {
    let clock = FakeClock::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let clock = clock.clone();
        let calls = Arc::clone(&calls);
        async move {
            wait::poll(&clock, Duration::from_secs(1), Duration::ZERO, || {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                std::future::ready(Ok::<_, Infallible>(n == 100))
            })
            .await
        }
    });
    for _ in 0..100 {
        clock.wait_for_waiters(1).await;
        clock.step(Duration::from_secs(1));
    }
    assert_eq!(task.await.unwrap(), Ok(()));
}

// client-go util/retry util_test.go

#[derive(Debug, PartialEq)]
struct Conflict;

impl IsConflict for Conflict {
    fn is_conflict(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn retry_stops_when_the_cap_uses_up_the_steps() {
    let clock = FakeClock::new();
    let attempts = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let clock = clock.clone();
        let attempts = Arc::clone(&attempts);
        async move {
            let backoff = Backoff {
                duration: Duration::from_millis(10),
                factor: 2.0,
                steps: 5,
                cap: Duration::from_millis(15),
                jitter: 0.0,
            };
            retry::retry_on_conflict(&clock, backoff, || {
                attempts.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Err::<(), _>(Conflict))
            })
            .await
        }
    });
    clock.wait_for_waiters(1).await;
    clock.step(Duration::from_millis(10));
    assert_eq!(task.await.unwrap(), Err(Conflict));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}
