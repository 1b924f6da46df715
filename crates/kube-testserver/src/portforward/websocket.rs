//! Port forwarding over WebSocket, as the kubelet's `handleWebSocketStreams` serves it.
//!
//! * Subprotocols: `v4.channel.k8s.io`, `v4.base64.channel.k8s.io`, or none (binary
//!   `channel.k8s.io` framing); the client's first supported offer wins, and an offer of
//!   nothing supported gets 403 with wsstream's message.
//! * `ports=80&ports=8080` (or `ports=80,8080`): port `i` gets the data channel `2i` and the
//!   error channel `2i + 1`. The first message on each carries the port number (two bytes,
//!   little endian).
//! * Each port is one connection into the pod. When it ends (the pod closed it, it could
//!   not be opened, or the pod stopped) its channels just end; a failure is first written
//!   on its error channel as text. Once every port is done the server closes the WebSocket
//!   (close code 1000). The client cannot half-close a channel: closing the WebSocket ends
//!   everything.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use kube_apimachinery::channel::{ChannelProtocol, Decoded, Frame, MAX_BASE64_CHANNEL};

use super::{Forwarded, Refusal, backend, check_running, upgrade_websocket};
use crate::api::{ApiServer, Body};

/// The subprotocols the kubelet's port forwarding accepts, besides none at all.
const SUPPORTED: [ChannelProtocol; 2] = [ChannelProtocol::V4, ChannelProtocol::V4Base64];
/// Messages from the pods buffered before the forwards wait for the socket.
const OUT_BUFFER: usize = 16;
/// Client messages buffered per port before the server stops reading the socket.
const IN_BUFFER: usize = 16;
/// How long to wait for the client's close frame after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// tungstenite zeroes this much of its read buffer before every read, and a read from TLS
/// returns at most one record (16 KiB): the 128 KiB default would clear eight times what
/// arrives.
const READ_BUFFER: usize = 32 << 10;

/// The ports of a WebSocket request, as the kubelet's `NewV4Options` reads them.
pub(super) fn v4_ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    let values: Vec<String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(key, _)| key == "ports")
        .map(|(_, value)| value.into_owned())
        .collect();
    if values.is_empty() {
        return Err("query parameter \"ports\" is required".to_string());
    }
    let mut ports = Vec::new();
    for value in &values {
        if value.is_empty() {
            return Err("query parameter \"ports\" cannot be empty".to_string());
        }
        for part in value.split(',') {
            let port = parse_go_uint16(part).map_err(|error| {
                format!(
                    "unable to parse {} as a port: {error}",
                    crate::status::go_quote(value)
                )
            })?;
            if port < 1 {
                return Err(format!(
                    "port {} must be > 0",
                    crate::status::go_quote(value)
                ));
            }
            ports.push(port);
        }
    }
    Ok(ports)
}

/// `strconv.ParseUint(text, 10, 16)`, with Go's error text.
pub(super) fn parse_go_uint16(text: &str) -> Result<u16, String> {
    let quoted = crate::status::go_quote(text);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing {quoted}: invalid syntax"
        ));
    }
    text.parse::<u16>()
        .map_err(|_| format!("strconv.ParseUint: parsing {quoted}: value out of range"))
}

/// The client's first offer the kubelet supports (`V1` for no offer: binary framing
/// without a subprotocol name); the error is wsstream's message.
fn negotiate(offered: &[String]) -> Result<(ChannelProtocol, bool), String> {
    if offered.is_empty() {
        return Ok((ChannelProtocol::V1, false));
    }
    offered
        .iter()
        .find_map(|offer| SUPPORTED.into_iter().find(|p| p.name() == offer))
        .map(|p| (p, true))
        .ok_or_else(|| {
            let supported: Vec<&str> = std::iter::once("")
                .chain(SUPPORTED.iter().map(|p| p.name()))
                .collect();
            format!(
                "requested protocol(s) are not supported: [{}]; supports [{}]",
                offered.join(" "),
                supported.join(" ")
            )
        })
}

