//! Port forwarding over SPDY, as the kubelet's `handleHTTPStreams` serves it, reached by a
//! plain `Upgrade: SPDY/3.1` request or tunneled through a WebSocket
//! (`SPDY/3.1+portforward.k8s.io`, kube-apiserver's `TunnelingHandler`, which kubectl 1.31+
//! tries first).
//!
//! * Negotiation (`httpstream.Handshake`): `X-Stream-Protocol-Version` must offer
//!   `portforward.k8s.io` (403 `unable to upgrade: unable to negotiate protocol: ...`
//!   otherwise). The answer is `101` with `Upgrade: SPDY/3.1` and the negotiated version.
//! * For each forwarded connection the client opens an error stream and a data stream with
//!   the headers `streamType` (`error`/`data`), `port` and `requestID`. A stream with a
//!   missing or bad header is reset; the others are accepted (SYN_REPLY) and paired by
//!   request id (without one: the error stream's id, or the data stream's id minus 2, as the
//!   kubelet guesses for old clients). A pair not complete within 30 s gets `timed out
//!   waiting for streams` on its error stream.
//! * A complete pair connects to the port in the pod and copies data both ways; a failure is
//!   written on the error stream; then both streams are closed (FIN). The connection lives on
//!   until the client closes it, so one session serves any number of connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::websocket::parse_go_uint16;
use super::{Forwarded, Refusal, SessionGuard, backend, check_running, upgrade_websocket};
use crate::api::{ApiServer, Body};
use crate::spdy::connection::{IncomingStream, StreamWriter};
use crate::spdy::headers;

/// The only port-forward protocol version.
pub(super) const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";
/// The prefix of the WebSocket subprotocols that tunnel SPDY.
pub(super) const TUNNELING_PREFIX: &str = "SPDY/3.1+";
const PROTOCOL_VERSION_HEADER: &str = "x-stream-protocol-version";
const ACCEPTED_VERSIONS_HEADER: &str = "x-accepted-stream-protocol-versions";
/// The kubelet's default `streamCreationTimeout`.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The chunks of a tunnel's byte stream.
const TUNNEL_CHUNK: usize = 32 << 10;

/// Whether a WebSocket request offers a SPDY tunnel (`SPDY/3.1+...portforward.k8s.io`).
pub(super) fn tunneled_protocols(request: &Request<hyper::body::Incoming>) -> Vec<String> {
    crate::remotecommand::offered_protocols(request.headers())
        .into_iter()
        .filter_map(|p| {
            p.strip_prefix(TUNNELING_PREFIX)
                .filter(|rest| rest.ends_with(PORT_FORWARD_PROTOCOL))
                .map(str::to_string)
        })
        .collect()
}

/// `httpstream.Handshake`: the negotiated version, or the kubelet's refusal.
fn handshake(offered: &[String]) -> Result<&'static str, Refusal> {
    if offered.is_empty() {
        return Err(Refusal::Kubelet(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: X-Stream-Protocol-Version is required".to_string(),
        ));
    }
    if offered.iter().any(|p| p == PORT_FORWARD_PROTOCOL) {
        return Ok(PORT_FORWARD_PROTOCOL);
    }
    Err(Refusal::Kubelet(
        StatusCode::FORBIDDEN,
        format!(
            "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{PORT_FORWARD_PROTOCOL}]\n",
            offered.join(" ")
        ),
    ))
}

fn empty_body() -> Body {
    Full::new(Bytes::new()).boxed_unsync()
}

