//! kube-rs's `kube::Api<K>` as a [`ListerWatcher`] (feature `kube`): our reflector and
//! shared informers on a `kube::Client`, for controllers already written with kube-rs.
//!
//! Two implementations, both on kube-rs's client (its authentication, TLS, middleware):
//!
//! * [`KubeListerWatcher`], the one to give a [`Reflector`](crate::Reflector): it skips
//!   `metadata.managedFields` while decoding when the reflector drops them (the default).
//! * `kube::Api<K>` itself: every field decoded.
//!
//! Lists are decoded while their body arrives, with the same decoder as the `rest` feature's
//! `ApiListerWatcher` (requests go through [`kube::Client::send`]); watches are read with
//! [`kube::Client::request_events`], kube-rs's line framing, each event decoded by us. Errors
//! become [`Error`], which tells the reflector what client-go's checks would: the API
//! `Status` (so `410 Gone` and "too old resource version" relist, `429` backs off), a cut
//! watch stream, a refused connection.
//!
//! Where kube-rs's watch differs from kube-rest's: a connection that ends mid-stream without
//! an error (an unexpected EOF, the client's read timeout) ends the watch quietly, which the
//! reflector treats like a server-side close: it watches again from the last resourceVersion,
//! without a relist, as for a cut.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube::Error> {
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_cache::kube::KubeListerWatcher;
//! use kube_cache::{Indexer, Reflector};
//! use tokio_util::sync::CancellationToken;
//!
//! let client = kube::Client::try_default().await?;
//! let pods = Indexer::<Pod>::new();
//! let reflector = Reflector::builder(KubeListerWatcher::new(kube::Api::<Pod>::all(client)), pods.clone())
//!     .name("pods")
//!     .build();
//! let handle = reflector.handle();
//! let cancel = CancellationToken::new();
//! tokio::spawn(reflector.run(cancel.clone()));
//! # Ok(()) }
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};

use ::kube::client::Body;
use ::kube::{Api, Client, Resource};
use futures_core::Stream;
use http::Request;
use http_body_util::BodyExt as _;
use kube_apimachinery::{Bookmark, ListParams, Status, WatchEvent, WatchParams};
use serde::de::DeserializeOwned;

pub use crate::wire::{ScanError, WithoutManagedFields};

use crate::lister_watcher::{ListPage, ListWatchError, ListerWatcher};
use crate::wire::{self, BodyError};

/// Why a list or a watch through kube-rs failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API server answered with an error `Status` (a 4xx/5xx answer, or a `Status` line
    /// in a watch stream).
    #[error("the API server answered {} {}: {}", .status.code, .status.reason, .status.message)]
    Api {
        /// The answer, as kube-apimachinery's `Status`.
        status: Box<Status>,
    },
    /// kube-rs could not send the request or read the answer (connection, TLS, timeout,
    /// authentication, a cut stream).
    #[error("kube-rs client error")]
    Client(#[source] ::kube::Error),
    /// A list body is not a list of the expected objects.
    #[error("decoding a list failed")]
    Decode(#[source] ScanError),
    /// The thread decoding a list panicked or was cancelled.
    #[error("the list decoder stopped")]
    Decoder(#[source] tokio::task::JoinError),
}

impl Error {
    /// A kube-rs error: an API answer keeps its `Status`, anything else is a client error.
    pub fn from_kube(error: ::kube::Error) -> Error {
        match &error {
            ::kube::Error::Api(status) => Error::Api {
                status: Box::new(status_of(status)),
            },
            _ => Error::Client(error),
        }
    }
}

impl From<::kube::Error> for Error {
    fn from(error: ::kube::Error) -> Error {
        Error::from_kube(error)
    }
}

/// kube-rs's `Status` as kube-apimachinery's: the same JSON (`metav1.Status`).
fn status_of(status: &::kube::core::Status) -> Status {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| serde_json::from_value::<Status>(v).ok())
        .unwrap_or_else(|| Status::failure(status.code, &status.reason, status.message.clone()))
}

impl ListWatchError for Error {
    fn status(&self) -> Option<&Status> {
        match self {
            Error::Api { status } => Some(status),
            _ => None,
        }
    }

    /// A transport failure while a watch stream was read (kube-rs's hyper, service or
    /// stream-read errors): resume from the last resourceVersion.
    fn is_watch_cut(&self) -> bool {
        matches!(
            self,
            Error::Client(
                ::kube::Error::HyperError(_)
                    | ::kube::Error::Service(_)
                    | ::kube::Error::ReadEvents(_)
            )
        )
    }

    fn is_connection_refused(&self) -> bool {
        wire::is_connection_refused(self)
    }
}

/// What the implementations need of an object type.
pub trait KubeObject: Resource + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<K: Resource + DeserializeOwned + Clone + Send + Sync + 'static> KubeObject for K {}

/// `kube::Api<K>` as it is: every field decoded. Prefer [`KubeListerWatcher`] for a reflector.
impl<K: KubeObject> ListerWatcher<K> for Api<K> {
    type Error = Error;
    type Watch = KubeWatch<K>;

    async fn list(&self, params: &ListParams) -> Result<ListPage<K>, Error> {
        list(self, params, false).await
    }

    async fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<KubeWatch<K>, Error> {
        watch(self, params, resource_version, false).await
    }

    fn supports_streaming_list(&self) -> bool {
        true
    }
}

/// `kube::Api<K>` for a reflector: decoding without `managedFields` when the reflector drops
/// them (see the [module documentation](self)).
#[derive(Clone)]
pub struct KubeListerWatcher<K> {
    api: Api<K>,
    skip_managed_fields: bool,
}

impl<K> std::fmt::Debug for KubeListerWatcher<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeListerWatcher")
            .field("skip_managed_fields", &self.skip_managed_fields)
            .finish_non_exhaustive()
    }
}

