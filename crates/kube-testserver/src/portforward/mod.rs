//! The `pods/{name}/portforward` endpoint, served the way kube-apiserver and the kubelet
//! serve it.
//!
//! * kube-apiserver checks first (a `Status` answer): GET or POST, an authenticated user, the
//!   pod exists (404), it is bound to a node (400 `pod NAME does not have a host
//!   assigned`), and the request is an upgrade (400 `Upgrade request required`).
//! * Then the kubelet (plain-text answers, passed through by the API server's proxy): for a
//!   WebSocket, the `ports` query (`query parameter "ports" is required`, ...), then the pod
//!   must run in the container runtime (500 `pod not found ("NAME_NAMESPACE")`), then the
//!   subprotocol (403).
//! * WebSocket ([`websocket`]): the kubelet's `portforward` protocol over
//!   `v4.channel.k8s.io`, `v4.base64.channel.k8s.io` or no subprotocol: two channels per
//!   port (data `2i`, error `2i + 1`), each starting with the port number (two bytes, little
//!   endian).
//! * SPDY ([`spdy`]): a plain `Upgrade: SPDY/3.1` request, or SPDY tunneled through a
//!   WebSocket (`SPDY/3.1+portforward.k8s.io`, what kubectl 1.31+ tries first): an error and
//!   a data stream per forwarded connection, paired by `requestID`.
//! * What answers in the pod is [`backend`]: nginx on port 80 for an `nginx…` image, an echo
//!   on every other declared TCP port, the local address a test routed the port to
//!   ([`crate::TestServer::route_pod_port`]), and containerd's connection-refused error
//!   (through the kubelet's `error forwarding port ...` wrapper) on the error channel for
//!   anything else.
//! * When the pod's containers stop (the pod is deleted), every forwarded connection ends.

mod backend;
mod nginx;
mod spdy;
mod websocket;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use parking_lot::Mutex;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiServer, Body, User, error_response};
use crate::object::meta_str;
use crate::pod_connect::pods_storage;
use crate::status::ApiError;

pub(crate) use backend::PodNetwork;

/// Port forwarding state shared by the server: test routes, the running pods' lifetimes and
/// the open sessions.
#[derive(Debug, Default)]
pub struct PortForwarding {
    /// (namespace, pod, port) → local address.
    routes: Mutex<HashMap<(String, String, u16), SocketAddr>>,
    /// Pod UID → cancelled when the pod's containers stop.
    running: Mutex<HashMap<String, CancellationToken>>,
    sessions: Arc<AtomicUsize>,
}

impl PortForwarding {
    /// Routes `port` of pod `namespace/pod` to `address`: forwarded connections to that port
    /// connect there (whatever the pod declares).
    pub fn route(&self, namespace: &str, pod: &str, port: u16, address: SocketAddr) {
        self.routes
            .lock()
            .insert((namespace.to_string(), pod.to_string(), port), address);
    }

    fn route_for(&self, namespace: &str, pod: &str, port: u16) -> Option<SocketAddr> {
        self.routes
            .lock()
            .get(&(namespace.to_string(), pod.to_string(), port))
            .copied()
    }

    /// How many port-forward sessions are open.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }

    /// A token cancelled when the pod with `uid` stops running.
    fn lifetime(&self, uid: &str) -> CancellationToken {
        self.running
            .lock()
            .entry(uid.to_string())
            .or_default()
            .child_token()
    }

    /// Told of every pod change by the simulated kubelet: a pod whose containers stopped, or
    /// that is gone, ends its forwarded connections.
    pub(crate) fn pod_changed(&self, pod: &Value, deleted: bool) {
        if !deleted && runs(pod) {
            return;
        }
        let Some(uid) = meta_str(pod, "uid") else {
            return;
        };
        if let Some(token) = self.running.lock().remove(uid) {
            tracing::debug!(pod = ?meta_str(pod, "name"), "pod stopped: ending its port forwards");
            token.cancel();
        }
    }

