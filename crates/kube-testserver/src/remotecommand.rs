//! The Kubernetes remote-command WebSocket protocols (exec and attach), as the kubelet's
//! `wsstream` speaks them: subprotocol negotiation, channel framing and a session that wires a
//! process ([`crate::shell`]) to a WebSocket.
//!
//! * Framing (one channel byte, or a channel digit and base64 text) and the resize messages
//!   are kube-apimachinery's [`channel`](kube_apimachinery::channel) module, shared with the
//!   client side.
//! * The server first sends an empty message on the lowest writable channel (stdout if
//!   requested, else stderr, else error): the stream is established.
//! * `v5.channel.k8s.io` only: the client message `[255, channel]` closes that channel (stdin
//!   EOF).
//! * At the end, v4 and v5 send a `Status` as JSON on the error channel (also on success);
//!   older protocols send the error message as text, and nothing on success. Then a normal
//!   close frame.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use kube_apimachinery::channel::{
    ChannelProtocol, Decoded, ERROR, Frame, RESIZE, STDERR, STDIN, STDOUT, TerminalSize,
};

use crate::shell::{Output, ProcessIo, Stdin, Stream};

/// The named protocols the server supports, in the order it lists them: the kubelet's
/// WebSocket protocols (`v3`/`v2.channel.k8s.io` are SPDY names, refused over WebSocket as a
/// kubelet refuses them).
pub const SUPPORTED: [ChannelProtocol; 5] = [
    ChannelProtocol::V5,
    ChannelProtocol::V4,
    ChannelProtocol::V4Base64,
    ChannelProtocol::V1,
    ChannelProtocol::V1Base64,
];

/// The prefix of the subprotocol browser clients carry a bearer token in.
pub const BEARER_PROTOCOL_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

/// One WebSocket message carrying `data` on `channel`.
fn encode(protocol: ChannelProtocol, channel: u8, data: &[u8]) -> Option<Message> {
    match protocol.encode(channel, data) {
        Ok(Frame::Binary(bytes)) => Some(Message::Binary(bytes)),
        Ok(Frame::Text(text)) => Some(Message::text(text)),
        // Only the exec channels (0 to 4) are sent, which every protocol carries.
        Err(error) => {
            tracing::error!(%error, "remote-command message not sent");
            None
        }
    }
}

/// Decodes a client message; `None` for control messages and malformed ones (ignored, as
/// the kubelet ignores what it cannot route).
fn decode(protocol: ChannelProtocol, message: Message) -> Option<Decoded> {
    let decoded = match message {
        Message::Binary(bytes) => protocol.decode_binary(bytes),
        Message::Text(text) => protocol.decode_text(text.as_str()),
        _ => return None,
    };
    match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            tracing::debug!(%error, "remote-command message ignored");
            None
        }
    }
}

/// The offered subprotocols of a `Sec-WebSocket-Protocol` header set, in order, without the
/// bearer-token offers.
pub fn offered_protocols(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with(BEARER_PROTOCOL_PREFIX))
        .map(str::to_string)
        .collect()
}

/// The bearer token a browser client offers as a subprotocol, if any.
pub fn bearer_token_offer(headers: &http::HeaderMap) -> Option<String> {
    use base64::Engine as _;
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|p| p.trim().strip_prefix(BEARER_PROTOCOL_PREFIX))
        .find_map(|encoded| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded.trim_end_matches('='))
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        })
}

/// Picks the first offered protocol the server supports; `None` when the client offered
/// none (it then speaks `channel.k8s.io` without naming it). The error is wsstream's
/// message.
pub fn negotiate(offered: &[String]) -> Result<Option<ChannelProtocol>, String> {
    if offered.is_empty() {
        return Ok(None);
    }
    offered
        .iter()
        .find_map(|offer| SUPPORTED.into_iter().find(|p| p.name() == offer))
        .map(Some)
        .ok_or_else(|| {
            let supported: Vec<&str> = SUPPORTED.iter().map(|p| p.name()).collect();
            format!(
                "requested protocol(s) are not supported: [{}]; supports [{}]",
                offered.join(" "),
                supported.join(" ")
            )
        })
}

/// How the remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// Exit code 0 (or an attach the client ended).
    Success,
    /// A non-zero exit code of `command`.
    ExitCode {
        /// The command line, as the runtime reports it.
        command: Vec<String>,
        /// The exit code.
        code: i32,
    },
    /// The runtime could not run the command (an `InternalError` status with this cause).
    Internal(String),
}

