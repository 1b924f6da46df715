//! One forwarded port over one WebSocket: [`PortStream`], an `AsyncRead + AsyncWrite`.
//!
//! The protocol is the kubelet's WebSocket port forwarding (`v4.channel.k8s.io`, or its base64
//! variant), which the API server passes through: each port of the request gets a data channel
//! (`2i`) and an error channel (`2i + 1`); the server starts both with the port number (two
//! bytes, little endian), then the data channel carries the bytes of the TCP connection in
//! both directions, and the error channel one message from the server when the connection to
//! the port failed. The stream ends when the server closes the WebSocket (after the pod's side
//! of the connection ended). A stream here forwards a single port (channels 0 and 1).
//!
//! A background task serves the socket: it pings the server every 5 s and gives up when
//! nothing arrived for 61 s (client-go's WebSocket periods), so a dead connection ends with an
//! error instead of hanging.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use kube_apimachinery::channel::{ChannelProtocol, Decoded, Frame};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_util::sync::{CancellationToken, DropGuard, PollSender};

use crate::dialer::{Upgraded, UpgradedIo};
use crate::error::{ConnectionError, DialError};

/// The data channel of the (single) port of a stream.
pub(crate) const DATA: u8 = 0;
/// Its error channel.
pub(crate) const ERROR: u8 = 1;

/// The protocols offered, best first: the kubelet's WebSocket port-forward protocols
/// (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io`).
pub const DEFAULT_PROTOCOLS: [ChannelProtocol; 2] =
    [ChannelProtocol::V4, ChannelProtocol::V4Base64];

/// One write becomes at most one message of this size.
const MAX_CHUNK: usize = 256 * 1024;
/// tungstenite zeroes this much of its read buffer before every read, and a read from TLS
/// returns at most one record (16 KiB): the 128 KiB default clears eight times what arrives.
const READ_BUFFER: usize = 32 * 1024;
/// Messages waiting between the socket task and a reader or writer.
const QUEUE: usize = 16;
/// At most this much of an error message is kept (the kubelet's are one line).
const ERROR_LIMIT: usize = 64 * 1024;
/// client-go's WebSocket ping period.
const PING_PERIOD: Duration = Duration::from_secs(5);
/// client-go's read deadline: twelve missed pings and a second.
const READ_DEADLINE: Duration = Duration::from_secs(61);

/// How a stream ended: `Ok` for a clean close, the error otherwise (shared: the reader,
/// the writer and the forwarder all see it).
pub type Outcome = Result<(), Arc<ConnectionError>>;

enum Outgoing {
    Message(Message),
    /// The writer shut down: half-close the data channel where the protocol can.
    CloseData,
}

/// A connection to one port of the pod: read what the pod's side sends, write what it
/// receives.
///
/// Reading ends (EOF) when the server closes the stream; when the server reported an error on
/// the port's error channel, or the WebSocket broke, the read after the last data fails with
/// that error (its inner error is the [`ConnectionError`] in text; [`PortStream::outcome`]
/// gives it typed).
///
/// **Half-close**: `shutdown()` sends no more data. `v4.channel.k8s.io`, which is what
/// kubelets speak for port forwarding, has no way to close one direction, so the pod's side
/// sees EOF only when the stream is dropped (as with kubectl over WebSocket); a server that
/// selected `v5.channel.k8s.io` receives the close-channel message and sees EOF at once.
/// [`PortStream::can_half_close`] tells which it is.
///
/// Dropping both halves closes the WebSocket.
#[derive(Debug)]
pub struct PortStream {
    reader: PortReader,
    writer: PortWriter,
}

/// The read half of a [`PortStream`].
#[derive(Debug)]
pub struct PortReader {
    rx: mpsc::Receiver<Bytes>,
    chunk: Bytes,
    end: watch::Receiver<Option<Outcome>>,
    remote: u16,
    _guard: Arc<DropGuard>,
}

/// The write half of a [`PortStream`].
#[derive(Debug)]
pub struct PortWriter {
    tx: PollSender<Outgoing>,
    protocol: ChannelProtocol,
    shut: bool,
    end: watch::Receiver<Option<Outcome>>,
    remote: u16,
    _guard: Arc<DropGuard>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outgoing::Message(m) => write!(f, "Message({} bytes)", m.len()),
            Outgoing::CloseData => f.write_str("CloseData"),
        }
    }
}

