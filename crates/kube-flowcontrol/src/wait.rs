//! Periodic loops, polling and exponential backoff: apimachinery's `util/wait`.
//!
//! * [`Backoff`] with [`Backoff::step`] and [`jitter`]: the arithmetic of `wait.Backoff`.
//! * [`until`], [`non_sliding_until`], [`jitter_until`], [`backoff_until`]: run a function
//!   periodically until a [`CancellationToken`] fires.
//! * [`exponential_backoff`]: retry a condition with growing sleeps.
//! * [`poll`], [`poll_immediate`], [`poll_until_cancelled`], [`poll_infinite`] (and their
//!   `immediate` forms): check a condition every interval.
//! * [`BackoffManager`] with [`ExponentialBackoffManager`] and [`JitteredBackoffManager`].
//!
//! Every function takes the [`Clock`] to sleep on, so tests drive them with a
//! [`FakeClock`](crate::clock::FakeClock). A condition returns `Ok(true)` when done, `Ok(false)`
//! to go on, or an error, which ends the wait and comes back unchanged as
//! [`WaitError::Condition`].
//!
//! ```
//! use std::time::Duration;
//! use kube_flowcontrol::clock::RealClock;
//! use kube_flowcontrol::wait::{self, WaitError};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut calls = 0;
//! let result: Result<(), WaitError<std::convert::Infallible>> =
//!     wait::poll_immediate(&RealClock, Duration::from_millis(1), Duration::from_secs(1), || {
//!         calls += 1;
//!         std::future::ready(Ok(calls == 3))
//!     })
//!     .await;
//! assert!(result.is_ok());
//! assert_eq!(calls, 3);
//! # }
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SharedClock, instant_after, next_tick};

/// How a wait ended without its condition being met.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WaitError<E> {
    /// The condition was not met in time (Go's `wait.ErrWaitTimeout`).
    #[error("timed out waiting for the condition")]
    Timeout,
    /// The cancellation token fired (where Go returns `ctx.Err()`).
    #[error("the wait was cancelled")]
    Cancelled,
    /// The condition failed; its error, unchanged.
    #[error(transparent)]
    Condition(E),
}

impl<E> WaitError<E> {
    /// Whether this is [`WaitError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, WaitError::Timeout)
    }

    /// The condition's error, if that is what ended the wait.
    pub fn into_condition(self) -> Option<E> {
        match self {
            WaitError::Condition(e) => Some(e),
            _ => None,
        }
    }
}

/// Parameters of an exponential backoff (Go's `wait.Backoff`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The next delay (before jitter).
    pub duration: Duration,
    /// Each step multiplies the delay by this factor (0 or 1 keeps it constant).
    pub factor: f64,
    /// Each returned delay gets up to `jitter x delay` added at random (0 for none).
    pub jitter: f64,
    /// How many more times the delay may grow; when 0, [`step`](Backoff::step) keeps returning
    /// the current delay.
    pub steps: u32,
    /// Upper bound of the delay (zero for none); reaching it sets `steps` to 0.
    pub cap: Duration,
}

impl Default for Backoff {
    /// Go's zero value: no delay, no growth, no jitter, no steps (so
    /// [`exponential_backoff`] does not check its condition at all).
    fn default() -> Self {
        Backoff {
            duration: Duration::ZERO,
            factor: 0.0,
            jitter: 0.0,
            steps: 0,
            cap: Duration::ZERO,
        }
    }
}

impl Backoff {
    /// Returns the delay to sleep now and advances the backoff, exactly like Go's
    /// `Backoff.Step`: the returned delay is the current one (jittered); the stored one is
    /// multiplied by the factor and capped, which uses up the remaining steps.
    pub fn step(&mut self) -> Duration {
        if self.steps < 1 {
            return if self.jitter > 0.0 {
                jitter(self.duration, self.jitter)
            } else {
                self.duration
            };
        }
        self.steps -= 1;
        let duration = self.duration;
        if self.factor != 0.0 {
            self.duration = scale(self.duration, self.factor);
            if !self.cap.is_zero() && self.duration > self.cap {
                self.duration = self.cap;
                self.steps = 0;
            }
        }
        if self.jitter > 0.0 {
            jitter(duration, self.jitter)
        } else {
            duration
        }
    }
}

