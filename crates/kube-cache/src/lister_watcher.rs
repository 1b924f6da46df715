//! [`ListerWatcher`]: the narrow view of an API server that a reflector needs (client-go's
//! `cache.ListerWatcher`), so kube-cache works with any client.
//!
//! kube-rest's `Api<K>` implements it behind the `rest` feature (see the `rest` module);
//! tests can bring an in-memory implementation.

use std::future::Future;

use futures_core::Stream;
use kube_apimachinery::{ListParams, Status, WatchEvent, WatchParams};

/// One page of a list: its objects, the resourceVersion the list was served at, and the
/// continue token of the next page (client-go's `metav1.ListInterface` of a list result).
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage<K> {
    /// The objects of this page.
    pub items: Vec<K>,
    /// `metadata.resourceVersion` of the list.
    pub resource_version: String,
    /// `metadata.continue`: `None` (or empty on the wire) on the last page.
    pub continue_token: Option<String>,
    /// `metadata.remainingItemCount`, when the server reports it.
    pub remaining_item_count: Option<i64>,
}

/// What a reflector must know about a failed list or watch to choose its next step
/// (client-go's `apierrors.IsResourceExpired`, `IsGone`, `IsTooManyRequests`,
/// `IsInvalid`, ... on the returned error).
pub trait ListWatchError: std::error::Error + Send + Sync + 'static {
    /// The API server's `Status`, when the request got an answer (4xx/5xx, or an `ERROR`
    /// watch event); `None` for transport, TLS and decoding failures.
    fn status(&self) -> Option<&Status>;

    /// Whether a watch stream was cut (connection reset, truncated body, server closed it
    /// mid-event): the reflector resumes from the last seen resourceVersion without a relist.
    fn is_watch_cut(&self) -> bool {
        false
    }

    /// Whether the server refused the connection (client-go's `utilnet.IsConnectionRefused`):
    /// the API server is most likely restarting, so a watch that fails to start this way is
    /// retried after a backoff from where it was, without a relist.
    fn is_connection_refused(&self) -> bool {
        false
    }
}

/// Lists and watches one resource (client-go's `cache.ListerWatcher`, with
/// `WatchListClient`'s streaming lists expressed through [`WatchParams::send_initial_events`]).
///
/// Implementations do not retry: the reflector owns backoff and relists.
pub trait ListerWatcher<K>: Send + Sync + 'static {
    /// The error of a list or a watch.
    type Error: ListWatchError;
    /// The events of one watch. `WatchEvent::Error` carries a decoded `Status` (for example
    /// `410 Gone` when the resourceVersion left the server's window); an `Err` item ends the
    /// stream.
    type Watch: Stream<Item = Result<WatchEvent<K>, Self::Error>> + Send + 'static;

    /// Lists one page (`params.limit`, `params.continue_token`) or everything.
    fn list(
        &self,
        params: &ListParams,
    ) -> impl Future<Output = Result<ListPage<K>, Self::Error>> + Send;

    /// Starts a watch from `resource_version` ("" = the most recent state, with initial
    /// `ADDED` events for every object when `params.send_initial_events` is set).
    fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> impl Future<Output = Result<Self::Watch, Self::Error>> + Send;

    /// Whether [`watch`](ListerWatcher::watch) honours
    /// [`WatchParams::send_initial_events`] (client-go v1.35's
    /// `watchlist.DoesClientNotSupportWatchListSemantics`, reversed): only then does a
    /// reflector try a streaming list. `false` by default, so a hand-written implementation
    /// is never asked for something it ignores; kube-rest's `Api<K>` says `true`.
    fn supports_streaming_list(&self) -> bool {
        false
    }

    /// A hint given once by the reflector before it starts: it drops
    /// `metadata.managedFields` from every object it stores (`true`), so an implementation
    /// that decodes JSON may skip that field while decoding rather than build and drop it.
    /// The default ignores the hint (the reflector drops the field anyway).
    fn set_skip_managed_fields(&mut self, _skip: bool) {}
}
