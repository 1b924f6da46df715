//! kube-rest's `Api<K>` as a [`ListerWatcher`] (feature `rest`).
//!
//! Two implementations:
//!
//! * [`ApiListerWatcher`], the one to give a [`Reflector`](crate::Reflector): it skips
//!   `metadata.managedFields` while decoding when the reflector drops them (the default), and
//!   pipelines paged lists: as soon as a page's `metadata.continue` is known, the next page is
//!   requested, and the current page is decoded while that request is in flight.
//! * `Api<K>` itself: plain `Api::list`/`Api::watch`, every field decoded.
//!
//! Both work for any k8s-openapi resource and for `Api<DynamicObject>`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_rest::Error> {
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_cache::rest::ApiListerWatcher;
//! use kube_cache::{Indexer, Reflector};
//! use kube_rest::{Api, Client};
//! use tokio_util::sync::CancellationToken;
//!
//! let pods = Indexer::<Pod>::new();
//! let api = Api::<Pod>::all_namespaces(Client::try_default()?);
//! let reflector = Reflector::builder(ApiListerWatcher::new(api), pods.clone())
//!     .name("pods")
//!     .resync_period(std::time::Duration::from_secs(300))
//!     .transform(|pod: &mut Pod| pod.status = None)
//!     .build();
//! let handle = reflector.handle();
//! let cancel = CancellationToken::new();
//! tokio::spawn(reflector.run(cancel.clone()));
//! // handle.has_synced(), handle.last_sync_resource_version(), handle.stats()
//! # Ok(()) }
//! ```

mod skip;
mod stream_list;

/// The streaming list scanner over `chunks` (the `fuzzing` feature's entry point).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_scan_list(chunks: &[&[u8]]) -> Result<usize, String> {
    let mut scanner = stream_list::ListScanner::<serde_json::Value>::new();
    for chunk in chunks {
        scanner.feed(chunk).map_err(|e| e.to_string())?;
    }
    scanner
        .finish()
        .map(|(items, _)| items.len())
        .map_err(|e| e.to_string())
}

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::Method;
use kube_apimachinery::{ListMeta, ListParams, ObjectList, Status, WatchEvent, WatchParams};
use kube_rest::error::Cause;
use kube_rest::{Api, Error, WatchStream};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use skip::WithoutManagedFields;

use crate::lister_watcher::{ListPage, ListWatchError, ListerWatcher};

impl ListWatchError for Error {
    fn status(&self) -> Option<&Status> {
        Error::status(self)
    }

    /// A cut stream ([`Error::WatchTruncated`]) or a transport failure.
    fn is_watch_cut(&self) -> bool {
        matches!(self, Error::WatchTruncated { .. } | Error::Transport { .. })
    }

    fn is_connection_refused(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = next {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::ConnectionRefused {
                    return true;
                }
                if let Some(inner) = io.get_ref()
                    && inner
                        .downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
                {
                    return true;
                }
            }
            next = error.source();
        }
        false
    }
}

/// What the implementations need of an object type.
pub trait RestObject: DeserializeOwned + Serialize + Clone + Send + Sync + 'static {}
impl<K: DeserializeOwned + Serialize + Clone + Send + Sync + 'static> RestObject for K {}

/// `Api<K>` as it is: full decoding, one page at a time. Prefer [`ApiListerWatcher`].
impl<K: RestObject> ListerWatcher<K> for Api<K> {
    type Error = Error;
    type Watch = RestWatch<K>;

    async fn list(&self, params: &ListParams) -> Result<ListPage<K>, Error> {
        let list = Api::list(self, params).await?;
        Ok(into_page(list, |k| k))
    }

    async fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<RestWatch<K>, Error> {
        Ok(RestWatch::Full(
            Api::watch(self, params, resource_version).await?,
        ))
    }

    fn supports_streaming_list(&self) -> bool {
        true
    }
}

/// `Api<K>` for a reflector: decoding without `managedFields` when the reflector drops them,
/// and pipelined paging (see the [module documentation](self)).
pub struct ApiListerWatcher<K> {
    api: Api<K>,
    skip_managed_fields: bool,
    pipeline: bool,
    prefetch: Arc<Mutex<Option<Prefetch>>>,
}

impl<K> std::fmt::Debug for ApiListerWatcher<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiListerWatcher")
            .field("api", &self.api)
            .field("skip_managed_fields", &self.skip_managed_fields)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

/// The request of the next page, sent before it was asked for.
struct Prefetch {
    params: ListParams,
    task: AbortOnDrop<Result<Bytes, Error>>,
}

/// A spawned task aborted when dropped (a prefetched page nobody will ask for).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<K> From<Api<K>> for ApiListerWatcher<K> {
    fn from(api: Api<K>) -> Self {
        ApiListerWatcher {
            api,
            skip_managed_fields: false,
            pipeline: true,
            prefetch: Arc::default(),
        }
    }
}

