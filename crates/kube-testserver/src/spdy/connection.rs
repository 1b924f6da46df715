//! The server side of a SPDY connection, as moby/spdystream serves it for Kubernetes.
//!
//! * Client streams arrive as SYN_STREAM (odd ids, increasing); each is handed over as an
//!   [`IncomingStream`] to be accepted ([`IncomingStream::reply`]: SYN_REPLY with no headers)
//!   or refused ([`IncomingStream::reset`]: RST_STREAM CANCEL). A SYN_STREAM with a bad id
//!   gets RST_STREAM PROTOCOL_ERROR.
//! * DATA frames go to the stream's receiver; a FIN (or RST_STREAM) ends it. Data for an
//!   unknown stream is dropped, as spdystream drops it.
//! * PING frames from the client (odd ids) are echoed. SETTINGS and WINDOW_UPDATE are read
//!   and ignored (no flow control, see the module [`super`]); GOAWAY stops new streams.
//! * The connection ends when the client closes it, sends a malformed frame (GOAWAY
//!   PROTOCOL_ERROR), or at `shutdown` (GOAWAY OK).
//!
//! Reading and writing run side by side: a stream whose consumer is slow holds up reading
//! (as spdystream's unbuffered data channels do), never writing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::SpdyError;
use super::frame::{FLAG_FIN, FLAG_UNIDIRECTIONAL, Frame, goaway, rst};
use super::headers::{HeaderCompressor, HeaderDecompressor, Headers};

/// Frames queued for the writer.
const OUT_BUFFER: usize = 64;
/// Data frames buffered per stream before reading the connection waits.
const STREAM_BUFFER: usize = 16;

/// Writes on one stream (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Frame>,
    /// Set when the client reset the stream: writes are dropped.
    reset: Arc<AtomicBool>,
}

impl StreamWriter {
    /// The connection's frame queue, to send this stream's data from a forwarder.
    pub(crate) fn frames(&self) -> mpsc::Sender<Frame> {
        self.out.clone()
    }

    /// A DATA frame carrying `data` on this stream.
    pub(crate) fn data_frame(id: u32, data: Bytes) -> Frame {
        Frame::Data {
            stream_id: id,
            flags: 0,
            data,
        }
    }

    /// Sends `data`; `false` once the connection is gone or the stream was reset.
    pub(crate) async fn write(&self, data: Bytes) -> bool {
        if self.reset.load(Ordering::SeqCst) {
            return false;
        }
        self.out.send(Self::data_frame(self.id, data)).await.is_ok()
    }

    /// Half-closes the stream (an empty DATA frame with FIN, as spdystream's `Close`).
    pub(crate) async fn close(&self) {
        if self.reset.load(Ordering::SeqCst) {
            return;
        }
        let _ = self
            .out
            .send(Frame::Data {
                stream_id: self.id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            })
            .await;
    }
}

/// A stream the client opened.
#[derive(Debug)]
pub(crate) struct IncomingStream {
    /// Its SYN_STREAM headers.
    pub headers: Headers,
    /// The client's data; ends at FIN, RST_STREAM or the connection's end.
    pub data: mpsc::Receiver<Bytes>,
    /// Writes to the client.
    pub writer: StreamWriter,
}

impl IncomingStream {
    /// The stream id.
    pub(crate) fn id(&self) -> u32 {
        self.writer.id
    }

    /// Accepts the stream: SYN_REPLY with empty headers.
    pub(crate) async fn reply(&self) -> bool {
        self.writer
            .out
            .send(Frame::SynReply {
                stream_id: self.writer.id,
                flags: 0,
                headers: Headers::new(),
            })
            .await
            .is_ok()
    }

    /// Refuses the stream: RST_STREAM CANCEL, as spdystream's `Reset`.
    pub(crate) async fn reset(self) {
        self.writer.reset.store(true, Ordering::SeqCst);
        let _ = self
            .writer
            .out
            .send(Frame::RstStream {
                stream_id: self.writer.id,
                status: rst::CANCEL,
            })
            .await;
    }
}

/// What the reader keeps per open stream.
struct StreamState {
    /// `None` once the client finished sending.
    data: Option<mpsc::Sender<Bytes>>,
    reset: Arc<AtomicBool>,
}

