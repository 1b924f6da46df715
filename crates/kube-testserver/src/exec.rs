//! The `pods/exec` and `pods/attach` endpoints: validation with kube-apiserver's errors, the
//! WebSocket upgrade, and the session ([`crate::remotecommand`]) running the built-in shell
//! ([`crate::shell`]) or the container's main process.
//!
//! Exec runs the command in the tiny shell; a command that does not exist fails as it does on
//! containerd (an `InternalError` status: `... OCI runtime exec failed: ... executable file
//! not found in $PATH: unknown`). Attach connects to the main process, which prints the Unix
//! time (`date +%s`) once per [`Streaming::attach_interval`] until the client leaves, the pod
//! is deleted or the container restarts.
//!
//! SPDY is not spoken: a SPDY upgrade gets 400 with a message saying so (kubectl tries
//! WebSocket first, and only falls back to SPDY when the WebSocket upgrade fails, in which
//! case it shows the same validation error).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::api::{ApiServer, Body, User, error_response, flag};
use crate::object::meta_str;
use crate::remotecommand::{self, Streams, Termination};
use crate::shell::{self, Input, Outcome, ProcessIo, Stream};
use crate::status::ApiError;
use kube_apimachinery::channel::ChannelProtocol;

/// The default interval of the attached main process's output.
pub const DEFAULT_ATTACH_INTERVAL: Duration = Duration::from_secs(1);
/// The largest WebSocket message a session accepts.
const MAX_MESSAGE: usize = 16 << 20;

/// Exec and attach state shared by the server.
#[derive(Debug)]
pub struct Streaming {
    /// How often an attached container's main process prints a line.
    pub attach_interval: parking_lot::Mutex<Duration>,
    sessions: Arc<AtomicUsize>,
}

impl Default for Streaming {
    fn default() -> Self {
        Streaming {
            attach_interval: parking_lot::Mutex::new(DEFAULT_ATTACH_INTERVAL),
            sessions: Arc::default(),
        }
    }
}

impl Streaming {
    /// How many exec and attach sessions are running.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
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

/// Exec or attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Exec,
    Attach,
}

impl Kind {
    fn subresource(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::Attach => "attach",
        }
    }
}

/// A `pods/exec` or `pods/attach` URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    kind: Kind,
    namespace: String,
    pod: String,
}

/// Whether `path` is `/api/v1/namespaces/{ns}/pods/{name}/exec` (or `/attach`).
pub(crate) fn target(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["api", "v1", "namespaces", namespace, "pods", pod, sub] => {
            let kind = match *sub {
                "exec" => Kind::Exec,
                "attach" => Kind::Attach,
                _ => return None,
            };
            Some(Target {
                kind,
                namespace: namespace.to_string(),
                pod: pod.to_string(),
            })
        }
        _ => None,
    }
}

/// The request's options.
#[derive(Debug, Clone)]
struct Options {
    streams: Streams,
    container: Option<String>,
    command: Vec<String>,
}

fn options(kind: Kind, query: Option<&str>) -> Result<Options, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let map: crate::api::Query = pairs.iter().cloned().collect();
    let tty = flag(&map, "tty");
    let streams = Streams {
        stdin: flag(&map, "stdin"),
        stdout: flag(&map, "stdout"),
        // As the kubelet: with a TTY, stderr is merged into stdout.
        stderr: flag(&map, "stderr") && !tty,
        tty,
    };
    if !streams.stdin && !streams.stdout && !flag(&map, "stderr") {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let command: Vec<String> = pairs
        .iter()
        .filter(|(key, _)| key == "command")
        .map(|(_, value)| value.clone())
        .collect();
    if kind == Kind::Exec && command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let container = map.get("container").filter(|c| !c.is_empty()).cloned();
    Ok(Options {
        streams,
        container,
        command,
    })
}

