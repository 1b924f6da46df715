//! Why a reflector's list or watch failed, and how client-go classifies it.

use kube_apimachinery::Status;

use crate::lister_watcher::ListWatchError;

/// Why a list or a watch of a reflector failed. Given to the
/// [watch error handler](crate::ReflectorBuilder::watch_error_handler).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReflectorError<E: std::error::Error + 'static> {
    /// A list request failed.
    #[error("failed to list: {source}")]
    List {
        /// The lister's error.
        #[source]
        source: E,
    },
    /// A watch request failed to start, or its stream failed.
    #[error("failed to watch: {source}")]
    Watch {
        /// The watcher's error.
        #[source]
        source: E,
    },
    /// The server sent an `ERROR` watch event (`410 Gone` when the resourceVersion left its
    /// window).
    #[error("watch ERROR event: {0}")]
    WatchStatus(Box<Status>),
    /// The watch closed within a second without a single event (client-go's "very short
    /// watch"): something is wrong with the server or the request, so the reflector relists.
    #[error(
        "very short watch: unexpected watch close - watch lasted less than a second and no items received"
    )]
    VeryShortWatch,
}

impl<E: ListWatchError> ReflectorError<E> {
    /// The API server's `Status` behind this error, if there is one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            ReflectorError::List { source } | ReflectorError::Watch { source } => source.status(),
            ReflectorError::WatchStatus(status) => Some(status),
            ReflectorError::VeryShortWatch => None,
        }
    }

    /// client-go's `isExpiredError`: `410 Gone` or reason `Expired`.
    pub fn is_expired(&self) -> bool {
        self.status().is_some_and(Status::is_gone)
    }

    /// A watch stream cut mid-way (resume without a relist).
    pub fn is_watch_cut(&self) -> bool {
        matches!(self, ReflectorError::Watch { source } if source.is_watch_cut())
    }
}

/// apimachinery's `IsResourceExpired`: reason `Expired` only (what the pager falls back on).
pub(crate) fn is_resource_expired(status: Option<&Status>) -> bool {
    status.is_some_and(|s| s.reason == "Expired")
}

/// client-go's `isExpiredError`.
pub(crate) fn is_expired(status: Option<&Status>) -> bool {
    status.is_some_and(Status::is_gone)
}

/// client-go's `isTooLargeResourceVersionError`: a `ResourceVersionTooLarge` cause, or the
/// `504 Timeout` "Too large resource version" of servers before v1.19.
pub(crate) fn is_too_large_resource_version(status: Option<&Status>) -> bool {
    let Some(status) = status else {
        return false;
    };
    let has_cause = status.details.as_ref().is_some_and(|d| {
        d.causes
            .iter()
            .any(|c| c.reason == "ResourceVersionTooLarge")
    });
    has_cause || (status.is_timeout() && status.message.contains("Too large resource version"))
}

/// client-go's `isWatchErrorRetriable`: a refused connection or `429`: back off and watch
/// again from where the reflector was, without a relist.
pub(crate) fn is_watch_error_retriable<E: ListWatchError>(error: &E) -> bool {
    error.is_connection_refused() || error.status().is_some_and(Status::is_too_many_requests)
}

/// What a server without watch-list (before v1.27, or with the feature off) answers a
/// `sendInitialEvents` watch: `422 Invalid` (`resourceVersionMatch is forbidden for watch`)
/// or `400 BadRequest`.
pub(crate) fn is_streaming_unsupported(status: Option<&Status>) -> bool {
    status.is_some_and(|s| s.is_invalid() || s.is_bad_request())
}