/// Serves a SPDY connection over `io`: every stream the client opens is sent on `accept`
/// (the connection ends when `accept`'s receiver is dropped). Returns when the connection
/// ends.
pub(crate) async fn serve<S>(
    io: S,
    accept: mpsc::Sender<IncomingStream>,
    shutdown: CancellationToken,
) -> Result<(), SpdyError>
where
    S: AsyncRead + AsyncWrite + Send,
{
    let (reader, writer) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::channel::<Frame>(OUT_BUFFER);
    let write_loop = write_frames(writer, out_rx);
    let read_loop = read_frames(reader, out_tx.clone(), accept);
    tokio::pin!(write_loop, read_loop);
    let result = tokio::select! {
        _ = shutdown.cancelled() => {
            let _ = out_tx.try_send(Frame::GoAway { last_good_stream_id: 0, status: goaway::OK });
            Ok(())
        }
        result = &mut read_loop => result,
        result = &mut write_loop => result,
    };
    if let Err(
        SpdyError::InvalidFrame(_) | SpdyError::UnsupportedVersion(_) | SpdyError::Compression(_),
    ) = &result
    {
        let _ = out_tx.try_send(Frame::GoAway {
            last_good_stream_id: 0,
            status: goaway::PROTOCOL_ERROR,
        });
    }
    // Flush what is queued (the GOAWAY included) before the connection is dropped.
    drop(out_tx);
    if !matches!(&result, Err(SpdyError::Io(_))) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write_loop).await;
    }
    result
}

async fn write_frames<W: AsyncWrite>(
    writer: W,
    mut frames: mpsc::Receiver<Frame>,
) -> Result<(), SpdyError> {
    tokio::pin!(writer);
    let mut compressor = HeaderCompressor::new()?;
    while let Some(frame) = frames.recv().await {
        let bytes = frame.encode(&mut compressor)?;
        writer.write_all(&bytes).await.map_err(SpdyError::Io)?;
        // Write what else is queued before flushing.
        while let Ok(frame) = frames.try_recv() {
            let bytes = frame.encode(&mut compressor)?;
            writer.write_all(&bytes).await.map_err(SpdyError::Io)?;
        }
        writer.flush().await.map_err(SpdyError::Io)?;
    }
    let _ = writer.shutdown().await;
    Ok(())
}