impl Termination {
    /// The `metav1.Status` the kubelet writes on the error channel.
    pub fn status(&self) -> Value {
        match self {
            Termination::Success => json!({"metadata": {}, "status": "Success"}),
            Termination::ExitCode { command, code } => json!({
                "metadata": {},
                "status": "Failure",
                "message": format!(
                    "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                    command.join(" ")
                ),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            }),
            Termination::Internal(cause) => json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("Internal error occurred: {cause}"),
                "reason": "InternalError",
                "details": {"causes": [{"message": cause}]},
                "code": 500,
            }),
        }
    }

    /// What the error channel carries for `protocol` (`None`: nothing).
    pub fn error_channel(&self, protocol: ChannelProtocol) -> Option<Vec<u8>> {
        if protocol.has_status() {
            return serde_json::to_vec(&self.status()).ok();
        }
        self.status()["message"]
            .as_str()
            .map(|message| message.as_bytes().to_vec())
    }
}

/// Which streams the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    /// stdin.
    pub stdin: bool,
    /// stdout.
    pub stdout: bool,
    /// stderr (off with a TTY: merged into stdout).
    pub stderr: bool,
    /// A TTY.
    pub tty: bool,
}

/// How long to wait for the client's close frame after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Stdin chunks buffered before the server stops reading the socket.
const STDIN_BUFFER: usize = 16;

