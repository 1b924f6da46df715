//! The event correlator (client-go's `EventCorrelator`): filters, aggregates, counts and
//! de-duplicates events before they are written, so that a misbehaving controller cannot flood
//! the API server.
//!
//! With the default options, as client-go:
//!
//! * **spam filter**: each source + involved object + type has a token bucket of
//!   [`DEFAULT_SPAM_BURST`] (25) events refilled at [`DEFAULT_SPAM_QPS`] (one every 5 minutes);
//!   an event finding the bucket empty is skipped;
//! * **aggregator**: events that differ only by message (same source, involved object, type,
//!   reason, reporting controller and instance) are combined once
//!   [`DEFAULT_AGGREGATE_MAX_EVENTS`] (10) distinct messages were seen within
//!   [`DEFAULT_AGGREGATE_INTERVAL`] (600 s): the result is one event whose message starts with
//!   `"(combined from similar events): "`;
//! * **event logger**: a repeat of an identical event becomes a strategic-merge patch of the
//!   existing event, incrementing `count` and updating `lastTimestamp` and `message`;
//! * every cache is an LRU of [`MAX_LRU_CACHE_ENTRIES`] (4096) entries.

mod keys;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube_flowcontrol::{Limit, Limiter, RealClock, SharedClock};
use parking_lot::Mutex;
use serde_json::Value;

use crate::lru::Lru;
use crate::patch::two_way_merge_patch;
use crate::types::{generate_event_name, meta_time, unix_nanos};

pub use keys::{
    AGGREGATE_MESSAGE_PREFIX, aggregate_by_reason, aggregate_message_by_reason, event_key, spam_key,
};

/// Entries in each of the correlator's LRU caches (client-go's `maxLruCacheEntries`).
pub const MAX_LRU_CACHE_ENTRIES: usize = 4096;
/// Distinct messages of similar events after which they are aggregated.
pub const DEFAULT_AGGREGATE_MAX_EVENTS: usize = 10;
/// How long after the last similar event a new one still counts towards aggregation.
pub const DEFAULT_AGGREGATE_INTERVAL: Duration = Duration::from_secs(600);
/// Events a source may send about an object at once.
pub const DEFAULT_SPAM_BURST: usize = 25;
/// The refill rate of the spam filter's buckets: one event every 5 minutes (as a Go
/// `float32`, like client-go's `1. / 300.`).
pub const DEFAULT_SPAM_QPS: f32 = 1. / 300.;

/// Groups events for aggregation: returns the aggregate key (the group) and the local key (what
/// distinguishes events within the group).
pub type AggregateKeyFn = Arc<dyn Fn(&Event) -> (String, String) + Send + Sync>;
/// Makes the message of an aggregate event.
pub type AggregateMessageFn = Arc<dyn Fn(&Event) -> String + Send + Sync>;
/// The spam filter's key: events with the same key share a token bucket.
pub type SpamKeyFn = Arc<dyn Fn(&Event) -> String + Send + Sync>;

/// The correlator's settings (client-go's `CorrelatorOptions`). Anything left unset (or set to
/// zero) takes client-go's default.
///
/// ```
/// use std::time::Duration;
/// use kube_record::correlator::CorrelatorOptions;
///
/// let options = CorrelatorOptions::default()
///     .burst(50)
///     .max_interval(Duration::from_secs(300));
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct CorrelatorOptions {
    lru_cache_size: usize,
    burst: usize,
    qps: f32,
    key_fn: Option<AggregateKeyFn>,
    message_fn: Option<AggregateMessageFn>,
    max_events: usize,
    max_interval: Duration,
    clock: Option<SharedClock>,
    spam_key_fn: Option<SpamKeyFn>,
}

impl fmt::Debug for CorrelatorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelatorOptions")
            .field("lru_cache_size", &self.lru_cache_size)
            .field("burst", &self.burst)
            .field("qps", &self.qps)
            .field("custom_aggregate_key", &self.key_fn.is_some())
            .field("custom_aggregate_message", &self.message_fn.is_some())
            .field("max_events", &self.max_events)
            .field("max_interval", &self.max_interval)
            .field("clock", &self.clock)
            .field("custom_spam_key", &self.spam_key_fn.is_some())
            .finish()
    }
}

