//! Injectable clocks: [`RealClock`] on tokio time and [`FakeClock`] for tests.
//!
//! Everything time-dependent in this workspace takes a [`Clock`] (usually as a [`SharedClock`]),
//! so tests step a [`FakeClock`] instead of sleeping. The trait covers what client-go's
//! `k8s.io/utils/clock` offers: the monotonic time ([`Clock::now`]), the wall time
//! ([`Clock::wall_now`]), async sleeps ([`Clock::sleep`], [`Clock::sleep_until`]), a blocking sleep
//! for non-async callers ([`Clock::block_sleep`]) and, built on top of them, a [`Ticker`].
//!
//! Go's `Timer` with `Reset` and `Stop` maps to a [`Sleep`] future: to reset, make a new one; to
//! stop, drop it.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

/// A source of time that can also put tasks to sleep.
///
/// Implemented by [`RealClock`] (tokio's timer) and [`FakeClock`] (manually stepped). Sleeps are
/// returned as [`Sleep`] futures that own everything they need, so they are `'static` and can be
/// stored or moved into spawned tasks.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current monotonic instant.
    fn now(&self) -> Instant;

    /// The current wall-clock time (what goes into timestamps written to the API server).
    fn wall_now(&self) -> SystemTime;

    /// A future that completes once [`now`](Clock::now) reaches `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Sleep;

    /// Blocks the current thread for `duration` of this clock's time.
    ///
    /// For non-async callers only: never call it on an async task.
    fn block_sleep(&self, duration: Duration);

    /// A future that completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(instant_after(self.now(), duration))
    }

    /// The time elapsed since `earlier`, zero if `earlier` is in the future.
    fn since(&self, earlier: Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }
}

/// A clock shared between components, the form most APIs in this workspace take.
pub type SharedClock = Arc<dyn Clock>;

/// `start + duration`, saturating at about a century after `start` instead of overflowing.
pub fn instant_after(start: Instant, duration: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    start
        .checked_add(duration.min(FAR_FUTURE))
        .or_else(|| start.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(start)
}

/// The signed difference `a - b` in nanoseconds (saturating at the bounds of `i64`).
pub fn signed_nanos_between(a: Instant, b: Instant) -> i64 {
    match a.checked_duration_since(b) {
        Some(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        None => -i64::try_from(b.duration_since(a).as_nanos()).unwrap_or(i64::MAX),
    }
}

/// The clock of the real world, sleeping on tokio's timer.
///
/// [`Clock::sleep`] and [`Clock::sleep_until`] must be polled inside a tokio runtime with the
/// time driver enabled, exactly like [`tokio::time::sleep`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RealClock;

impl RealClock {
    /// A [`SharedClock`] backed by the real clock.
    pub fn shared() -> SharedClock {
        Arc::new(RealClock)
    }
}

impl Clock for RealClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall_now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            inner: SleepInner::Tokio(Box::pin(tokio::time::sleep_until(deadline.into()))),
        }
    }

    fn block_sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A future returned by [`Clock::sleep`]: completes at its deadline.
///
/// Dropping it cancels the sleep (and, for a [`FakeClock`], unregisters the waiter).
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    inner: SleepInner,
}

enum SleepInner {
    Tokio(Pin<Box<tokio::time::Sleep>>),
    Fake(FakeSleep),
    Custom(Pin<Box<dyn Future<Output = ()> + Send>>),
}

impl Sleep {
    /// Wraps the sleep future of a custom [`Clock`] implementation.
    pub fn from_future<F>(deadline: Instant, future: F) -> Sleep
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Sleep {
            deadline,
            inner: SleepInner::Custom(Box::pin(future)),
        }
    }

    /// The instant at which this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Every variant is Unpin (boxed or plain data), so Sleep is Unpin too.
        match &mut self.get_mut().inner {
            SleepInner::Tokio(sleep) => sleep.as_mut().poll(cx),
            SleepInner::Fake(sleep) => sleep.poll_sleep(cx),
            SleepInner::Custom(future) => future.as_mut().poll(cx),
        }
    }
}