    /// After missed pod changes: ends the forwards of every pod that no longer runs.
    pub(crate) fn resync(&self, server: &ApiServer) {
        let running: std::collections::HashSet<String> = server
            .store
            .list(&pods_storage(), None, None)
            .map(|snapshot| {
                snapshot
                    .objects
                    .iter()
                    .map(|pod| pod.value())
                    .filter(runs)
                    .filter_map(|pod| meta_str(&pod, "uid").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        self.running.lock().retain(|uid, token| {
            let keep = running.contains(uid);
            if !keep {
                token.cancel();
            }
            keep
        });
    }
}

/// Counts a session while it lives.
struct SessionGuard(Arc<AtomicUsize>);

impl SessionGuard {
    fn new(counter: &Arc<AtomicUsize>) -> SessionGuard {
        counter.fetch_add(1, Ordering::SeqCst);
        SessionGuard(Arc::clone(counter))
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether the container runtime runs the pod: some container is running.
fn runs(pod: &Value) -> bool {
    [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|field| pod["status"][field].as_array())
    .flatten()
    .any(|s| s["state"]["running"].is_object())
}

/// A `pods/portforward` URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    namespace: String,
    pod: String,
}

/// Whether `path` is `/api/v1/namespaces/{ns}/pods/{name}/portforward`.
pub(crate) fn target(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [
            "api",
            "v1",
            "namespaces",
            namespace,
            "pods",
            pod,
            "portforward",
        ] => Some(Target {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
        }),
        _ => None,
    }
}

/// A plain-text answer, as the kubelet writes its errors (the API server passes them on).
fn text_response(status: StatusCode, text: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text)).boxed_unsync())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
}

/// Why a request is not upgraded.
enum Refusal {
    /// kube-apiserver's `Status`.
    Api(ApiError),
    /// The kubelet's plain text.
    Kubelet(StatusCode, String),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Refusal {
        Refusal::Api(error)
    }
}

fn refuse(refusal: Refusal) -> Response<Body> {
    match refusal {
        Refusal::Api(error) => error_response(&error),
        Refusal::Kubelet(status, text) => text_response(status, text),
    }
}

pub(crate) fn header_has(
    request: &Request<hyper::body::Incoming>,
    name: header::HeaderName,
    token: &str,
) -> bool {
    request
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(token))
}

/// The pod a request forwards to, checked by kube-apiserver and the kubelet.
pub(crate) struct Forwarded {
    network: Arc<PodNetwork>,
    /// Cancelled when the pod stops.
    lifetime: CancellationToken,
}

impl Forwarded {
    /// Connects to `port` in the pod; the error is the kubelet's error-stream text.
    pub(crate) async fn connect(
        &self,
        server: &ApiServer,
        port: u16,
    ) -> Result<backend::PodConnection, String> {
        if self.lifetime.is_cancelled() {
            // containerd, once the sandbox's network namespace is gone.
            return Err(format!(
                "error forwarding port {port} to pod {id}, uid : network namespace for sandbox {quoted} is closed",
                id = self.network.sandbox_id,
                quoted = crate::status::go_quote(&self.network.sandbox_id),
            ));
        }
        let route =
            server
                .port_forward
                .route_for(&self.network.namespace, &self.network.name, port);
        self.network
            .connect(port, route)
            .await
            .map_err(|cause| self.network.forward_error(port, &cause))
    }
}

/// The largest WebSocket message either port-forward endpoint accepts.
const MAX_WS_MESSAGE: usize = 16 << 20;

/// A WebSocket the kubelet's port-forward endpoints run their sessions on.
type PodWebSocket =
    tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// Accepts the request's WebSocket handshake: spawns `serve` on the upgraded connection (counted
