//! Retrying fallible operations: client-go's `util/retry`.
//!
//! [`on_error`] retries an async operation while its error is retriable, sleeping the steps of a
//! [`Backoff`] in between, and returns the last error when the steps run out.
//! [`retry_on_conflict`] is the common case of retrying optimistic-concurrency conflicts (HTTP
//! 409), for any error type that says whether it is one through [`IsConflict`].
//!
//! Running out of retries is never silent: it is logged at `warn` level through `tracing` and
//! counted in [`exhausted_total`].
//!
//! ```
//! use kube_flowcontrol::clock::RealClock;
//! use kube_flowcontrol::retry::{self, IsConflict};
//!
//! #[derive(Debug)]
//! struct Conflict;
//! impl IsConflict for Conflict {
//!     fn is_conflict(&self) -> bool { true }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut attempts = 0;
//! let updated = retry::retry_on_conflict(&RealClock, retry::DEFAULT_RETRY, || {
//!     attempts += 1;
//!     std::future::ready(if attempts < 3 { Err(Conflict) } else { Ok("updated") })
//! })
//! .await;
//! assert_eq!(updated.unwrap(), "updated");
//! # }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::Clock;
use crate::wait::Backoff;

/// The recommended retry for conflicts where a client is likely to be fighting another client
/// over the same object: 5 tries 10ms apart, with jitter (client-go's `retry.DefaultRetry`).
pub const DEFAULT_RETRY: Backoff = Backoff {
    steps: 5,
    duration: Duration::from_millis(10),
    factor: 1.0,
    jitter: 0.1,
    cap: Duration::ZERO,
};

/// The recommended backoff for conflicts where a client may be contending with unrelated
/// clients: 4 tries, 10ms growing fivefold, with jitter (client-go's `retry.DefaultBackoff`).
pub const DEFAULT_BACKOFF: Backoff = Backoff {
    steps: 4,
    duration: Duration::from_millis(10),
    factor: 5.0,
    jitter: 0.1,
    cap: Duration::ZERO,
};

static EXHAUSTED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// How many times, process-wide, [`on_error`] gave up because its steps ran out.
pub fn exhausted_total() -> u64 {
    EXHAUSTED_TOTAL.load(Ordering::Relaxed)
}

/// Errors that can tell whether they are an optimistic-concurrency conflict (HTTP 409).
pub trait IsConflict {
    /// Whether this error is a conflict worth retrying with a fresh read.
    fn is_conflict(&self) -> bool;
}

/// Runs `operation` until it succeeds, fails with an error `is_retriable` rejects, or the
/// `backoff` steps run out; returns the success or the last error (client-go's
/// `retry.OnError`).
///
/// The operation runs at most `backoff.steps` times, with [`Backoff::step`] delays between
/// runs. Unlike Go, which returns success without running the operation when `steps` is 0, a
/// `steps` of 0 runs it once: a Rust caller needs the operation's value.
pub async fn on_error<T, E, R, F, Fut>(
    clock: &dyn Clock,
    backoff: Backoff,
    mut is_retriable: R,
    mut operation: F,
) -> Result<T, E>
where
    R: FnMut(&E) -> bool,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Debug,
{
    let mut backoff = backoff;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let error = match operation().await {
            Ok(value) => return Ok(value),
            Err(error) if !is_retriable(&error) => return Err(error),
            Err(error) => error,
        };
        if backoff.steps <= 1 {
            EXHAUSTED_TOTAL.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(attempts = attempt, error = ?error, "retries exhausted");
            return Err(error);
        }
        let delay = backoff.step();
        tracing::debug!(attempt, ?delay, error = ?error, "retriable error, backing off");
        clock.sleep(delay).await;
        if backoff.steps == 0 {
            // Reaching the cap used up the steps: like Go, give up after this last sleep.
            EXHAUSTED_TOTAL.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(attempts = attempt, error = ?error, "retries exhausted (backoff cap reached)");
            return Err(error);
        }
    }
}

