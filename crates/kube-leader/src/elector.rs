//! [`LeaderElector`]: acquire, renew, release (client-go's `leaderelection.LeaderElector`).

use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_flowcontrol::SharedClock;
use kube_flowcontrol::clock::instant_after;
use kube_flowcontrol::wait::jitter;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::config::{JITTER_FACTOR, LeaderElectorBuilder, NewLeaderFn, StartedFn, StoppedFn};
use crate::lock::{Lock, LockError};
use crate::metrics::LeaderMetrics;
use crate::record::LeaderElectionRecord;

#[cfg(test)]
mod tests;

/// A candidate in a leader election (client-go's `LeaderElector`).
///
/// Built with [`LeaderElector::builder`]; [`run`](LeaderElector::run) acquires the lock,
/// leads while it renews it, and returns when leadership is lost or the run is cancelled.
/// Cloning gives another handle on the same candidate (to ask [`is_leader`](Self::is_leader)
/// or [`check`](Self::check) from elsewhere).
///
/// # Rules (client-go's)
///
/// * Acquire: try at once, then every `retry_period x [1, 2.2)` (jitter factor 1.2). A lock
///   held by someone else is taken over only when this candidate has seen no change of the
///   record for the record's lease duration, measured on the local clock from when it *observed*
///   the last change, never from timestamps written by another machine. An empty holder (a
///   release) is taken at once.
/// * Renew: right after acquiring, then every `retry_period`; a failed attempt is retried every
///   `retry_period`. The leader renews first with the version it last wrote (the fast path) and
///   on failure reads the lock again (the slow path).
/// * Stop: the leading token is cancelled when no renewal succeeded within `renew_deadline`,
///   when the run is cancelled, or when the leader reads a record naming another holder.
/// * Release (with `release_on_cancel`): write an empty holder with a 1-second lease.
///
/// # Where this differs from client-go, and why
///
/// * **The renew deadline counts from the start of the last successful renewal**, not from the
///   start of the current renewal round. client-go starts a round `retry_period` after the
///   previous round *returned*; when a renewal was applied by the server but its reply came back
///   late, its leader could keep leading until `reply delay + retry_period + renew_deadline`
///   after the write others observed, which exceeds their `lease_duration` once the reply delay
///   passes `lease - renew - retry` (3 s with the defaults). Anchoring the deadline at the
///   attempt's start bounds leading to `renew_deadline < lease_duration` after any write others
///   can have observed, whatever the delays. The randomized safety test finds violations
///   without this.
/// * An acquisition whose request took longer than `renew_deadline` does not start leading (its
///   deadline has already passed); the next attempt renews it.
/// * A leader that reads a record naming another holder stops at once instead of retrying until
///   its deadline.
/// * The release reads the lock and writes the empty holder only if the record *read* still
///   names this candidate (client-go checks its cached observation, and could clobber a
///   successor's record after a failed renewal).
/// * The leading token is cancelled and `on_stopped_leading` called *before* the release, and
///   the release waits for the leading future to return (client-go releases first and relies on
///   the caller to have stopped its work).
/// * The lease duration is written rounded up to whole seconds (client-go truncates, which can
///   write a lease shorter than the renew deadline).
/// * Changes are detected on a raw form with microsecond timestamps (client-go's JSON keeps
///   whole seconds, so two renewals within one second look identical).
pub struct LeaderElector<L: Lock> {
    inner: Arc<Inner<L>>,
}