impl CorrelatorOptions {
    /// Entries in each LRU cache (default 4096).
    pub fn lru_cache_size(mut self, entries: usize) -> Self {
        self.lru_cache_size = entries;
        self
    }

    /// Events a source may send about an object at once (default 25).
    pub fn burst(mut self, burst: usize) -> Self {
        self.burst = burst;
        self
    }

    /// The spam filter's refill rate in events per second (default 1/300). Zero, negative and
    /// non-finite rates take the default.
    pub fn qps(mut self, qps: f32) -> Self {
        self.qps = qps;
        self
    }

    /// How events are grouped for aggregation (default [`aggregate_by_reason`]).
    pub fn aggregate_key(
        mut self,
        key: impl Fn(&Event) -> (String, String) + Send + Sync + 'static,
    ) -> Self {
        self.key_fn = Some(Arc::new(key));
        self
    }

    /// The message of aggregate events (default [`aggregate_message_by_reason`]).
    pub fn aggregate_message(
        mut self,
        message: impl Fn(&Event) -> String + Send + Sync + 'static,
    ) -> Self {
        self.message_fn = Some(Arc::new(message));
        self
    }

    /// Distinct messages after which similar events are aggregated (default 10).
    pub fn max_events(mut self, max_events: usize) -> Self {
        self.max_events = max_events;
        self
    }

    /// How long after the last similar event a new one still counts towards aggregation
    /// (default 600 s; client-go counts it in whole seconds).
    pub fn max_interval(mut self, interval: Duration) -> Self {
        self.max_interval = interval;
        self
    }

    /// The clock (default: the broadcaster's, or the real clock for a correlator built alone).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The spam filter's key (default [`spam_key`]).
    pub fn spam_key(mut self, key: impl Fn(&Event) -> String + Send + Sync + 'static) -> Self {
        self.spam_key_fn = Some(Arc::new(key));
        self
    }

    pub(crate) fn has_clock(&self) -> bool {
        self.clock.is_some()
    }
}

/// The outcome of [`EventCorrelator::correlate`].
#[derive(Debug, Clone, PartialEq)]
pub enum Correlation {
    /// The spam filter refused the event: do not write it.
    Skip,
    /// Write this event.
    Record(Box<CorrelatedEvent>),
}

/// An event to write, after correlation.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelatedEvent {
    /// The event (possibly an aggregate event; with a count above one it repeats an existing
    /// event).
    pub event: Event,
    /// The strategic-merge patch to apply to the existing event, for a repeat.
    pub patch: Option<Value>,
    /// Whether the event is an aggregate of similar events.
    pub aggregated: bool,
}

/// Filters, aggregates, counts and de-duplicates events (client-go's `EventCorrelator`).
///
/// ```
/// use k8s_openapi::api::core::v1::{Event, EventSource};
/// use kube_record::correlator::{Correlation, EventCorrelator, CorrelatorOptions};
///
/// let correlator = EventCorrelator::new(CorrelatorOptions::default());
/// let event = Event {
///     reason: Some("Started".into()),
///     message: Some("hello".into()),
///     count: Some(1),
///     source: Some(EventSource { component: Some("demo".into()), host: None }),
///     ..Event::default()
/// };
/// let Correlation::Record(first) = correlator.correlate(event.clone()) else { unreachable!() };
/// assert!(first.patch.is_none()); // a new event: create it
/// correlator.update_state(&first.event); // what the sink stored
/// let Correlation::Record(second) = correlator.correlate(event) else { unreachable!() };
/// assert_eq!(second.event.count, Some(2)); // a repeat: patch the stored event
/// assert_eq!(second.patch.unwrap()["count"], 2);
/// ```
pub struct EventCorrelator {
    spam_filter: SpamFilter,
    aggregator: Aggregator,
    logger: EventLogger,
}

impl fmt::Debug for EventCorrelator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventCorrelator").finish_non_exhaustive()
    }
}

