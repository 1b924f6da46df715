//! The events.k8s.io/v1 broadcaster: series bookkeeping, the write queue and its workers, and
//! the periodic refresh and finish of series (client-go's `tools/events/event_broadcaster.go`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube_flowcontrol::{RealClock, SharedClock};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::recorder::EventRecorder;
use super::{Event, EventSeries, EventSink};
use crate::broadcaster::DEFAULT_FLUSH_TIMEOUT;
use crate::fanout::{EventStream, Fanout, MAX_QUEUED_EVENTS, ShutdownReport, StartError, Watcher};
use crate::metrics::{CountersSnapshot, DropReason, EventApi, EventMetrics, Metric, MetricsHub};
use crate::patch::two_way_merge_patch;
use crate::sink::SinkError;
use crate::types::{date_time, hostname, micro_time};
use crate::writer::{DEFAULT_SLEEP_DURATION, MAX_TRIES_PER_EVENT};

/// A series not observed for this long is finished (client-go's `finishTime`).
pub const FINISH_TIME: Duration = Duration::from_secs(6 * 60);
/// How often series are written again (client-go's `refreshTime`).
pub const REFRESH_TIME: Duration = Duration::from_secs(30 * 60);
/// Tasks writing events concurrently (client-go's `recordWorkers`).
pub const RECORD_WORKERS: usize = 8;

/// What makes events isomorphic (client-go's `eventKey`): the note is not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EventKey {
    event_type: Option<String>,
    action: Option<String>,
    reason: Option<String>,
    reporting_controller: Option<String>,
    reporting_instance: Option<String>,
    regarding: ReferenceKey,
    related: ReferenceKey,
}

/// Every field of an `ObjectReference` (Go compares the whole struct).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct ReferenceKey([Option<String>; 7]);

impl ReferenceKey {
    fn of(reference: Option<&ObjectReference>) -> ReferenceKey {
        let Some(r) = reference else {
            return ReferenceKey::default();
        };
        ReferenceKey([
            r.kind.clone(),
            r.namespace.clone(),
            r.name.clone(),
            r.uid.clone(),
            r.api_version.clone(),
            r.resource_version.clone(),
            r.field_path.clone(),
        ])
    }
}

impl EventKey {
    pub(crate) fn of(event: &Event) -> EventKey {
        EventKey {
            event_type: event.type_.clone(),
            action: event.action.clone(),
            reason: event.reason.clone(),
            reporting_controller: event.reporting_controller.clone(),
            reporting_instance: event.reporting_instance.clone(),
            regarding: ReferenceKey::of(event.regarding.as_ref()),
            related: ReferenceKey::of(event.related.as_ref()),
        }
    }
}

pub(crate) type SeriesCache = Arc<Mutex<HashMap<EventKey, Event>>>;

/// Options of an events.k8s.io [`EventBroadcaster`].
#[derive(Debug, Clone)]
pub struct EventBroadcasterBuilder {
    clock: Option<SharedClock>,
    sleep_duration: Duration,
    queue_capacity: usize,
    workers: usize,
    flush_timeout: Duration,
    metrics: Option<Arc<dyn EventMetrics>>,
}

impl Default for EventBroadcasterBuilder {
    fn default() -> Self {
        EventBroadcasterBuilder {
            clock: None,
            sleep_duration: DEFAULT_SLEEP_DURATION,
            queue_capacity: MAX_QUEUED_EVENTS,
            workers: RECORD_WORKERS,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            metrics: None,
        }
    }
}

impl EventBroadcasterBuilder {
    /// The clock of timestamps, series, retry pauses, periodic tasks and the shutdown bound
    /// (default: the real clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The pause between tries to write an event (default 10 s, with up to 25 % jitter).
    pub fn sleep_duration(mut self, sleep: Duration) -> Self {
        self.sleep_duration = sleep;
        self
    }