/// as a session while it runs) and answers 101 with `protocol` as the subprotocol, or the
/// kubelet's refusal when the request carries no `Sec-WebSocket-Key`.
fn upgrade_websocket<F, Fut>(
    server: &Arc<ApiServer>,
    request: &mut Request<hyper::body::Incoming>,
    read_buffer: Option<usize>,
    protocol: Option<String>,
    serve: F,
) -> Result<Response<Body>, Refusal>
where
    F: FnOnce(PodWebSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

    let Some(key) = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|key| derive_accept_key(key.as_bytes()))
    else {
        return Err(Refusal::Kubelet(
            StatusCode::BAD_REQUEST,
            "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header is missing"
                .to_string(),
        ));
    };
    let on_upgrade = hyper::upgrade::on(request);
    let guard = SessionGuard::new(&server.port_forward.sessions);
    tokio::spawn(async move {
        let _guard = guard;
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "port-forward WebSocket upgrade failed");
                return;
            }
        };
        let mut config = WebSocketConfig::default()
            .max_message_size(Some(MAX_WS_MESSAGE))
            .max_frame_size(Some(MAX_WS_MESSAGE));
        if let Some(size) = read_buffer {
            config = config.read_buffer_size(size);
        }
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            Role::Server,
            Some(config),
        )
        .await;
        serve(ws).await;
    });
    let mut builder = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, key);
    if let Some(protocol) = protocol {
        builder = builder.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    Ok(builder
        .body(Full::new(Bytes::new()).boxed_unsync())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync())))
}

/// kube-apiserver's checks: method, user, pod, node.
fn check_api(
    server: &ApiServer,
    request: &Request<hyper::body::Incoming>,
    user: &User,
    target: &Target,
) -> Result<Value, ApiError> {
    crate::pod_connect::authorize_connect(
        request,
        user,
        "portforward",
        &target.namespace,
        &target.pod,
    )?;
    let pod = crate::pod_connect::connect_target(server, &target.namespace, &target.pod)?;
    if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {} does not have a host assigned",
            target.pod
        )));
    }
    let upgrade = header_has(request, header::CONNECTION, "upgrade")
        && request.headers().contains_key(header::UPGRADE);
    if !upgrade {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    Ok((*pod).clone())
}

/// The kubelet's check that the runtime runs the pod; registers the pod's lifetime.
fn check_running(server: &ApiServer, pod: &Value) -> Result<Forwarded, Refusal> {
    let not_found = || {
        Refusal::Kubelet(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "pod not found ({})",
                crate::status::go_quote(&format!(
                    "{}_{}",
                    meta_str(pod, "name").unwrap_or(""),
                    meta_str(pod, "namespace").unwrap_or("")
                ))
            ),
        )
    };
    if !runs(pod) {
        return Err(not_found());
    }
    let network = PodNetwork::of(pod);
    let lifetime = server.port_forward.lifetime(&network.uid);
    // The pod may have stopped between the read and the registration.
    let still = server
        .store
        .get(
            &pods_storage(),
            &(network.namespace.clone(), network.name.clone()),
        )
        .is_some_and(|now| meta_str(&now, "uid") == Some(network.uid.as_str()) && runs(&now));
    if !still {
        server.port_forward.pod_changed(pod, true);
        return Err(not_found());
    }
    Ok(Forwarded {
        network: Arc::new(network),
        lifetime,
    })
}

/// Serves a `pods/portforward` request (already authenticated).
pub(crate) async fn serve(
    server: Arc<ApiServer>,
    request: Request<hyper::body::Incoming>,
    user: &User,
    target: Target,
) -> Response<Body> {
    let pod = match check_api(&server, &request, user, &target) {
        Ok(pod) => pod,
        Err(error) => return error_response(&error),
    };
    let result = if header_has(&request, header::UPGRADE, "websocket") {
        // kube-apiserver's translating handler: SPDY tunneled through the WebSocket, or the
        // kubelet's own WebSocket protocol.
        let tunneled = spdy::tunneled_protocols(&request);
        if tunneled.is_empty() {
            websocket::serve(server, request, &pod)
        } else {
            spdy::serve_tunnel(server, request, &pod, &tunneled)
        }
    } else if header_has(&request, header::UPGRADE, "SPDY/3.1") {
        spdy::serve_upgrade(server, request, &pod)
    } else {
        Err(Refusal::Kubelet(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: unsupported upgrade protocol (SPDY/3.1 or websocket)".to_string(),
        ))
    };
    result.unwrap_or_else(refuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_portforward_subresources_of_pods() {
        let t = target("/api/v1/namespaces/ns/pods/web/portforward").expect("target");
        assert_eq!((t.namespace.as_str(), t.pod.as_str()), ("ns", "web"));
        assert!(target("/api/v1/namespaces/ns/pods/web/exec").is_none());
        assert!(target("/api/v1/namespaces/ns/pods/web").is_none());
    }
}