/// `duration x factor`, saturating instead of overflowing (Go converts through `float64`).
fn scale(duration: Duration, factor: f64) -> Duration {
    let nanos = duration.as_nanos() as f64 * factor;
    if !nanos.is_finite() || nanos >= u64::MAX as f64 {
        Duration::from_nanos(u64::MAX)
    } else if nanos <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(nanos as u64)
    }
}

/// `duration` plus a random amount in `[0, max_factor x duration)`; a factor `<= 0` means 1
/// (Go's `wait.Jitter`).
pub fn jitter(duration: Duration, max_factor: f64) -> Duration {
    let max_factor = if max_factor <= 0.0 { 1.0 } else { max_factor };
    duration.saturating_add(scale(duration, fastrand::f64() * max_factor))
}

/// Hands out the delays of a periodic loop (Go's `wait.BackoffManager`).
pub trait BackoffManager: Send {
    /// The delay before the next run.
    fn backoff(&mut self) -> Duration;
}

/// Exponentially growing delays that start over after a quiet period (Go's
/// `NewExponentialBackoffManager`).
#[derive(Debug)]
pub struct ExponentialBackoffManager {
    backoff: Backoff,
    initial: Duration,
    last_backoff_start: Instant,
    reset_after: Duration,
    clock: SharedClock,
}

impl ExponentialBackoffManager {
    /// Delays from `initial` growing by `factor` up to `max`, with `jitter`; back to `initial`
    /// when no delay was asked for during `reset_after`.
    pub fn new(
        initial: Duration,
        max: Duration,
        reset_after: Duration,
        factor: f64,
        jitter: f64,
        clock: SharedClock,
    ) -> Self {
        ExponentialBackoffManager {
            backoff: Backoff {
                duration: initial,
                factor,
                jitter,
                steps: u32::MAX,
                cap: max,
            },
            initial,
            last_backoff_start: clock.now(),
            reset_after,
            clock,
        }
    }
}

impl BackoffManager for ExponentialBackoffManager {
    fn backoff(&mut self) -> Duration {
        let now = self.clock.now();
        if now.saturating_duration_since(self.last_backoff_start) > self.reset_after {
            self.backoff.steps = u32::MAX;
            self.backoff.duration = self.initial;
        }
        self.last_backoff_start = now;
        self.backoff.step()
    }
}

/// A constant period with jitter (Go's `NewJitteredBackoffManager`).
#[derive(Debug, Clone)]
pub struct JitteredBackoffManager {
    duration: Duration,
    jitter: f64,
}

impl JitteredBackoffManager {
    /// Delays of `duration` plus up to `jitter x duration` (no jitter when `jitter <= 0`).
    pub fn new(duration: Duration, jitter: f64) -> Self {
        JitteredBackoffManager { duration, jitter }
    }
}

impl BackoffManager for JitteredBackoffManager {
    fn backoff(&mut self) -> Duration {
        if self.jitter > 0.0 {
            jitter(self.duration, self.jitter)
        } else {
            self.duration
        }
    }
}

/// Runs `f` every `period` until `cancel` fires; the period starts after `f` returns (Go's
/// `wait.Until`).
pub async fn until<F, Fut>(clock: &dyn Clock, period: Duration, cancel: &CancellationToken, f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    jitter_until(clock, period, 0.0, true, cancel, f).await;
}

/// Runs `f` every `period` until `cancel` fires; the period includes `f`'s own run time (Go's
/// `wait.NonSlidingUntil`).
pub async fn non_sliding_until<F, Fut>(
    clock: &dyn Clock,
    period: Duration,
    cancel: &CancellationToken,
    f: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    jitter_until(clock, period, 0.0, false, cancel, f).await;
}

