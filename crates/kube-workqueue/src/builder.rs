//! [`QueueBuilder`]: one builder for the three kinds of queue (client-go's `QueueConfig`,
//! `DelayingQueueConfig` and `RateLimitingQueueConfig`).

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use kube_flowcontrol::{RealClock, SharedClock};
use tokio::runtime::Handle;

use crate::delaying::DelayingQueue;
use crate::metrics::{self, MetricsProvider};
use crate::queue::WorkQueue;
use crate::rate_limiter::{ItemRateLimiter, default_controller_rate_limiter_with_clock};
use crate::rate_limiting::RateLimitingQueue;
use crate::runtime::Spawner;

/// client-go's `defaultUnfinishedWorkUpdatePeriod`.
pub const DEFAULT_UNFINISHED_WORK_UPDATE_PERIOD: Duration = Duration::from_millis(500);

/// client-go's `maxWait`: the delaying queue's waiting loop wakes at least this often while
/// items are waiting, as insurance against a missed timer.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

/// The shortest period accepted for the background loops (a zero period would spin).
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// The settings shared by every kind of queue.
#[derive(Clone)]
pub(crate) struct QueueConfig {
    pub(crate) name: String,
    pub(crate) clock: SharedClock,
    pub(crate) metrics: Option<Arc<dyn MetricsProvider>>,
    pub(crate) runtime: Option<Handle>,
    pub(crate) unfinished_work_update_period: Duration,
    pub(crate) heartbeat: Duration,
}

impl QueueConfig {
    /// The provider this queue reports to, if any (see [`metrics::resolve_provider`]).
    pub(crate) fn metrics_provider(&self) -> Option<Arc<dyn MetricsProvider>> {
        metrics::resolve_provider(&self.name, self.metrics.clone())
    }
}

/// Builds a plain [`WorkQueue`] (the kind `K` is [`Plain`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

/// Builds a [`DelayingQueue`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Delaying;

/// Builds a [`RateLimitingQueue`] with this rate limiter (`None`: client-go's default
/// controller rate limiter, on the queue's clock).
pub struct RateLimited<T>(pub(crate) Option<Arc<dyn ItemRateLimiter<T>>>);

impl<T> fmt::Debug for RateLimited<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RateLimited(..)")
    }
}

/// Configures a queue: name, clock, metrics provider, and what kind of queue to build.
///
/// [`build`](QueueBuilder::build) returns a [`WorkQueue`], a [`DelayingQueue`] after
/// [`delaying`](QueueBuilder::delaying), or a [`RateLimitingQueue`] after
/// [`rate_limiter`](QueueBuilder::rate_limiter):
///
/// ```
/// use std::time::Duration;
/// use kube_flowcontrol::FakeClock;
/// use kube_workqueue::{WorkQueue, rate_limiter::ItemExponentialFailureRateLimiter};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let clock = FakeClock::new();
/// let queue = WorkQueue::<String>::builder()
///     .name("pods")
///     .clock(clock.shared())
///     .rate_limiter(ItemExponentialFailureRateLimiter::new(
///         Duration::from_millis(5),
///         Duration::from_secs(60),
///     ))
///     .build();
/// queue.add_rate_limited("default/web".to_string());
/// assert_eq!(queue.len(), 0); // waiting 5 ms of the fake clock
/// # }
/// ```
///
/// Background work (the delaying queue's waiting loop, the metrics updater) runs as tokio tasks
/// on the runtime given to [`runtime`](QueueBuilder::runtime), else on the runtime the queue is
/// built in; a queue built outside any runtime runs it on a thread of its own.
pub struct QueueBuilder<T, K = Plain> {
    config: QueueConfig,
    kind: K,
    item: PhantomData<fn() -> T>,
}

impl<T, K: fmt::Debug> fmt::Debug for QueueBuilder<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueBuilder")
            .field("name", &self.config.name)
            .field("clock", &self.config.clock)
            .field("metrics", &self.config.metrics.is_some())
            .field("runtime", &self.config.runtime.is_some())
            .field(
                "unfinished_work_update_period",
                &self.config.unfinished_work_update_period,
            )
            .field("heartbeat", &self.config.heartbeat)
            .field("kind", &self.kind)
            .finish()
    }
}

