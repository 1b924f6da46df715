//! [`EventBroadcaster`]: receives core/v1 events from recorders and sends them to sinks,
//! watchers and logs (client-go's `record.EventBroadcaster`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource};
use kube_flowcontrol::{RealClock, SharedClock};

use crate::correlator::{CorrelatorOptions, EventCorrelator};
use crate::fanout::{EventStream, Fanout, MAX_QUEUED_EVENTS, ShutdownReport, StartError, Watcher};
use crate::metrics::{CountersSnapshot, EventApi, EventMetrics, MetricsHub};
use crate::recorder::EventRecorder;
use crate::sink::EventSink;
use crate::writer::{DEFAULT_SLEEP_DURATION, WriterContext, record_to_sink};

/// How long [`EventBroadcaster::shutdown`] lets queued events be written by default.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of an [`EventBroadcaster`].
#[derive(Debug, Clone)]
pub struct EventBroadcasterBuilder {
    clock: Option<SharedClock>,
    sleep_duration: Duration,
    correlator: CorrelatorOptions,
    queue_capacity: usize,
    flush_timeout: Duration,
    metrics: Option<Arc<dyn EventMetrics>>,
}

impl Default for EventBroadcasterBuilder {
    fn default() -> Self {
        EventBroadcasterBuilder {
            clock: None,
            sleep_duration: DEFAULT_SLEEP_DURATION,
            correlator: CorrelatorOptions::default(),
            queue_capacity: MAX_QUEUED_EVENTS,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            metrics: None,
        }
    }
}

impl EventBroadcasterBuilder {
    /// The clock of everything: event timestamps, the correlator (unless its options name
    /// another), retry pauses and the shutdown bound. Default: the real clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The pause between tries to write an event (default 10 s; the first pause is a random
    /// fraction of it). client-go's `WithSleepDuration`.
    pub fn sleep_duration(mut self, sleep: Duration) -> Self {
        self.sleep_duration = sleep;
        self
    }

    /// The options of the correlator each sink gets. client-go's `WithCorrelatorOptions`.
    pub fn correlator(mut self, options: CorrelatorOptions) -> Self {
        self.correlator = options;
        self
    }

    /// Events each watcher's queue holds before new ones are dropped (default 1000, client-go's
    /// `maxQueuedEvents`; at least 1).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// How long a shutdown lets queued events be written (default 10 s).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Also reports every observation to `metrics` (for example the `prometheus` feature's
    /// `PrometheusMetrics`).
    pub fn metrics(mut self, metrics: Arc<dyn EventMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The broadcaster.
    pub fn build(self) -> EventBroadcaster {
        let clock = self.clock.unwrap_or_else(RealClock::shared);
        let metrics = Arc::new(MetricsHub::new(EventApi::CoreV1, self.metrics));
        let correlator = if self.correlator.has_clock() {
            self.correlator
        } else {
            self.correlator.clock(clock.clone())
        };
        EventBroadcaster {
            shared: Arc::new(Shared {
                fanout: Arc::new(Fanout::new(self.queue_capacity, metrics)),
                clock,
                sleep_duration: self.sleep_duration,
                correlator,
                flush_timeout: self.flush_timeout,
            }),
        }
    }
}

struct Shared {
    fanout: Arc<Fanout<Event>>,
    clock: SharedClock,
    sleep_duration: Duration,
    correlator: CorrelatorOptions,
    flush_timeout: Duration,
}

/// Receives events from [`EventRecorder`]s and hands them to sinks, watchers and logs, each
/// through its own queue of at most 1000 events. Recording never waits: beyond that, events
/// are dropped, logged and counted.
///
/// Clones share the same broadcaster.
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_record::{EventBroadcaster, EventType, MemorySink};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let broadcaster = EventBroadcaster::new();
/// let sink = MemorySink::new();
/// broadcaster.start_recording_to_sink(sink.clone()).unwrap();
/// let recorder = broadcaster.new_recorder("my-controller");
///
/// let mut pod = Pod::default();
/// pod.metadata.name = Some("web-0".into());
/// pod.metadata.namespace = Some("prod".into());
/// recorder.event(&pod, EventType::Normal, "Scaled", "scaled up to 3").unwrap();
/// recorder.eventf(&pod, EventType::Warning, "BackOff", format_args!("retry {} of {}", 1, 5)).unwrap();
///
/// broadcaster.shutdown().await; // writes what is queued (within a bound)
/// assert_eq!(sink.events().len(), 2);
/// # }
/// ```
#[derive(Clone)]
pub struct EventBroadcaster {
    shared: Arc<Shared>,
}

impl fmt::Debug for EventBroadcaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBroadcaster")
            .field("fanout", &self.shared.fanout)
            .field("sleep_duration", &self.shared.sleep_duration)
            .finish_non_exhaustive()
    }
}