/// Runs `f` every `period` plus up to `jitter_factor x period` of jitter until `cancel` fires.
/// With `sliding` the period starts after `f` returns, otherwise before `f` runs (Go's
/// `wait.JitterUntil`).
pub async fn jitter_until<F, Fut>(
    clock: &dyn Clock,
    period: Duration,
    jitter_factor: f64,
    sliding: bool,
    cancel: &CancellationToken,
    f: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut manager = JitteredBackoffManager::new(period, jitter_factor);
    backoff_until(clock, &mut manager, sliding, cancel, f).await;
}

/// Runs `f` with the delays of `manager` between runs until `cancel` fires (Go's
/// `wait.BackoffUntil`). `f` always runs at least once unless `cancel` has already fired; a run
/// that has started is not interrupted.
pub async fn backoff_until<F, Fut>(
    clock: &dyn Clock,
    manager: &mut dyn BackoffManager,
    sliding: bool,
    cancel: &CancellationToken,
    mut f: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let mut deadline = None;
        if !sliding {
            deadline = Some(instant_after(clock.now(), manager.backoff()));
        }
        f().await;
        let deadline = match deadline {
            Some(deadline) => deadline,
            None => instant_after(clock.now(), manager.backoff()),
        };
        if deadline <= clock.now() {
            // A zero period must not starve the runtime (a due sleep completes without yielding).
            tokio::task::yield_now().await;
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = clock.sleep_until(deadline) => {}
        }
    }
}

/// Checks `condition` up to `backoff.steps` times, sleeping [`Backoff::step`] between checks
/// (Go's `wait.ExponentialBackoff`). Returns [`WaitError::Timeout`] when the steps run out.
pub async fn exponential_backoff<E, F, Fut>(
    clock: &dyn Clock,
    backoff: Backoff,
    condition: F,
) -> Result<(), WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    exponential_backoff_inner(clock, backoff, None, condition).await
}

/// [`exponential_backoff`] that stops with [`WaitError::Cancelled`] when `cancel` fires (Go's
/// `wait.ExponentialBackoffWithContext`).
pub async fn exponential_backoff_with_cancel<E, F, Fut>(
    clock: &dyn Clock,
    backoff: Backoff,
    cancel: &CancellationToken,
    condition: F,
) -> Result<(), WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    exponential_backoff_inner(clock, backoff, Some(cancel), condition).await
}

async fn exponential_backoff_inner<E, F, Fut>(
    clock: &dyn Clock,
    mut backoff: Backoff,
    cancel: Option<&CancellationToken>,
    mut condition: F,
) -> Result<(), WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    while backoff.steps > 0 {
        if cancel.is_some_and(CancellationToken::is_cancelled) {
            return Err(WaitError::Cancelled);
        }
        if condition().await.map_err(WaitError::Condition)? {
            return Ok(());
        }
        if backoff.steps == 1 {
            break;
        }
        let sleep = clock.sleep(backoff.step());
        match cancel {
            Some(cancel) => tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(WaitError::Cancelled),
                _ = sleep => {}
            },
            None => sleep.await,
        }
    }
    Err(WaitError::Timeout)
}

/// Checks `condition` every `interval` (first after one interval) until it is done or `timeout`
/// has passed; after the timeout it is checked one last time, as Go's `wait.Poll` does. A zero
/// `timeout` means none.
pub async fn poll<E, F, Fut>(
    clock: &dyn Clock,
    interval: Duration,
    timeout: Duration,
    condition: F,
) -> Result<(), WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    poll_core(clock, interval, non_zero(timeout), false, None, condition).await
}

/// [`poll`] that checks `condition` once before the first interval (Go's
/// `wait.PollImmediate`).
pub async fn poll_immediate<E, F, Fut>(
    clock: &dyn Clock,
    interval: Duration,
    timeout: Duration,
    condition: F,
) -> Result<(), WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    poll_core(clock, interval, non_zero(timeout), true, None, condition).await
}