/// A periodic timer on any [`Clock`], like Go's `time.Ticker`.
///
/// The first tick is one period after creation. When the consumer falls behind, missed ticks are
/// dropped (as Go does) rather than delivered in a burst: the next tick is the next multiple of
/// the period that is still in the future.
#[derive(Debug)]
pub struct Ticker {
    clock: SharedClock,
    period: Duration,
    next: Instant,
    sleep: Option<Sleep>,
}

impl Ticker {
    /// A ticker firing every `period` (a zero period is treated as one nanosecond).
    pub fn new(clock: SharedClock, period: Duration) -> Ticker {
        let period = period.max(Duration::from_nanos(1));
        let next = instant_after(clock.now(), period);
        Ticker {
            clock,
            period,
            next,
            sleep: None,
        }
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Waits for the next tick and returns its scheduled instant.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick; returns its scheduled instant when it is due.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        let clock = &self.clock;
        let next = self.next;
        let sleep = self.sleep.get_or_insert_with(|| clock.sleep_until(next));
        if Pin::new(sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.sleep = None;
        let fired = self.next;
        self.next = next_tick(fired, self.clock.now(), self.period);
        Poll::Ready(fired)
    }
}

/// The tick after one scheduled at `fired`, seen at `now`: the first multiple of `period` after
/// `fired` that is later than `now` (missed ticks are skipped, as Go's ticker does).
pub(crate) fn next_tick(fired: Instant, now: Instant, period: Duration) -> Instant {
    let period_nanos = period.as_nanos().max(1);
    let behind = now.saturating_duration_since(fired).as_nanos();
    let periods = behind / period_nanos + 1;
    let advance = u64::try_from(periods.saturating_mul(period_nanos)).unwrap_or(u64::MAX);
    instant_after(fired, Duration::from_nanos(advance))
}

impl futures_core::Stream for Ticker {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}

/// A manually driven clock for tests.
///
/// Time stands still until [`step`](FakeClock::step) or [`set_time`](FakeClock::set_time) moves
/// it; moving it completes every [`Sleep`] whose deadline has passed. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use kube_flowcontrol::clock::{Clock, FakeClock};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let clock = FakeClock::new();
/// let sleeper = tokio::spawn({
///     let clock = clock.clone();
///     async move { clock.sleep(Duration::from_secs(3600)).await }
/// });
/// clock.wait_for_waiters(1).await; // the task is now asleep
/// clock.step(Duration::from_secs(3600)); // an hour passes in no time
/// sleeper.await.unwrap();
/// assert!(!clock.has_waiters());
/// # }
/// ```
#[derive(Clone)]
pub struct FakeClock {
    shared: Arc<FakeShared>,
}

struct FakeShared {
    base: Instant,
    wall_base: SystemTime,
    state: Mutex<FakeState>,
    waiters_changed: tokio::sync::Notify,
}

#[derive(Default)]
struct FakeState {
    offset: Duration,
    next_id: u64,
    waiters: BTreeMap<(Instant, u64), Waker>,
}

impl FakeState {
    fn now(&self, base: Instant) -> Instant {
        instant_after(base, self.offset)
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock::new()
    }
}

impl fmt::Debug for FakeClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("FakeClock")
            .field("elapsed", &state.offset)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

impl FakeClock {
    /// A fake clock standing at the current instant, with the current wall time.
    pub fn new() -> FakeClock {
        FakeClock::with_wall_time(SystemTime::now())
    }

    /// A fake clock whose wall time starts at `wall`.
    pub fn with_wall_time(wall: SystemTime) -> FakeClock {
        FakeClock {
            shared: Arc::new(FakeShared {
                base: Instant::now(),
                wall_base: wall,
                state: Mutex::new(FakeState::default()),
                waiters_changed: tokio::sync::Notify::new(),
            }),
        }
    }

    /// This clock as a [`SharedClock`].
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }

    /// Moves time forward by `duration`, waking every sleeper whose deadline has passed.
    pub fn step(&self, duration: Duration) {
        let mut state = self.shared.state.lock();
        state.offset = state.offset.saturating_add(duration);
        self.fire_due(state);
    }

    /// Sets the time to `instant` (which may be earlier than now, but not earlier than the
    /// clock's creation), waking every sleeper whose deadline has passed.
    pub fn set_time(&self, instant: Instant) {
        let mut state = self.shared.state.lock();
        state.offset = instant.saturating_duration_since(self.shared.base);
        self.fire_due(state);
    }

    /// Moves time to the earliest pending deadline (if any) and returns it.
    pub fn step_to_next_deadline(&self) -> Option<Instant> {
        let mut state = self.shared.state.lock();
        let (deadline, _) = *state.waiters.keys().next()?;
        let now = state.now(self.shared.base);
        if deadline > now {
            state.offset = deadline.saturating_duration_since(self.shared.base);
        }
        self.fire_due(state);
        Some(deadline)
    }

    fn fire_due(&self, mut state: parking_lot::MutexGuard<'_, FakeState>) {
        let now = state.now(self.shared.base);
        let due: Vec<Waker> = {
            let later = state.waiters.split_off(&(now, u64::MAX));
            let due = std::mem::replace(&mut state.waiters, later);
            due.into_values().collect()
        };
        drop(state);
        if !due.is_empty() {
            self.shared.waiters_changed.notify_waiters();
        }
        for waker in due {
            waker.wake();
        }
    }

    /// Whether any sleep is waiting for a deadline that has not passed yet.
    pub fn has_waiters(&self) -> bool {
        !self.shared.state.lock().waiters.is_empty()
    }

    /// How many sleeps are waiting.
    pub fn waiter_count(&self) -> usize {
        self.shared.state.lock().waiters.len()
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.shared
            .state
            .lock()
            .waiters
            .keys()
            .next()
            .map(|(deadline, _)| *deadline)
    }

    /// Waits until at least `count` sleeps are registered: lets a test know that the code under
    /// test has gone to sleep before it steps the clock.
    pub async fn wait_for_waiters(&self, count: usize) {
        loop {
            let notified = self.shared.waiters_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.waiter_count() >= count {
                return;
            }
            notified.await;
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.shared.state.lock().now(self.shared.base)
    }

    fn wall_now(&self) -> SystemTime {
        let offset = self.shared.state.lock().offset;
        self.shared
            .wall_base
            .checked_add(offset)
            .unwrap_or(self.shared.wall_base)
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            inner: SleepInner::Fake(FakeSleep {
                shared: Arc::clone(&self.shared),
                deadline,
                registration: None,
            }),
        }
    }

    fn block_sleep(&self, duration: Duration) {
        futures_executor::block_on(self.sleep(duration));
    }
}

struct FakeSleep {
    shared: Arc<FakeShared>,
    deadline: Instant,
    registration: Option<u64>,
}

impl FakeSleep {
    fn poll_sleep(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.state.lock();
        if state.now(self.shared.base) >= self.deadline {
            if let Some(id) = self.registration.take() {
                state.waiters.remove(&(self.deadline, id));
            }
            return Poll::Ready(());
        }
        // If time went back after our registration fired, there is no entry: register again.
        if let Some(id) = self.registration
            && let Some(waker) = state.waiters.get_mut(&(self.deadline, id))
        {
            waker.clone_from(cx.waker());
            return Poll::Pending;
        }
        let id = state.next_id;
        state.next_id += 1;
        state
            .waiters
            .insert((self.deadline, id), cx.waker().clone());
        self.registration = Some(id);
        drop(state);
        self.shared.waiters_changed.notify_waiters();
        Poll::Pending
    }
}

