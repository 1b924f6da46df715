//! [`PodDialer`]: port-forward streams to a pod through kube-rs's client (feature `kube`),
//! for controllers and tools written with kube-rs.
//!
//! The WebSocket upgrade of `pods/{name}/portforward` is sent with [`kube::Client::send`]
//! (kube-rs's authentication, TLS and middleware) and the upgraded connection is handed to our
//! forwarder, which does the channel framing, kubectl's port rules and per-connection errors,
//! as with the `rest` feature's dialer. kube-rs's own `Api::<Pod>::portforward` is not used:
//! it frames the channels itself and offers only `v4.channel.k8s.io`.

use futures_util::StreamExt as _;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::WatchParams;
use kube::client::Body;
use kube::core::WatchEvent;
use parking_lot::Mutex;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::dialer::{BoxFuture, Dialer, Upgraded};
use crate::error::DialError;
use crate::pod_watch::{self, PodEvent, PodEvents, PodSource, SourceError};

/// Opens `pods/{name}/portforward` WebSockets with a [`kube::Client`].
///
/// [`Dialer::check`] gets the pod and refuses one that does not run (kubectl's check), and
/// remembers its UID; [`Dialer::lost`] watches the pod and resolves when it is deleted,
/// replaced by another pod of the same name, or stops running.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kube_portforward::PortForwarder;
/// use kube_portforward::kube::PodDialer;
///
/// let client = kube::Client::try_default().await?;
/// let forwarding = PortForwarder::builder(PodDialer::new(client, "default", "web-0"))
///     .port("8080:80")
///     .build()?
///     .forward()
///     .await?;
/// # Ok(()) }
/// ```
pub struct PodDialer {
    client: kube::Client,
    namespace: String,
    name: String,
    /// The UID and resourceVersion of the pod `check` saw.
    seen: Mutex<Option<(String, String)>>,
}

impl std::fmt::Debug for PodDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodDialer")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PodDialer {
    /// A dialer for pod `name` in `namespace`.
    pub fn new(
        client: kube::Client,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> PodDialer {
        PodDialer {
            client,
            namespace: namespace.into(),
            name: name.into(),
            seen: Mutex::new(None),
        }
    }

    /// The pod's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The pod's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The upgrade request: the WebSocket handshake headers and the offered subprotocols.
    fn upgrade_request(
        &self,
        port: u16,
        protocols: &[&str],
        key: &str,
    ) -> Result<Request<Vec<u8>>, DialError> {
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}/portforward?ports={port}",
            self.namespace, self.name
        );
        let mut request = Request::get(path)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, key);
        if !protocols.is_empty() {
            request = request.header(header::SEC_WEBSOCKET_PROTOCOL, protocols.join(", "));
        }
        request
            .body(Vec::new())
            .map_err(|e| DialError::Kube(kube::Error::HttpError(e)))
    }
}

/// The error of an upgrade answered with something other than `101`: its `Status`.
async fn refused(response: http::Response<Body>) -> DialError {
    let code = response.status();
    let bytes = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return DialError::Kube(e),
    };
    let status = serde_json::from_slice::<kube::core::Status>(&bytes)
        .ok()
        .filter(|s| s.code != 0)
        .unwrap_or_else(|| {
            kube::core::Status::failure(
                String::from_utf8_lossy(&bytes).trim(),
                code.canonical_reason().unwrap_or_default(),
            )
            .with_code(code.as_u16())
        });
    DialError::Kube(kube::Error::Api(status.boxed()))
}

fn source_error(error: kube::Error) -> SourceError {
    match &error {
        kube::Error::Api(status) if status.code == 404 => {
            SourceError::NotFound(DialError::Kube(error))
        }
        _ => SourceError::Other(DialError::Kube(error)),
    }
}

impl PodSource for PodDialer {
    fn name(&self) -> &str {
        &self.name
    }

    fn get_pod(&self) -> BoxFuture<'_, Result<Pod, SourceError>> {
        Box::pin(async move { self.pods().get(&self.name).await.map_err(source_error) })
    }

    fn watch_pod<'a>(
        &'a self,
        resource_version: &'a str,
    ) -> BoxFuture<'a, Result<PodEvents, SourceError>> {
        Box::pin(async move {
            let params = WatchParams::default().fields(&format!("metadata.name={}", self.name));
            let events = self
                .pods()
                .watch(&params, resource_version)
                .await
                .map_err(source_error)?;
            let events: PodEvents = Box::pin(events.map(|event| match event {
                Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) => {
                    PodEvent::Changed(Box::new(pod))
                }
                Ok(WatchEvent::Deleted(_)) => PodEvent::Deleted,
                Ok(WatchEvent::Bookmark(bookmark)) => {
                    PodEvent::Bookmark(bookmark.metadata.resource_version)
                }
                Ok(WatchEvent::Error(status)) => PodEvent::Error {
                    code: status.code,
                    message: status.message,
                },
                Err(error) => PodEvent::Failed(error.to_string()),
            }));
            Ok(events)
        })
    }
}

impl Dialer for PodDialer {
    fn dial<'a>(
        &'a self,
        port: u16,
        protocols: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
        Box::pin(async move {
            let key = generate_key();
            let request = self.upgrade_request(port, protocols, &key)?;
            let response = self
                .client
                .send(request.map(Body::from))
                .await
                .map_err(DialError::Kube)?;
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                return Err(refused(response).await);
            }
            let accept = response.headers().get(header::SEC_WEBSOCKET_ACCEPT);
            let expected = derive_accept_key(key.as_bytes());
            if accept
                != Some(&HeaderValue::from_str(&expected).unwrap_or(HeaderValue::from_static("-")))
            {
                return Err(DialError::Handshake {
                    reason: "the Sec-WebSocket-Accept header does not match the key".into(),
                });
            }
            let protocol = response
                .headers()
                .get(header::SEC_WEBSOCKET_PROTOCOL)
                .and_then(|p| p.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let upgraded =
                hyper::upgrade::on(response)
                    .await
                    .map_err(|e| DialError::Handshake {
                        reason: format!("the connection was not upgraded: {e}"),
                    })?;
            Ok(Upgraded {
                io: Box::new(hyper_util::rt::TokioIo::new(upgraded)),
                protocol,
            })
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), DialError>> {
        Box::pin(async move {
            let pod = pod_watch::get_checked(self, None).await?;
            let uid = pod.metadata.uid.unwrap_or_default();
            let rv = pod.metadata.resource_version.unwrap_or_default();
            *self.seen.lock() = Some((uid, rv));
            Ok(())
        })
    }

    fn lost(&self) -> BoxFuture<'_, DialError> {
        Box::pin(async move {
            let seen = self.seen.lock().clone();
            let (uid, rv) = match seen {
                Some(seen) => seen,
                None => match pod_watch::first_seen(self).await {
                    Ok(seen) => seen,
                    Err(error) => return error,
                },
            };
            pod_watch::watch_until_lost(self, uid, rv).await
        })
    }
}