/// Checks `condition` every `interval` until it is done or `cancel` fires, which ends the wait
/// with [`WaitError::Timeout`] as Go's `wait.PollUntil` does.
pub async fn poll_until_cancelled<E, F, Fut>(
    clock: &dyn Clock,
    interval: Duration,
    cancel: &CancellationToken,
    condition: F,
) -> Result<(), WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    poll_core(clock, interval, None, false, Some(cancel), condition).await
}

/// [`poll_until_cancelled`] that checks `condition` once right away (Go's
/// `wait.PollImmediateUntil`).
pub async fn poll_immediate_until_cancelled<E, F, Fut>(
    clock: &dyn Clock,
    interval: Duration,
    cancel: &CancellationToken,
    condition: F,
) -> Result<(), WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    poll_core(clock, interval, None, true, Some(cancel), condition).await
}

/// Checks `condition` every `interval` until it is done or fails; never times out (Go's
/// `wait.PollInfinite`).
pub async fn poll_infinite<E, F, Fut>(
    clock: &dyn Clock,
    interval: Duration,
    condition: F,
) -> Result<(), WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    poll_core(clock, interval, None, false, None, condition).await
}

/// [`poll_infinite`] that checks `condition` once right away (Go's
/// `wait.PollImmediateInfinite`).
pub async fn poll_immediate_infinite<E, F, Fut>(
    clock: &dyn Clock,
    interval: Duration,
    condition: F,
) -> Result<(), WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    poll_core(clock, interval, None, true, None, condition).await
}

/// Go's poller: a zero timeout means no timeout.
fn non_zero(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero()).then_some(timeout)
}

