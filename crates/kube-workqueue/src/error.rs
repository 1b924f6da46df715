//! The crate's error type.

use thiserror::Error;

/// What can go wrong in this crate.
///
/// The queue operations themselves never fail: an item added after shutdown is dropped (logged
/// through `tracing` and counted by [`WorkQueue::dropped`](crate::WorkQueue::dropped)), exactly as
/// client-go ignores it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// [`set_provider`](crate::metrics::set_provider) was called more than once; only the first
    /// provider is used (client-go's `SetProvider` is a `sync.Once` too).
    #[error("a global workqueue metrics provider is already set")]
    MetricsProviderAlreadySet,
    /// A background task (the delaying queue's waiting loop or the metrics updater) could not be
    /// started on its own thread, outside a tokio runtime.
    #[error("cannot start the workqueue's {what} thread")]
    Spawn {
        /// Which background task.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}
