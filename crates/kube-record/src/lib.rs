//! Kubernetes event recording for controllers: client-go's `tools/record` and `tools/events`
//! in async Rust.
//!
//! Events are how a controller tells a human what it did (`kubectl describe` shows them). This
//! crate reproduces client-go's machinery so that a Rust controller behaves like a Go one:
//!
//! | piece | what it does | client-go |
//! | --- | --- | --- |
//! | [`EventRecorder`] | makes core/v1 events about objects | `record.EventRecorder` |
//! | [`EventBroadcaster`] | queues events for sinks, watchers and logs; never blocks | `record.EventBroadcaster` |
//! | [`correlator::EventCorrelator`] | spam filter, aggregation, counting | `record.EventCorrelator` |
//! | [`EventSink`] | where events are written ([`MemorySink`], `RestSink` (feature `rest`), `KubeSink` on kube-rs's client (feature `kube`)) | `record.EventSink` |
//! | [`events`] | events.k8s.io/v1 recorder with series | `tools/events` |
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_record::{EventBroadcaster, EventType, MemorySink};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let broadcaster = EventBroadcaster::new();
//! let sink = MemorySink::new(); // with the `rest` feature: RestSink::new(client)
//! broadcaster.start_recording_to_sink(sink.clone()).unwrap();
//! broadcaster.start_logging().unwrap();
//! let recorder = broadcaster.new_recorder("my-controller");
//!
//! let mut pod = Pod::default();
//! pod.metadata.name = Some("web-0".into());
//! pod.metadata.namespace = Some("prod".into());
//! for _ in 0..3 {
//!     // Identical events become one event with a count.
//!     recorder.event(&pod, EventType::Warning, "BackOff", "restarting failed container").unwrap();
//! }
//! broadcaster.shutdown().await;
//! let events = sink.events();
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].count, Some(3));
//! # }
//! ```
//!
//! # Never blocking the caller
//!
//! Recording builds the event and puts it on each watcher's queue with a non-blocking send:
//! a recorder call costs a few microseconds whatever the API server does. Each queue holds at
//! most 1000 events (client-go's `maxQueuedEvents`); beyond that new events are dropped,
//! logged through `tracing` and counted ([`EventBroadcaster::counters`], [`metrics`]).
//!
//! # Writing to the sink
//!
//! As client-go: up to 12 tries per event, the first pause a random fraction of 10 s and then
//! 10 s (on the broadcaster's clock, so tests use a fake one); a patch answered 404 falls back
//! to a create; `AlreadyExists` or a terminating namespace ends the event's retries. Every
//! give-up is logged and counted.
//!
//! # Where this crate differs from client-go, and why
//!
//! * A `429` or `5xx` answer is retried by the writer. client-go abandons every API error, but
//!   its REST client retries those answers itself (when they carry `Retry-After`) below the
//!   recorder; an [`EventSink`] need not do so.
//! * [`EventBroadcaster::shutdown`] keeps writing (and retrying) what is queued until a bound
//!   (10 s by default), then drops the rest, counted; client-go stops retrying at once. The
//!   events.k8s.io broadcaster also writes the counts of open series at shutdown.
//! * The aggregate event's name is made like every other event's (a UUID when the object name
//!   is not a valid event name prefix); client-go formats it directly.
//! * Recorder calls return `Result<(), RecordError>` in addition to logging (client-go returns
//!   nothing); ignoring it is fine.
//! * References come from the [`Referent`] trait: typed objects carry their kind and
//!   apiVersion (`k8s_openapi::Resource`), so there is no scheme lookup to fail.

#[cfg(any(feature = "rest", feature = "kube"))]
#[macro_use]
mod api_sink;
mod broadcaster;
pub mod correlator;
pub mod events;
mod fanout;
#[cfg(feature = "kube")]
mod kube;
mod lru;
mod memory;
pub mod metrics;
mod patch;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod recorder;
#[cfg(feature = "rest")]
mod rest;
mod sink;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod types;
mod writer;

pub use broadcaster::{DEFAULT_FLUSH_TIMEOUT, EventBroadcaster, EventBroadcasterBuilder};
pub use fanout::{
    EventStream, MAX_QUEUED_EVENTS, RecordError, ShutdownReport, StartError, Watcher,
};
#[cfg(feature = "kube")]
pub use kube::KubeSink;
pub use memory::{MemorySink, SinkCalls, SinkOp};
pub use metrics::CountersSnapshot;
pub use recorder::EventRecorder;
#[cfg(feature = "rest")]
pub use rest::RestSink;
pub use sink::{EventSink, NAMESPACE_TERMINATING_CAUSE, SinkError};
pub use types::{
    EventType, InvalidEventType, Reference, ReferenceError, Referent, generate_event_name,
    hostname, is_dns_subdomain,
};
pub use writer::{DEFAULT_SLEEP_DURATION, MAX_TRIES_PER_EVENT};

pub use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