async fn poll_core<E, F, Fut>(
    clock: &dyn Clock,
    interval: Duration,
    timeout: Option<Duration>,
    immediate: bool,
    cancel: Option<&CancellationToken>,
    mut condition: F,
) -> Result<(), WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    if immediate && condition().await.map_err(WaitError::Condition)? {
        return Ok(());
    }
    let never = CancellationToken::new();
    let cancel = cancel.unwrap_or(&never);
    if cancel.is_cancelled() {
        return Err(WaitError::Timeout);
    }
    let start = clock.now();
    let deadline = timeout.map(|timeout| instant_after(start, timeout));
    let interval = interval.max(Duration::from_nanos(1));
    let mut next = instant_after(start, interval);
    loop {
        let timed_out = async {
            match deadline {
                Some(deadline) => clock.sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(WaitError::Timeout),
            _ = timed_out => {
                // Go closes the tick channel at the timeout and checks the condition once more.
                return if condition().await.map_err(WaitError::Condition)? {
                    Ok(())
                } else {
                    Err(WaitError::Timeout)
                };
            }
            _ = clock.sleep_until(next) => {}
        }
        if condition().await.map_err(WaitError::Condition)? {
            return Ok(());
        }
        next = next_tick(next, clock.now(), interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn step_grows_caps_and_stops() {
        let mut b = Backoff {
            duration: MS,
            factor: 2.0,
            jitter: 0.0,
            steps: 10,
            cap: 5 * MS,
        };
        let delays: Vec<_> = (0..6).map(|_| b.step()).collect();
        assert_eq!(delays, [MS, 2 * MS, 4 * MS, 5 * MS, 5 * MS, 5 * MS]);
        // Reaching the cap used up the steps.
        assert_eq!(b.steps, 0);
    }

    #[test]
    fn step_without_steps_returns_duration() {
        let mut b = Backoff {
            duration: 3 * MS,
            factor: 10.0,
            jitter: 0.0,
            steps: 0,
            cap: Duration::ZERO,
        };
        assert_eq!(b.step(), 3 * MS);
        assert_eq!(b.step(), 3 * MS);
        let mut b = Backoff { steps: 2, ..b };
        assert_eq!(b.step(), 3 * MS);
        assert_eq!(b.step(), 30 * MS);
        assert_eq!(b.step(), 300 * MS);
        assert_eq!(b.step(), 300 * MS);
    }

    #[test]
    fn jitter_is_applied_after_growth() {
        let mut b = Backoff {
            duration: 100 * MS,
            factor: 2.0,
            jitter: 0.5,
            steps: 3,
            cap: Duration::ZERO,
        };
        for base in [100, 200, 400] {
            let d = b.step();
            assert!(d >= base * MS && d < base * MS * 3 / 2, "{d:?} for {base}");
        }
        let d = jitter(10 * MS, 0.0);
        assert!((10 * MS..20 * MS).contains(&d));
    }

    #[test]
    fn huge_factor_saturates() {
        let mut b = Backoff {
            duration: Duration::from_secs(1 << 40),
            factor: 1e30,
            jitter: 0.0,
            steps: 3,
            cap: Duration::ZERO,
        };
        b.step();
        assert_eq!(b.step(), Duration::from_nanos(u64::MAX));
    }

    #[tokio::test]
    async fn exponential_backoff_runs_steps_times() {
        let clock = FakeClock::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let clock = clock.clone();
            let calls = Arc::clone(&calls);
            async move {
                let backoff = Backoff {
                    duration: MS,
                    factor: 2.0,
                    jitter: 0.0,
                    steps: 4,
                    cap: Duration::ZERO,
                };
                exponential_backoff(&clock, backoff, || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(Ok::<_, Infallible>(false))
                })
                .await
            }
        });
        let start = clock.now();
        for expected in [MS, 3 * MS, 7 * MS] {
            clock.wait_for_waiters(1).await;
            assert_eq!(clock.next_deadline(), Some(start + expected));
            clock.step_to_next_deadline();
        }
        assert_eq!(task.await.unwrap(), Err(WaitError::Timeout));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn exponential_backoff_returns_condition_error_as_is() {
        let clock = FakeClock::new();
        let backoff = Backoff {
            steps: 1,
            ..Backoff::default()
        };
        let result = exponential_backoff(&clock, backoff, || {
            std::future::ready(Err::<bool, _>("boom"))
        })
        .await;
        assert_eq!(result, Err(WaitError::Condition("boom")));
        assert_eq!(
            WaitError::<Infallible>::Timeout.to_string(),
            "timed out waiting for the condition"
        );
    }

    #[tokio::test]
    async fn exponential_backoff_with_cancel_stops() {
        let clock = FakeClock::new();
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let clock = clock.clone();
            let cancel = cancel.clone();
            async move {
                let backoff = Backoff {
                    steps: 10,
                    duration: MS,
                    ..Backoff::default()
                };
                exponential_backoff_with_cancel(&clock, backoff, &cancel, || {
                    std::future::ready(Ok::<_, Infallible>(false))
                })
                .await
            }
        });
        clock.wait_for_waiters(1).await;
        cancel.cancel();
        assert_eq!(task.await.unwrap(), Err(WaitError::Cancelled));
    }

    #[tokio::test]
    async fn poll_checks_every_interval_then_once_at_timeout() {
        let clock = FakeClock::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let clock = clock.clone();
            let calls = Arc::clone(&calls);
            async move {
                poll(&clock, 10 * MS, 35 * MS, || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(Ok::<_, Infallible>(false))
                })
                .await
            }
        });
        for _ in 0..4 {
            clock.wait_for_waiters(2).await; // the tick and the timeout
            clock.step_to_next_deadline();
        }
        assert_eq!(task.await.unwrap(), Err(WaitError::Timeout));
        // Checks at 10, 20, 30 and the last one at the 35ms timeout.
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn poll_immediate_succeeds_without_sleeping() {
        let clock = FakeClock::new();
        let result = poll_immediate(&clock, MS, MS, || {
            std::future::ready(Ok::<_, Infallible>(true))
        })
        .await;
        assert_eq!(result, Ok(()));
        assert!(!clock.has_waiters());
    }

    #[tokio::test]
    async fn poll_until_cancelled_reports_timeout() {
        let clock = FakeClock::new();
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let clock = clock.clone();
            let cancel = cancel.clone();
            async move {
                poll_until_cancelled(&clock, MS, &cancel, || {
                    std::future::ready(Ok::<_, Infallible>(false))
                })
                .await
            }
        });
        clock.wait_for_waiters(1).await;
        clock.step(MS);
        clock.wait_for_waiters(1).await;
        cancel.cancel();
        assert_eq!(task.await.unwrap(), Err(WaitError::Timeout));
    }

    #[tokio::test]
    async fn poll_infinite_until_done() {
        let clock = FakeClock::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let clock = clock.clone();
            let calls = Arc::clone(&calls);
            async move {
                poll_infinite(&clock, Duration::from_secs(3600), || {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    std::future::ready(Ok::<_, Infallible>(n == 5))
                })
                .await
            }
        });
        for _ in 0..5 {
            clock.wait_for_waiters(1).await;
            clock.step(Duration::from_secs(3600));
        }
        assert_eq!(task.await.unwrap(), Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn until_runs_each_period_until_cancelled() {
        let clock = FakeClock::new();
        let cancel = CancellationToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let clock = clock.clone();
            let cancel = cancel.clone();
            let calls = Arc::clone(&calls);
            async move {
                until(&clock, 10 * MS, &cancel, || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(())
                })
                .await
            }
        });
        for expected in 1..=3 {
            clock.wait_for_waiters(1).await;
            assert_eq!(calls.load(Ordering::SeqCst), expected);
            clock.step(10 * MS);
        }
        clock.wait_for_waiters(1).await;
        cancel.cancel();
        task.await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    /// The first deadline after one run of `f` that takes 4ms of clock time, with a 10ms period.
    async fn first_deadline_after_a_4ms_run(sliding: bool) -> Duration {
        let clock = FakeClock::new();
        let cancel = CancellationToken::new();
        let start = clock.now();
        let task = tokio::spawn({
            let clock = clock.clone();
            let cancel = cancel.clone();
            async move {
                let inner = clock.clone();
                jitter_until(&clock, 10 * MS, 0.0, sliding, &cancel, move || {
                    inner.step(4 * MS);
                    std::future::ready(())
                })
                .await
            }
        });
        clock.wait_for_waiters(1).await;
        let deadline = clock.next_deadline().unwrap() - start;
        cancel.cancel();
        task.await.unwrap();
        deadline
    }

    #[tokio::test]
    async fn non_sliding_period_includes_run_time() {
        assert_eq!(first_deadline_after_a_4ms_run(false).await, 10 * MS);
    }

    #[tokio::test]
    async fn sliding_period_starts_after_run() {
        assert_eq!(first_deadline_after_a_4ms_run(true).await, 14 * MS);
    }

    #[test]
    fn exponential_manager_resets_after_quiet_period() {
        let clock = FakeClock::new();
        let mut manager =
            ExponentialBackoffManager::new(MS, 8 * MS, 100 * MS, 2.0, 0.0, clock.shared());
        let delays: Vec<_> = (0..5).map(|_| manager.backoff()).collect();
        assert_eq!(delays, [MS, 2 * MS, 4 * MS, 8 * MS, 8 * MS]);
        clock.step(100 * MS);
        assert_eq!(manager.backoff(), 8 * MS); // exactly the quiet period: no reset yet
        clock.step(101 * MS);
        assert_eq!(manager.backoff(), MS);
    }

    #[test]
    fn jittered_manager() {
        let mut manager = JitteredBackoffManager::new(10 * MS, 0.0);
        assert_eq!(manager.backoff(), 10 * MS);
        let mut manager = JitteredBackoffManager::new(10 * MS, 0.5);
        let d = manager.backoff();
        assert!((10 * MS..15 * MS).contains(&d));
    }
}
