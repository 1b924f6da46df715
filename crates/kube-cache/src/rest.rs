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

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::Method;
use kube_apimachinery::{ListMeta, ListParams, Status, WatchEvent, WatchParams};
use kube_rest::error::Cause;
use kube_rest::{Api, Error, WatchStream};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::wire::WithoutManagedFields;

use crate::lister_watcher::{ListPage, ListWatchError, ListerWatcher};
use crate::wire::{self, BodyError, into_page};

impl ListWatchError for Error {
    fn status(&self) -> Option<&Status> {
        Error::status(self)
    }

    /// A cut stream ([`Error::WatchTruncated`]) or a transport failure.
    fn is_watch_cut(&self) -> bool {
        matches!(self, Error::WatchTruncated { .. } | Error::Transport { .. })
    }

    fn is_connection_refused(&self) -> bool {
        wire::is_connection_refused(self)
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
    protobuf: bool,
    prefetch: Arc<Mutex<Option<Prefetch>>>,
}

impl<K> std::fmt::Debug for ApiListerWatcher<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiListerWatcher")
            .field("api", &self.api)
            .field("skip_managed_fields", &self.skip_managed_fields)
            .field("pipeline", &self.pipeline)
            .field("protobuf", &self.protobuf)
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

impl<K: RestObject> From<Api<K>> for ApiListerWatcher<K> {
    fn from(api: Api<K>) -> Self {
        let resource = api.resource();
        let api_version = if resource.group.is_empty() {
            resource.version.clone()
        } else {
            format!("{}/{}", resource.group, resource.version)
        };
        let protobuf = kube_apimachinery::protobuf::has_protobuf(&api_version, &resource.kind);
        ApiListerWatcher {
            api,
            skip_managed_fields: false,
            pipeline: true,
            protobuf,
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

    /// Whether lists are asked for in Kubernetes protobuf (`Accept:
    /// application/vnd.kubernetes.protobuf, application/json`, client-go's default for
    /// built-in kinds): the server encodes it several times faster than JSON, and it decodes
    /// faster. On by default for kinds with a protobuf form (built-in kinds; custom resources
    /// have none); a server that answers JSON anyway is read as JSON. Watches (and so
    /// streaming lists) ask for protobuf too.
    pub fn protobuf(mut self, on: bool) -> Self {
        self.protobuf = on;
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

/// What a list request accepts when protobuf is asked for (client-go's default).
const PROTOBUF_OR_JSON: &str = "application/vnd.kubernetes.protobuf, application/json";

/// A list request.
fn list_request<'a, K: RestObject>(
    api: &'a Api<K>,
    params: &ListParams,
    protobuf: bool,
) -> kube_rest::RequestBuilder<'a> {
    let resource = api.resource();
    let request = api
        .client()
        .request(Method::GET)
        .group_version(&resource.group, &resource.version)
        .namespace(api.namespace())
        .resource(&resource.plural)
        .params(params.to_query());
    if protobuf {
        request.accept(PROTOBUF_OR_JSON)
    } else {
        request
    }
}

/// Sends a list request and reads its body.
async fn fetch<K: RestObject>(
    api: Api<K>,
    params: ListParams,
    protobuf: bool,
) -> Result<Bytes, Error> {
    list_request(&api, &params, protobuf).send().await
}

/// Asks for the page after `params` (continue token `token`) in the background, where the
/// reflector's pager will look for it.
fn start_prefetch<K: RestObject>(
    api: &Api<K>,
    params: &ListParams,
    protobuf: bool,
    token: String,
    prefetch: &Mutex<Option<Prefetch>>,
) {
    // What the reflector's pager asks next: same options, this token, no version.
    let mut next = params.clone();
    next.continue_token = Some(token);
    next.resource_version = None;
    next.resource_version_match = None;
    let task = tokio::spawn(fetch(api.clone(), next.clone(), protobuf));
    *prefetch.lock() = Some(Prefetch {
        params: next,
        task: AbortOnDrop(task),
    });
}

/// Where to ask for the page after the one being read.
struct NextPage<K> {
    api: Api<K>,
    params: ListParams,
    protobuf: bool,
    prefetch: Arc<Mutex<Option<Prefetch>>>,
}

/// Sends a list request and decodes its items while the body arrives, on a blocking thread
/// (see [`stream_list`]). With `next`, the following page is asked for as soon as this one's
/// continue token is read.
async fn stream_page<K: RestObject>(
    api: Api<K>,
    params: ListParams,
    skip_managed_fields: bool,
    protobuf: bool,
    next: Option<NextPage<K>>,
) -> Result<ListPage<K>, Error> {
    let response = list_request(&api, &params, protobuf)
        .send_streaming()
        .await?;
    let on_metadata = move |meta: &ListMeta| {
        if let Some(NextPage {
            api,
            params,
            protobuf,
            prefetch,
        }) = &next
            && let Some(token) = meta.continue_token.as_ref().filter(|t| !t.is_empty())
        {
            start_prefetch(api, params, *protobuf, token.clone(), prefetch);
        }
    };
    let (body, answered_protobuf) = response.into_body_with_format();
    if answered_protobuf {
        wire::decode_body_with(body, move |chunks| {
            wire::protobuf::scan_chunks(chunks, skip_managed_fields, on_metadata)
        })
        .await
        .map_err(body_error)
    } else {
        wire::decode_list_body(body, skip_managed_fields, on_metadata)
            .await
            .map_err(body_error)
    }
}

/// An answer's body, and whether the server chose protobuf (its `Content-Type`).
trait BodyWithFormat {
    fn into_body_with_format(self) -> (kube_rest::Body, bool);
}

impl BodyWithFormat for http::Response<kube_rest::Body> {
    fn into_body_with_format(self) -> (kube_rest::Body, bool) {
        let protobuf = self
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(kube_apimachinery::protobuf::MEDIA_TYPE));
        (self.into_body(), protobuf)
    }
}

/// The error of a list body that did not give a page.
fn body_error<D: std::error::Error + Send + Sync + 'static>(e: BodyError<Error, D>) -> Error {
    match e {
        BodyError::Read(e) => e,
        BodyError::Decode(e) => Error::Decode {
            context: "list".into(),
            source: Some(Cause::new(e)),
        },
        BodyError::Join(e) => Error::Transport {
            context: "decoding a list".into(),
            source: Some(Cause::new(e)),
        },
    }
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
    wire::decode_page(bytes, skip_managed_fields).map_err(|e| decode_error("list", e))
}

impl<K: RestObject> ListerWatcher<K> for ApiListerWatcher<K> {
    type Error = Error;
    type Watch = RestWatch<K>;

