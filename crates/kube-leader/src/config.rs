//! The elector's configuration: timings, callbacks and their validation.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use kube_flowcontrol::{RealClock, SharedClock};
use tokio_util::sync::CancellationToken;

use crate::elector::LeaderElector;
use crate::lock::Lock;
use crate::metrics::{LeaderMetrics, NoopMetrics};

/// The jitter of the retry period while acquiring: waits are `retry_period x [1, 1 + 1.2)`
/// (client-go's `JitterFactor`); the renew deadline must exceed `retry_period x 1.2`.
pub const JITTER_FACTOR: f64 = 1.2;

/// The default lease duration (client-go's examples and core components: 15 s).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// The default renew deadline (10 s).
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// The default retry period (2 s).
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

pub(crate) type StartedFn = Arc<dyn Fn(CancellationToken) -> BoxFuture<'static, ()> + Send + Sync>;
pub(crate) type StoppedFn = Arc<dyn Fn() + Send + Sync>;
pub(crate) type NewLeaderFn = Arc<dyn Fn(&str) + Send + Sync>;

/// A configuration the elector refuses (client-go's `NewLeaderElector` checks, in its order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The lease duration must be greater than the renew deadline.
    #[error(
        "leaseDuration must be greater than renewDeadline (lease duration {lease_duration:?}, renew deadline {renew_deadline:?})"
    )]
    LeaseDurationNotAboveRenewDeadline {
        /// The lease duration given.
        lease_duration: Duration,
        /// The renew deadline given.
        renew_deadline: Duration,
    },
    /// The renew deadline must be greater than the retry period times [`JITTER_FACTOR`].
    #[error(
        "renewDeadline must be greater than retryPeriod*JitterFactor (renew deadline {renew_deadline:?}, retry period {retry_period:?} x 1.2)"
    )]
    RenewDeadlineNotAboveJitteredRetry {
        /// The renew deadline given.
        renew_deadline: Duration,
        /// The retry period given.
        retry_period: Duration,
    },
    /// The lease duration is zero.
    #[error("leaseDuration must be greater than zero")]
    ZeroLeaseDuration,
    /// The renew deadline is zero.
    #[error("renewDeadline must be greater than zero")]
    ZeroRenewDeadline,
    /// The retry period is zero.
    #[error("retryPeriod must be greater than zero")]
    ZeroRetryPeriod,
    /// The lease duration does not fit the record's `i32` seconds.
    #[error("leaseDuration {0:?} does not fit the record's 32-bit seconds")]
    LeaseDurationTooLong(Duration),
    /// `on_started_leading` was not given.
    #[error("OnStartedLeading callback must not be nil")]
    MissingOnStartedLeading,
    /// `on_stopped_leading` was not given.
    #[error("OnStoppedLeading callback must not be nil")]
    MissingOnStoppedLeading,
    /// The lock's identity is empty.
    #[error("Lock identity is empty")]
    EmptyIdentity,
}

/// Builds a [`LeaderElector`] (client-go's `LeaderElectionConfig`); see the crate
/// documentation for an example.
#[must_use = "a builder does nothing until build() is called"]
pub struct LeaderElectorBuilder<L: Lock> {
    lock: L,
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
    release_on_cancel: bool,
    name: Option<String>,
    clock: Option<SharedClock>,
    metrics: Option<Arc<dyn LeaderMetrics>>,
    on_started_leading: Option<StartedFn>,
    on_stopped_leading: Option<StoppedFn>,
    on_new_leader: Option<NewLeaderFn>,
}