/// Waits for the end of a [`PortStream`] (see [`PortStream::outcome`]).
#[derive(Debug, Clone)]
pub struct OutcomeHandle(watch::Receiver<Option<Outcome>>);

impl OutcomeHandle {
    /// Waits until the stream's task ended and returns how.
    pub async fn wait(&mut self) -> Outcome {
        match self.0.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Ok(())),
            // The task was dropped without a word (its runtime shut down).
            Err(_) => Err(Arc::new(ConnectionError::Broken {
                remote: 0,
                reason: "the stream task ended unexpectedly".into(),
                source: None,
            })),
        }
    }

    /// How the stream ended, if it has.
    pub fn get(&self) -> Option<Outcome> {
        self.0.borrow().clone()
    }
}

/// Picks the protocol from the server's answer.
pub(crate) fn negotiated(
    selected: &str,
    offered: &[ChannelProtocol],
) -> Result<ChannelProtocol, DialError> {
    let protocol = ChannelProtocol::from_name(selected);
    match protocol {
        // "" (no subprotocol) is the binary framing the kubelet also speaks.
        Some(p) if selected.is_empty() || offered.contains(&p) => Ok(p),
        _ => Err(DialError::Protocol {
            offered: offered
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
            selected: selected.to_string(),
        }),
    }
}

impl PortStream {
    /// Serves an upgraded connection to `remote` (the port of the pod) in a background task
    /// stopped by `stop` (or when both halves are dropped). `local` only labels errors.
    pub(crate) async fn start(
        upgraded: Upgraded,
        protocol: ChannelProtocol,
        remote: u16,
        local: u16,
        stop: CancellationToken,
    ) -> PortStream {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(16 << 20));
        let socket =
            WebSocketStream::from_raw_socket(upgraded.io, Role::Client, Some(config)).await;
        let (data_tx, data_rx) = mpsc::channel(QUEUE);
        let (out_tx, out_rx) = mpsc::channel(QUEUE);
        let (end_tx, end_rx) = watch::channel(None);
        let guard = Arc::new(stop.clone().drop_guard());
        let driver = Driver {
            protocol,
            remote,
            local,
            started: tokio::time::Instant::now(),
            last_read: AtomicU64::new(0),
        };
        tokio::spawn(driver.run(socket, data_tx, out_rx, stop, end_tx));
        PortStream {
            reader: PortReader {
                rx: data_rx,
                chunk: Bytes::new(),
                end: end_rx.clone(),
                remote,
                _guard: guard.clone(),
            },
            writer: PortWriter {
                tx: PollSender::new(out_tx),
                protocol,
                shut: false,
                end: end_rx,
                remote,
                _guard: guard,
            },
        }
    }

    /// The port in the pod.
    pub fn remote_port(&self) -> u16 {
        self.reader.remote
    }

    /// The subprotocol in use.
    pub fn protocol(&self) -> ChannelProtocol {
        self.writer.protocol
    }

    /// Whether `shutdown()` reaches the pod's side as EOF while the stream stays open (only
    /// with `v5.channel.k8s.io`; see the type's documentation).
    pub fn can_half_close(&self) -> bool {
        self.writer.protocol.can_close_channels()
    }

    /// A handle to wait for the end of the stream and learn how it ended (a remote error,
    /// a broken connection).
    pub fn outcome(&self) -> OutcomeHandle {
        OutcomeHandle(self.reader.end.clone())
    }

    /// Splits into halves that can be used from different tasks.
    pub fn into_split(self) -> (PortReader, PortWriter) {
        (self.reader, self.writer)
    }
}

fn ended_error(end: &watch::Receiver<Option<Outcome>>, kind: io::ErrorKind) -> io::Error {
    match &*end.borrow() {
        Some(Err(error)) => io::Error::new(kind, error.to_string()),
        _ => io::Error::new(kind, "the port-forward stream has ended"),
    }
}

impl PortReader {
    /// The port in the pod.
    pub fn remote_port(&self) -> u16 {
        self.remote
    }

    /// A handle to wait for the end of the stream (see [`PortStream::outcome`]).
    pub fn outcome(&self) -> OutcomeHandle {
        OutcomeHandle(self.end.clone())
    }
}

impl PortWriter {
    /// The port in the pod.
    pub fn remote_port(&self) -> u16 {
        self.remote
    }