impl Default for EventBroadcaster {
    fn default() -> Self {
        EventBroadcaster::new()
    }
}

impl EventBroadcaster {
    /// A broadcaster with client-go's defaults.
    pub fn new() -> EventBroadcaster {
        EventBroadcaster::builder().build()
    }

    /// Options for a broadcaster.
    pub fn builder() -> EventBroadcasterBuilder {
        EventBroadcasterBuilder::default()
    }

    /// A recorder whose events come from `component` (the event's `source.component` and
    /// `reportingComponent`).
    pub fn new_recorder(&self, component: &str) -> EventRecorder {
        self.new_recorder_with_source(EventSource {
            component: Some(component.to_string()),
            host: None,
        })
    }

    /// A recorder with this event source (component and host).
    pub fn new_recorder_with_source(&self, source: EventSource) -> EventRecorder {
        EventRecorder::new(
            source,
            Arc::clone(&self.shared.fanout),
            self.shared.clock.clone(),
        )
    }

    /// Writes the events to `sink` through a new [`EventCorrelator`] (so each sink has its own
    /// spam filter, aggregation and counts), retrying as client-go: up to 12 tries per event,
    /// pausing a random fraction of the sleep duration and then the sleep duration between
    /// tries. Must be called within a tokio runtime.
    pub fn start_recording_to_sink<S: EventSink>(&self, sink: S) -> Result<Watcher, StartError> {
        let correlator = Arc::new(EventCorrelator::new(self.shared.correlator.clone()));
        let sink = Arc::new(sink);
        let ctx = WriterContext {
            clock: self.shared.clock.clone(),
            sleep_duration: self.shared.sleep_duration,
            deadline: self.shared.fanout.deadline.clone(),
            metrics: Arc::clone(&self.shared.fanout.metrics),
        };
        self.shared
            .fanout
            .spawn_watcher("sink", move |event: Arc<Event>| {
                let sink = Arc::clone(&sink);
                let correlator = Arc::clone(&correlator);
                let ctx = ctx.clone();
                async move {
                    // A copy: other watchers see the event as recorded.
                    record_to_sink(&*sink, Event::clone(&event), &correlator, &ctx).await;
                }
            })
    }

    /// Calls `handler` with every event, one at a time, on a tokio task. Must be called within
    /// a tokio runtime.
    pub fn start_event_watcher(
        &self,
        mut handler: impl FnMut(&Event) + Send + 'static,
    ) -> Result<Watcher, StartError> {
        self.shared
            .fanout
            .spawn_watcher("watcher", move |event: Arc<Event>| {
                handler(&event);
                std::future::ready(())
            })
    }

    /// Logs every event through `tracing` at INFO, with client-go's structured fields
    /// (`StartStructuredLogging`). Must be called within a tokio runtime.
    pub fn start_logging(&self) -> Result<Watcher, StartError> {
        self.shared
            .fanout
            .spawn_watcher("logging", |event: Arc<Event>| {
                log_event(&event);
                std::future::ready(())
            })
    }

    /// The events as a `Stream` (its own queue of at most 1000 events).
    pub fn stream(&self) -> Result<EventStream<Event>, StartError> {
        self.shared.fanout.stream()
    }

    /// What this broadcaster counted so far.
    pub fn counters(&self) -> CountersSnapshot {
        self.shared.fanout.metrics.snapshot()
    }

    /// Whether [`shutdown`](EventBroadcaster::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.fanout.is_shut_down()
    }

    /// Stops accepting events and lets the watchers handle what is queued, for at most the
    /// flush timeout (on the broadcaster's clock); then stops them: pending retries are given
    /// up and what is still queued is dropped (logged and counted).
    ///
    /// client-go cancels pending retries at once; we keep retrying until the bound so that a
    /// controller stopping during a short API server hiccup loses nothing.
    pub async fn shutdown(&self) -> ShutdownReport {
        self.shared
            .fanout
            .shutdown(&self.shared.clock, self.shared.flush_timeout)
            .await
    }
}

fn log_event(event: &Event) {
    let o = &event.involved_object;
    fn s(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("")
    }
    let object = match s(&o.namespace) {
        "" => s(&o.name).to_string(),
        namespace => format!("{namespace}/{}", s(&o.name)),
    };
    tracing::info!(
        object,
        field_path = s(&o.field_path),
        kind = s(&o.kind),
        api_version = s(&o.api_version),
        r#type = s(&event.type_),
        reason = s(&event.reason),
        message = s(&event.message),
        "Event occurred"
    );
}
