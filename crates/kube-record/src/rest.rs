//! [`RestSink`]: events written to an API server through kube-rest (feature `rest`).

use std::fmt;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use kube_apimachinery::Object;
use kube_rest::{Api, Client, Patch, PatchParams, PostParams};
use serde_json::Value;

use crate::sink::{EventSink, SinkError, namespace_of};

/// Writes events with kube-rest's `Api<Event>`: `create`, `replace` and a strategic-merge
/// `patch`, in each event's namespace (client-go's `EventSinkImpl`). Implements both
/// [`EventSink`] (core/v1) and [`events::EventSink`](crate::events::EventSink)
/// (events.k8s.io/v1).
///
/// API errors become [`SinkError::Status`]; anything else (transport, timeout, decoding) a
/// [`SinkError::Transport`] keeping kube-rest's error as its source. kube-rest's own retries of
/// `Retry-After` answers happen below this sink; configure them on the client.
///
/// ```no_run
/// use kube_record::{EventBroadcaster, RestSink};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube_rest::Client::try_from_config(kube_rest::Config::infer()?)?;
/// let broadcaster = EventBroadcaster::new();
/// broadcaster.start_recording_to_sink(RestSink::new(client))?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RestSink {
    client: Client,
}

impl fmt::Debug for RestSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestSink").finish_non_exhaustive()
    }
}

impl RestSink {
    /// A sink writing through `client`.
    pub fn new(client: Client) -> RestSink {
        RestSink { client }
    }
}

fn sink_error(error: kube_rest::Error) -> SinkError {
    match error.status() {
        Some(status) => SinkError::Status(Box::new(status.clone())),
        None => SinkError::Transport {
            message: error.to_string(),
            source: Some(Box::new(error)),
        },
    }
}

api_sink_impl!(RestSink, EventSink, Event);
api_sink_impl!(RestSink, crate::events::EventSink, EventsV1Event);
