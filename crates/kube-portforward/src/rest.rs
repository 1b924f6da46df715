//! [`PodDialer`]: port-forward streams to a pod through kube-rest's client (feature `rest`).

use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube_rest::{Api, Client, WatchEvent, WatchParams};
use parking_lot::Mutex;

use crate::dialer::{BoxFuture, Dialer, Upgraded};
use crate::error::DialError;

/// How long to wait before watching again after a watch failed.
const REWATCH_DELAY: Duration = Duration::from_secs(1);

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

    fn gone(&self) -> DialError {
        DialError::Gone {
            name: self.name.clone(),
        }
    }

    /// Why `pod` cannot be forwarded to, if it cannot.
    fn judge(&self, pod: &Pod, uid: Option<&str>) -> Option<DialError> {
        if uid.is_some() && pod.metadata.uid.as_deref() != uid {
            return Some(self.gone());
        }
        if pod.metadata.deletion_timestamp.is_some() {
            return Some(self.gone());
        }
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        (phase != "Running").then(|| DialError::NotRunning {
            phase: if phase.is_empty() {
                "Unknown".into()
            } else {
                phase
            },
        })
    }

    async fn get_checked(&self, uid: Option<&str>) -> Result<Pod, DialError> {
        let pod = match self.pods().get(&self.name).await {
            Ok(pod) => pod,
            Err(error) if error.is_not_found() && uid.is_some() => return Err(self.gone()),
            Err(error) => return Err(DialError::Rest(error)),
        };
        match self.judge(&pod, uid) {
            Some(error) => Err(error),
            None => Ok(pod),
        }
    }

    /// Watches the pod from `resource_version` until it is out of reach.
    async fn watch_until_lost(&self, uid: String, mut resource_version: String) -> DialError {
        let params = WatchParams::default().fields(format!("metadata.name={}", self.name));
        loop {
            let mut events = match self.pods().watch(&params, &resource_version).await {
                Ok(events) => events,
                Err(error) if error.is_not_found() => return self.gone(),
                Err(error) => {
                    tracing::warn!(%error, pod = %self.name, "watching the forwarded pod failed; retrying");
                    tokio::time::sleep(REWATCH_DELAY).await;
                    continue;
                }
            };
            while let Some(event) = events.next().await {
                match event {
                    Ok(WatchEvent::Deleted(_)) => return self.gone(),
                    Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) => {
                        if let Some(error) = self.judge(&pod, Some(&uid)) {
                            return error;
                        }
                        if let Some(rv) = pod.metadata.resource_version {
                            resource_version = rv;
                        }
                    }
                    Ok(WatchEvent::Bookmark(bookmark)) => {
                        resource_version = bookmark.resource_version;
                    }
                    Ok(WatchEvent::Error(status)) => {
                        // 410: the version is too old; read the pod again and go on from it.
                        tracing::debug!(code = status.code, message = %status.message, "pod watch error; re-reading the pod");
                        match self.get_checked(Some(&uid)).await {
                            Ok(pod) => {
                                resource_version = pod.metadata.resource_version.unwrap_or_default()
                            }
                            Err(error) if error.is_lost_connection() => return error,
                            Err(error) => {
                                tracing::warn!(%error, "re-reading the forwarded pod failed; retrying");
                                tokio::time::sleep(REWATCH_DELAY).await;
                            }
                        }
                        break;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "pod watch cut; watching again");
                        break;
                    }
                }
            }
        }
    }
}

impl Dialer for PodDialer {
    fn dial<'a>(
        &'a self,
        port: u16,
        protocols: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
        Box::pin(async move {
            let connection = self
                .client
                .request(http::Method::GET)
                .namespace(Some(&self.namespace))
                .resource("pods")
                .name(&self.name)
                .subresource("portforward")
                .param("ports", port.to_string())
                .connect_websocket(protocols)
                .await
                .map_err(DialError::Rest)?;
            Ok(Upgraded {
                // Nothing was read from the socket yet: its bytes are all still in the stream.
                io: Box::new(connection.socket.into_inner()),
                protocol: connection.protocol,
            })
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), DialError>> {
        Box::pin(async move {
            let pod = self.get_checked(None).await?;
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
                None => loop {
                    match self.get_checked(None).await {
                        Ok(pod) => {
                            break (
                                pod.metadata.uid.unwrap_or_default(),
                                pod.metadata.resource_version.unwrap_or_default(),
                            );
                        }
                        Err(error) if error.is_lost_connection() => return error,
                        Err(error) => {
                            tracing::warn!(%error, "reading the forwarded pod failed; retrying");
                            tokio::time::sleep(REWATCH_DELAY).await;
                        }
                    }
                },
            };
            self.watch_until_lost(uid, rv).await
        })
    }
}