fn names(pod: &Value, field: &str) -> Vec<String> {
    pod["spec"][field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// Checks the pod as kube-apiserver and the kubelet do; returns the container name.
fn validate(pod: &Value, name: &str, container: Option<&str>) -> Result<String, ApiError> {
    let containers = names(pod, "containers");
    let init = names(pod, "initContainers");
    let ephemeral = names(pod, "ephemeralContainers");
    let container = match container {
        Some(container) => container.to_string(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            return Err(ApiError::bad_request(message));
        }
    };
    if ![&containers, &init, &ephemeral]
        .iter()
        .any(|list| list.contains(&container))
    {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    // A completed pod's containers are not running: "container not found", as the kubelet
    // says (kubectl checks the phase itself before it asks).
    if running_container(pod, &container).is_none() {
        return Err(ApiError::bad_request(format!(
            "container not found ({})",
            crate::status::go_quote(&container)
        )));
    }
    Ok(container)
}

/// The status of `container` if it is running.
fn running_container<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|field| pod["status"][field].as_array())
    .flatten()
    .find(|s| s["name"] == container && s["state"]["running"].is_object())
}

fn header_has(
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

/// Serves a `pods/exec` or `pods/attach` request (already authenticated).
pub(crate) async fn serve(
    server: Arc<ApiServer>,
    request: Request<hyper::body::Incoming>,
    user: &User,
    target: Target,
) -> Response<Body> {
    match prepare(&server, &request, user, &target) {
        Ok(prepared) => upgrade(server, request, target, prepared),
        Err(error) => error_response(&error),
    }
}

struct Prepared {
    options: Options,
    container: String,
    /// `None`: the client offered no subprotocol.
    protocol: Option<ChannelProtocol>,
    key: String,
}

fn prepare(
    server: &ApiServer,
    request: &Request<hyper::body::Incoming>,
    user: &User,
    target: &Target,
) -> Result<Prepared, ApiError> {
    crate::pod_connect::authorize_connect(
        request,
        user,
        target.kind.subresource(),
        &target.namespace,
        &target.pod,
    )?;
    let options = options(target.kind, request.uri().query())?;
    let pod = crate::pod_connect::connect_target(server, &target.namespace, &target.pod)?;
    let container = validate(&pod, &target.pod, options.container.as_deref())?;
    let websocket = header_has(request, header::UPGRADE, "websocket")
        && header_has(request, header::CONNECTION, "upgrade");
    let key = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|k| k.to_str().ok());
    let Some(key) = key.filter(|_| websocket) else {
        if header_has(request, header::UPGRADE, "SPDY/3.1") {
            return Err(ApiError::bad_request(
                "kube-testserver does not support SPDY; use a WebSocket client (v5.channel.k8s.io)",
            ));
        }
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let protocol = remotecommand::negotiate(&remotecommand::offered_protocols(request.headers()))
        .map_err(|message| ApiError {
        code: 403,
        reason: "Forbidden",
        message,
        details: None,
    })?;
    Ok(Prepared {
        options,
        container,
        protocol,
        key: derive_accept_key(key.as_bytes()),
    })
}

fn upgrade(
    server: Arc<ApiServer>,
    mut request: Request<hyper::body::Incoming>,
    target: Target,
    prepared: Prepared,
) -> Response<Body> {
    let on_upgrade = hyper::upgrade::on(&mut request);
    let guard = SessionGuard::new(&server.streaming.sessions);
    let protocol = prepared.protocol;
    // Without a subprotocol the client speaks `channel.k8s.io`.
    let framing = protocol.unwrap_or(ChannelProtocol::V1);
    tokio::spawn(async move {
        let guard = guard;
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "exec upgrade failed");
                return;
            }
        };
        // Bounded messages: stdin chunks from kubectl are 32 KiB; 16 MiB leaves room for
        // any client while capping what one session can buffer.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        let streams = prepared.options.streams;
        let shutdown = server.shutdown.clone();
        match target.kind {
            Kind::Exec => {
                let command = prepared.options.command;
                let hostname = target.pod.clone();
                remotecommand::run_session(ws, framing, streams, shutdown, |io| async move {
                    let outcome = shell::exec(&command, &hostname, io).await;
                    termination(command, outcome)
                })
                .await;
            }
            Kind::Attach => {
                let interval = *server.streaming.attach_interval.lock();
                let alive = {
                    let server = Arc::clone(&server);
                    let restarts = restart_count(&server, &target, &prepared.container);
                    move || {
                        restarts.is_some()
                            && restart_count(&server, &target, &prepared.container) == restarts
                    }
                };
                remotecommand::run_session(ws, framing, streams, shutdown, |io| {
                    main_process(io, interval, alive)
                })
                .await;
            }
        }
        drop(guard);
    });
    let mut builder = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, prepared.key.as_str());
    if let Some(protocol) = protocol {
        builder = builder.header(header::SEC_WEBSOCKET_PROTOCOL, protocol.name());
    }
    builder
        .body(Full::new(Bytes::new()).boxed_unsync())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
}

/// The kubelet's status for how a command ended.
fn termination(command: Vec<String>, outcome: Outcome) -> Termination {
    match outcome {
        Outcome::Exited(0) => Termination::Success,
        Outcome::Exited(code) => Termination::ExitCode { command, code },
        Outcome::NotFound(program) => {
            let exec_id = format!(
                "{}{}",
                crate::object::new_uid().replace('-', ""),
                crate::object::new_uid().replace('-', "")
            );
            Termination::Internal(format!(
                "error executing command in container: failed to exec in container: failed to start exec {}: OCI runtime exec failed: exec failed: unable to start container process: exec: {}: executable file not found in $PATH: unknown",
                crate::status::go_quote(&exec_id),
                crate::status::go_quote(&program)
            ))
        }
    }
}

/// The pod's identity and the container's restart count while the container runs and the pod
/// is not being deleted; `None` otherwise.
fn restart_count(server: &ApiServer, target: &Target, container: &str) -> Option<(String, i64)> {
    let pod = server.store.get(
        &(String::new(), "pods".to_string()),
        &(target.namespace.clone(), target.pod.clone()),
    )?;
    if meta_str(&pod, "deletionTimestamp").is_some() {
        return None;
    }
    let status = running_container(&pod, container)?;
    Some((
        meta_str(&pod, "uid").unwrap_or("").to_string(),
        status["restartCount"].as_i64().unwrap_or(0),
    ))
}

/// The container's main process as attach sees it: a line with the Unix time every
/// `interval`, until `alive` says the container is gone; stdin is read and dropped (echoed
/// with a TTY).
async fn main_process(
    mut io: ProcessIo,
    interval: Duration,
    alive: impl Fn() -> bool,
) -> Termination {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stdin_open = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if !alive() {
                    return Termination::Success;
                }
                let line = format!("{}\n", jiff::Timestamp::now().as_second());
                io.output.write(Stream::Stdout, line.as_bytes()).await;
            }
            input = io.stdin.read(), if stdin_open => {
                if input == Input::Eof {
                    stdin_open = false;
                }
            }
        }
    }
}