impl<L: Lock> Clone for LeaderElector<L> {
    fn clone(&self) -> Self {
        LeaderElector {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<L: Lock> fmt::Debug for LeaderElector<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderElector")
            .field("name", &self.inner.name)
            .field("identity", &self.inner.lock.identity())
            .field("leader", &self.leader())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Parts<L> {
    pub(crate) lock: L,
    pub(crate) name: String,
    pub(crate) lease_duration: Duration,
    pub(crate) lease_seconds: i32,
    pub(crate) renew_deadline: Duration,
    pub(crate) retry_period: Duration,
    pub(crate) release_on_cancel: bool,
    pub(crate) clock: SharedClock,
    pub(crate) metrics: Arc<dyn LeaderMetrics>,
    pub(crate) on_started_leading: StartedFn,
    pub(crate) on_stopped_leading: StoppedFn,
    pub(crate) on_new_leader: Option<NewLeaderFn>,
}

struct Inner<L: Lock> {
    lock: L,
    name: String,
    lease_duration: Duration,
    lease_seconds: i32,
    renew_deadline: Duration,
    retry_period: Duration,
    release_on_cancel: bool,
    clock: SharedClock,
    metrics: Arc<dyn LeaderMetrics>,
    on_started_leading: StartedFn,
    on_stopped_leading: StoppedFn,
    on_new_leader: Option<NewLeaderFn>,
    state: Mutex<State<L::Version>>,
}

struct State<V> {
    observed_record: LeaderElectionRecord,
    observed_raw: Option<String>,
    /// When this candidate last observed a change of the record (local clock).
    observed_time: Option<Instant>,
    /// The version of the last record read or written.
    version: Option<V>,
    reported_leader: String,
    running: bool,
}

impl<V> State<V> {
    fn is_leader(&self, identity: &str) -> bool {
        self.observed_record.holder_identity == identity
    }

    /// client-go's `isLeaseValid`: the observed record's lease has not run out, counted from
    /// when the change was observed.
    fn lease_valid(&self, now: Instant) -> bool {
        self.observed_time.is_some_and(|observed| {
            instant_after(observed, self.observed_record.lease_duration()) > now
        })
    }
}

/// [`LeaderElector::run`] was called while another run of the same elector is in progress.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("leader elector {name} is already running")]
pub struct AlreadyRunning {
    /// The elector's name.
    pub name: String,
}

/// [`LeaderElector::check`]: a leader that has not renewed for longer than its lease allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed election to renew leadership on lease {name}")]
pub struct RenewOverdue {
    /// The elector's name.
    pub name: String,
    /// How long ago the last renewal was observed.
    pub since_last_renewal: Duration,
}

/// The outcome of one try to acquire or renew.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The lock is ours (acquired or renewed).
    Success,
    /// Someone else holds an unexpired lease.
    HeldByOther,
    /// A lock request failed.
    Failed(LockError),
}

impl Attempt {
    pub(crate) fn succeeded(&self) -> bool {
        matches!(self, Attempt::Success)
    }
}

/// Why leading stopped.
#[derive(Debug)]
enum Stop {
    Cancelled,
    DeadlineExceeded,
    HeldByOther(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Cancelled => f.write_str("the run was cancelled"),
            Stop::DeadlineExceeded => f.write_str("no renewal succeeded within the renew deadline"),
            Stop::HeldByOther(holder) => write!(f, "the lock is held by {holder:?}"),
        }
    }
}

impl<L: Lock> LeaderElector<L> {
    /// A builder for a candidate using `lock`, with client-go's default timings (15 s lease,
    /// 10 s renew deadline, 2 s retry period).
    pub fn builder(lock: L) -> LeaderElectorBuilder<L> {
        LeaderElectorBuilder::new(lock)
    }

    pub(crate) fn from_parts(parts: Parts<L>) -> Self {
        let elector = LeaderElector {
            inner: Arc::new(Inner {
                lock: parts.lock,
                name: parts.name,
                lease_duration: parts.lease_duration,
                lease_seconds: parts.lease_seconds,
                renew_deadline: parts.renew_deadline,
                retry_period: parts.retry_period,
                release_on_cancel: parts.release_on_cancel,
                clock: parts.clock,
                metrics: parts.metrics,
                on_started_leading: parts.on_started_leading,
                on_stopped_leading: parts.on_stopped_leading,
                on_new_leader: parts.on_new_leader,
                state: Mutex::new(State {
                    observed_record: LeaderElectionRecord::default(),
                    observed_raw: None,
                    observed_time: None,
                    version: None,
                    reported_leader: String::new(),
                    running: false,
                }),
            }),
        };
        elector.inner.metrics.leader_off(&elector.inner.name);
        elector
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        self.inner.lock.identity()
    }

    /// The name used in metrics and logs.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The lock.
    pub fn lock(&self) -> &L {
        &self.inner.lock
    }

    /// Whether the last observed holder is this candidate (client-go's `IsLeader`).
    ///
    /// Informational: it says what the last read or write showed, not that the lease is still
    /// valid. Leader work should stop on the leading token instead.
    pub fn is_leader(&self) -> bool {
        self.inner.state.lock().is_leader(self.identity())
    }

    /// The last observed holder, empty if none was observed yet or the lock was released
    /// (client-go's `GetLeader`).
    pub fn leader(&self) -> String {
        self.inner
            .state
            .lock()
            .observed_record
            .holder_identity
            .clone()
    }

