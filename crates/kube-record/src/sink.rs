//! Where events go: the [`EventSink`] trait (core/v1 events) and the error a sink reports.

use std::future::Future;

use k8s_openapi::api::core::v1::Event;
use kube_apimachinery::Status;
use serde_json::Value;

/// Stores core/v1 events (client-go's `record.EventSink`): create, update and patch.
///
/// A sink must respect the namespace embedded in each event. Implemented by
/// [`MemorySink`](crate::MemorySink) (tests) and, with the `rest` feature, by
/// `RestSink` (an API server through kube-rest).
pub trait EventSink: Send + Sync + 'static {
    /// Creates the event; returns the stored event (with its resourceVersion).
    fn create(&self, event: &Event) -> impl Future<Output = Result<Event, SinkError>> + Send;

    /// Replaces the event (a `PUT`).
    fn update(&self, event: &Event) -> impl Future<Output = Result<Event, SinkError>> + Send;

    /// Applies a strategic-merge `patch` to the stored event named like `event` (in its
    /// namespace); returns the patched event.
    fn patch(
        &self,
        event: &Event,
        patch: &Value,
    ) -> impl Future<Output = Result<Event, SinkError>> + Send;
}

/// Why a sink could not store an event.
///
/// The writer decides from it whether to try again (see [`SinkError::is_retryable`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The server answered with an error `Status`.
    #[error("the server rejected the event: {} ({}): {}", .0.reason, .0.code, .0.message)]
    Status(Box<Status>),
    /// The request could not be built (it would be built the same way next time).
    #[error("the event request could not be built: {message}")]
    Request {
        /// What was wrong.
        message: String,
    },
    /// The server could not be reached or its answer could not be read.
    #[error("the event could not be written: {message}")]
    Transport {
        /// What happened.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// The namespace of an event, which a sink's write needs (client-go's `EventSinkImpl` refuses
/// an event without one).
#[cfg(any(feature = "rest", feature = "kube"))]
pub(crate) fn namespace_of<'a, K: kube_apimachinery::Object>(
    event: &'a K,
    verb: &str,
) -> Result<&'a str, SinkError> {
    event.namespace().ok_or_else(|| SinkError::Request {
        message: format!("can't {verb} an event with empty namespace"),
    })
}

/// The `StatusCause` type the API server gives when a namespace is being deleted
/// (`v1.NamespaceTerminatingCause`).
pub const NAMESPACE_TERMINATING_CAUSE: &str = "NamespaceTerminating";

impl SinkError {
    /// An error answer with this code, reason and message.
    pub fn status(code: u16, reason: &str, message: impl Into<String>) -> SinkError {
        SinkError::Status(Box::new(Status::failure(code, reason, message)))
    }

    /// The API `Status`, when the server answered with one.
    pub fn api_status(&self) -> Option<&Status> {
        match self {
            SinkError::Status(status) => Some(status),
            _ => None,
        }
    }

    /// `404 NotFound` (client-go's `util.IsKeyNotFoundError`: a patch of an event that no
    /// longer exists falls back to a create).
    pub fn is_not_found(&self) -> bool {
        self.api_status().is_some_and(|s| s.code == 404)
    }

    /// `409 AlreadyExists`.
    pub fn is_already_exists(&self) -> bool {
        self.api_status().is_some_and(Status::is_already_exists)
    }

    /// The event's namespace is being deleted (a `NamespaceTerminating` cause).
    pub fn is_namespace_terminating(&self) -> bool {
        self.api_status()
            .and_then(|s| s.details.as_ref())
            .is_some_and(|d| {
                d.causes
                    .iter()
                    .any(|c| c.reason == NAMESPACE_TERMINATING_CAUSE)
            })
    }

    /// Whether writing the same event again may succeed.
    ///
    /// Transport failures are retried, as in client-go. A request that cannot be built is not.
    /// An error `Status` is not retried (client-go abandons every `StatusError`), **except**
    /// `429` and `5xx`: client-go's REST client retries those itself when the server sends
    /// `Retry-After`, below the recorder; our sinks need not, so the recorder does. An
    /// `AlreadyExists` or a terminating namespace is never retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            SinkError::Status(status) => {
                !self.is_already_exists()
                    && !self.is_namespace_terminating()
                    && (status.code == 429 || (500..=599).contains(&status.code))
            }
            SinkError::Request { .. } => false,
            SinkError::Transport { .. } => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube_apimachinery::{StatusCause, StatusDetails};

    #[test]
    fn classification() {
        assert!(SinkError::status(404, "NotFound", "gone").is_not_found());
        assert!(!SinkError::status(404, "NotFound", "gone").is_retryable());
        let exists = SinkError::status(409, "AlreadyExists", "exists");
        assert!(exists.is_already_exists() && !exists.is_retryable());
        assert!(SinkError::status(500, "InternalError", "boom").is_retryable());
        assert!(SinkError::status(503, "ServiceUnavailable", "later").is_retryable());
        assert!(SinkError::status(429, "TooManyRequests", "slow down").is_retryable());
        assert!(!SinkError::status(0, "", "").is_retryable());
        assert!(!SinkError::status(422, "Invalid", "bad").is_retryable());
        assert!(
            !SinkError::Request {
                message: "x".into()
            }
            .is_retryable()
        );
        let transport = SinkError::Transport {
            message: "connection refused".into(),
            source: None,
        };
        assert!(transport.is_retryable());

        let mut status = Status::failure(403, "Forbidden", "namespace is terminating");
        status.details = Some(StatusDetails {
            causes: vec![StatusCause {
                reason: NAMESPACE_TERMINATING_CAUSE.into(),
                ..StatusCause::default()
            }],
            ..StatusDetails::default()
        });
        let terminating = SinkError::Status(Box::new(status));
        assert!(terminating.is_namespace_terminating());
        assert!(!terminating.is_retryable());
    }
}
