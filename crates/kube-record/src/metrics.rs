//! What the recorders count: every event recorded, dropped, aggregated, filtered as spam,
//! written, or abandoned, and every failed sink call.
//!
//! Each broadcaster keeps its own [`Counters`] (read them with `counters()`); an
//! [`EventMetrics`] given to the broadcaster's builder sees the same observations (the
//! `prometheus` feature provides one for `prometheus-client`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which event API a count belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventApi {
    /// core/v1 events ([`EventBroadcaster`](crate::EventBroadcaster)).
    CoreV1,
    /// events.k8s.io/v1 events ([`events::EventBroadcaster`](crate::events::EventBroadcaster)).
    EventsV1,
}

impl EventApi {
    /// `"core/v1"` or `"events.k8s.io/v1"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventApi::CoreV1 => "core/v1",
            EventApi::EventsV1 => "events.k8s.io/v1",
        }
    }
}

/// Why an event was dropped before reaching a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A queue already held its maximum (1000 events by default, client-go's
    /// `maxQueuedEvents`).
    QueueFull,
    /// The broadcaster was shut down.
    ShutDown,
    /// The event was still queued when the shutdown's flush deadline passed.
    FlushTimeout,
}

impl DropReason {
    /// `"queue_full"`, `"shut_down"` or `"flush_timeout"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::ShutDown => "shut_down",
            DropReason::FlushTimeout => "flush_timeout",
        }
    }
}

/// One observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Metric {
    /// A recorder accepted an event (it was queued for every watcher).
    Recorded,
    /// An event was dropped (for one watcher, or at the recorder).
    Dropped(DropReason),
    /// The correlator combined an event with similar ones into an aggregate event.
    Aggregated,
    /// The spam filter skipped an event.
    SpamFiltered,
    /// A sink stored an event (created or patched).
    Written,
    /// A sink call failed; `retryable` tells whether the writer may try again.
    SinkError {
        /// Whether the failure may be retried.
        retryable: bool,
    },
    /// The writer gave an event up (retry limit, an error not worth retrying, or shutdown).
    Abandoned,
}

/// Receives every observation of a broadcaster (in addition to its built-in [`Counters`]).
pub trait EventMetrics: Send + Sync + fmt::Debug {
    /// Counts one observation.
    fn observe(&self, api: EventApi, metric: Metric);
}

/// The built-in counters of a broadcaster.
#[derive(Debug, Default)]
pub struct Counters {
    recorded: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_shut_down: AtomicU64,
    dropped_flush_timeout: AtomicU64,
    aggregated: AtomicU64,
    spam_filtered: AtomicU64,
    written: AtomicU64,
    sink_errors: AtomicU64,
    abandoned: AtomicU64,
}

/// A copy of a broadcaster's [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CountersSnapshot {
    /// Events accepted by a recorder.
    pub recorded: u64,
    /// Events dropped because a queue was full.
    pub dropped_queue_full: u64,
    /// Events refused or dropped because the broadcaster was shut down.
    pub dropped_shut_down: u64,
    /// Events still queued when the shutdown's flush deadline passed.
    pub dropped_flush_timeout: u64,
    /// Aggregate events made by the correlator.
    pub aggregated: u64,
    /// Events skipped by the spam filter.
    pub spam_filtered: u64,
    /// Events stored by a sink.
    pub written: u64,
    /// Failed sink calls.
    pub sink_errors: u64,
    /// Events given up by the writer.
    pub abandoned: u64,
}

impl CountersSnapshot {
    /// Every drop, whatever its reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_shut_down + self.dropped_flush_timeout
    }
}

impl Counters {
    fn count(&self, metric: Metric) {
        let counter = match metric {
            Metric::Recorded => &self.recorded,
            Metric::Dropped(DropReason::QueueFull) => &self.dropped_queue_full,
            Metric::Dropped(DropReason::ShutDown) => &self.dropped_shut_down,
            Metric::Dropped(DropReason::FlushTimeout) => &self.dropped_flush_timeout,
            Metric::Aggregated => &self.aggregated,
            Metric::SpamFiltered => &self.spam_filtered,
            Metric::Written => &self.written,
            Metric::SinkError { .. } => &self.sink_errors,
            Metric::Abandoned => &self.abandoned,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> CountersSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            recorded: load(&self.recorded),
            dropped_queue_full: load(&self.dropped_queue_full),
            dropped_shut_down: load(&self.dropped_shut_down),
            dropped_flush_timeout: load(&self.dropped_flush_timeout),
            aggregated: load(&self.aggregated),
            spam_filtered: load(&self.spam_filtered),
            written: load(&self.written),
            sink_errors: load(&self.sink_errors),
            abandoned: load(&self.abandoned),
        }
    }
}

/// The counters of one broadcaster and its optional external [`EventMetrics`].
#[derive(Debug)]
pub(crate) struct MetricsHub {
    api: EventApi,
    counters: Counters,
    external: Option<Arc<dyn EventMetrics>>,
}

impl MetricsHub {
    pub(crate) fn new(api: EventApi, external: Option<Arc<dyn EventMetrics>>) -> MetricsHub {
        MetricsHub {
            api,
            counters: Counters::default(),
            external,
        }
    }

    pub(crate) fn inc(&self, metric: Metric) {
        self.counters.count(metric);
        if let Some(external) = &self.external {
            external.observe(self.api, metric);
        }
    }

    pub(crate) fn snapshot(&self) -> CountersSnapshot {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Debug, Default)]
    struct Seen(Mutex<Vec<(EventApi, Metric)>>);

    impl EventMetrics for Seen {
        fn observe(&self, api: EventApi, metric: Metric) {
            self.0.lock().push((api, metric));
        }
    }

    #[test]
    fn hub_counts_and_forwards() {
        let seen = Arc::new(Seen::default());
        let hub = MetricsHub::new(EventApi::EventsV1, Some(seen.clone()));
        hub.inc(Metric::Recorded);
        hub.inc(Metric::Dropped(DropReason::QueueFull));
        hub.inc(Metric::Dropped(DropReason::FlushTimeout));
        hub.inc(Metric::SinkError { retryable: true });
        let snapshot = hub.snapshot();
        assert_eq!(snapshot.recorded, 1);
        assert_eq!(snapshot.dropped(), 2);
        assert_eq!(snapshot.sink_errors, 1);
        assert_eq!(seen.0.lock().len(), 4);
        assert_eq!(seen.0.lock()[0], (EventApi::EventsV1, Metric::Recorded));
    }
}
