//! [`PodDialer`]: port-forward streams to a pod through kube-rest's client (feature `rest`).

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube_rest::{Api, Client, UpgradeConnection, WatchEvent, WatchParams};
use parking_lot::Mutex;

use crate::dialer::{BoxFuture, Dialer, Prepared, Upgraded};
use crate::error::DialError;
use crate::pod_watch::{self, PodEvent, PodEvents, PodSource, SourceError};

/// Opens `pods/{name}/portforward` WebSockets with a kube-rest [`Client`] (its
/// authentication, TLS, proxy and throttle).
///
/// [`Dialer::check`] gets the pod and refuses one that does not run (kubectl's check), and
/// remembers its UID; [`Dialer::lost`] watches the pod and resolves when it is deleted,
/// replaced by another pod of the same name, or stops running.
pub struct PodDialer {
    client: Client,
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
    pub fn new(client: Client, namespace: impl Into<String>, name: impl Into<String>) -> PodDialer {
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
}

fn source_error(error: kube_rest::Error) -> SourceError {
    if error.is_not_found() {
        SourceError::NotFound(DialError::Rest(error))
    } else {
        SourceError::Other(DialError::Rest(error))
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
            let params = WatchParams::default().fields(format!("metadata.name={}", self.name));
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
                Ok(WatchEvent::Bookmark(bookmark)) => PodEvent::Bookmark(bookmark.resource_version),
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

impl PodDialer {
    /// The `pods/{name}/portforward?ports={port}` upgrade request.
    fn portforward(&self, port: u16) -> kube_rest::RequestBuilder<'_> {
        self.client
            .request(http::Method::GET)
            .namespace(Some(&self.namespace))
            .resource("pods")
            .name(&self.name)
            .subresource("portforward")
            .param("ports", port.to_string())
    }
}

fn upgraded(
    connection: Result<kube_rest::upgrade::WebSocketConnection, kube_rest::Error>,
) -> Result<Upgraded, DialError> {
    let connection = connection.map_err(DialError::Rest)?;
    Ok(Upgraded {
        // Nothing was read from the socket yet: its bytes are all still in the stream.
        io: Box::new(connection.socket.into_inner()),
        protocol: connection.protocol,
    })
}

impl Dialer for PodDialer {
    fn dial<'a>(
        &'a self,
        port: u16,
        protocols: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
        Box::pin(async move { upgraded(self.portforward(port).connect_websocket(protocols).await) })
    }

    /// A TCP and TLS connection to the API server ([`Client::open_upgrade_connection`]).
    fn prepare(&self) -> Option<BoxFuture<'_, Result<Prepared, DialError>>> {
        Some(Box::pin(async move {
            self.client
                .open_upgrade_connection()
                .await
                .map(Prepared::new)
                .map_err(DialError::Rest)
        }))
    }

    fn dial_prepared<'a>(
        &'a self,
        prepared: Prepared,
        port: u16,
        protocols: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
        Box::pin(async move {
            let request = self.portforward(port);
            let connection = match prepared.downcast::<UpgradeConnection>() {
                Ok(connection) => request.connect_websocket_on(connection, protocols).await,
                Err(_) => request.connect_websocket(protocols).await,
            };
            upgraded(connection)
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
                // Not checked first: read the pod now.
                None => match pod_watch::first_seen(self).await {
                    Ok(seen) => seen,
                    Err(error) => return error,
                },
            };
            pod_watch::watch_until_lost(self, uid, rv).await
        })
    }
}