    /// The health check of [`HealthzAdaptor`](crate::HealthzAdaptor): an error when this
    /// candidate believes it leads but observed no renewal for longer than its lease duration
    /// plus `max_tolerable_expired_lease` (a stuck elector that should be restarted).
    pub fn check(&self, max_tolerable_expired_lease: Duration) -> Result<(), RenewOverdue> {
        let state = self.inner.state.lock();
        if !state.is_leader(self.identity()) {
            return Ok(());
        }
        let since = state
            .observed_time
            .map_or(Duration::MAX, |t| self.inner.clock.since(t));
        if since
            > self
                .inner
                .lease_duration
                .saturating_add(max_tolerable_expired_lease)
        {
            return Err(RenewOverdue {
                name: self.inner.name.clone(),
                since_last_renewal: since,
            });
        }
        Ok(())
    }

    /// Runs the election until leadership is lost or `cancel` is cancelled (client-go's `Run`).
    ///
    /// Acquires the lock, then calls `on_started_leading` with a child token of `cancel` and
    /// polls the returned future while renewing. When leadership ends it cancels that token,
    /// calls `on_stopped_leading`, waits for the leading future to return and, with
    /// `release_on_cancel`, releases the lock. `on_stopped_leading` is also called when the run
    /// ends without having led, or when the run future is dropped.
    ///
    /// Returns an error only if this elector is already running. It may run again afterwards,
    /// as a fresh candidate that keeps its observations.
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), AlreadyRunning> {
        let mut guard = RunGuard::start(self)?;
        let Some(acquired_at) = self.acquire(&cancel).await else {
            return Ok(());
        };
        let leading = cancel.child_token();
        guard.leading = Some(leading.clone());
        let mut work = pin!((self.inner.on_started_leading)(leading.clone()));
        let mut work_done = false;
        let mut renew = pin!(self.renew(&leading, acquired_at));
        let stop = loop {
            tokio::select! {
                biased;
                stop = &mut renew => break stop,
                () = &mut work, if !work_done => work_done = true,
            }
        };
        tracing::info!(lock = %self.inner.lock.describe(), identity = %self.identity(), reason = %stop, "stopped leading");
        guard.stop();
        if !work_done {
            work.await;
        }
        if self.inner.release_on_cancel {
            self.release().await;
        }
        Ok(())
    }

    /// Acquires the lock; returns the start of the successful attempt, or `None` if cancelled.
    async fn acquire(&self, cancel: &CancellationToken) -> Option<Instant> {
        let desc = self.inner.lock.describe();
        tracing::info!(lock = %desc, identity = %self.identity(), "attempting to acquire leader lease");
        loop {
            let start = self.inner.clock.now();
            let attempt = tokio::select! {
                biased;
                () = cancel.cancelled() => return None,
                attempt = self.try_acquire_or_renew() => attempt,
            };
            self.maybe_report_transition();
            if attempt.succeeded() {
                if self.inner.clock.now() < instant_after(start, self.inner.renew_deadline) {
                    self.inner.metrics.leader_on(&self.inner.name);
                    tracing::info!(lock = %desc, identity = %self.identity(), "successfully acquired lease");
                    return Some(start);
                }
                tracing::warn!(lock = %desc, "the acquiring request outlasted the renew deadline; not leading on it");
            } else {
                tracing::debug!(lock = %desc, ?attempt, "failed to acquire lease");
            }
            let wait = jitter(self.inner.retry_period, JITTER_FACTOR);
            tokio::select! {
                biased;
                () = cancel.cancelled() => return None,
                () = self.inner.clock.sleep(wait) => {}
            }
        }
    }

    /// Renews until a renewal misses its deadline, another holder is seen, or `leading` is
    /// cancelled.
    async fn renew(&self, leading: &CancellationToken, mut last_success: Instant) -> Stop {
        let clock = &self.inner.clock;
        let desc = self.inner.lock.describe();
        loop {
            // One round (client-go's PollUntilContextTimeout): try at once, then every retry
            // period, until a success or the deadline.
            loop {
                let deadline = instant_after(last_success, self.inner.renew_deadline);
                let start = clock.now();
                if start >= deadline {
                    return self.lost(Stop::DeadlineExceeded);
                }
                let attempt = tokio::select! {
                    biased;
                    () = leading.cancelled() => return self.lost(Stop::Cancelled),
                    () = clock.sleep_until(deadline) => return self.lost(Stop::DeadlineExceeded),
                    attempt = self.try_acquire_or_renew() => attempt,
                };
                self.maybe_report_transition();
                match attempt {
                    Attempt::Success => {
                        tracing::trace!(lock = %desc, "successfully renewed lease");
                        last_success = start;
                        break;
                    }
                    Attempt::HeldByOther => {
                        return self.lost(Stop::HeldByOther(self.leader()));
                    }
                    Attempt::Failed(error) => {
                        tracing::debug!(lock = %desc, %error, "failed to renew lease, retrying");
                    }
                }
                tokio::select! {
                    biased;
                    () = leading.cancelled() => return self.lost(Stop::Cancelled),
                    () = clock.sleep_until(deadline) => return self.lost(Stop::DeadlineExceeded),
                    () = clock.sleep(self.inner.retry_period) => {}
                }
            }
            tokio::select! {
                biased;
                () = leading.cancelled() => return self.lost(Stop::Cancelled),
                () = clock.sleep(self.inner.retry_period) => {}
            }
        }
    }