    /// Events each queue holds before new ones are dropped (default 1000; at least 1).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Tasks writing events concurrently (default 8; at least 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// How long a shutdown lets queued events and series be written (default 10 s).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Also reports every observation to `metrics`.
    pub fn metrics(mut self, metrics: Arc<dyn EventMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The broadcaster.
    pub fn build(self) -> EventBroadcaster {
        let metrics = Arc::new(MetricsHub::new(EventApi::EventsV1, self.metrics));
        EventBroadcaster {
            shared: Arc::new(Shared {
                fanout: Arc::new(Fanout::new(self.queue_capacity, metrics)),
                clock: self.clock.unwrap_or_else(RealClock::shared),
                sleep_duration: self.sleep_duration,
                queue_capacity: self.queue_capacity.max(1),
                workers: self.workers.max(1),
                flush_timeout: self.flush_timeout,
                series: SeriesCache::default(),
                recording: AtomicBool::new(false),
            }),
        }
    }
}

struct Shared {
    fanout: Arc<Fanout<Event>>,
    clock: SharedClock,
    sleep_duration: Duration,
    queue_capacity: usize,
    workers: usize,
    flush_timeout: Duration,
    series: SeriesCache,
    recording: AtomicBool,
}

/// Receives events.k8s.io/v1 events from [`EventRecorder`]s, folds isomorphic ones into
/// series and writes them to one sink. Clones share the same broadcaster.
#[derive(Clone)]
pub struct EventBroadcaster {
    shared: Arc<Shared>,
}

impl fmt::Debug for EventBroadcaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBroadcaster")
            .field("fanout", &self.shared.fanout)
            .field("series", &self.shared.series.lock().len())
            .finish_non_exhaustive()
    }
}

impl Default for EventBroadcaster {
    fn default() -> Self {
        EventBroadcaster::new()
    }
}

/// Everything the writing tasks share.
pub(crate) struct Writer<S> {
    pub(crate) sink: Arc<S>,
    pub(crate) clock: SharedClock,
    pub(crate) sleep_duration: Duration,
    pub(crate) deadline: CancellationToken,
    pub(crate) metrics: Arc<MetricsHub>,
    pub(crate) series: SeriesCache,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Writer {
            sink: Arc::clone(&self.sink),
            clock: self.clock.clone(),
            sleep_duration: self.sleep_duration,
            deadline: self.deadline.clone(),
            metrics: Arc::clone(&self.metrics),
            series: Arc::clone(&self.series),
        }
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

    /// A recorder reporting as `reporting_controller`, with the instance
    /// `<reporting_controller>-<host name>` as client-go.
    pub fn new_recorder(&self, reporting_controller: &str) -> EventRecorder {
        let instance = format!("{reporting_controller}-{}", hostname());
        self.new_recorder_with_instance(reporting_controller, &instance)
    }

    /// A recorder with an explicit reporting instance (a pod name, for example).
    pub fn new_recorder_with_instance(
        &self,
        reporting_controller: &str,
        reporting_instance: &str,
    ) -> EventRecorder {
        EventRecorder::new(
            reporting_controller.to_string(),
            reporting_instance.to_string(),
            Arc::clone(&self.shared.fanout),
            self.shared.clock.clone(),
        )
    }

    /// Starts writing the events to `sink`: the series bookkeeping, the write queue with its
    /// workers, and the periodic refresh (every 30 minutes) and finish (every 6 minutes) of
    /// series. Only one sink per broadcaster. Must be called within a tokio runtime.
    pub fn start_recording_to_sink<S: EventSink>(&self, sink: S) -> Result<(), StartError> {
        let shared = &*self.shared;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        if shared.recording.swap(true, Ordering::AcqRel) {
            return Err(StartError::AlreadyRecording);
        }
        let writer = Writer {
            sink: Arc::new(sink),
            clock: shared.clock.clone(),
            sleep_duration: shared.sleep_duration,
            deadline: shared.fanout.deadline.clone(),
            metrics: Arc::clone(&shared.fanout.metrics),
            series: Arc::clone(&shared.series),
        };
        let (tx, rx) = mpsc::channel::<Event>(shared.queue_capacity);
        let started = shared.fanout.spawn_watcher("sink", {
            let writer = writer.clone();
            move |event: Arc<Event>| {
                enqueue(&writer, &tx, Event::clone(&event));
                std::future::ready(())
            }
        });
        if let Err(error) = started {
            shared.recording.store(false, Ordering::Release);
            return Err(error);
        }
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let workers = TaskTracker::new();
        for _ in 0..shared.workers {
            let writer = writer.clone();
            let rx = Arc::clone(&rx);
            shared
                .fanout
                .tracker
                .spawn_on(workers.track_future(recording_worker(writer, rx)), &runtime);
        }
        workers.close();
        let stopping = shared.fanout.stopping.clone();
        shared.fanout.tracker.spawn_on(
            periodic(writer.clone(), stopping.clone(), REFRESH_TIME, |w| {
                Box::pin(async move { refresh_existing_series(&w).await })
            }),
            &runtime,
        );
        shared.fanout.tracker.spawn_on(
            async move {
                periodic(writer.clone(), stopping, FINISH_TIME, |w| {
                    Box::pin(async move { finish_series(&w).await })
                })
                .await;
                // Shutting down: once the queue is written, write the counts of the series
                // still open, so that none is lost.
                workers.wait().await;
                flush_series(&writer).await;
            },
            &runtime,
        );
        Ok(())
    }