impl<L: Lock> std::fmt::Debug for LeaderElectorBuilder<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElectorBuilder")
            .field("lock", &self.lock.describe())
            .field("identity", &self.lock.identity())
            .field("lease_duration", &self.lease_duration)
            .field("renew_deadline", &self.renew_deadline)
            .field("retry_period", &self.retry_period)
            .field("release_on_cancel", &self.release_on_cancel)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<L: Lock> LeaderElectorBuilder<L> {
    pub(crate) fn new(lock: L) -> Self {
        LeaderElectorBuilder {
            lock,
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            release_on_cancel: false,
            name: None,
            clock: None,
            metrics: None,
            on_started_leading: None,
            on_stopped_leading: None,
            on_new_leader: None,
        }
    }

    /// How long others wait, from their last observation of a change of the record, before
    /// taking the lock over (default 15 s). Written to the record rounded up to whole seconds.
    pub fn lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// How long the leader keeps trying to renew, from the start of its last successful
    /// renewal, before it gives up leading (default 10 s).
    pub fn renew_deadline(mut self, duration: Duration) -> Self {
        self.renew_deadline = duration;
        self
    }

    /// The wait between attempts (default 2 s; jittered by [`JITTER_FACTOR`] while acquiring).
    pub fn retry_period(mut self, duration: Duration) -> Self {
        self.retry_period = duration;
        self
    }

    /// Whether to release the lock (an empty holder with a 1-second lease) when the run is
    /// cancelled, so a successor takes over at once instead of waiting for the lease to expire.
    /// The release happens only after the leading future has returned.
    pub fn release_on_cancel(mut self, release: bool) -> Self {
        self.release_on_cancel = release;
        self
    }

    /// The name used in metrics and logs (default: the lock's description).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The clock for every wait and every expiry judgement (default: the real clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Where to report the leader status and slow-path renewals (default: nowhere).
    pub fn metrics(mut self, metrics: Arc<dyn LeaderMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Required: the work of the leader. Called when this candidate starts leading, with a
    /// token cancelled when it stops; the returned future is polled by
    /// [`LeaderElector::run`] alongside the renewals and must return soon after the token is
    /// cancelled. Spawn heavy work on its own task and stop it on the token.
    pub fn on_started_leading<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_started_leading = Some(Arc::new(move |token| f(token).boxed()));
        self
    }

    /// Required: called when the elector stops, right after it cancelled the leading token,
    /// and also when it stops without having led (as client-go does).
    pub fn on_stopped_leading<F>(mut self, f: F) -> Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.on_stopped_leading = Some(Arc::new(f));
        self
    }

    /// Optional: called with the holder's identity whenever the observed holder changes
    /// (including the first observation, and `""` after a release). Must not block.
    pub fn on_new_leader<F>(mut self, f: F) -> Self
    where
        F: Fn(&str) + Send + Sync + 'static,
    {
        self.on_new_leader = Some(Arc::new(f));
        self
    }

    /// Validates the configuration (client-go's rules) and builds the elector.
    pub fn build(self) -> Result<LeaderElector<L>, ConfigError> {
        if self.lease_duration <= self.renew_deadline {
            return Err(ConfigError::LeaseDurationNotAboveRenewDeadline {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        // Go: time.Duration(JitterFactor * float64(RetryPeriod)), truncated to nanoseconds.
        let jittered_nanos = (JITTER_FACTOR * self.retry_period.as_nanos() as f64) as u128;
        if self.renew_deadline.as_nanos() <= jittered_nanos {
            return Err(ConfigError::RenewDeadlineNotAboveJitteredRetry {
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            });
        }
        if self.lease_duration.is_zero() {
            return Err(ConfigError::ZeroLeaseDuration);
        }
        if self.renew_deadline.is_zero() {
            return Err(ConfigError::ZeroRenewDeadline);
        }
        if self.retry_period.is_zero() {
            return Err(ConfigError::ZeroRetryPeriod);
        }
        let lease_seconds = lease_seconds(self.lease_duration)
            .ok_or(ConfigError::LeaseDurationTooLong(self.lease_duration))?;
        let on_started_leading = self
            .on_started_leading
            .ok_or(ConfigError::MissingOnStartedLeading)?;
        let on_stopped_leading = self
            .on_stopped_leading
            .ok_or(ConfigError::MissingOnStoppedLeading)?;
        if self.lock.identity().is_empty() {
            return Err(ConfigError::EmptyIdentity);
        }
        let name = self.name.unwrap_or_else(|| self.lock.describe());
        Ok(LeaderElector::from_parts(crate::elector::Parts {
            lock: self.lock,
            name,
            lease_duration: self.lease_duration,
            lease_seconds,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
            release_on_cancel: self.release_on_cancel,
            clock: self.clock.unwrap_or_else(RealClock::shared),
            metrics: self.metrics.unwrap_or_else(|| Arc::new(NoopMetrics)),
            on_started_leading,
            on_stopped_leading,
            on_new_leader: self.on_new_leader,
        }))
    }
}

/// The lease duration in whole seconds, rounded up (client-go truncates; rounding up keeps the
/// written lease above the renew deadline, which the safety argument needs).
fn lease_seconds(duration: Duration) -> Option<i32> {
    let mut seconds = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        seconds += 1;
    }
    i32::try_from(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn builder(identity: &str) -> LeaderElectorBuilder<crate::MemoryLock> {
        LeaderElector::builder(MemoryStore::new("ns/lock").lock(identity))
            .on_started_leading(|_| async {})
            .on_stopped_leading(|| {})
    }

    #[test]
    fn defaults_are_valid() {
        let elector = builder("a").build().unwrap();
        assert_eq!(elector.identity(), "a");
    }

    #[test]
    fn client_go_validation_rules() {
        let s = Duration::from_secs;
        let err = builder("a")
            .lease_duration(s(10))
            .renew_deadline(s(10))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::LeaseDurationNotAboveRenewDeadline { .. }
        ));
        assert!(
            err.to_string()
                .starts_with("leaseDuration must be greater than renewDeadline")
        );
        // 2.4 s is not enough for a 2 s retry period (2 x 1.2), 2.5 s is.
        let err = builder("a")
            .renew_deadline(Duration::from_millis(2400))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::RenewDeadlineNotAboveJitteredRetry { .. }
        ));
        builder("a")
            .renew_deadline(Duration::from_millis(2500))
            .build()
            .unwrap();
        assert_eq!(
            builder("a")
                .retry_period(Duration::ZERO)
                .build()
                .unwrap_err(),
            ConfigError::ZeroRetryPeriod
        );
        let missing = LeaderElector::builder(MemoryStore::new("x").lock("a"))
            .on_stopped_leading(|| {})
            .build()
            .unwrap_err();
        assert_eq!(missing, ConfigError::MissingOnStartedLeading);
        let missing = LeaderElector::builder(MemoryStore::new("x").lock("a"))
            .on_started_leading(|_| async {})
            .build()
            .unwrap_err();
        assert_eq!(missing, ConfigError::MissingOnStoppedLeading);
        let err = builder("").build().unwrap_err();
        assert_eq!(err.to_string(), "Lock identity is empty");
        let err = builder("a")
            .lease_duration(Duration::from_secs(1 << 40))
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::LeaseDurationTooLong(_)));
    }

    #[test]
    fn lease_seconds_round_up() {
        assert_eq!(lease_seconds(Duration::from_secs(15)), Some(15));
        assert_eq!(lease_seconds(Duration::from_millis(10_500)), Some(11));
        assert_eq!(lease_seconds(Duration::from_secs(u64::MAX)), None);
    }
}