    fn list(&self, params: &ListParams) -> impl Future<Output = Result<ListPage<K>, Error>> + Send {
        let api = self.api.clone();
        let params = params.clone();
        let prefetch = Arc::clone(&self.prefetch);
        let (skip, pipeline, protobuf) = (self.skip_managed_fields, self.pipeline, self.protobuf);
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
                        protobuf,
                        prefetch: Arc::clone(&prefetch),
                    });
                    return stream_page(api, params, skip, protobuf, next).await;
                }
            };
            if wire::protobuf::is_protobuf(&bytes) {
                return wire::protobuf::decode_page(&bytes, skip, |meta| {
                    if let Some(token) = meta.continue_token.as_ref().filter(|t| !t.is_empty())
                        && pipelined
                    {
                        start_prefetch(&api, &params, protobuf, token.clone(), &prefetch);
                    }
                })
                .map_err(|e| Error::Decode {
                    context: "list".into(),
                    source: Some(Cause::new(e)),
                });
            }
            if pipelined {
                let meta =
                    wire::peek_list_meta(&bytes).map_err(|e| decode_error("list metadata", e))?;
                if let Some(token) = meta.continue_token.filter(|t| !t.is_empty()) {
                    start_prefetch(&api, &params, protobuf, token, &prefetch);
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
        let request = self
            .api
            .client()
            .request(Method::GET)
            .group_version(&resource.group, &resource.version)
            .namespace(self.api.namespace())
            .resource(&resource.plural)
            .params(params.to_query(resource_version));
        let request = if self.protobuf {
            request.accept(PROTOBUF_OR_JSON)
        } else {
            request
        };
        let response = request.send_streaming().await?;
        let body = response.into_body_with_format();
        Ok(match body {
            (body, true) => RestWatch::Full(WatchStream::from_protobuf_stream(
                body,
                kube_apimachinery::protobuf::Decoder::new()
                    .skip_managed_fields(self.skip_managed_fields),
            )),
            (body, false) if self.skip_managed_fields => {
                RestWatch::Skip(WatchStream::from_stream(body))
            }
            (body, false) => RestWatch::Full(WatchStream::from_stream(body)),
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
