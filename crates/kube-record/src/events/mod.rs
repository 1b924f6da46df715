//! events.k8s.io/v1 events (client-go's `tools/events`): an [`EventBroadcaster`] and
//! [`EventRecorder`] for the newer event API, where repeats of an event become an event
//! **series** instead of counts.
//!
//! * An event is *isomorphic* to an earlier one when its type, action, reason, reporting
//!   controller and instance, regarding and related objects are the same (the note may
//!   differ).
//! * The first repeat turns the cached event into a series of count 2 and patches it on the
//!   server; later repeats only increment the series in memory.
//! * Every 30 minutes ([`REFRESH_TIME`]) the series are written again (their counts and last
//!   observed times); a series not observed for 6 minutes ([`FINISH_TIME`]) is finished: its
//!   final count is written and it leaves the cache, so the next occurrence starts a new event.
//!   A single event also leaves the cache 6 minutes after it happened.
//! * Recording never waits: the broadcaster's queue and the write queue each hold at most 1000
//!   events; 8 workers write them, with up to 12 tries per event.
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_record::{EventType, MemorySink};
//! use kube_record::events::EventBroadcaster;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let broadcaster = EventBroadcaster::new();
//! let sink = MemorySink::new();
//! broadcaster.start_recording_to_sink(sink.clone()).unwrap();
//! let recorder = broadcaster.new_recorder_with_instance("my-controller", "my-controller-0");
//!
//! let mut pod = Pod::default();
//! pod.metadata.name = Some("web-0".into());
//! pod.metadata.namespace = Some("prod".into());
//! recorder
//!     .eventf(&pod, None, EventType::Normal, "Scheduled", "Binding", format_args!("assigned to {}", "node-1"))
//!     .unwrap();
//! broadcaster.shutdown().await;
//! let events = sink.events_v1();
//! assert_eq!(events[0].reporting_controller.as_deref(), Some("my-controller"));
//! assert_eq!(events[0].note.as_deref(), Some("assigned to node-1"));
//! # }
//! ```

mod broadcaster;
mod recorder;
#[cfg(test)]
mod tests;

use std::future::Future;

pub use k8s_openapi::api::events::v1::{Event, EventSeries};
use serde_json::Value;

pub use broadcaster::{
    EventBroadcaster, EventBroadcasterBuilder, FINISH_TIME, RECORD_WORKERS, REFRESH_TIME,
};
pub use recorder::EventRecorder;

use crate::sink::SinkError;

/// Stores events.k8s.io/v1 events (client-go's `events.EventSink`): create, update and patch.
///
/// Implemented by [`MemorySink`](crate::MemorySink) and, with the `rest` feature, `RestSink`.
pub trait EventSink: Send + Sync + 'static {
    /// Creates the event; returns the stored event.
    fn create(&self, event: &Event) -> impl Future<Output = Result<Event, SinkError>> + Send;

    /// Replaces the event (a `PUT`).
    fn update(&self, event: &Event) -> impl Future<Output = Result<Event, SinkError>> + Send;

    /// Applies a strategic-merge `patch` to the stored event named like `event`.
    fn patch(
        &self,
        event: &Event,
        patch: &Value,
    ) -> impl Future<Output = Result<Event, SinkError>> + Send;
}