impl<T> QueueBuilder<T, Plain> {
    /// An unnamed queue on the real clock, without metrics.
    pub fn new() -> Self {
        QueueBuilder {
            config: QueueConfig {
                name: String::new(),
                clock: RealClock::shared(),
                metrics: None,
                runtime: None,
                unfinished_work_update_period: DEFAULT_UNFINISHED_WORK_UPDATE_PERIOD,
                heartbeat: DEFAULT_HEARTBEAT,
            },
            kind: Plain,
            item: PhantomData,
        }
    }
}

impl<T> Default for QueueBuilder<T, Plain> {
    fn default() -> Self {
        QueueBuilder::new()
    }
}

impl<T, K> QueueBuilder<T, K> {
    /// The queue's name, used to label its metrics. Unnamed queues report no metrics (as in
    /// client-go).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = name.into();
        self
    }

    /// The clock for delays and metrics (default: the real clock). Tests pass a
    /// [`FakeClock`](kube_flowcontrol::FakeClock) and step it instead of sleeping.
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.config.clock = clock;
        self
    }

    /// Where the queue's metrics go (default: the provider given to
    /// [`metrics::set_provider`], else none).
    #[must_use]
    pub fn metrics(mut self, provider: Arc<dyn MetricsProvider>) -> Self {
        self.config.metrics = Some(provider);
        self
    }

    /// The tokio runtime for the queue's background tasks (default: the current one).
    #[must_use]
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.config.runtime = Some(handle);
        self
    }

    /// How often the unfinished-work metrics are refreshed (default 500 ms, at least 1 ms).
    ///
    /// The refresh runs on the queue's clock: on a [`FakeClock`](kube_flowcontrol::FakeClock) a
    /// queue with metrics keeps one sleeper registered, which tests counting sleepers see.
    #[must_use]
    pub fn unfinished_work_update_period(mut self, period: Duration) -> Self {
        self.config.unfinished_work_update_period = period.max(MIN_PERIOD);
        self
    }

    /// The longest the delaying queue's loop sleeps while items wait (default 10 s, at least
    /// 1 ms).
    #[must_use]
    pub fn heartbeat(mut self, heartbeat: Duration) -> Self {
        self.config.heartbeat = heartbeat.max(MIN_PERIOD);
        self
    }

    /// Build a [`DelayingQueue`].
    #[must_use]
    pub fn delaying(self) -> QueueBuilder<T, Delaying> {
        QueueBuilder {
            config: self.config,
            kind: Delaying,
            item: PhantomData,
        }
    }

    /// Build a [`RateLimitingQueue`] using `limiter` (share one limiter between queues by passing
    /// an `Arc`).
    #[must_use]
    pub fn rate_limiter(
        self,
        limiter: impl ItemRateLimiter<T> + 'static,
    ) -> QueueBuilder<T, RateLimited<T>> {
        QueueBuilder {
            config: self.config,
            kind: RateLimited(Some(Arc::new(limiter))),
            item: PhantomData,
        }
    }
}

impl<T> QueueBuilder<T, Plain>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// The [`WorkQueue`].
    pub fn build(self) -> WorkQueue<T> {
        WorkQueue::from_config(&self.config, &Spawner::new(self.config.runtime.clone()))
    }
}

impl<T> QueueBuilder<T, Delaying>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// The [`DelayingQueue`].
    pub fn build(self) -> DelayingQueue<T> {
        DelayingQueue::from_config(&self.config)
    }
}

impl<T> QueueBuilder<T, RateLimited<T>>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// The [`RateLimitingQueue`].
    pub fn build(self) -> RateLimitingQueue<T> {
        let limiter = self.kind.0.unwrap_or_else(|| {
            Arc::new(default_controller_rate_limiter_with_clock(Arc::clone(
                &self.config.clock,
            )))
        });
        RateLimitingQueue::from_parts(DelayingQueue::from_config(&self.config), limiter)
    }
}

impl<T> QueueBuilder<T, Plain> {
    /// Build a [`RateLimitingQueue`] with client-go's default controller rate limiter (on the
    /// queue's clock).
    pub(crate) fn default_rate_limited(self) -> QueueBuilder<T, RateLimited<T>> {
        QueueBuilder {
            config: self.config,
            kind: RateLimited(None),
            item: PhantomData,
        }
    }
}