/// The kubelet's checks and the upgrade of a WebSocket port-forward request.
pub(super) fn serve(
    server: Arc<ApiServer>,
    mut request: Request<hyper::body::Incoming>,
    pod: &Value,
) -> Result<Response<Body>, Refusal> {
    let ports = v4_ports(request.uri().query())
        .map_err(|message| Refusal::Kubelet(StatusCode::BAD_REQUEST, message))?;
    let forwarded = check_running(&server, pod)?;
    let offered = crate::remotecommand::offered_protocols(request.headers());
    let (protocol, named) =
        negotiate(&offered).map_err(|message| Refusal::Kubelet(StatusCode::FORBIDDEN, message))?;
    // Two channels a port: the last channel number must fit the framing (255 is reserved).
    let max_channel = if protocol.is_base64() {
        usize::from(MAX_BASE64_CHANNEL)
    } else {
        254
    };
    if ports.len() * 2 - 1 > max_channel {
        return Err(Refusal::Kubelet(
            StatusCode::BAD_REQUEST,
            format!("too many ports for {protocol}: {}", ports.len()),
        ));
    }
    let shutdown = server.shutdown.clone();
    let session_server = Arc::clone(&server);
    upgrade_websocket(
        &server,
        &mut request,
        Some(READ_BUFFER),
        named.then(|| protocol.name().to_string()),
        move |ws| session(ws, protocol, ports, session_server, forwarded, shutdown),
    )
}

/// The message carrying `chunk` on `channel`, where `chunk` starts with one spare byte
/// (the backend's headroom): the binary framings put the channel there and send the chunk
/// as it is, without copying the data again.
fn encode_chunk(protocol: ChannelProtocol, channel: u8, mut chunk: BytesMut) -> Option<Message> {
    if protocol.is_base64() {
        return encode(protocol, channel, &chunk[1..]);
    }
    chunk[0] = channel;
    Some(Message::Binary(chunk.freeze()))
}

/// A chunk with the spare first byte [`encode_chunk`] expects.
fn chunk_of(data: &[u8]) -> BytesMut {
    let mut chunk = BytesMut::with_capacity(1 + data.len());
    chunk.put_u8(0);
    chunk.put_slice(data);
    chunk
}

fn encode(protocol: ChannelProtocol, channel: u8, data: &[u8]) -> Option<Message> {
    match protocol.encode(channel, data) {
        Ok(Frame::Binary(bytes)) => Some(Message::Binary(bytes)),
        Ok(Frame::Text(text)) => Some(Message::text(text)),
        // The channel count was checked against the framing before the upgrade.
        Err(error) => {
            tracing::error!(%error, "port-forward message not sent");
            None
        }
    }
}

/// How a session ended.
enum End {
    /// Every port finished: the server closes.
    Finished,
    /// The client sent a close frame.
    ClientClosed,
    /// The connection broke.
    Broken,
    /// The server is shutting down.
    Shutdown,
}