impl EventCorrelator {
    /// A correlator with these options (unset ones take client-go's defaults).
    pub fn new(options: CorrelatorOptions) -> EventCorrelator {
        let size = if options.lru_cache_size == 0 {
            MAX_LRU_CACHE_ENTRIES
        } else {
            options.lru_cache_size
        };
        let burst = if options.burst == 0 {
            DEFAULT_SPAM_BURST
        } else {
            options.burst
        };
        let qps = if options.qps.is_finite() && options.qps > 0.0 {
            options.qps
        } else {
            DEFAULT_SPAM_QPS
        };
        let max_events = if options.max_events == 0 {
            DEFAULT_AGGREGATE_MAX_EVENTS
        } else {
            options.max_events
        };
        let max_interval = if options.max_interval.is_zero() {
            DEFAULT_AGGREGATE_INTERVAL
        } else {
            options.max_interval
        };
        let clock = options.clock.unwrap_or_else(RealClock::shared);
        EventCorrelator {
            spam_filter: SpamFilter {
                cache: Mutex::new(Lru::new(size)),
                burst,
                limit: Limit::per_second(f64::from(qps)),
                clock: clock.clone(),
                key_fn: options.spam_key_fn.unwrap_or_else(|| Arc::new(spam_key)),
            },
            aggregator: Aggregator {
                cache: Mutex::new(Lru::new(size)),
                key_fn: options
                    .key_fn
                    .unwrap_or_else(|| Arc::new(aggregate_by_reason)),
                message_fn: options
                    .message_fn
                    .unwrap_or_else(|| Arc::new(aggregate_message_by_reason)),
                max_events,
                max_interval,
                clock,
            },
            logger: EventLogger {
                cache: Mutex::new(Lru::new(size)),
            },
        }
    }

    /// Filters, aggregates, counts and de-duplicates one event (client-go's `EventCorrelate`).
    pub fn correlate(&self, event: Event) -> Correlation {
        let (aggregate, key) = self.aggregator.aggregate(&event);
        let aggregated = aggregate.is_some();
        let (observed, patch) = self.logger.observe(aggregate.unwrap_or(event), &key);
        if self.spam_filter.filter(&observed) {
            return Correlation::Skip;
        }
        Correlation::Record(Box::new(CorrelatedEvent {
            event: observed,
            patch,
            aggregated,
        }))
    }

    /// Records what the server stored (name, resourceVersion, count), so that the next repeat
    /// patches it (client-go's `UpdateState`).
    pub fn update_state(&self, event: &Event) {
        self.logger.update_state(event);
    }
}

/// Throttles the events a source may send about an object (client-go's
/// `EventSourceObjectSpamFilter`).
struct SpamFilter {
    cache: Mutex<Lru<Limiter>>,
    burst: usize,
    limit: Limit,
    clock: SharedClock,
    key_fn: SpamKeyFn,
}

impl SpamFilter {
    /// Whether the event must be skipped.
    fn filter(&self, event: &Event) -> bool {
        let key = (self.key_fn)(event);
        let mut cache = self.cache.lock();
        if let Some(limiter) = cache.get_mut(&key) {
            return !limiter.allow();
        }
        let limiter = Limiter::with_clock(self.limit, self.burst, self.clock.clone());
        let skip = !limiter.allow();
        cache.insert(&key, limiter);
        skip
    }
}

/// What the aggregator remembers of a group of similar events.
struct AggregateRecord {
    local_keys: HashSet<String, foldhash::fast::RandomState>,
    last: Instant,
}

/// Combines similar events (client-go's `EventAggregator`).
struct Aggregator {
    cache: Mutex<Lru<AggregateRecord>>,
    key_fn: AggregateKeyFn,
    message_fn: AggregateMessageFn,
    max_events: usize,
    max_interval: Duration,
    clock: SharedClock,
}