/// How long a session may take to say goodbye once the server shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Runs a remote command over `ws`: `process` gets the process's streams; the session ends
/// when it finishes (status, then close), when the client closes or vanishes (the process is
/// dropped), or at `shutdown`.
///
/// Like the kubelet, it stops reading the socket while the process does not read its stdin
/// (16 chunks queued), and a client that stops reading holds the session up by TCP
/// backpressure; a server shutdown ends the session in any case.
pub async fn run_session<S, F, Fut>(
    ws: WebSocketStream<S>,
    protocol: ChannelProtocol,
    streams: Streams,
    shutdown: CancellationToken,
    process: F,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(ProcessIo) -> Fut,
    Fut: Future<Output = Termination>,
{
    let stop = shutdown.clone();
    tokio::select! {
        biased;
        () = session(ws, protocol, streams, shutdown, process) => {}
        // A send blocked on a client that stopped reading cannot see the shutdown: give the
        // session a moment to send its close frame, then drop it.
        () = async {
            stop.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {}
    }
}

async fn session<S, F, Fut>(
    ws: WebSocketStream<S>,
    protocol: ChannelProtocol,
    streams: Streams,
    shutdown: CancellationToken,
    process: F,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(ProcessIo) -> Fut,
    Fut: Future<Output = Termination>,
{
    let (mut sink, mut source) = ws.split();
    let first = if streams.stdout {
        STDOUT
    } else if streams.stderr {
        STDERR
    } else {
        ERROR
    };
    let Some(established) = encode(protocol, first, &[]) else {
        return;
    };
    if sink.send(established).await.is_err() {
        return;
    }
    let (out_tx, mut out_rx) = mpsc::channel::<(Stream, Bytes)>(STDIN_BUFFER);
    let output = Output::new(out_tx, streams.tty);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(STDIN_BUFFER);
    let mut stdin_tx = streams.stdin.then_some(stdin_tx);
    let (resize_tx, resize_rx) = watch::channel::<Option<TerminalSize>>(None);
    let io = ProcessIo {
        stdin: Stdin::new(
            streams.stdin.then_some(stdin_rx),
            streams.tty,
            output.clone(),
        ),
        output,
        resize: resize_rx,
        tty: streams.tty,
    };
    let running = process(io);
    tokio::pin!(running);
    let mut pending_stdin: std::collections::VecDeque<Bytes> = Default::default();
    let mut stdin_closing = false;
    let to_channel = |stream: Stream| match stream {
        Stream::Stdout if streams.stdout => Some(STDOUT),
        Stream::Stderr if streams.tty && streams.stdout => Some(STDOUT),
        Stream::Stderr if streams.stderr => Some(STDERR),
        _ => None,
    };
    let termination = loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = sink.send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Away,
                    reason: "server shutting down".into(),
                }))).await;
                return;
            }
            termination = &mut running => break termination,
            Some((stream, data)) = out_rx.recv() => {
                if let Some(message) = to_channel(stream).and_then(|c| encode(protocol, c, &data))
                    && sink.send(message).await.is_err()
                {
                    return;
                }
            }
            permit = async { stdin_tx.clone()?.reserve_owned().await.ok() }, if !pending_stdin.is_empty() => {
                match (permit, pending_stdin.pop_front()) {
                    (Some(permit), Some(chunk)) => drop(permit.send(chunk)),
                    _ => pending_stdin.clear(),
                }
                if pending_stdin.is_empty() && stdin_closing {
                    stdin_tx = None;
                }
            }
            message = source.next(), if pending_stdin.len() < STDIN_BUFFER => {
                let message = match message {
                    // The client ended the session: answer its close frame, stop the process.
                    Some(Ok(Message::Close(_))) => {
                        let _ = tokio::time::timeout(CLOSE_WAIT, sink.close()).await;
                        return;
                    }
                    Some(Err(_)) | None => return,
                    Some(Ok(message)) => message,
                };
                match decode(protocol, message) {
                    Some(Decoded::Data { channel: STDIN, data })
                        if stdin_tx.is_some() && !stdin_closing && !data.is_empty() =>
                    {
                        pending_stdin.push_back(data);
                    }
                    Some(Decoded::Data { channel: RESIZE, data }) => {
                        match TerminalSize::from_json(&data) {
                            Ok(size) => {
                                let _ = resize_tx.send(Some(size));
                            }
                            Err(error) => tracing::debug!(%error, "resize ignored"),
                        }
                    }
                    Some(Decoded::Close { channel: STDIN }) => {
                        stdin_closing = true;
                        if pending_stdin.is_empty() {
                            stdin_tx = None;
                        }
                    }
                    // Other channels and non-channel messages (pings are answered by the
                    // WebSocket layer) are ignored.
                    _ => {}
                }
            }
        }
    };
    // The process is done: flush what it wrote, then the status, then close.
    out_rx.close();
    while let Some((stream, data)) = out_rx.recv().await {
        if let Some(message) = to_channel(stream).and_then(|c| encode(protocol, c, &data))
            && sink.send(message).await.is_err()
        {
            return;
        }
    }
    if let Some(message) = termination
        .error_channel(protocol)
        .and_then(|status| encode(protocol, ERROR, &status))
        && sink.send(message).await.is_err()
    {
        return;
    }
    let close = Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }));
    if sink.send(close).await.is_err() {
        return;
    }
    // Wait for the client's close frame (the closing handshake), not forever.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(message)) = source.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn negotiation_takes_the_clients_first_supported_offer() {
        assert_eq!(negotiate(&[]), Ok(None));
        assert_eq!(
            negotiate(&offers(&[
                "v6.channel.k8s.io",
                "v4.channel.k8s.io",
                "v5.channel.k8s.io"
            ])),
            Ok(Some(ChannelProtocol::V4))
        );
        assert_eq!(
            negotiate(&offers(&["base64.channel.k8s.io"])),
            Ok(Some(ChannelProtocol::V1Base64))
        );
        // SPDY names are refused over WebSocket, as by a kubelet.
        assert!(negotiate(&offers(&["v3.channel.k8s.io"])).is_err());
        let error = negotiate(&offers(&["v9.channel.k8s.io", "foo"])).unwrap_err();
        assert!(
            error.starts_with(
                "requested protocol(s) are not supported: [v9.channel.k8s.io foo]; supports [v5.channel.k8s.io v4.channel.k8s.io"
            ),
            "{error}"
        );
        let mut headers = http::HeaderMap::new();
        headers.append(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static(
                "base64url.bearer.authorization.k8s.io.dG9rZW4, v5.channel.k8s.io",
            ),
        );
        headers.append(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("v4.channel.k8s.io"),
        );
        assert_eq!(
            offered_protocols(&headers),
            offers(&["v5.channel.k8s.io", "v4.channel.k8s.io"])
        );
        assert_eq!(bearer_token_offer(&headers).as_deref(), Some("token"));
    }

    #[test]
    fn websocket_messages_map_onto_the_shared_framing() {
        assert_eq!(
            encode(ChannelProtocol::V5, STDOUT, b"hi"),
            Some(Message::Binary(Bytes::from_static(&[1, b'h', b'i'])))
        );
        assert_eq!(
            encode(ChannelProtocol::V4Base64, STDERR, b"hello"),
            Some(Message::text("2aGVsbG8="))
        );
        assert_eq!(
            decode(
                ChannelProtocol::V5,
                Message::Binary(Bytes::from_static(&[255, 0]))
            ),
            Some(Decoded::Close { channel: STDIN })
        );
        assert_eq!(
            decode(ChannelProtocol::V1Base64, Message::text("0aGVsbG8=")),
            Some(Decoded::Data {
                channel: STDIN,
                data: Bytes::from_static(b"hello")
            })
        );
        // Malformed and control messages are ignored.
        assert_eq!(decode(ChannelProtocol::V4, Message::text("0x")), None);
        assert_eq!(
            decode(ChannelProtocol::V4, Message::Binary(Bytes::new())),
            None
        );
        assert_eq!(
            decode(ChannelProtocol::V4, Message::Ping(Bytes::new())),
            None
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(
            String::from_utf8(
                Termination::Success
                    .error_channel(ChannelProtocol::V5)
                    .unwrap()
            )
            .unwrap(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        assert_eq!(
            Termination::Success.error_channel(ChannelProtocol::V1),
            None
        );
        let exit = Termination::ExitCode {
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
            code: 3,
        };
        assert_eq!(
            exit.status(),
            json!({"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}})
        );
        assert_eq!(
            exit.error_channel(ChannelProtocol::V1Base64).unwrap(),
            b"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
    }
}