impl<K: RestObject> ApiListerWatcher<K> {
    /// Lists and watches with `api` (its namespace or all namespaces). managedFields are
    /// decoded until a reflector says it drops them; paging is pipelined.
    pub fn new(api: Api<K>) -> Self {
        ApiListerWatcher::from(api)
    }

    /// Whether to request the next page while decoding the current one (default `true`;
    /// needs a tokio runtime that can run the request on another task, the multi-threaded
    /// one for the decoding to overlap with it).
    pub fn pipeline(mut self, on: bool) -> Self {
        self.pipeline = on;
        self
    }

    /// Whether `metadata.managedFields` is skipped while decoding (set by the reflector from
    /// its `drop_managed_fields` option; set it here for use without a reflector).
    pub fn skip_managed_fields(mut self, on: bool) -> Self {
        self.skip_managed_fields = on;
        self
    }

    /// The API.
    pub fn api(&self) -> &Api<K> {
        &self.api
    }
}

/// Sends a list request and reads its body.
async fn fetch<K: RestObject>(api: Api<K>, params: ListParams) -> Result<Bytes, Error> {
    let resource = api.resource();
    api.client()
        .request(Method::GET)
        .group_version(&resource.group, &resource.version)
        .namespace(api.namespace())
        .resource(&resource.plural)
        .params(params.to_query())
        .send()
        .await
}

/// Asks for the page after `params` (continue token `token`) in the background, where the
/// reflector's pager will look for it.
fn start_prefetch<K: RestObject>(
    api: &Api<K>,
    params: &ListParams,
    token: String,
    prefetch: &Mutex<Option<Prefetch>>,
) {
    // What the reflector's pager asks next: same options, this token, no version.
    let mut next = params.clone();
    next.continue_token = Some(token);
    next.resource_version = None;
    next.resource_version_match = None;
    let task = tokio::spawn(fetch(api.clone(), next.clone()));
    *prefetch.lock() = Some(Prefetch {
        params: next,
        task: AbortOnDrop(task),
    });
}

/// Where to ask for the page after the one being read.
struct NextPage<K> {
    api: Api<K>,
    params: ListParams,
    prefetch: Arc<Mutex<Option<Prefetch>>>,
}

/// Sends a list request and decodes its items while the body arrives, on a blocking thread
/// (see [`stream_list`]). With `next`, the following page is asked for as soon as this one's
/// continue token is read.
async fn stream_page<K: RestObject>(
    api: Api<K>,
    params: ListParams,
    skip_managed_fields: bool,
    next: Option<NextPage<K>>,
) -> Result<ListPage<K>, Error> {
    let resource = api.resource();
    let response = api
        .client()
        .request(Method::GET)
        .group_version(&resource.group, &resource.version)
        .namespace(api.namespace())
        .resource(&resource.plural)
        .params(params.to_query())
        .send_streaming()
        .await?;
    let mut body = response.into_body();
    // A bounded channel: a decoder that falls behind slows the reading down.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let runtime = tokio::runtime::Handle::current();
    let decoder = tokio::task::spawn_blocking(move || {
        let _runtime = runtime.enter();
        let on_metadata = |meta: &ListMeta| {
            if let Some(NextPage {
                api,
                params,
                prefetch,
            }) = &next
                && let Some(token) = meta.continue_token.as_ref().filter(|t| !t.is_empty())
            {
                start_prefetch(api, params, token.clone(), prefetch);
            }
        };
        if skip_managed_fields {
            stream_list::scan_chunks::<WithoutManagedFields<K>>(rx, on_metadata)
                .map(|(items, meta)| (items.into_iter().map(|w| w.0).collect::<Vec<K>>(), meta))
        } else {
            stream_list::scan_chunks::<K>(rx, on_metadata)
        }
    });
    let mut read_error = None;
    while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
        match chunk {
            Ok(chunk) => {
                if tx.send(chunk).await.is_err() {
                    break; // the decoder stopped on an error: it reports it
                }
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let decoded = decoder.await.map_err(|e| Error::Transport {
        context: "decoding a list".into(),
        source: Some(Cause::new(e)),
    })?;
    if let Some(e) = read_error {
        return Err(e);
    }
    let (items, metadata) = decoded.map_err(|e| Error::Decode {
        context: "list".into(),
        source: Some(Cause::new(e)),
    })?;
    Ok(ListPage {
        items,
        resource_version: metadata.resource_version.unwrap_or_default(),
        continue_token: metadata.continue_token.filter(|t| !t.is_empty()),
        remaining_item_count: metadata.remaining_item_count,
    })
}

/// The `metadata` of a list without decoding its items (they are scanned, not built).
fn peek_list_meta(bytes: &[u8]) -> Result<ListMeta, Error> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(default)]
        metadata: ListMeta,
    }
    serde_json::from_slice::<Peek>(bytes)
        .map(|p| p.metadata)
        .map_err(|e| decode_error("list metadata", e))
}