impl<K: KubeObject> KubeListerWatcher<K> {
    /// Lists and watches with `api` (its namespace or all namespaces). managedFields are
    /// decoded until a reflector says it drops them.
    pub fn new(api: Api<K>) -> Self {
        KubeListerWatcher {
            api,
            skip_managed_fields: false,
        }
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

impl<K: KubeObject> ListerWatcher<K> for KubeListerWatcher<K> {
    type Error = Error;
    type Watch = KubeWatch<K>;

    async fn list(&self, params: &ListParams) -> Result<ListPage<K>, Error> {
        list(&self.api, params, self.skip_managed_fields).await
    }

    async fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<KubeWatch<K>, Error> {
        watch(
            &self.api,
            params,
            resource_version,
            self.skip_managed_fields,
        )
        .await
    }

    fn supports_streaming_list(&self) -> bool {
        true
    }

    fn set_skip_managed_fields(&mut self, skip: bool) {
        self.skip_managed_fields = skip;
    }
}

/// A GET of the collection of `api` with `query`.
fn get_request<K: Resource>(
    api: &Api<K>,
    query: &[(&'static str, String)],
) -> Result<Request<Vec<u8>>, ::kube::Error> {
    let mut url = form_urlencoded::Serializer::new(format!("{}?", api.resource_url()));
    for (key, value) in query {
        url.append_pair(key, value);
    }
    Request::get(url.finish())
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(::kube::Error::HttpError)
}

fn client_of<K: Resource + Clone>(api: &Api<K>) -> Client {
    api.clone().into_client()
}

/// The error `Status` of a 4xx/5xx answer (its body, or one made from the HTTP status when
/// the body is not a `Status`, as from a proxy).
async fn error_status(response: http::Response<Body>) -> Error {
    let code = response.status();
    let bytes = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Error::Client(e),
    };
    let status = serde_json::from_slice::<Status>(&bytes)
        .ok()
        .filter(|s| s.code != 0 || !s.reason.is_empty())
        .unwrap_or_else(|| {
            Status::failure(
                code.as_u16(),
                code.canonical_reason().unwrap_or_default(),
                String::from_utf8_lossy(&bytes).trim().to_string(),
            )
        });
    Error::Api {
        status: Box::new(status),
    }
}

/// Whether a request failed in the transport before any answer, on a connection the server
/// had already dropped (reset or closed while the request was sent).
fn is_stale_connection(error: &::kube::Error) -> bool {
    matches!(
        error,
        ::kube::Error::Service(_) | ::kube::Error::HyperError(_)
    ) && !wire::is_connection_refused(error)
        && {
            let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
            let mut stale = false;
            while let Some(e) = next {
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    stale |= matches!(
                        io.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::UnexpectedEof
                    );
                }
                if let Some(h) = e.downcast_ref::<hyper::Error>() {
                    stale |= h.is_incomplete_message() || h.is_canceled();
                }
                next = e.source();
            }
            stale
        }
}

/// Sends a GET, once more when it failed on a connection the server had dropped: Go's
/// net/http does so for idempotent requests on a reused connection (so client-go's reflector
/// never sees these), kube-rs's client does not.
async fn send_get<T, F>(mut send: impl FnMut() -> F) -> Result<T, Error>
where
    F: Future<Output = Result<T, ::kube::Error>>,
{
    match send().await {
        Err(error) if is_stale_connection(&error) => {
            tracing::debug!(%error, "GET failed on a dropped connection: sending it again");
            send().await.map_err(Error::from_kube)
        }
        result => result.map_err(Error::from_kube),
    }
}

/// One page (or all) of a list, decoded while the body arrives.
async fn list<K: KubeObject>(
    api: &Api<K>,
    params: &ListParams,
    skip_managed_fields: bool,
) -> Result<ListPage<K>, Error> {
    let client = client_of(api);
    let query = params.to_query();
    let response = send_get(|| {
        let request = get_request(api, &query);
        let client = client.clone();
        async move { client.send(request?.map(Body::from)).await }
    })
    .await?;
    if response.status().is_client_error() || response.status().is_server_error() {
        return Err(error_status(response).await);
    }
    let chunks = response.into_body().into_data_stream();
    wire::decode_list_body(chunks, skip_managed_fields, |_| {})
        .await
        .map_err(|e| match e {
            BodyError::Read(e) => Error::Client(e),
            BodyError::Decode(e) => Error::Decode(e),
            BodyError::Join(e) => Error::Decoder(e),
        })
}

async fn watch<K: KubeObject>(
    api: &Api<K>,
    params: &WatchParams,
    resource_version: &str,
    skip_managed_fields: bool,
) -> Result<KubeWatch<K>, Error> {
    let query = params.to_query(resource_version);
    let client = client_of(api);
    Ok(if skip_managed_fields {
        let events = send_get(|| {
            let request = get_request(api, &query);
            let client = client.clone();
            async move {
                client
                    .request_events::<WithoutManagedFields<K>>(request?)
                    .await
            }
        })
        .await?;
        KubeWatch {
            inner: Box::pin(MapEvents {
                inner: events,
                unwrap: |w: WithoutManagedFields<K>| w.0,
            }),
        }
    } else {
        let events = send_get(|| {
            let request = get_request(api, &query);
            let client = client.clone();
            async move { client.request_events::<K>(request?).await }
        })
        .await?;
        KubeWatch {
            inner: Box::pin(MapEvents {
                inner: events,
                unwrap: |k: K| k,
            }),
        }
    })
}

type EventStream<K> = dyn Stream<Item = Result<WatchEvent<K>, Error>> + Send;

/// The events of one watch through kube-rs, as kube-apimachinery's [`WatchEvent`]s.
pub struct KubeWatch<K> {
    inner: Pin<Box<EventStream<K>>>,
}

impl<K> std::fmt::Debug for KubeWatch<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeWatch").finish_non_exhaustive()
    }
}