    /// Calls `handler` with every event, one at a time, on a tokio task.
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

    /// Logs every event through `tracing` at INFO, with client-go's structured fields.
    pub fn start_logging(&self) -> Result<Watcher, StartError> {
        self.shared
            .fanout
            .spawn_watcher("logging", |event: Arc<Event>| {
                let s = |v: &Option<String>| v.as_deref().unwrap_or("").to_string();
                let regarding = event.regarding.clone().unwrap_or_default();
                let object = match s(&regarding.namespace).as_str() {
                    "" => s(&regarding.name),
                    namespace => format!("{namespace}/{}", s(&regarding.name)),
                };
                tracing::info!(
                    object,
                    kind = s(&regarding.kind),
                    api_version = s(&regarding.api_version),
                    r#type = s(&event.type_),
                    reason = s(&event.reason),
                    action = s(&event.action),
                    note = s(&event.note),
                    "Event occurred"
                );
                std::future::ready(())
            })
    }

    /// The events as a `Stream` (its own queue of at most 1000 events).
    pub fn stream(&self) -> Result<EventStream<Event>, StartError> {
        self.shared.fanout.stream()
    }

    /// What this broadcaster counted so far (`aggregated` counts events folded into a series).
    pub fn counters(&self) -> CountersSnapshot {
        self.shared.fanout.metrics.snapshot()
    }

    /// The number of events and series in the series cache.
    pub fn cached_series(&self) -> usize {
        self.shared.series.lock().len()
    }

    /// Stops accepting events, writes what is queued and the counts of the open series, for at
    /// most the flush timeout; then stops every task (dropping what is left, logged and
    /// counted). client-go stops at once and does not write the open series.
    pub async fn shutdown(&self) -> ShutdownReport {
        self.shared
            .fanout
            .shutdown(&self.shared.clock, self.shared.flush_timeout)
            .await
    }
}

/// Folds an event into its series (or starts one) and queues what must be written
/// (client-go's `recordToSink`).
fn enqueue<S>(writer: &Writer<S>, queue: &mpsc::Sender<Event>, event: Event) {
    let record = {
        let mut cache = writer.series.lock();
        let key = EventKey::of(&event);
        match cache.get_mut(&key) {
            Some(isomorphic) => {
                writer.metrics.inc(Metric::Aggregated);
                let now = micro_time(writer.clock.wall_now());
                match &mut isomorphic.series {
                    Some(series) => {
                        series.count = series.count.saturating_add(1);
                        series.last_observed_time = now;
                        None
                    }
                    None => {
                        isomorphic.series = Some(EventSeries {
                            count: 2,
                            last_observed_time: now,
                        });
                        Some(isomorphic.clone())
                    }
                }
            }
            None => {
                cache.insert(key, event.clone());
                Some(event)
            }
        }
    };
    let Some(record) = record else {
        return;
    };
    match queue.try_send(record) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(event)) => {
            writer.metrics.inc(Metric::Dropped(DropReason::QueueFull));
            tracing::error!(event = %describe(&event), "Unable to record event: too many queued events, dropped event");
        }
        Err(mpsc::error::TrySendError::Closed(event)) => {
            writer.metrics.inc(Metric::Dropped(DropReason::ShutDown));
            tracing::error!(event = %describe(&event), "Unable to record event: the writers are stopped, dropped event");
        }
    }
}