/// Runs `operation` again while it fails with a conflict, following `backoff` (client-go's
/// `retry.RetryOnConflict`). Use [`DEFAULT_RETRY`] or [`DEFAULT_BACKOFF`].
pub async fn retry_on_conflict<T, E, F, Fut>(
    clock: &dyn Clock,
    backoff: Backoff,
    operation: F,
) -> Result<T, E>
where
    E: IsConflict + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    on_error(clock, backoff, |error: &E| error.is_conflict(), operation).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[derive(Debug, PartialEq)]
    enum ApiError {
        Conflict(usize),
        NotFound,
    }

    impl IsConflict for ApiError {
        fn is_conflict(&self) -> bool {
            matches!(self, ApiError::Conflict(_))
        }
    }

    fn failing(
        calls: &Arc<AtomicUsize>,
        ok_at: usize,
    ) -> impl FnMut() -> std::future::Ready<Result<usize, ApiError>> + use<> {
        let calls = Arc::clone(calls);
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            std::future::ready(if n >= ok_at {
                Ok(n)
            } else {
                Err(ApiError::Conflict(n))
            })
        }
    }

    #[tokio::test]
    async fn exhaustion_returns_last_error_and_is_counted() {
        let clock = FakeClock::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let before = exhausted_total();
        let task = tokio::spawn({
            let clock = clock.clone();
            let op = failing(&calls, usize::MAX);
            async move { retry_on_conflict(&clock, DEFAULT_RETRY, op).await }
        });
        for _ in 0..4 {
            clock.wait_for_waiters(1).await;
            clock.step(Duration::from_millis(11));
        }
        assert_eq!(task.await.unwrap(), Err(ApiError::Conflict(5)));
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        assert!(exhausted_total() > before);
    }

    #[tokio::test]
    async fn succeeds_after_conflicts() {
        let clock = FakeClock::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let clock = clock.clone();
            let op = failing(&calls, 3);
            async move { retry_on_conflict(&clock, DEFAULT_BACKOFF, op).await }
        });
        // DEFAULT_BACKOFF sleeps 10ms (+jitter), then 50ms (+jitter).
        clock.wait_for_waiters(1).await;
        clock.step(Duration::from_millis(11));
        clock.wait_for_waiters(1).await;
        clock.step(Duration::from_millis(55));
        assert_eq!(task.await.unwrap(), Ok(3));
    }

    #[tokio::test]
    async fn non_retriable_error_returns_at_once() {
        let clock = FakeClock::new();
        let mut calls = 0;
        let result: Result<(), ApiError> = on_error(
            &clock,
            DEFAULT_RETRY,
            |e: &ApiError| e.is_conflict(),
            || {
                calls += 1;
                std::future::ready(Err(ApiError::NotFound))
            },
        )
        .await;
        assert_eq!(result, Err(ApiError::NotFound));
        assert_eq!(calls, 1);
        assert!(!clock.has_waiters());
    }

    #[tokio::test]
    async fn zero_steps_runs_once() {
        let clock = FakeClock::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let backoff = Backoff {
            steps: 0,
            ..DEFAULT_RETRY
        };
        let result = retry_on_conflict(&clock, backoff, failing(&calls, usize::MAX)).await;
        assert_eq!(result, Err(ApiError::Conflict(1)));
    }

    #[test]
    fn defaults_match_client_go() {
        assert_eq!(DEFAULT_RETRY.steps, 5);
        assert_eq!(DEFAULT_RETRY.factor, 1.0);
        assert_eq!(DEFAULT_BACKOFF.steps, 4);
        assert_eq!(DEFAULT_BACKOFF.factor, 5.0);
        assert_eq!(DEFAULT_BACKOFF.duration, Duration::from_millis(10));
        assert_eq!(DEFAULT_BACKOFF.jitter, 0.1);
    }
}