    fn lost(&self, stop: Stop) -> Stop {
        if !matches!(stop, Stop::Cancelled) {
            tracing::warn!(lock = %self.inner.lock.describe(), identity = %self.identity(), reason = %stop, "failed to renew lease");
        }
        stop
    }

    /// One try (client-go's `tryAcquireOrRenew`).
    pub(crate) async fn try_acquire_or_renew(&self) -> Attempt {
        let inner = &*self.inner;
        let identity = self.identity();
        let now = inner.clock.now();
        let wall = inner.clock.wall_now();
        let mut record = LeaderElectionRecord {
            holder_identity: identity.to_string(),
            lease_duration_seconds: inner.lease_seconds,
            renew_time: Some(wall),
            acquire_time: Some(wall),
            ..LeaderElectionRecord::default()
        };

        // 1. The leader's fast path: update from the version it last saw.
        let fast = {
            let state = inner.state.lock();
            if state.is_leader(identity) && state.lease_valid(now) {
                state.version.clone().map(|version| {
                    (
                        version,
                        state.observed_record.acquire_time,
                        state.observed_record.leader_transitions,
                    )
                })
            } else {
                None
            }
        };
        if let Some((version, acquire_time, transitions)) = fast {
            record.acquire_time = acquire_time;
            record.leader_transitions = transitions;
            match inner.lock.update(&version, &record).await {
                Ok(version) => {
                    self.set_observed(record, version);
                    return Attempt::Success;
                }
                Err(error) => {
                    tracing::debug!(lock = %inner.lock.describe(), %error, "failed to update lease optimistically, falling back to slow path");
                }
            }
            record.acquire_time = Some(wall);
            record.leader_transitions = 0;
        }

        // 2. Read the record, or create it.
        let observed = match inner.lock.get().await {
            Ok(Some(observed)) => observed,
            Ok(None) => {
                return match inner.lock.create(&record).await {
                    Ok(version) => {
                        self.set_observed(record, version);
                        Attempt::Success
                    }
                    Err(error) => {
                        tracing::error!(lock = %inner.lock.describe(), %error, "error initially creating lease lock");
                        Attempt::Failed(error)
                    }
                };
            }
            Err(error) => {
                tracing::error!(lock = %inner.lock.describe(), %error, "error retrieving lease lock");
                return Attempt::Failed(error);
            }
        };

        // 3. Note a change, and check holder and expiry.
        {
            let mut state = inner.state.lock();
            if state.observed_raw.as_deref() != Some(observed.raw.as_str()) {
                state.observed_record = observed.record.clone();
                state.observed_raw = Some(observed.raw.clone());
                state.observed_time = Some(inner.clock.now());
            }
            state.version = Some(observed.version.clone());
            if !observed.record.holder_identity.is_empty()
                && state.lease_valid(now)
                && !state.is_leader(identity)
            {
                tracing::trace!(lock = %inner.lock.describe(), holder = %observed.record.holder_identity, "lease is held and has not yet expired");
                return Attempt::HeldByOther;
            }
            // 4. Fill in what an update keeps.
            if state.is_leader(identity) {
                record.acquire_time = observed.record.acquire_time;
                record.leader_transitions = observed.record.leader_transitions;
                inner.metrics.slowpath_exercised(&inner.name);
            } else {
                record.leader_transitions = observed.record.leader_transitions.saturating_add(1);
            }
        }

        match inner.lock.update(&observed.version, &record).await {
            Ok(version) => {
                self.set_observed(record, version);
                Attempt::Success
            }
            Err(error) => {
                tracing::error!(lock = %inner.lock.describe(), %error, "failed to update lease");
                Attempt::Failed(error)
            }
        }
    }

