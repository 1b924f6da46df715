//! Kubernetes channel framing over a WebSocket (`*.channel.k8s.io`), shared by exec, attach and
//! port forwarding.
//!
//! Every message starts with the number of the channel it belongs to: one byte in the binary
//! protocols, an ASCII digit followed by base64 data in the `base64` ones. Exec and attach use
//! 0 stdin, 1 stdout, 2 stderr, 3 error (the final status) and 4 resize. `v5.channel.k8s.io`
//! adds a message `[255, channel]` that closes one channel, which is how stdin reaches EOF
//! while the command still runs; older protocols cannot half-close.
//!
//! [`ChannelStreams`] runs the socket in one task: incoming data goes to one pipe per channel
//! (an `AsyncRead`), outgoing pipes are read and framed. The task pings
//! the server every 5 s and gives up when nothing arrived for 61 s (client-go's periods), so a
//! dead connection ends with an error instead of waiting forever.
//!
//! One task serves every channel: a pipe that is taken but not read stops the others once its
//! 64 KiB buffer is full. Read every pipe you take, concurrently, or drop it.

use std::collections::HashMap;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::stream::{SelectAll, Stream, StreamExt as _};
use futures_util::{SinkExt as _, stream};
use std::io;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, DuplexStream, ReadBuf};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::io::ReaderStream;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::error::Error;
use tokio_tungstenite::WebSocketStream;

pub use kube_apimachinery::channel::{
    CLOSE, ChannelProtocol, ERROR, RESIZE, STDERR, STDIN, STDOUT, TerminalSize,
};
use kube_apimachinery::channel::{Decoded, Frame};

/// A framed message as tungstenite sends it.
fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Binary(bytes) => Message::Binary(bytes),
        Frame::Text(text) => Message::text(text),
    }
}

/// What a received message carries; `Ok(None)` for control messages (ping, pong, close) and
/// empty ones.
fn decode(protocol: ChannelProtocol, message: Message) -> Result<Option<Decoded>, Error> {
    let decoded = match message {
        Message::Binary(bytes) => protocol.decode_binary(bytes),
        Message::Text(text) => protocol.decode_text(text.as_str()),
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
            return Ok(None);
        }
    };
    decoded.map_err(|e| Error::decode(format!("a {protocol} message"), e))
}

/// Where the data of one incoming channel goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// A pipe read through [`ChannelStreams::take_reader`].
    Pipe,
    /// Kept in memory and returned when the stream ends (small channels such as errors).
    Collect,
}

/// Capacity of each pipe between the socket task and the caller.
const PIPE_CAPACITY: usize = 64 * 1024;
/// At most this much is kept of a [`Incoming::Collect`] channel (a status is a few hundred
/// bytes); the rest is dropped with a warning.
const COLLECT_LIMIT: usize = 64 * 1024;
/// client-go's WebSocket ping period.
const PING_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);
/// client-go's read deadline: twelve missed pings and a second.
const READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(61);

/// A pipe carrying one incoming channel: read only; EOF when the socket ends.
#[derive(Debug)]
pub struct ChannelReader(DuplexStream);

/// A pipe whose writes go out on one channel: write only; shutting it down or dropping it
/// closes the channel (v5).
#[derive(Debug)]
pub struct ChannelWriter(DuplexStream);

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ChannelWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// How a [`ChannelStreams`] ended.
#[derive(Debug)]
pub struct Ended {
    /// The data of every [`Incoming::Collect`] channel.
    pub collected: HashMap<u8, Vec<u8>>,
    /// `Ok` when the server closed the socket cleanly (a close frame), the transport error
    /// otherwise.
    pub result: Result<(), Error>,
    /// The code and reason of the server's close frame, when it sent one.
    pub close: Option<(u16, String)>,
}

type Input = Pin<Box<dyn Stream<Item = Outgoing> + Send>>;

enum Outgoing {
    Data(u8, Bytes),
    Eof(u8),
    Raw(u8, Bytes),
}

/// The channels of one WebSocket, served by a background task.
///
/// Dropping it closes the socket (a normal close frame) and stops the task.
#[derive(Debug)]
pub struct ChannelStreams {
    protocol: ChannelProtocol,
    readers: HashMap<u8, ChannelReader>,
    writers: HashMap<u8, ChannelWriter>,
    raw: tokio::sync::mpsc::UnboundedSender<(u8, Bytes)>,
    ended: Option<oneshot::Receiver<Ended>>,
    _stop: DropGuard,
}