/// A plain `Upgrade: SPDY/3.1` request.
pub(super) fn serve_upgrade(
    server: Arc<ApiServer>,
    mut request: Request<hyper::body::Incoming>,
    pod: &Value,
) -> Result<Response<Body>, Refusal> {
    let forwarded = check_running(&server, pod)?;
    let offered: Vec<String> = request
        .headers()
        .get_all(PROTOCOL_VERSION_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let protocol = match handshake(&offered) {
        Ok(protocol) => protocol,
        Err(Refusal::Kubelet(StatusCode::FORBIDDEN, text)) => {
            let mut response = super::text_response(StatusCode::FORBIDDEN, text);
            response.headers_mut().insert(
                ACCEPTED_VERSIONS_HEADER,
                HeaderValue::from_static(PORT_FORWARD_PROTOCOL),
            );
            return Ok(response);
        }
        Err(refusal) => return Err(refusal),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let guard = SessionGuard::new(&server.port_forward.sessions);
    tokio::spawn(async move {
        let _guard = guard;
        match on_upgrade.await {
            Ok(upgraded) => session(TokioIo::new(upgraded), server, forwarded).await,
            Err(error) => tracing::debug!(%error, "SPDY upgrade failed"),
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header(PROTOCOL_VERSION_HEADER, protocol)
        .body(empty_body())
        .unwrap_or_else(|_| Response::new(empty_body())))
}

/// A WebSocket request tunneling SPDY (`SPDY/3.1+portforward.k8s.io`).
pub(super) fn serve_tunnel(
    server: Arc<ApiServer>,
    mut request: Request<hyper::body::Incoming>,
    pod: &Value,
    offered: &[String],
) -> Result<Response<Body>, Refusal> {
    let forwarded = check_running(&server, pod)?;
    let protocol = handshake(offered)?;
    let shutdown = server.shutdown.clone();
    let session_server = Arc::clone(&server);
    upgrade_websocket(
        &server,
        &mut request,
        None,
        Some(format!("{TUNNELING_PREFIX}{protocol}")),
        move |ws| async move {
            let (near, far) = tokio::io::duplex(TUNNEL_CHUNK * 4);
            tokio::join!(
                tunnel(ws, near, shutdown),
                session(far, session_server, forwarded)
            );
        },
    )
}

/// Carries a byte stream in binary WebSocket messages both ways (client-go's
/// `TunnelingConnection`): until either side closes.
async fn tunnel<S>(
    ws: WebSocketStream<S>,
    pipe: tokio::io::DuplexStream,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut source) = ws.split();
    let (mut from_spdy, mut to_spdy) = tokio::io::split(pipe);
    let inbound = async {
        while let Some(Ok(message)) = source.next().await {
            match message {
                Message::Binary(bytes) if to_spdy.write_all(&bytes).await.is_err() => break,
                Message::Close(_) => break,
                // Pings are answered by the WebSocket layer; text is not part of the tunnel.
                _ => {}
            }
        }
        let _ = to_spdy.shutdown().await;
    };
    let outbound = async {
        let mut buffer = vec![0u8; TUNNEL_CHUNK];
        loop {
            match from_spdy.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    let message = Message::Binary(Bytes::copy_from_slice(&buffer[..read]));
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
            }
        }
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        let _ = sink.send(close).await;
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        // The client left: the SPDY side sees EOF and ends.
        () = inbound => {}
        // The SPDY side ended: the close frame is sent.
        () = outbound => {}
    }
}

/// A stream waiting for its partner.
struct Pending {
    error: Option<IncomingStream>,
    data: Option<IncomingStream>,
    deadline: Instant,
}

/// Checks a new stream's headers as `httpStreamReceived` does.
fn validate(stream: &IncomingStream) -> Result<(), String> {
    let port = headers::get(&stream.headers, "port").unwrap_or("");
    if port.is_empty() {
        return Err("\"port\" header is required".to_string());
    }
    let number = parse_go_uint16(port).map_err(|error| {
        format!(
            "unable to parse {} as a port: {error}",
            crate::status::go_quote(port)
        )
    })?;
    if number < 1 {
        return Err(format!(
            "port {} must be > 0",
            crate::status::go_quote(port)
        ));
    }
    match headers::get(&stream.headers, "streamType").unwrap_or("") {
        "" => Err("\"streamType\" header is required".to_string()),
        "error" | "data" => Ok(()),
        other => Err(format!(
            "invalid stream type {}",
            crate::status::go_quote(other)
        )),
    }
}

/// The pair a stream belongs to.
fn request_id(stream: &IncomingStream) -> String {
    match headers::get(&stream.headers, "requestID") {
        Some(id) if !id.is_empty() => id.to_string(),
        // Old clients: consecutive ids, error stream first.
        _ => match headers::get(&stream.headers, "streamType") {
            Some("data") => (i64::from(stream.id()) - 2).to_string(),
            _ => stream.id().to_string(),
        },
    }
}

/// Runs one SPDY port-forward connection to its end.
async fn session<S>(io: S, server: Arc<ApiServer>, forwarded: Forwarded)
where
    S: AsyncRead + AsyncWrite + Send,
{
    let (accept_tx, mut accept_rx) = mpsc::channel::<IncomingStream>(16);
    let shutdown = server.shutdown.clone();
    let connection = crate::spdy::connection::serve(io, accept_tx, shutdown);
    let forwarded = Arc::new(forwarded);
    let handler = async {
        let mut pending: HashMap<String, Pending> = HashMap::new();
        let mut forwards = JoinSet::new();
        loop {
            let next_deadline = pending.values().map(|p| p.deadline).min();
            let stream = tokio::select! {
                stream = accept_rx.recv() => match stream {
                    Some(stream) => stream,
                    None => break,
                },
                () = async {
                    match next_deadline {
                        Some(deadline) => tokio::time::sleep_until(deadline).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let now = Instant::now();
                    let expired: Vec<String> = pending
                        .iter()
                        .filter(|(_, p)| p.deadline <= now)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in expired {
                        if let Some(pair) = pending.remove(&id) {
                            let message = format!("(conn=&{{spdy}}, request={id}) timed out waiting for streams");
                            tracing::debug!(%message, "port-forward stream pair incomplete");
                            if let Some(error) = &pair.error {
                                error.writer.write(Bytes::from(message)).await;
                                error.writer.close().await;
                            }
                            if let Some(data) = &pair.data {
                                data.writer.close().await;
                            }
                        }
                    }
                    continue;
                }
                Some(_) = forwards.join_next(), if !forwards.is_empty() => continue,
            };
            if let Err(message) = validate(&stream) {
                tracing::debug!(%message, stream = stream.id(), "port-forward stream rejected");
                stream.reset().await;
                continue;
            }
            if !stream.reply().await {
                break;
            }
            let id = request_id(&stream);
            let is_data = headers::get(&stream.headers, "streamType") == Some("data");
            let pair = pending.entry(id.clone()).or_insert_with(|| Pending {
                error: None,
                data: None,
                deadline: Instant::now() + STREAM_CREATION_TIMEOUT,
            });
            let slot = if is_data {
                &mut pair.data
            } else {
                &mut pair.error
            };
            if slot.is_some() {
                let kind = if is_data { "data" } else { "error" };
                let message = format!(
                    "error processing stream for request {id}: {kind} stream already assigned"
                );
                tracing::debug!(%message, "duplicate port-forward stream");
                if let Some(error) = &pair.error {
                    error.writer.write(Bytes::from(message)).await;
                }
                continue;
            }
            *slot = Some(stream);
            if pair.error.is_some()
                && pair.data.is_some()
                && let Some(Pending {
                    error: Some(error),
                    data: Some(data),
                    ..
                }) = pending.remove(&id)
            {
                forwards.spawn(forward_pair(
                    Arc::clone(&server),
                    Arc::clone(&forwarded),
                    error,
                    data,
                ));
            }
        }
        // The connection is gone: running forwards end with it (the JoinSet aborts them).
    };
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "SPDY port-forward connection ended");
            }
        }
        () = handler => {}
    }
}