async fn read_frames<R: AsyncRead>(
    reader: R,
    out: mpsc::Sender<Frame>,
    accept: mpsc::Sender<IncomingStream>,
) -> Result<(), SpdyError> {
    tokio::pin!(reader);
    let mut decompressor = HeaderDecompressor::new();
    let mut buffer = BytesMut::with_capacity(16 << 10);
    let mut streams: HashMap<u32, StreamState> = HashMap::new();
    let mut last_stream_id = 0u32;
    let mut gone_away = false;
    loop {
        let frame = loop {
            if let Some(frame) = Frame::decode(&mut buffer, &mut decompressor)? {
                break frame;
            }
            let read = reader.read_buf(&mut buffer).await.map_err(SpdyError::Io)?;
            if read == 0 {
                return Ok(());
            }
        };
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => {
                // Client streams are odd and increase; the rest is a protocol error.
                if gone_away {
                    continue;
                }
                if stream_id % 2 == 0 || stream_id <= last_stream_id {
                    tracing::debug!(stream_id, "SPDY stream id refused");
                    let _ = out
                        .send(Frame::RstStream {
                            stream_id,
                            status: rst::PROTOCOL_ERROR,
                        })
                        .await;
                    continue;
                }
                last_stream_id = stream_id;
                let (data_tx, data_rx) = mpsc::channel(STREAM_BUFFER);
                let reset = Arc::new(AtomicBool::new(flags & FLAG_UNIDIRECTIONAL != 0));
                let state = StreamState {
                    data: (flags & FLAG_FIN == 0).then_some(data_tx),
                    reset: Arc::clone(&reset),
                };
                streams.insert(stream_id, state);
                let incoming = IncomingStream {
                    headers,
                    data: data_rx,
                    writer: StreamWriter {
                        id: stream_id,
                        out: out.clone(),
                        reset,
                    },
                };
                if accept.send(incoming).await.is_err() {
                    return Ok(());
                }
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let Some(state) = streams.get_mut(&stream_id) else {
                    tracing::trace!(stream_id, "SPDY data for an unknown stream dropped");
                    continue;
                };
                if !data.is_empty()
                    && let Some(sender) = &state.data
                    && sender.send(data).await.is_err()
                {
                    // Nobody reads this stream any more.
                    state.data = None;
                }
                if flags & FLAG_FIN != 0 {
                    streams.remove(&stream_id);
                }
            }
            Frame::RstStream { stream_id, status } => {
                tracing::debug!(stream_id, status, "SPDY stream reset by the client");
                if let Some(state) = streams.remove(&stream_id) {
                    state.reset.store(true, Ordering::SeqCst);
                }
            }
            Frame::Headers {
                stream_id, flags, ..
            } => {
                if flags & FLAG_FIN != 0 {
                    streams.remove(&stream_id);
                }
            }
            Frame::Ping { id } => {
                // The client's pings are odd; an even one would be an answer to ours.
                if id % 2 == 1 && out.send(Frame::Ping { id }).await.is_err() {
                    return Ok(());
                }
            }
            Frame::GoAway { .. } => {
                gone_away = true;
            }
            Frame::SynReply { stream_id, .. } => {
                tracing::debug!(stream_id, "SPDY reply to a stream the server never opened");
            }
            Frame::Settings { .. } | Frame::WindowUpdate { .. } | Frame::Unknown { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test client: frames in and out over an in-memory pipe.
    struct Client {
        io: tokio::io::DuplexStream,
        compressor: HeaderCompressor,
        decompressor: HeaderDecompressor,
        buffer: BytesMut,
    }

    impl Client {
        async fn send(&mut self, frame: Frame) {
            let bytes = frame.encode(&mut self.compressor).unwrap();
            self.io.write_all(&bytes).await.unwrap();
        }

        async fn next(&mut self) -> Option<Frame> {
            loop {
                if let Some(frame) =
                    Frame::decode(&mut self.buffer, &mut self.decompressor).unwrap()
                {
                    return Some(frame);
                }
                if self.io.read_buf(&mut self.buffer).await.unwrap() == 0 {
                    return None;
                }
            }
        }
    }

    fn start() -> (
        Client,
        mpsc::Receiver<IncomingStream>,
        tokio::task::JoinHandle<Result<(), SpdyError>>,
    ) {
        let (near, far) = tokio::io::duplex(1 << 20);
        let (accept_tx, accept_rx) = mpsc::channel(16);
        let task = tokio::spawn(serve(far, accept_tx, CancellationToken::new()));
        let client = Client {
            io: near,
            compressor: HeaderCompressor::new().unwrap(),
            decompressor: HeaderDecompressor::new(),
            buffer: BytesMut::new(),
        };
        (client, accept_rx, task)
    }

    fn syn(stream_id: u32, flags: u8) -> Frame {
        Frame::SynStream {
            stream_id,
            associated_to: 0,
            priority: 0,
            slot: 0,
            flags,
            headers: vec![("port".into(), "80".into())],
        }
    }

    #[tokio::test]
    async fn streams_are_accepted_fed_and_answered() {
        let (mut client, mut accepted, task) = start();
        client.send(syn(1, 0)).await;
        let mut stream = accepted.recv().await.unwrap();
        assert_eq!(stream.id(), 1);
        assert_eq!(
            super::super::headers::get(&stream.headers, "port"),
            Some("80")
        );
        assert!(stream.reply().await);
        assert_eq!(
            client.next().await,
            Some(Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: vec![]
            })
        );
        client
            .send(Frame::Data {
                stream_id: 1,
                flags: 0,
                data: Bytes::from_static(b"ping"),
            })
            .await;
        client.send(Frame::Ping { id: 1 }).await;
        client
            .send(Frame::WindowUpdate {
                stream_id: 1,
                delta: 10,
            })
            .await;
        client
            .send(Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::new(),
            })
            .await;
        assert_eq!(stream.data.recv().await.as_deref(), Some(&b"ping"[..]));
        assert_eq!(stream.data.recv().await, None, "FIN ends the client's data");
        assert_eq!(client.next().await, Some(Frame::Ping { id: 1 }));
        // Still writable after the client's half-close.
        assert!(stream.writer.write(Bytes::from_static(b"pong")).await);
        stream.writer.close().await;
        assert_eq!(
            client.next().await,
            Some(Frame::Data {
                stream_id: 1,
                flags: 0,
                data: Bytes::from_static(b"pong")
            })
        );
        assert_eq!(
            client.next().await,
            Some(Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::new()
            })
        );
        // Refusing a stream resets it; a reused id is a protocol error.
        client.send(syn(3, 0)).await;
        accepted.recv().await.unwrap().reset().await;
        assert_eq!(
            client.next().await,
            Some(Frame::RstStream {
                stream_id: 3,
                status: rst::CANCEL
            })
        );
        client.send(syn(3, 0)).await;
        assert_eq!(
            client.next().await,
            Some(Frame::RstStream {
                stream_id: 3,
                status: rst::PROTOCOL_ERROR
            })
        );
        drop(client);
        assert!(task.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_malformed_frame_ends_the_connection_with_goaway() {
        let (mut client, _accepted, task) = start();
        client
            .io
            .write_all(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1])
            .await
            .unwrap();
        assert_eq!(
            client.next().await,
            Some(Frame::GoAway {
                last_good_stream_id: 0,
                status: goaway::PROTOCOL_ERROR
            })
        );
        assert!(matches!(
            task.await.unwrap(),
            Err(SpdyError::UnsupportedVersion(2))
        ));
    }
}