impl ChannelStreams {
    /// Starts serving `socket` (which speaks `protocol`): each of `incoming` gets a pipe or a
    /// buffer, each of `outgoing` a pipe whose writes become messages; shutting one of those
    /// down (or dropping it) closes the channel on v5 and is ignored by older protocols.
    ///
    /// `socket` is usually an [`upgrade::WebSocket`](crate::upgrade::WebSocket); any
    /// WebSocket stream works (an in-memory one in tests).
    pub fn start<S>(
        socket: WebSocketStream<S>,
        protocol: ChannelProtocol,
        incoming: &[(u8, Incoming)],
        outgoing: &[u8],
    ) -> ChannelStreams
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut readers = HashMap::new();
        let mut sinks = HashMap::new();
        let mut collected = HashMap::new();
        for &(channel, kind) in incoming {
            match kind {
                Incoming::Pipe => {
                    let (theirs, ours) = tokio::io::duplex(PIPE_CAPACITY);
                    readers.insert(channel, ChannelReader(theirs));
                    sinks.insert(channel, ours);
                }
                Incoming::Collect => {
                    collected.insert(channel, Vec::new());
                }
            }
        }
        let mut writers = HashMap::new();
        let mut inputs: SelectAll<Input> = SelectAll::new();
        for &channel in outgoing {
            let (theirs, ours) = tokio::io::duplex(PIPE_CAPACITY);
            writers.insert(channel, ChannelWriter(theirs));
            let data = ReaderStream::new(ours).map(move |chunk| match chunk {
                Ok(bytes) => Outgoing::Data(channel, bytes),
                Err(_) => Outgoing::Eof(channel),
            });
            inputs.push(Box::pin(
                data.chain(stream::once(async move { Outgoing::Eof(channel) })),
            ));
        }
        let (raw, raw_rx) = tokio::sync::mpsc::unbounded_channel();
        let (ended_tx, ended_rx) = oneshot::channel();
        let stop = CancellationToken::new();
        let task = Driver {
            socket,
            protocol,
            sinks,
            collected,
            inputs,
            raw: raw_rx,
            close: None,
            last_read: tokio::time::Instant::now(),
        };
        tokio::spawn(task.run(stop.clone(), ended_tx));
        ChannelStreams {
            protocol,
            readers,
            writers,
            raw,
            ended: Some(ended_rx),
            _stop: stop.drop_guard(),
        }
    }

    /// The negotiated protocol.
    pub fn protocol(&self) -> ChannelProtocol {
        self.protocol
    }

    /// The pipe carrying an incoming channel's data (once); it ends when the socket does.
    pub fn take_reader(&mut self, channel: u8) -> Option<ChannelReader> {
        self.readers.remove(&channel)
    }

    /// The pipe whose writes go out on a channel (once).
    pub fn take_writer(&mut self, channel: u8) -> Option<ChannelWriter> {
        self.writers.remove(&channel)
    }

    /// Sends one message on `channel` as it is (resize events, for instance); `false` when the
    /// socket has ended.
    pub fn send(&self, channel: u8, data: Bytes) -> bool {
        self.raw.send((channel, data)).is_ok()
    }

    /// A handle that sends messages like [`ChannelStreams::send`], usable from another task.
    pub fn sender(&self) -> ChannelSender {
        ChannelSender {
            raw: self.raw.clone(),
        }
    }

    /// Waits until the socket ends. Pipes not taken yet are dropped first, so unread output
    /// cannot hold the socket up.
    pub async fn ended(&mut self) -> Ended {
        self.readers.clear();
        self.writers.clear();
        match self.ended.take() {
            Some(ended) => ended.await.unwrap_or_else(|_| Ended {
                collected: HashMap::new(),
                result: Err(Error::transport_msg("the channel task ended unexpectedly")),
                close: None,
            }),
            None => Ended {
                collected: HashMap::new(),
                result: Err(Error::Request(
                    "the end of this stream was already taken".into(),
                )),
                close: None,
            },
        }
    }
}

/// Sends messages on the channels of a [`ChannelStreams`] from any task.
#[derive(Debug, Clone)]
pub struct ChannelSender {
    raw: tokio::sync::mpsc::UnboundedSender<(u8, Bytes)>,
}

impl ChannelSender {
    /// Sends one message on `channel`; `false` when the socket has ended.
    pub fn send(&self, channel: u8, data: Bytes) -> bool {
        self.raw.send((channel, data)).is_ok()
    }
}