impl Drop for FakeSleep {
    fn drop(&mut self) {
        if let Some(id) = self.registration.take() {
            let removed = self
                .shared
                .state
                .lock()
                .waiters
                .remove(&(self.deadline, id));
            if removed.is_some() {
                self.shared.waiters_changed.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn fake_sleep_completes_only_after_its_deadline() {
        let clock = FakeClock::new();
        let mut sleep = clock.sleep(Duration::from_secs(10));
        assert!((&mut sleep).now_or_never().is_none());
        assert!(clock.has_waiters());
        clock.step(Duration::from_secs(9));
        assert!((&mut sleep).now_or_never().is_none());
        clock.step(Duration::from_secs(1));
        assert!(!clock.has_waiters());
        assert!(sleep.now_or_never().is_some());
    }

    #[test]
    fn dropping_a_sleep_unregisters_it() {
        let clock = FakeClock::new();
        let mut sleep = clock.sleep(Duration::from_secs(1));
        assert!((&mut sleep).now_or_never().is_none());
        assert_eq!(clock.waiter_count(), 1);
        drop(sleep);
        assert_eq!(clock.waiter_count(), 0);
    }

    #[test]
    fn zero_sleep_is_immediately_ready() {
        let clock = FakeClock::new();
        assert!(clock.sleep(Duration::ZERO).now_or_never().is_some());
        assert!(!clock.has_waiters());
    }

    #[test]
    fn wall_time_moves_with_steps() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = FakeClock::with_wall_time(start);
        clock.step(Duration::from_millis(1500));
        assert_eq!(clock.wall_now(), start + Duration::from_millis(1500));
        assert_eq!(clock.since(clock.now()), Duration::ZERO);
    }

    #[test]
    fn set_time_backwards_rearms_fired_sleeps() {
        let clock = FakeClock::new();
        let start = clock.now();
        let mut sleep = clock.sleep(Duration::from_secs(5));
        assert!((&mut sleep).now_or_never().is_none());
        clock.step(Duration::from_secs(5));
        clock.set_time(start);
        // The registration fired, but time went back before the sleep was polled.
        assert!((&mut sleep).now_or_never().is_none());
        assert_eq!(clock.waiter_count(), 1);
        assert_eq!(
            clock.step_to_next_deadline(),
            Some(start + Duration::from_secs(5))
        );
        assert!(sleep.now_or_never().is_some());
    }

    #[test]
    fn ticker_fires_each_period_and_skips_missed_ticks() {
        let clock = FakeClock::new();
        let start = clock.now();
        let mut ticker = Ticker::new(clock.shared(), Duration::from_secs(1));
        assert!(ticker.tick().now_or_never().is_none());
        clock.step(Duration::from_secs(1));
        assert_eq!(
            ticker.tick().now_or_never(),
            Some(start + Duration::from_secs(1))
        );
        // Fall 3.5 periods behind: one tick, then the next is at +5s.
        clock.step(Duration::from_millis(3500));
        assert_eq!(
            ticker.tick().now_or_never(),
            Some(start + Duration::from_secs(2))
        );
        assert!(ticker.tick().now_or_never().is_none());
        clock.step(Duration::from_millis(500));
        assert_eq!(
            ticker.tick().now_or_never(),
            Some(start + Duration::from_secs(5))
        );
    }

    #[test]
    fn block_sleep_on_fake_clock_returns_when_stepped() {
        let clock = FakeClock::new();
        let stepper = {
            let clock = clock.clone();
            std::thread::spawn(move || {
                while !clock.has_waiters() {
                    std::thread::yield_now();
                }
                clock.step(Duration::from_secs(60));
            })
        };
        clock.block_sleep(Duration::from_secs(60));
        stepper.join().unwrap();
    }

    #[tokio::test]
    async fn real_clock_sleeps() {
        let clock = RealClock;
        let before = clock.now();
        clock.sleep(Duration::from_millis(2)).await;
        assert!(clock.since(before) >= Duration::from_millis(2));
    }

    #[test]
    fn signed_difference() {
        let a = Instant::now();
        let b = a + Duration::from_nanos(1500);
        assert_eq!(signed_nanos_between(b, a), 1500);
        assert_eq!(signed_nanos_between(a, b), -1500);
    }
}