/// Forwards one connection: the data stream to the pod port, failures on the error stream.
async fn forward_pair(
    server: Arc<ApiServer>,
    forwarded: Arc<Forwarded>,
    error: IncomingStream,
    data: IncomingStream,
) {
    // Validated when the stream arrived.
    let port = headers::get(&data.headers, "port")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    let id = data.id();
    let writer = data.writer.clone();
    let result = match forwarded.connect(&server, port).await {
        Err(message) => Err(message),
        Ok(connection) => backend::forward(
            connection,
            data.data,
            writer.frames(),
            0,
            move |bytes| StreamWriter::data_frame(id, bytes.freeze()),
            forwarded.lifetime.clone(),
        )
        .await
        .map_err(|cause| forwarded.network.forward_error(port, &cause)),
    };
    if let Err(message) = result {
        tracing::debug!(port, %message, "port forward failed");
        error.writer.write(Bytes::from(message)).await;
    }
    error.writer.close().await;
    writer.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_follows_httpstream() {
        let offer = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(matches!(
            handshake(&offer(&["portforward.k8s.io"])),
            Ok("portforward.k8s.io")
        ));
        assert!(matches!(
            handshake(&offer(&["v2.portforward.k8s.io", "portforward.k8s.io"])),
            Ok("portforward.k8s.io")
        ));
        match handshake(&offer(&["v9.portforward.k8s.io"])) {
            Err(Refusal::Kubelet(status, text)) => {
                assert_eq!(status, StatusCode::FORBIDDEN);
                assert_eq!(
                    text,
                    "unable to upgrade: unable to negotiate protocol: client supports [v9.portforward.k8s.io], server accepts [portforward.k8s.io]\n"
                );
            }
            _ => panic!("must be refused"),
        }
        assert!(matches!(
            handshake(&[]),
            Err(Refusal::Kubelet(StatusCode::BAD_REQUEST, _))
        ));
    }
}