struct Driver<S> {
    socket: WebSocketStream<S>,
    protocol: ChannelProtocol,
    sinks: HashMap<u8, DuplexStream>,
    collected: HashMap<u8, Vec<u8>>,
    inputs: SelectAll<Input>,
    /// Control messages (resizes), sent before pending pipe data: a resize issued before a
    /// write reaches the server before that write.
    raw: tokio::sync::mpsc::UnboundedReceiver<(u8, Bytes)>,
    close: Option<(u16, String)>,
    /// When the server last sent anything (data, pong, ping).
    last_read: tokio::time::Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    async fn run(mut self, stop: CancellationToken, ended: oneshot::Sender<Ended>) {
        let result = tokio::select! {
            result = self.pump() => result,
            _ = stop.cancelled() => {
                // The caller is gone: say goodbye properly, but do not wait long for it.
                let close = self.socket.close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "client done".into(),
                }));
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), close).await;
                Ok(())
            }
        };
        // Dropping the sinks ends the readers (EOF).
        self.sinks.clear();
        let _ = ended.send(Ended {
            collected: std::mem::take(&mut self.collected),
            result,
            close: self.close.take(),
        });
    }

    async fn pump(&mut self) -> Result<(), Error> {
        let mut pings =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_PERIOD, PING_PERIOD);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                Some((channel, bytes)) = self.raw.recv() => {
                    self.forward(Outgoing::Raw(channel, bytes)).await?;
                }
                _ = pings.tick() => {
                    if self.last_read.elapsed() >= READ_DEADLINE {
                        return Err(Error::transport_msg(format!(
                            "the {} stream is dead: nothing from the server for {} s",
                            self.protocol,
                            READ_DEADLINE.as_secs()
                        )));
                    }
                    self.socket.send(Message::Ping(Bytes::new())).await.map_err(|error| {
                        Error::transport(format!("pinging over the {} stream", self.protocol), error)
                    })?;
                }
                message = self.socket.next() => match message {
                    Some(Ok(Message::Close(frame))) => {
                        self.close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                        // Send the close reply tungstenite queued, so the server is not kept
                        // waiting for it.
                        let close = self.socket.close(None);
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), close).await;
                        return Ok(());
                    }
                    None => return Ok(()),
                    Some(Ok(message)) => {
                        self.last_read = tokio::time::Instant::now();
                        self.deliver(message).await?;
                    }
                    Some(Err(error)) => {
                        return Err(Error::transport(
                            format!("the {} stream broke", self.protocol),
                            error,
                        ));
                    }
                },
                Some(outgoing) = self.inputs.next() => self.forward(outgoing).await?,
            }
        }
    }

    async fn deliver(&mut self, message: Message) -> Result<(), Error> {
        let (channel, data) = match decode(self.protocol, message)? {
            None => return Ok(()),
            Some(Decoded::Close { channel }) => {
                // v5: the server will send nothing more on this channel; its reader sees EOF.
                if self.sinks.remove(&channel).is_some() {
                    tracing::debug!(channel, "the server closed the channel");
                }
                return Ok(());
            }
            Some(Decoded::Data { channel, data }) => (channel, data),
        };
        if data.is_empty() {
            // The server's "stream established" signal, or a keepalive.
            return Ok(());
        }
        if let Some(buffer) = self.collected.get_mut(&channel) {
            let room = COLLECT_LIMIT.saturating_sub(buffer.len());
            if data.len() > room {
                tracing::warn!(
                    channel,
                    dropped = data.len() - room,
                    "channel data over 64 KiB dropped"
                );
            }
            buffer.extend_from_slice(&data[..data.len().min(room)]);
        } else if let Some(sink) = self.sinks.get_mut(&channel) {
            if sink.write_all(&data).await.is_err() {
                // Nobody reads this channel any more: drop its data from now on.
                tracing::debug!(channel, "channel reader dropped; discarding its data");
                self.sinks.remove(&channel);
            }
        } else {
            tracing::debug!(channel, bytes = data.len(), "data on an unexpected channel");
        }
        Ok(())
    }

    async fn forward(&mut self, outgoing: Outgoing) -> Result<(), Error> {
        let message = match outgoing {
            Outgoing::Data(channel, bytes) | Outgoing::Raw(channel, bytes) => self
                .protocol
                .encode(channel, &bytes)
                .map(to_message)
                .map_err(|e| Error::Request(e.to_string()))?,
            Outgoing::Eof(channel) => {
                if !self.protocol.can_close_channels() {
                    tracing::warn!(
                        channel,
                        protocol = %self.protocol,
                        "the protocol cannot close one channel; the remote side sees EOF only when the socket closes"
                    );
                    return Ok(());
                }
                match self.protocol.encode_close(channel) {
                    Some(frame) => to_message(frame),
                    None => return Ok(()),
                }
            }
        };
        self.socket.send(message).await.map_err(|error| {
            Error::transport(format!("writing to the {} stream", self.protocol), error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(protocol: ChannelProtocol, channel: u8, data: &[u8]) -> Message {
        to_message(protocol.encode(channel, data).unwrap())
    }

    /// A client ChannelStreams and the raw server side of an in-memory WebSocket.
    async fn pair(
        protocol: ChannelProtocol,
        incoming: &[(u8, Incoming)],
        outgoing: &[u8],
    ) -> (ChannelStreams, WebSocketStream<DuplexStream>) {
        use tokio_tungstenite::tungstenite::protocol::Role;
        let (client, server) = tokio::io::duplex(1 << 20);
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        (
            ChannelStreams::start(client, protocol, incoming, outgoing),
            server,
        )
    }

    #[tokio::test]
    async fn pipes_carry_channels_and_v5_closes_stdin() {
        use tokio::io::AsyncReadExt as _;
        let (mut streams, mut server) = pair(
            ChannelProtocol::V5,
            &[(STDOUT, Incoming::Pipe), (ERROR, Incoming::Collect)],
            &[STDIN],
        )
        .await;
        let mut stdin = streams.take_writer(STDIN).unwrap();
        let mut stdout = streams.take_reader(STDOUT).unwrap();
        stdin.write_all(b"ping").await.unwrap();
        stdin.shutdown().await.unwrap();
        let message = server.next().await.unwrap().unwrap();
        assert_eq!(message, enc(ChannelProtocol::V5, STDIN, b"ping"));
        let close = server.next().await.unwrap().unwrap();
        assert_eq!(close, Message::Binary(Bytes::from_static(&[CLOSE, STDIN])));
        // The server answers, reports a status and closes.
        server
            .send(enc(ChannelProtocol::V5, STDOUT, b""))
            .await
            .unwrap();
        server
            .send(enc(ChannelProtocol::V5, STDOUT, b"pong"))
            .await
            .unwrap();
        server
            .send(enc(ChannelProtocol::V5, ERROR, br#"{"status":"Success"}"#))
            .await
            .unwrap();
        server.close(None).await.unwrap();
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "pong");
        let ended = streams.ended().await;
        ended.result.unwrap();
        assert_eq!(ended.collected[&ERROR], br#"{"status":"Success"}"#);
    }

    #[tokio::test]
    async fn pre_v5_protocols_do_not_send_the_close_signal() {
        let (mut streams, mut server) =
            pair(ChannelProtocol::V4, &[(ERROR, Incoming::Collect)], &[STDIN]).await;
        let mut stdin = streams.take_writer(STDIN).unwrap();
        stdin.write_all(b"x").await.unwrap();
        stdin.shutdown().await.unwrap();
        drop(stdin);
        let resize = Bytes::from_static(br#"{"Width":1,"Height":2}"#);
        assert!(streams.send(RESIZE, resize.clone()));
        // Resizes go ahead of pipe data, and no [255, 0] follows.
        let mut seen = vec![server.next().await.unwrap().unwrap()];
        seen.push(server.next().await.unwrap().unwrap());
        assert!(seen.contains(&enc(ChannelProtocol::V4, STDIN, b"x")));
        assert!(seen.contains(&enc(ChannelProtocol::V4, RESIZE, &resize)));
        server.close(None).await.unwrap();
        while let Some(Ok(message)) = server.next().await {
            assert!(message.is_close(), "{message:?}");
        }
        streams.ended().await.result.unwrap();
    }

    #[tokio::test]
    async fn unread_and_dropped_pipes_do_not_block_the_others() {
        let (mut streams, mut server) = pair(
            ChannelProtocol::V5,
            &[
                (STDOUT, Incoming::Pipe),
                (STDERR, Incoming::Pipe),
                (ERROR, Incoming::Collect),
            ],
            &[],
        )
        .await;
        // Stderr is dropped unread: its data is discarded, stdout still flows.
        drop(streams.take_reader(STDERR));
        let big = vec![b'e'; 200 * 1024];
        server
            .send(enc(ChannelProtocol::V5, STDERR, &big))
            .await
            .unwrap();
        server
            .send(enc(ChannelProtocol::V5, ERROR, &vec![b's'; 100 * 1024]))
            .await
            .unwrap();
        server
            .send(enc(ChannelProtocol::V5, STDOUT, b"fine"))
            .await
            .unwrap();
        server.close(None).await.unwrap();
        let mut stdout = streams.take_reader(STDOUT).unwrap();
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"fine");
        let ended = streams.ended().await;
        // The error channel keeps at most 64 KiB.
        assert_eq!(ended.collected[&ERROR].len(), COLLECT_LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn pings_flow_and_a_silent_peer_is_given_up() {
        let (mut streams, mut server) =
            pair(ChannelProtocol::V5, &[(ERROR, Incoming::Collect)], &[]).await;
        // The client pings every 5 s; a peer that reads (and so pongs) keeps it alive.
        let first = server.next().await.unwrap().unwrap();
        assert!(matches!(first, Message::Ping(_)), "{first:?}");
        // Now the peer goes silent: nothing read, nothing answered.
        let started = tokio::time::Instant::now();
        let ended = streams.ended().await;
        let error = ended.result.unwrap_err();
        assert!(
            error.to_string().contains("nothing from the server"),
            "{error}"
        );
        assert!(started.elapsed() >= READ_DEADLINE - PING_PERIOD * 2);
        drop(server);
    }
}