    /// A handle to wait for the end of the stream (see [`PortStream::outcome`]).
    pub fn outcome(&self) -> OutcomeHandle {
        OutcomeHandle(self.end.clone())
    }
}

impl PortReader {
    /// What the reader returns once the task dropped its sender (the task stores the outcome
    /// first).
    fn end_result(&self) -> io::Result<()> {
        match &*self.end.borrow() {
            Some(Ok(())) => Ok(()),
            Some(Err(error)) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                error.to_string(),
            )),
            None => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the port-forward stream task ended unexpectedly",
            )),
        }
    }
}

impl AsyncRead for PortReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.chunk.is_empty() {
                let n = self.chunk.len().min(buf.remaining());
                buf.put_slice(&self.chunk[..n]);
                self.chunk.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(self.rx.poll_recv(cx)) {
                Some(chunk) => self.chunk = chunk,
                None => return Poll::Ready(self.end_result()),
            }
        }
    }
}

/// The messages are the buffer: `tokio::io::copy_buf` writes them out without another copy.
impl AsyncBufRead for PortReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.chunk.is_empty() {
            match ready!(this.rx.poll_recv(cx)) {
                Some(chunk) => this.chunk = chunk,
                None => {
                    this.end_result()?;
                    return Poll::Ready(Ok(&[]));
                }
            }
        }
        Poll::Ready(Ok(&this.chunk))
    }

    fn consume(mut self: Pin<&mut Self>, amount: usize) {
        let amount = amount.min(self.chunk.len());
        self.chunk.advance(amount);
    }
}

impl PortWriter {
    /// Sends `chunk[1..]` on the data channel. `chunk[0]` is room for the channel number:
    /// the binary framings send the buffer as it is, so the data is not copied again (the
    /// forwarder reads the local connection straight into such chunks).
    pub(crate) async fn send_chunk(&mut self, mut chunk: BytesMut) -> io::Result<()> {
        if self.shut {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            ));
        }
        if chunk.len() <= 1 {
            return Ok(());
        }
        let message = if self.protocol.is_base64() {
            match self.protocol.encode(DATA, &chunk[1..]) {
                Ok(Frame::Binary(bytes)) => Message::Binary(bytes),
                Ok(Frame::Text(text)) => Message::text(text),
                Err(error) => return Err(io::Error::other(error)),
            }
        } else {
            chunk[0] = DATA;
            Message::Binary(chunk.freeze())
        };
        if std::future::poll_fn(|cx| self.tx.poll_reserve(cx))
            .await
            .is_err()
            || self.tx.send_item(Outgoing::Message(message)).is_err()
        {
            return Err(ended_error(&self.end, io::ErrorKind::BrokenPipe));
        }
        Ok(())
    }
}