    fn set_observed(&self, record: LeaderElectionRecord, version: L::Version) {
        let now = self.inner.clock.now();
        let mut state = self.inner.state.lock();
        state.observed_record = record;
        state.observed_time = Some(now);
        state.version = Some(version);
    }

    /// Calls `on_new_leader` if the observed holder changed since the last report.
    pub(crate) fn maybe_report_transition(&self) {
        let changed = {
            let mut state = self.inner.state.lock();
            if state.observed_record.holder_identity == state.reported_leader {
                None
            } else {
                state.reported_leader = state.observed_record.holder_identity.clone();
                Some(state.reported_leader.clone())
            }
        };
        if let Some(leader) = changed {
            self.inner.metrics.leader_changed(&self.inner.name);
            if let Some(on_new_leader) = &self.inner.on_new_leader {
                on_new_leader(&leader);
            }
        }
    }

    /// Releases the lock if this candidate holds it, within `renew_deadline`.
    pub(crate) async fn release(&self) -> bool {
        let deadline = instant_after(self.inner.clock.now(), self.inner.renew_deadline);
        tokio::select! {
            biased;
            released = self.try_release() => released,
            () = self.inner.clock.sleep_until(deadline) => {
                tracing::error!(lock = %self.inner.lock.describe(), "timed out releasing lease");
                false
            }
        }
    }

    async fn try_release(&self) -> bool {
        let inner = &*self.inner;
        loop {
            let observed = match inner.lock.get().await {
                Ok(Some(observed)) => observed,
                Ok(None) => {
                    tracing::info!(lock = %inner.lock.describe(), "lease lock not found");
                    return false;
                }
                Err(error) => {
                    tracing::error!(lock = %inner.lock.describe(), %error, "error retrieving resource lock");
                    return false;
                }
            };
            if !self.is_leader() {
                return true;
            }
            if observed.record.holder_identity != self.identity() {
                tracing::info!(lock = %inner.lock.describe(), holder = %observed.record.holder_identity, "not releasing: the lock has another holder");
                return true;
            }
            let wall = inner.clock.wall_now();
            let record = LeaderElectionRecord {
                leader_transitions: observed.record.leader_transitions,
                lease_duration_seconds: 1,
                renew_time: Some(wall),
                acquire_time: Some(wall),
                ..LeaderElectionRecord::default()
            };
            match inner.lock.update(&observed.version, &record).await {
                Ok(version) => {
                    self.set_observed(record, version);
                    tracing::info!(lock = %inner.lock.describe(), identity = %self.identity(), "released lease");
                    return true;
                }
                Err(error) if error.is_conflict() => {
                    tracing::debug!(lock = %inner.lock.describe(), "conflict when releasing lease, retrying");
                }
                Err(error) => {
                    tracing::error!(lock = %inner.lock.describe(), %error, "failed to release lease");
                    return false;
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn set_observed_for_test(
        &self,
        record: LeaderElectionRecord,
        raw: Option<String>,
        time: Option<Instant>,
    ) {
        let mut state = self.inner.state.lock();
        state.observed_record = record;
        state.observed_raw = raw;
        state.observed_time = time;
    }

    #[cfg(test)]
    pub(crate) fn observed_record(&self) -> LeaderElectionRecord {
        self.inner.state.lock().observed_record.clone()
    }
}

/// Marks the elector running; on drop (a return or a dropped run future) cancels the leading
/// token and calls `on_stopped_leading` if that has not happened yet.
struct RunGuard<'a, L: Lock> {
    elector: &'a LeaderElector<L>,
    leading: Option<CancellationToken>,
    stopped: bool,
}

impl<'a, L: Lock> RunGuard<'a, L> {
    fn start(elector: &'a LeaderElector<L>) -> Result<Self, AlreadyRunning> {
        let mut state = elector.inner.state.lock();
        if state.running {
            return Err(AlreadyRunning {
                name: elector.inner.name.clone(),
            });
        }
        state.running = true;
        Ok(RunGuard {
            elector,
            leading: None,
            stopped: false,
        })
    }

    /// Cancels the leading token and calls `on_stopped_leading`, once.
    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Some(leading) = &self.leading {
            leading.cancel();
            self.elector
                .inner
                .metrics
                .leader_off(&self.elector.inner.name);
        }
        (self.elector.inner.on_stopped_leading)();
    }
}

impl<L: Lock> Drop for RunGuard<'_, L> {
    fn drop(&mut self) {
        self.stop();
        self.elector.inner.state.lock().running = false;
    }
}
