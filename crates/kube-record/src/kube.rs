//! [`KubeSink`]: events written through kube-rs's client (feature `kube`).

use std::fmt;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube_apimachinery::{Object, Status};
use serde_json::Value;

use crate::sink::{EventSink, SinkError, namespace_of};

/// Writes events with kube-rs's `kube::Api<Event>`: `create`, `replace` and a
/// strategic-merge `patch`, in each event's namespace (client-go's `EventSinkImpl`), so a
/// controller written with kube-rs gets our broadcaster, correlator (spam filter,
/// aggregation, counting) and retrying writer. Implements both [`EventSink`] (core/v1) and
/// [`events::EventSink`](crate::events::EventSink) (events.k8s.io/v1).
///
/// API errors become [`SinkError::Status`] (the same `metav1.Status`), anything else a
/// [`SinkError::Transport`] keeping kube-rs's error as its source. kube-rs's client retries
/// `429`, `503` and `504` answers itself by default (`Config::default_retry`), below this
/// sink.
///
/// ```no_run
/// use kube_record::{EventBroadcaster, KubeSink};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube::Client::try_default().await?;
/// let broadcaster = EventBroadcaster::new();
/// broadcaster.start_recording_to_sink(KubeSink::new(client))?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KubeSink {
    client: kube::Client,
}

impl fmt::Debug for KubeSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeSink").finish_non_exhaustive()
    }
}

impl KubeSink {
    /// A sink writing through `client`.
    pub fn new(client: kube::Client) -> KubeSink {
        KubeSink { client }
    }
}

fn sink_error(error: kube::Error) -> SinkError {
    match &error {
        kube::Error::Api(status) => {
            // The same `metav1.Status` JSON on both sides.
            let converted = serde_json::to_value(status)
                .ok()
                .and_then(|v| serde_json::from_value::<Status>(v).ok());
            match converted {
                Some(status) => SinkError::Status(Box::new(status)),
                None => SinkError::status(status.code, &status.reason, status.message.clone()),
            }
        }
        _ => SinkError::Transport {
            message: error.to_string(),
            source: Some(Box::new(error)),
        },
    }
}

api_sink_impl!(KubeSink, EventSink, Event);
api_sink_impl!(KubeSink, crate::events::EventSink, EventsV1Event);