impl AsyncWrite for PortWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.shut {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if ready!(self.tx.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(ended_error(&self.end, io::ErrorKind::BrokenPipe)));
        }
        let n = buf.len().min(MAX_CHUNK);
        let message = match self.protocol.encode(DATA, &buf[..n]) {
            Ok(Frame::Binary(bytes)) => Message::Binary(bytes),
            Ok(Frame::Text(text)) => Message::text(text),
            // Channel 0 fits every protocol.
            Err(error) => return Poll::Ready(Err(io::Error::other(error))),
        };
        if self.tx.send_item(Outgoing::Message(message)).is_err() {
            return Poll::Ready(Err(ended_error(&self.end, io::ErrorKind::BrokenPipe)));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written data is queued to the socket task, which flushes whenever its queue is empty.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shut {
            return Poll::Ready(Ok(()));
        }
        if ready!(self.tx.poll_reserve(cx)).is_ok() {
            let _ = self.tx.send_item(Outgoing::CloseData);
        }
        self.tx.close();
        self.shut = true;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for PortStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for PortStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

/// Strips the two-byte port number that starts each channel, and checks it.
struct PortPrefix {
    expected: u16,
    seen: Vec<u8>,
}

impl PortPrefix {
    fn new(expected: u16) -> PortPrefix {
        PortPrefix {
            expected,
            seen: Vec::with_capacity(2),
        }
    }

    /// The payload after the prefix, or an error when the prefix names another port.
    fn strip(&mut self, mut data: Bytes) -> Result<Bytes, String> {
        if self.seen.len() < 2 {
            let take = (2 - self.seen.len()).min(data.len());
            self.seen.extend_from_slice(&data[..take]);
            data.advance(take);
            if self.seen.len() == 2 {
                let port = u16::from_le_bytes([self.seen[0], self.seen[1]]);
                if port != self.expected {
                    return Err(format!(
                        "the server opened a stream for port {port}, not {}",
                        self.expected
                    ));
                }
            }
        }
        Ok(data)
    }
}

struct Driver {
    protocol: ChannelProtocol,
    remote: u16,
    local: u16,
    started: tokio::time::Instant,
    /// Milliseconds from `started` to the last message from the server.
    last_read: AtomicU64,
}

type Socket = WebSocketStream<Box<dyn UpgradedIo>>;

impl Driver {
    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_read.store(now, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_read.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    fn broken(
        &self,
        reason: impl Into<String>,
        source: Option<tokio_tungstenite::tungstenite::Error>,
    ) -> ConnectionError {
        ConnectionError::Broken {
            remote: self.remote,
            reason: reason.into(),
            source,
        }
    }

    async fn run(
        self,
        socket: Socket,
        data_tx: mpsc::Sender<Bytes>,
        mut out_rx: mpsc::Receiver<Outgoing>,
        stop: CancellationToken,
        end: watch::Sender<Option<Outcome>>,
    ) {
        let (mut sink, mut stream) = socket.split();
        let mut data_tx = Some(data_tx);
        let mut error_text = Vec::new();
        let result = {
            let reading = self.read(&mut stream, &mut data_tx, &mut error_text);
            let writing = self.write(&mut sink, &mut out_rx);
            tokio::select! {
                result = reading => result,
                result = writing => result,
                _ = stop.cancelled() => {
                    let close = sink.send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "client done".into(),
                    })));
                    let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
                    Ok(())
                }
            }
        };
        // Send the close reply tungstenite queued, without waiting long for it.
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        let result = match result {
            Ok(()) if !error_text.is_empty() => Err(ConnectionError::Remote {
                local: self.local,
                remote: self.remote,
                message: String::from_utf8_lossy(&error_text).into_owned(),
            }),
            other => other,
        };
        if let Err(error) = &result {
            tracing::debug!(remote = self.remote, %error, "port-forward stream ended with an error");
        }
        end.send_replace(Some(result.map_err(Arc::new)));
        // Only now may the reader see the end of the data.
        drop(data_tx);
    }

    async fn read(
        &self,
        stream: &mut futures_util::stream::SplitStream<Socket>,
        data_tx: &mut Option<mpsc::Sender<Bytes>>,
        error_text: &mut Vec<u8>,
    ) -> Result<(), ConnectionError> {
        let mut data_prefix = PortPrefix::new(self.remote);
        let mut error_prefix = PortPrefix::new(self.remote);
        let protocol_error = |reason: String| ConnectionError::Protocol {
            remote: self.remote,
            reason,
        };
        loop {
            let message = match stream.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Err(error)) => {
                    return Err(self.broken("reading from the WebSocket", Some(error)));
                }
                Some(Ok(message)) => message,
            };
            self.touch();
            let decoded = match message {
                Message::Binary(bytes) => self.protocol.decode_binary(bytes),
                Message::Text(text) => self.protocol.decode_text(text.as_str()),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                Message::Close(_) => return Ok(()),
            };
            let (channel, data) = match decoded {
                Ok(Some(Decoded::Data { channel, data })) => (channel, data),
                Ok(Some(Decoded::Close { channel })) => {
                    tracing::debug!(remote = self.remote, channel, "the server closed a channel");
                    continue;
                }
                Ok(None) => continue,
                Err(error) => return Err(protocol_error(error.to_string())),
            };
            match channel {
                DATA => {
                    let data = data_prefix.strip(data).map_err(protocol_error)?;
                    if data.is_empty() {
                        continue;
                    }
                    if let Some(tx) = data_tx
                        && tx.send(data).await.is_err()
                    {
                        tracing::debug!(
                            remote = self.remote,
                            "reader dropped; discarding the pod's data"
                        );
                        *data_tx = None;
                    }
                }
                ERROR => {
                    let data = error_prefix.strip(data).map_err(protocol_error)?;
                    let room = ERROR_LIMIT.saturating_sub(error_text.len());
                    if data.len() > room {
                        tracing::warn!(
                            remote = self.remote,
                            dropped = data.len() - room,
                            "error message over 64 KiB cut"
                        );
                    }
                    error_text.extend_from_slice(&data[..data.len().min(room)]);
                }
                other => {
                    tracing::debug!(
                        remote = self.remote,
                        channel = other,
                        bytes = data.len(),
                        "data on an unexpected channel dropped"
                    );
                }
            }
        }
    }

    async fn write(
        &self,
        sink: &mut futures_util::stream::SplitSink<Socket, Message>,
        out_rx: &mut mpsc::Receiver<Outgoing>,
    ) -> Result<(), ConnectionError> {
        let mut pings =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_PERIOD, PING_PERIOD);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        let write_error = |error| self.broken("writing to the WebSocket", Some(error));
        loop {
            tokio::select! {
                item = out_rx.recv(), if open => {
                    let Some(mut item) = item else {
                        open = false;
                        continue;
                    };
                    // Queue everything waiting, then flush once.
                    loop {
                        match item {
                            Outgoing::Message(message) => sink.feed(message).await.map_err(write_error)?,
                            Outgoing::CloseData => match self.protocol.encode_close(DATA) {
                                Some(Frame::Binary(bytes)) => sink.feed(Message::Binary(bytes)).await.map_err(write_error)?,
                                _ => tracing::debug!(
                                    remote = self.remote,
                                    protocol = %self.protocol,
                                    "the protocol cannot half-close; the pod sees EOF when the stream closes"
                                ),
                            },
                        }
                        match out_rx.try_recv() {
                            Ok(next) => item = next,
                            Err(_) => break,
                        }
                    }
                    sink.flush().await.map_err(write_error)?;
                }
                _ = pings.tick() => {
                    if self.silent_for() >= READ_DEADLINE {
                        return Err(self.broken(
                            format!("nothing from the server for {} s", READ_DEADLINE.as_secs()),
                            None,
                        ));
                    }
                    sink.send(Message::Ping(Bytes::new())).await.map_err(write_error)?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_stripped_across_messages_and_checked() {
        let mut prefix = PortPrefix::new(0x1f90); // 8080
        assert_eq!(
            prefix.strip(Bytes::from_static(&[0x90])).unwrap(),
            Bytes::new()
        );
        assert_eq!(
            prefix
                .strip(Bytes::from_static(&[0x1f, b'h', b'i']))
                .unwrap(),
            Bytes::from_static(b"hi")
        );
        assert_eq!(
            prefix.strip(Bytes::from_static(b"more")).unwrap(),
            Bytes::from_static(b"more")
        );
        let mut wrong = PortPrefix::new(80);
        let error = wrong.strip(Bytes::from_static(&[81, 0])).unwrap_err();
        assert!(error.contains("port 81, not 80"), "{error}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
        ))]

        /// However the server splits its messages, the prefix is checked once and the data
        /// comes out whole; a wrong port is always an error.
        #[test]
        fn prefix_framing_under_any_split(
            expected in proptest::prelude::any::<u16>(),
            sent in proptest::prelude::any::<u16>(),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            cuts in proptest::collection::vec(proptest::prelude::any::<usize>(), 0..6),
        ) {
            let mut wire = sent.to_le_bytes().to_vec();
            wire.extend_from_slice(&payload);
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
            points.sort_unstable();
            let mut prefix = PortPrefix::new(expected);
            let mut out = Vec::new();
            let mut start = 0;
            let mut failed = false;
            for end in points.into_iter().chain([wire.len()]) {
                match prefix.strip(Bytes::copy_from_slice(&wire[start..end])) {
                    Ok(data) => out.extend_from_slice(&data),
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
                start = end;
            }
            proptest::prop_assert_eq!(failed, sent != expected);
            if !failed {
                proptest::prop_assert_eq!(out, payload);
            }
        }
    }

    #[test]
    fn negotiation_accepts_offered_protocols_and_none() {
        assert_eq!(
            negotiated("v4.channel.k8s.io", &DEFAULT_PROTOCOLS).unwrap(),
            ChannelProtocol::V4
        );
        assert_eq!(
            negotiated("", &DEFAULT_PROTOCOLS).unwrap(),
            ChannelProtocol::V1
        );
        assert!(negotiated("v5.channel.k8s.io", &DEFAULT_PROTOCOLS).is_err());
        assert!(negotiated("portforward.k8s.io", &DEFAULT_PROTOCOLS).is_err());
    }
}