impl<K> Stream for KubeWatch<K> {
    type Item = Result<WatchEvent<K>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

pin_project_lite::pin_project! {
    /// kube-rs's watch events mapped to ours, objects unwrapped by `unwrap`.
    struct MapEvents<S, F> {
        #[pin]
        inner: S,
        unwrap: F,
    }
}

impl<S, F, T, K> Stream for MapEvents<S, F>
where
    S: Stream<Item = Result<::kube::core::WatchEvent<T>, ::kube::Error>>,
    F: Fn(T) -> K,
{
    type Item = Result<WatchEvent<K>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        use ::kube::core::WatchEvent as E;
        let this = self.project();
        let unwrap = this.unwrap;
        this.inner.poll_next(cx).map(|item| {
            item.map(|result| match result {
                Ok(E::Added(o)) => Ok(WatchEvent::Added(unwrap(o))),
                Ok(E::Modified(o)) => Ok(WatchEvent::Modified(unwrap(o))),
                Ok(E::Deleted(o)) => Ok(WatchEvent::Deleted(unwrap(o))),
                Ok(E::Bookmark(b)) => Ok(WatchEvent::Bookmark(Bookmark {
                    resource_version: b.metadata.resource_version,
                    annotations: b.metadata.annotations,
                })),
                Ok(E::Error(status)) => Ok(WatchEvent::Error(status_of(&status))),
                Err(e) => Err(Error::from_kube(e)),
            })
        })
    }
}