/// Runs one WebSocket port-forward session to its end.
async fn session<S>(
    ws: WebSocketStream<S>,
    protocol: ChannelProtocol,
    ports: Vec<u16>,
    server: Arc<ApiServer>,
    forwarded: Forwarded,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut source) = ws.split();
    // The port number opens each data and error channel (sent together, one flush).
    for (index, port) in ports.iter().enumerate() {
        for channel in [index * 2, index * 2 + 1] {
            let Some(message) = encode(protocol, channel as u8, &port.to_le_bytes()) else {
                return;
            };
            if sink.feed(message).await.is_err() {
                return;
            }
        }
    }
    if sink.flush().await.is_err() {
        return;
    }
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, BytesMut)>(OUT_BUFFER);
    let mut inbound: Vec<Option<mpsc::Sender<Bytes>>> = Vec::with_capacity(ports.len());
    let forwards = FuturesUnordered::new();
    let forwarded = Arc::new(forwarded);
    for (index, port) in ports.iter().copied().enumerate() {
        let (in_tx, in_rx) = mpsc::channel::<Bytes>(IN_BUFFER);
        inbound.push(Some(in_tx));
        let out = out_tx.clone();
        let server = Arc::clone(&server);
        let forwarded = Arc::clone(&forwarded);
        let data = (index * 2) as u8;
        forwards.push(async move {
            let stop = forwarded.lifetime.clone();
            let result = match forwarded.connect(&server, port).await {
                Err(message) => Err(message),
                Ok(_) if stop.is_cancelled() => Ok(()),
                Ok(connection) => {
                    backend::forward(connection, in_rx, out.clone(), 1, move |b| (data, b), stop)
                        .await
                        .map_err(|cause| forwarded.network.forward_error(port, &cause))
                }
            };
            if let Err(message) = result {
                tracing::debug!(port, %message, "port forward failed");
                let _ = out.send((data + 1, chunk_of(message.as_bytes()))).await;
            }
        });
    }
    drop(out_tx);
    let end = {
        // Everything waiting is queued, then flushed once: under load one flush (and one
        // write to the socket) covers several messages.
        let writer = async {
            while let Some(mut item) = out_rx.recv().await {
                loop {
                    let (channel, chunk) = item;
                    if let Some(message) = encode_chunk(protocol, channel, chunk)
                        && sink.feed(message).await.is_err()
                    {
                        return false;
                    }
                    match out_rx.try_recv() {
                        Ok(next) => item = next,
                        Err(_) => break,
                    }
                }
                if sink.flush().await.is_err() {
                    return false;
                }
            }
            true
        };
        let forwarding = async {
            let drive = async {
                let mut forwards = forwards;
                while forwards.next().await.is_some() {}
            };
            let ((), written) = tokio::join!(drive, writer);
            written
        };
        let reader = async {
            loop {
                let message = match source.next().await {
                    Some(Ok(Message::Close(_))) => return End::ClientClosed,
                    Some(Err(_)) | None => return End::Broken,
                    Some(Ok(message)) => message,
                };
                let decoded = match message {
                    Message::Binary(bytes) => protocol.decode_binary(bytes),
                    Message::Text(text) => protocol.decode_text(text.as_str()),
                    _ => continue,
                };
                let (channel, data) = match decoded {
                    Ok(Some(Decoded::Data { channel, data })) => (channel, data),
                    Ok(_) => continue,
                    Err(error) => {
                        tracing::debug!(%error, "port-forward message ignored");
                        continue;
                    }
                };
                // Only data channels are read; the error channels are write-only.
                let index = usize::from(channel / 2);
                if channel % 2 == 1 || data.is_empty() {
                    continue;
                }
                if let Some(slot) = inbound.get_mut(index)
                    && let Some(sender) = slot
                    && sender.send(data).await.is_err()
                {
                    // That port's connection is over: its data goes nowhere.
                    *slot = None;
                }
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => End::Shutdown,
            end = reader => end,
            written = forwarding => if written { End::Finished } else { End::Broken },
        }
    };
    match end {
        End::Finished => {
            let close = Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }));
            if sink.send(close).await.is_err() {
                return;
            }
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while let Some(Ok(message)) = source.next().await {
                    if message.is_close() {
                        break;
                    }
                }
            })
            .await;
        }
        End::ClientClosed => {
            let _ = tokio::time::timeout(CLOSE_WAIT, sink.close()).await;
        }
        End::Shutdown => {
            let close = Message::Close(Some(CloseFrame {
                code: CloseCode::Away,
                reason: "server shutting down".into(),
            }));
            let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(close)).await;
        }
        End::Broken => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_as_the_kubelet_reads_them() {
        assert_eq!(v4_ports(Some("ports=80&ports=8080")), Ok(vec![80, 8080]));
        assert_eq!(v4_ports(Some("ports=80,81&ports=9")), Ok(vec![80, 81, 9]));
        assert_eq!(
            v4_ports(None),
            Err("query parameter \"ports\" is required".to_string())
        );
        assert_eq!(
            v4_ports(Some("ports=")),
            Err("query parameter \"ports\" cannot be empty".to_string())
        );
        assert_eq!(
            v4_ports(Some("ports=http")),
            Err("unable to parse \"http\" as a port: strconv.ParseUint: parsing \"http\": invalid syntax".to_string())
        );
        assert_eq!(
            v4_ports(Some("ports=80,70000")),
            Err("unable to parse \"80,70000\" as a port: strconv.ParseUint: parsing \"70000\": value out of range".to_string())
        );
        assert_eq!(
            v4_ports(Some("ports=0")),
            Err("port \"0\" must be > 0".to_string())
        );
    }

    #[test]
    fn negotiation_follows_wsstream() {
        let offers = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(negotiate(&[]), Ok((ChannelProtocol::V1, false)));
        assert_eq!(
            negotiate(&offers(&[
                "v5.channel.k8s.io",
                "v4.base64.channel.k8s.io",
                "v4.channel.k8s.io"
            ])),
            Ok((ChannelProtocol::V4Base64, true))
        );
        assert_eq!(
            negotiate(&offers(&["portforward.k8s.io"])),
            Err("requested protocol(s) are not supported: [portforward.k8s.io]; supports [ v4.channel.k8s.io v4.base64.channel.k8s.io]".to_string())
        );
    }
}