fn decode_error(context: &str, e: serde_json::Error) -> Error {
    Error::Decode {
        context: context.to_string(),
        source: Some(Cause::new(e)),
    }
}

/// Decodes a page, with or without managedFields.
pub fn decode_page<K: DeserializeOwned>(
    bytes: &[u8],
    skip_managed_fields: bool,
) -> Result<ListPage<K>, Error> {
    if skip_managed_fields {
        let list: ObjectList<WithoutManagedFields<K>> =
            serde_json::from_slice(bytes).map_err(|e| decode_error("list", e))?;
        Ok(into_page(list, |w| w.0))
    } else {
        let list: ObjectList<K> =
            serde_json::from_slice(bytes).map_err(|e| decode_error("list", e))?;
        Ok(into_page(list, |k| k))
    }
}

fn into_page<T, K>(list: ObjectList<T>, f: impl Fn(T) -> K) -> ListPage<K> {
    let ObjectList { metadata, items } = list;
    ListPage {
        items: items.into_iter().map(f).collect(),
        resource_version: metadata.resource_version.unwrap_or_default(),
        continue_token: metadata.continue_token.filter(|t| !t.is_empty()),
        remaining_item_count: metadata.remaining_item_count,
    }
}

impl<K: RestObject> ListerWatcher<K> for ApiListerWatcher<K> {
    type Error = Error;
    type Watch = RestWatch<K>;

    fn list(&self, params: &ListParams) -> impl Future<Output = Result<ListPage<K>, Error>> + Send {
        let api = self.api.clone();
        let params = params.clone();
        let prefetch = Arc::clone(&self.prefetch);
        let (skip, pipeline) = (self.skip_managed_fields, self.pipeline);
        async move {
            let stashed = prefetch.lock().take();
            let pipelined = pipeline && params.limit.is_some_and(|l| l > 0);
            let bytes = match stashed {
                Some(mut stashed) if stashed.params == params => {
                    (&mut stashed.task.0).await.map_err(|e| Error::Transport {
                        context: "prefetching the next page of a list".into(),
                        source: Some(Cause::new(e)),
                    })??
                }
                // Not the page that was guessed (or none was): dropping it aborts it. The page
                // is decoded while it arrives, and the next one asked for as soon as this
                // one's continue token is in.
                _ => {
                    let next = pipelined.then(|| NextPage {
                        api: api.clone(),
                        params: params.clone(),
                        prefetch: Arc::clone(&prefetch),
                    });
                    return stream_page(api, params, skip, next).await;
                }
            };
            if pipelined {
                let meta = peek_list_meta(&bytes)?;
                if let Some(token) = meta.continue_token.filter(|t| !t.is_empty()) {
                    start_prefetch(&api, &params, token, &prefetch);
                }
            }
            decode_page(&bytes, skip)
        }
    }

    async fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<RestWatch<K>, Error> {
        let resource = self.api.resource();
        let response = self
            .api
            .client()
            .request(Method::GET)
            .group_version(&resource.group, &resource.version)
            .namespace(self.api.namespace())
            .resource(&resource.plural)
            .params(params.to_query(resource_version))
            .send_streaming()
            .await?;
        let body = response.into_body();
        Ok(if self.skip_managed_fields {
            RestWatch::Skip(WatchStream::from_stream(body))
        } else {
            RestWatch::Full(WatchStream::from_stream(body))
        })
    }

    fn supports_streaming_list(&self) -> bool {
        true
    }

    fn set_skip_managed_fields(&mut self, skip: bool) {
        self.skip_managed_fields = skip;
    }
}

/// The watch of the REST implementations: kube-rest's [`WatchStream`], decoding every field
/// or skipping `managedFields`.
#[derive(Debug)]
pub enum RestWatch<K> {
    /// Every field decoded.
    Full(WatchStream<K>),
    /// `metadata.managedFields` skipped.
    Skip(WatchStream<WithoutManagedFields<K>>),
}

impl<K: DeserializeOwned> Stream for RestWatch<K> {
    type Item = Result<WatchEvent<K>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Both streams are Unpin.
        match self.get_mut() {
            RestWatch::Full(w) => Pin::new(w).poll_next(cx),
            RestWatch::Skip(w) => Pin::new(w)
                .poll_next(cx)
                .map(|e| e.map(|r| r.map(|e| e.map(|w| w.0)))),
        }
    }
}