fn describe(event: &Event) -> String {
    let s = |v: &Option<String>| v.as_deref().unwrap_or("").to_string();
    let regarding = event.regarding.clone().unwrap_or_default();
    format!(
        "{}/{} ({} {}/{}: type {:?} reason {:?} action {:?} series {:?} note {:?})",
        s(&event.metadata.namespace),
        s(&event.metadata.name),
        s(&regarding.kind),
        s(&regarding.namespace),
        s(&regarding.name),
        s(&event.type_),
        s(&event.reason),
        s(&event.action),
        event.series.as_ref().map(|series| series.count),
        s(&event.note),
    )
}

/// Takes queued events and writes them until the queue closes or the flush deadline passes.
async fn recording_worker<S: EventSink>(
    writer: Writer<S>,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Event>>>,
) {
    loop {
        let next = {
            let mut queue = queue.lock().await;
            tokio::select! {
                biased;
                _ = writer.deadline.cancelled() => {
                    queue.close();
                    let mut left = 0u64;
                    while queue.try_recv().is_ok() {
                        left += 1;
                        writer.metrics.inc(Metric::Dropped(DropReason::FlushTimeout));
                    }
                    if left > 0 {
                        tracing::error!(dropped = left, "Unable to record events: the broadcaster's shutdown deadline passed, dropped queued events");
                    }
                    return;
                }
                event = queue.recv() => event,
            }
        };
        match next {
            Some(event) => attempt_recording(&writer, event).await,
            None => return,
        }
    }
}

/// Writes one event with up to 12 tries, pausing the sleep duration plus up to 25 % between
/// tries (client-go's `attemptRecording`).
async fn attempt_recording<S: EventSink>(writer: &Writer<S>, mut event: Event) {
    let mut tries = 0;
    loop {
        match record_event(writer, &mut event).await {
            Some((_, false)) => return,
            Some((_, true)) => {}
            None => {
                tracing::error!(event = %describe(&event), "Unable to write event (broadcaster is shut down)");
                writer.metrics.inc(Metric::Abandoned);
                return;
            }
        }
        tries += 1;
        if tries >= MAX_TRIES_PER_EVENT {
            tracing::error!(event = %describe(&event), tries, "Unable to write event (retry limit exceeded!)");
            writer.metrics.inc(Metric::Abandoned);
            return;
        }
        let delay = writer.sleep_duration.mul_f64(1.0 + 0.25 * fastrand::f64());
        tokio::select! {
            biased;
            _ = writer.deadline.cancelled() => {
                tracing::error!(event = %describe(&event), "Unable to write event (broadcaster is shut down)");
                writer.metrics.inc(Metric::Abandoned);
                return;
            }
            _ = writer.clock.sleep(delay) => {}
        }
    }
}

/// The patch adding the series to the stored event (client-go's `createPatchBytesForSeries`).
fn series_patch(event: &Event) -> Result<Value, serde_json::Error> {
    let mut old = event.clone();
    old.series = None;
    Ok(two_way_merge_patch(
        &serde_json::to_value(&old)?,
        &serde_json::to_value(event)?,
    ))
}

/// One try (client-go's `recordEvent`): a patch for a series (a create if the event is
/// gone), a create otherwise. `Some((stored, retry))`, or `None` when the flush deadline
/// interrupted the call.
async fn record_event<S: EventSink>(
    writer: &Writer<S>,
    event: &mut Event,
) -> Option<(Option<Event>, bool)> {
    let is_series = event.series.is_some();
    let mut result = None;
    if is_series {
        let patch = match series_patch(event) {
            Ok(patch) => patch,
            Err(error) => {
                tracing::error!(%error, event = %describe(event), "Unable to calculate diff, no merge is possible");
                writer.metrics.inc(Metric::Abandoned);
                return Some((None, false));
            }
        };
        result = Some(call(&writer.deadline, writer.sink.patch(event, &patch)).await?);
    }
    let create = match &result {
        None => true,
        Some(Err(error)) => error.is_not_found(),
        Some(Ok(_)) => false,
    };
    if create {
        event.metadata.resource_version = None;
        result = Some(call(&writer.deadline, writer.sink.create(event)).await?);
    }
    let error = match result? {
        Ok(stored) => {
            writer.metrics.inc(Metric::Written);
            return Some((Some(stored), false));
        }
        Err(error) => error,
    };
    // An AlreadyExists for a series means its first create was still in flight when the patch
    // failed: trying again patches it.
    let retry = error.is_retryable() || (is_series && error.is_already_exists());
    writer.metrics.inc(Metric::SinkError { retryable: retry });
    if retry {
        tracing::error!(%error, event = %describe(event), "Unable to write event (may retry after sleeping)");
        return Some((None, true));
    }
    writer.metrics.inc(Metric::Abandoned);
    if error.is_already_exists() {
        tracing::debug!(%error, event = %describe(event), "Server rejected event (will not retry!)");
    } else if matches!(error, SinkError::Request { .. }) {
        tracing::error!(%error, event = %describe(event), "Unable to construct event (will not retry!)");
    } else {
        tracing::error!(%error, event = %describe(event), "Server rejected event (will not retry!)");
    }
    Some((None, false))
}