impl Aggregator {
    /// Returns the aggregate event to write instead of `event` (if the group is over the
    /// threshold) and the logger's cache key: the aggregate key for an aggregate event, the
    /// full event key otherwise.
    fn aggregate(&self, event: &Event) -> (Option<Event>, String) {
        let now = self.clock.now();
        let wall = self.clock.wall_now();
        let (aggregate_key, local_key) = (self.key_fn)(event);

        let mut cache = self.cache.lock();
        let fresh = || AggregateRecord {
            local_keys: HashSet::default(),
            last: now,
        };
        let over_threshold = match cache.get_mut(&aggregate_key) {
            Some(record) => {
                // A record older than the interval starts over (client-go compares with `>`).
                if now.saturating_duration_since(record.last) > self.max_interval {
                    *record = fresh();
                }
                record.local_keys.insert(local_key);
                record.last = now;
                let over = record.local_keys.len() >= self.max_events;
                if over {
                    // Do not grow the set beyond the maximum: forget any one message.
                    if let Some(any) = record.local_keys.iter().next().cloned() {
                        record.local_keys.remove(&any);
                    }
                }
                over
            }
            None => {
                let mut record = fresh();
                record.local_keys.insert(local_key);
                let over = record.local_keys.len() >= self.max_events;
                if over && let Some(any) = record.local_keys.iter().next().cloned() {
                    record.local_keys.remove(&any);
                }
                cache.insert(&aggregate_key, record);
                over
            }
        };
        drop(cache);
        if !over_threshold {
            return (None, event_key(event));
        }
        let timestamp = meta_time(wall);
        let name = generate_event_name(keys::s(&event.involved_object.name), unix_nanos(wall));
        let aggregate = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: event.metadata.namespace.clone(),
                ..ObjectMeta::default()
            },
            count: Some(1),
            first_timestamp: Some(timestamp.clone()),
            involved_object: event.involved_object.clone(),
            last_timestamp: Some(timestamp),
            message: Some((self.message_fn)(event)),
            type_: event.type_.clone(),
            reason: event.reason.clone(),
            source: event.source.clone(),
            ..Event::default()
        };
        (Some(aggregate), aggregate_key)
    }
}

/// What the logger remembers of an event it saw.
#[derive(Debug, Clone, Default)]
struct EventLog {
    count: u64,
    first_timestamp: Option<Time>,
    name: Option<String>,
    resource_version: Option<String>,
}

impl EventLog {
    fn of(event: &Event) -> EventLog {
        EventLog {
            count: u64::try_from(event.count.unwrap_or(0)).unwrap_or(0),
            first_timestamp: event.first_timestamp.clone(),
            name: event.metadata.name.clone(),
            resource_version: event.metadata.resource_version.clone(),
        }
    }
}

/// Counts occurrences of identical events (client-go's `eventLogger`).
struct EventLogger {
    cache: Mutex<Lru<EventLog>>,
}

impl EventLogger {
    /// Turns a repeat of a known event into an update of it (count + 1 and a patch).
    fn observe(&self, mut event: Event, key: &str) -> (Event, Option<Value>) {
        let mut cache = self.cache.lock();
        let last = cache.get_mut(key).cloned().unwrap_or_default();
        let mut patch = None;
        if last.count > 0 {
            event.metadata.name = last.name;
            event.metadata.resource_version = last.resource_version;
            event.first_timestamp = last.first_timestamp;
            event.count = Some(
                i32::try_from(last.count)
                    .unwrap_or(i32::MAX)
                    .saturating_add(1),
            );

            let mut old = event.clone();
            old.count = None;
            old.last_timestamp = Some(meta_time(UNIX_EPOCH));
            old.message = None;
            patch = match (serde_json::to_value(&old), serde_json::to_value(&event)) {
                (Ok(old), Ok(new)) => Some(two_way_merge_patch(&old, &new)),
                (Err(error), _) | (_, Err(error)) => {
                    tracing::error!(%error, "event correlation: could not serialize the event to compute its patch");
                    None
                }
            };
        }
        cache.insert(key, EventLog::of(&event));
        (event, patch)
    }

    fn update_state(&self, event: &Event) {
        let key = event_key(event);
        self.cache.lock().insert(&key, EventLog::of(event));
    }
}
