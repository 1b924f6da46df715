//! What the `rest` and `kube` dialers share: whether a pod can be forwarded to, and watching
//! it until it is out of reach. Each client provides only the two requests ([`PodSource`]).

use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;

use crate::dialer::BoxFuture;
use crate::error::DialError;

/// How long to wait before watching again after a watch failed.
const REWATCH_DELAY: Duration = Duration::from_secs(1);

/// One event of a watch of the forwarded pod.
pub(crate) enum PodEvent {
    /// Added or modified.
    Changed(Box<Pod>),
    /// Deleted.
    Deleted,
    /// A bookmark at this resourceVersion.
    Bookmark(String),
    /// An `ERROR` event (a `410` when the version is too old).
    Error { code: u16, message: String },
    /// The stream failed (cut, unreadable).
    Failed(String),
}

/// A boxed stream of [`PodEvent`]s.
pub(crate) type PodEvents = std::pin::Pin<Box<dyn Stream<Item = PodEvent> + Send>>;

/// Why a request of a [`PodSource`] failed.
pub(crate) enum SourceError {
    /// `404`: no such pod.
    NotFound(DialError),
    /// Anything else.
    Other(DialError),
}

/// The two requests a dialer's pod checks need from its client.
pub(crate) trait PodSource: Send + Sync {
    /// The pod's name.
    fn name(&self) -> &str;
    /// Gets the pod.
    fn get_pod(&self) -> BoxFuture<'_, Result<Pod, SourceError>>;
    /// Watches the pod (`metadata.name=` field selector) from `resource_version`.
    fn watch_pod<'a>(
        &'a self,
        resource_version: &'a str,
    ) -> BoxFuture<'a, Result<PodEvents, SourceError>>;
}

fn gone(source: &impl PodSource) -> DialError {
    DialError::Gone {
        name: source.name().to_string(),
    }
}

/// Why `pod` cannot be forwarded to, if it cannot: another pod of the name (`uid` differs),
/// being deleted, or not running (kubectl's check).
pub(crate) fn judge(source: &impl PodSource, pod: &Pod, uid: Option<&str>) -> Option<DialError> {
    if uid.is_some() && pod.metadata.uid.as_deref() != uid {
        return Some(gone(source));
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Some(gone(source));
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

/// Gets the pod and checks it can be forwarded to (a 404 is "gone" once a UID was seen).
pub(crate) async fn get_checked(
    source: &impl PodSource,
    uid: Option<&str>,
) -> Result<Pod, DialError> {
    let pod = match source.get_pod().await {
        Ok(pod) => pod,
        Err(SourceError::NotFound(_)) if uid.is_some() => return Err(gone(source)),
        Err(SourceError::NotFound(error) | SourceError::Other(error)) => return Err(error),
    };
    match judge(source, &pod, uid) {
        Some(error) => Err(error),
        None => Ok(pod),
    }
}

/// Reads the pod until it can be forwarded to, retrying other failures; the error when it is
/// out of reach for good.
pub(crate) async fn first_seen(source: &impl PodSource) -> Result<(String, String), DialError> {
    loop {
        match get_checked(source, None).await {
            Ok(pod) => {
                return Ok((
                    pod.metadata.uid.unwrap_or_default(),
                    pod.metadata.resource_version.unwrap_or_default(),
                ));
            }
            Err(error) if error.is_lost_connection() => return Err(error),
            Err(error) => {
                tracing::warn!(%error, "reading the forwarded pod failed; retrying");
                tokio::time::sleep(REWATCH_DELAY).await;
            }
        }
    }
}

/// Watches the pod from `resource_version` until it is out of reach: deleted, replaced by
/// another pod of the same name, or no longer running.
pub(crate) async fn watch_until_lost(
    source: &impl PodSource,
    uid: String,
    mut resource_version: String,
) -> DialError {
    loop {
        let mut events = match source.watch_pod(&resource_version).await {
            Ok(events) => events,
            Err(SourceError::NotFound(_)) => return gone(source),
            Err(SourceError::Other(error)) => {
                tracing::warn!(%error, pod = %source.name(), "watching the forwarded pod failed; retrying");
                tokio::time::sleep(REWATCH_DELAY).await;
                continue;
            }
        };
        while let Some(event) = events.next().await {
            match event {
                PodEvent::Deleted => return gone(source),
                PodEvent::Changed(pod) => {
                    if let Some(error) = judge(source, &pod, Some(&uid)) {
                        return error;
                    }
                    if let Some(rv) = pod.metadata.resource_version.clone() {
                        resource_version = rv;
                    }
                }
                PodEvent::Bookmark(rv) => resource_version = rv,
                PodEvent::Error { code, message } => {
                    // 410: the version is too old; read the pod again and go on from it.
                    tracing::debug!(code, %message, "pod watch error; re-reading the pod");
                    match get_checked(source, Some(&uid)).await {
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
                PodEvent::Failed(error) => {
                    tracing::debug!(%error, "pod watch cut; watching again");
                    break;
                }
            }
        }
    }
}