async fn call<F>(deadline: &CancellationToken, call: F) -> Option<Result<Event, SinkError>>
where
    F: std::future::Future<Output = Result<Event, SinkError>>,
{
    tokio::select! {
        biased;
        result = call => Some(result),
        _ = deadline.cancelled() => None,
    }
}

type Pass<S> = fn(Writer<S>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `pass` now and then every `period` until `stopping` (`wait.UntilWithContext`).
async fn periodic<S: EventSink>(
    writer: Writer<S>,
    stopping: CancellationToken,
    period: Duration,
    pass: Pass<S>,
) {
    loop {
        tokio::select! {
            biased;
            _ = stopping.cancelled() => return,
            _ = pass(writer.clone()) => {}
        }
        tokio::select! {
            biased;
            _ = stopping.cancelled() => return,
            _ = writer.clock.sleep(period) => {}
        }
    }
}

fn cutoff(now: SystemTime) -> Timestamp {
    date_time(
        now.checked_sub(FINISH_TIME)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    )
}

/// Writes every series again, keeping the server's answer unless the series moved meanwhile
/// (client-go's `refreshExistingEventSeries`).
pub(crate) async fn refresh_existing_series<S: EventSink>(writer: &Writer<S>) {
    let snapshots: Vec<(EventKey, Event)> = writer
        .series
        .lock()
        .iter()
        .filter(|(_, event)| event.series.is_some())
        .map(|(key, event)| (key.clone(), event.clone()))
        .collect();
    for (key, snapshot) in snapshots {
        let Some((Some(recorded), false)) = record_event(writer, &mut snapshot.clone()).await
        else {
            continue;
        };
        let mut cache = writer.series.lock();
        if cache.get(&key) == Some(&snapshot) {
            cache.insert(key, recorded);
        }
    }
}

/// Writes the final count of every series not observed for 6 minutes and forgets it; forgets
/// single events older than 6 minutes (client-go's `finishSeries`).
pub(crate) async fn finish_series<S: EventSink>(writer: &Writer<S>) {
    let cutoff = cutoff(writer.clock.wall_now());
    let snapshots: Vec<(EventKey, Event, bool)> = writer
        .series
        .lock()
        .iter()
        .filter_map(|(key, event)| match &event.series {
            Some(series) => {
                (series.last_observed_time.0 < cutoff).then(|| (key.clone(), event.clone(), true))
            }
            None => event
                .event_time
                .as_ref()
                .is_none_or(|time| time.0 < cutoff)
                .then(|| (key.clone(), event.clone(), false)),
        })
        .collect();
    for (key, snapshot, write) in snapshots {
        if write {
            match record_event(writer, &mut snapshot.clone()).await {
                Some((_, false)) => {}
                Some((_, true)) | None => continue,
            }
        }
        // An event observed while the write was in flight reopened the series: keep it.
        let mut cache = writer.series.lock();
        if cache.get(&key) == Some(&snapshot) {
            cache.remove(&key);
        }
    }
}

/// At shutdown: writes the current count of every open series once.
async fn flush_series<S: EventSink>(writer: &Writer<S>) {
    let open: Vec<Event> = writer
        .series
        .lock()
        .values()
        .filter(|event| event.series.is_some())
        .cloned()
        .collect();
    for mut event in open {
        if record_event(writer, &mut event).await.is_none() {
            return;
        }
    }
}
