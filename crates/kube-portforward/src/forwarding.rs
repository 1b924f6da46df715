//! A running forwarder: [`Forwarding`], its [`Event`]s, and the copy loop of each connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_core::Stream;
use parking_lot::Mutex;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut as _, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::error::{ConnectionError, Error, LostCause, PortListenError};
use crate::forwarder::{Bound, PortForwarder};
use crate::ports::ForwardedPort;
use crate::stream::PortStream;

/// Events kept for slow subscribers before the oldest are dropped (and counted).
const EVENT_CAPACITY: usize = 1024;
/// The most one read of the local connection takes: one read becomes one message.
const LOCAL_READ_BUFFER: usize = 128 * 1024;

/// How long after a connection took its port's spare stream the next spare is dialed
/// (`warm_streams`): long enough for the connection's first exchange, which the next
/// spare's TLS handshake would otherwise compete with for the CPU (on loopback, with two
/// cores, that handshake made the first round trip as slow as dialing a stream of its own).
const SPARE_REDIAL_DELAY: Duration = Duration::from_millis(5);

/// Something that happened to the forwarded connections.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A local connection was accepted ("Handling connection for {local}").
    Accepted {
        /// The port pair.
        port: ForwardedPort,
        /// The local client.
        peer: SocketAddr,
    },
    /// A connection ended; `error` tells why when it failed (a remote error, a dial failure,
    /// a broken stream).
    Closed {
        /// The port pair.
        port: ForwardedPort,
        /// The local client.
        peer: SocketAddr,
        /// Bytes sent to the pod.
        sent: u64,
        /// Bytes received from the pod.
        received: u64,
        /// The failure, if the connection failed.
        error: Option<Arc<ConnectionError>>,
    },
}

/// Counters of a [`Forwarding`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections that ended with an error.
    pub failed: u64,
    /// Connections open now.
    pub active: u64,
    /// Events a slow subscriber missed (each is also logged).
    pub events_dropped: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    failed: AtomicU64,
    active: AtomicU64,
    events_dropped: AtomicU64,
}

/// What the connection tasks share.
struct Shared {
    forwarder: PortForwarder,
    token: CancellationToken,
    events: broadcast::Sender<Event>,
    counters: Counters,
    /// Why the forwarder lost the pod (the first reason wins).
    lost: Mutex<Option<LostCause>>,
    /// With `warm_streams`: the spare stream of each port, `None` while one is dialed.
    spares: Mutex<HashMap<ForwardedPort, Option<PortStream>>>,
}

impl Shared {
    fn lose(&self, cause: LostCause) {
        {
            let mut lost = self.lost.lock();
            if lost.is_none() && !self.token.is_cancelled() {
                tracing::error!(error = %cause, "lost connection to pod");
                *lost = Some(cause);
            }
        }
        self.token.cancel();
    }
}

/// A running forwarder: listening, forwarding each accepted connection.
///
/// Dropping it stops forwarding (every listener and stream is closed), like
/// [`Forwarding::stop`] or cancelling the forwarder's token.
#[derive(Debug)]
pub struct Forwarding {
    ports: Vec<ForwardedPort>,
    listeners: Vec<(SocketAddr, ForwardedPort)>,
    failures: Vec<PortListenError>,
    token: CancellationToken,
    shared: Arc<SharedDebug>,
    done: watch::Receiver<bool>,
    _guard: DropGuard,
}

/// [`Shared`] behind a `Debug` that shows nothing of the dialer.
struct SharedDebug(Shared);

impl std::fmt::Debug for SharedDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

pub(crate) fn start(
    forwarder: PortForwarder,
    listeners: Vec<Bound>,
    ports: Vec<ForwardedPort>,
    failures: Vec<PortListenError>,
) -> Forwarding {
    let token = forwarder.inner.token.child_token();
    let (events, _) = broadcast::channel(EVENT_CAPACITY);
    let shared = Arc::new(SharedDebug(Shared {
        forwarder,
        token: token.clone(),
        events,
        counters: Counters::default(),
        lost: Mutex::new(None),
        spares: Mutex::new(HashMap::new()),
    }));
    if shared.0.forwarder.inner.warm {
        let mut ports: Vec<ForwardedPort> = listeners.iter().map(|(_, _, p)| *p).collect();
        ports.sort();
        ports.dedup();
        for port in ports {
            warm(&shared, port, Duration::ZERO);
        }
    }
    let addresses = listeners.iter().map(|(_, a, p)| (*a, *p)).collect();
    let tracker = TaskTracker::new();
    for (listener, _, port) in listeners {
        let shared = shared.clone();
        let tracker2 = tracker.clone();
        tracker.spawn(async move {
            accept_loop(listener, port, shared, tracker2).await;
        });
    }
    let (done_tx, done) = watch::channel(false);
    let supervisor = shared.clone();
    tokio::spawn(async move {
        let shared = &supervisor.0;
        tokio::select! {
            _ = shared.token.cancelled() => {}
            error = shared.forwarder.inner.dialer.lost() => shared.lose(LostCause::Target(error)),
        }
        // Close the spares now rather than when the last handle goes.
        shared.spares.lock().clear();
        // Wait until every listener and connection is closed.
        tracker.close();
        tracker.wait().await;
        let _ = done_tx.send(true);
    });
    Forwarding {
        ports,
        listeners: addresses,
        failures,
        token: token.clone(),
        shared,
        done,
        _guard: token.drop_guard(),
    }
}

impl Forwarding {
    /// The ports listened on, with the local ports actually bound (client-go's `GetPorts`):
    /// a `:80` comes back as `{local: <the port chosen>, remote: 80}`. Ports that could not be
    /// listened on are left out (see [`Forwarding::listen_failures`]).
    pub fn ports(&self) -> &[ForwardedPort] {
        &self.ports
    }

    /// Every listener: its address and port pair.
    pub fn listeners(&self) -> &[(SocketAddr, ForwardedPort)] {
        &self.listeners
    }

    /// The ports that could not be listened on.
    pub fn listen_failures(&self) -> &[PortListenError] {
        &self.failures
    }

    /// The events from now on. A subscriber that falls more than 1024 events behind misses
    /// the oldest (logged, and counted in [`Stats::events_dropped`]).
    pub fn events(&self) -> impl Stream<Item = Event> + Send + 'static {
        let receiver = self.shared.0.events.subscribe();
        let shared = self.shared.clone();
        futures_util::stream::unfold((receiver, shared), |(mut receiver, shared)| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((event, (receiver, shared))),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "port-forward event subscriber fell behind; events dropped"
                        );
                        shared
                            .0
                            .counters
                            .events_dropped
                            .fetch_add(missed, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// Counters of connections and events.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.0.counters;
        Stats {
            accepted: c.accepted.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            active: c.active.load(Ordering::Relaxed),
            events_dropped: c.events_dropped.load(Ordering::Relaxed),
        }
    }

    /// The token that stops this forwarding (a child of the forwarder's).
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.token
    }

    /// Stops forwarding: closes every listener and stream.
    pub fn stop(&self) {
        self.token.cancel();
    }

    /// Waits until forwarding ended and every listener and stream is closed: `Ok` when it
    /// was stopped, [`Error::LostConnection`] when the pod was lost.
    pub async fn wait(mut self) -> Result<(), Error> {
        self.finished().await
    }

    /// Like [`Forwarding::wait`], without consuming the handle (so it can sit in a
    /// `select!`); returns at once once finished. The lost-connection error is returned to
    /// the first call only; later calls return `Ok`.
    pub async fn finished(&mut self) -> Result<(), Error> {
        // The supervisor always sends before it ends; a closed channel means the runtime is
        // shutting down, and then there is nothing left to wait for.
        let _ = self.done.wait_for(|done| *done).await;
        match self.shared.0.lost.lock().take() {
            Some(cause) => Err(Error::LostConnection(cause)),
            None => Ok(()),
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    port: ForwardedPort,
    shared: Arc<SharedDebug>,
    tracker: TaskTracker,
) {
    let token = shared.0.token.clone();
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((conn, peer)) => {
                let spare = take_spare(&shared, port);
                let shared = shared.clone();
                tracker.spawn(async move {
                    handle_connection(conn, peer, port, spare, &shared.0).await;
                });
            }
            Err(error) => {
                // Too many open files and the like: report, back off a little, go on (a
                // listener error never ends the other listeners).
                tracing::error!(%error, local = port.local, "error accepting connection");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
}

/// Dials a spare stream for `port` in the background (`warm_streams`), after `delay`.
fn warm(shared: &Arc<SharedDebug>, port: ForwardedPort, delay: Duration) {
    shared.0.spares.lock().insert(port, None);
    let shared = shared.clone();
    tokio::spawn(async move {
        let shared = &shared.0;
        let dial = async {
            tokio::time::sleep(delay).await;
            shared
                .forwarder
                .open(port.remote, port.local, shared.token.child_token())
                .await
        };
        let opened = tokio::select! {
            _ = shared.token.cancelled() => return,
            opened = dial => opened,
        };
        let mut spares = shared.spares.lock();
        match opened {
            Ok(stream) if !shared.token.is_cancelled() => {
                spares.insert(port, Some(stream));
            }
            Ok(_) => {}
            Err(error) => {
                // The next connection dials its own and reports what goes wrong.
                tracing::debug!(%error, remote = port.remote, "dialing a spare stream failed");
                spares.remove(&port);
            }
        }
    });
}

/// The spare stream of `port`, if one is ready and still open; a new one is dialed behind
/// it (`warm_streams`).
fn take_spare(shared: &Arc<SharedDebug>, port: ForwardedPort) -> Option<PortStream> {
    if !shared.0.forwarder.inner.warm {
        return None;
    }
    let taken = {
        let mut spares = shared.0.spares.lock();
        match spares.get_mut(&port) {
            // Being dialed: this connection dials its own.
            Some(None) => return None,
            Some(spare) => spare.take(),
            None => None,
        }
    };
    warm(shared, port, SPARE_REDIAL_DELAY);
    // One that ended while it waited (the pod's side closed it) is dropped.
    taken.filter(|stream| stream.outcome().get().is_none())
}

/// Copies between the local connection and a new stream to the pod (client-go's
/// `handleConnection`): the pod-to-local direction finishing ends the connection; the local
/// side's EOF is passed on as a half-close.
async fn handle_connection(
    mut conn: TcpStream,
    peer: SocketAddr,
    port: ForwardedPort,
    spare: Option<PortStream>,
    shared: &Shared,
) {
    let counters = &shared.counters;
    counters.accepted.fetch_add(1, Ordering::Relaxed);
    counters.active.fetch_add(1, Ordering::Relaxed);
    tracing::info!(%peer, "Handling connection for {}", port.local);
    let _ = shared.events.send(Event::Accepted { port, peer });
    let _ = conn.set_nodelay(true);
    let (sent, received, error) = forward_one(&mut conn, port, spare, shared).await;
    drop(conn);
    counters.active.fetch_sub(1, Ordering::Relaxed);
    if let Some(error) = &error {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        tracing::error!(%peer, local = port.local, remote = port.remote, error = %error, "port-forward connection failed");
        if error.is_lost_connection()
            || (shared.forwarder.inner.stop_on_remote_error
                && matches!(**error, ConnectionError::Remote { .. }))
        {
            shared.lose(LostCause::Connection(error.clone()));
        }
    } else {
        tracing::debug!(%peer, local = port.local, sent, received, "port-forward connection closed");
    }
    let _ = shared.events.send(Event::Closed {
        port,
        peer,
        sent,
        received,
        error,
    });
}

async fn forward_one(
    conn: &mut TcpStream,
    port: ForwardedPort,
    spare: Option<PortStream>,
    shared: &Shared,
) -> (u64, u64, Option<Arc<ConnectionError>>) {
    let token = shared.token.child_token();
    let opened = match spare {
        Some(stream) => Ok(stream),
        None => tokio::select! {
            _ = token.cancelled() => return (0, 0, None),
            // The stream's own token: dropping the stream cancels it, not this connection's.
            opened = shared.forwarder.open(port.remote, port.local, token.child_token()) => opened,
        },
    };
    let stream = match opened {
        Ok(stream) => stream,
        Err(source) => {
            let error = ConnectionError::Dial {
                remote: port.remote,
                source,
            };
            return (0, 0, Some(Arc::new(error)));
        }
    };
    let mut outcome = stream.outcome();
    let linger = (!stream.can_half_close()).then_some(shared.forwarder.inner.half_close_linger);
    let local_eof = tokio::sync::Notify::new();
    let (mut remote_reader, mut remote_writer) = stream.into_split();
    let (mut local_reader, local_writer) = conn.split();
    let sent = AtomicU64::new(0);
    let received = AtomicU64::new(0);
    let mut local_writer = Counting {
        inner: local_writer,
        count: &received,
    };
    let to_pod = async {
        // Each read lands after a spare byte, where the channel number goes: the chunk is
        // the message, without another copy. Chunks split off share one allocation, which
        // `reserve` takes back once the socket task has written them.
        let mut buffer = BytesMut::new();
        let copied: std::io::Result<()> = async {
            loop {
                buffer.reserve(1 + LOCAL_READ_BUFFER);
                buffer.put_u8(0);
                let read = local_reader
                    .read_buf(&mut (&mut buffer).limit(LOCAL_READ_BUFFER))
                    .await?;
                if read == 0 {
                    return Ok(());
                }
                remote_writer.send_chunk(buffer.split()).await?;
                sent.fetch_add(read as u64, Ordering::Relaxed);
            }
        }
        .await;
        match copied {
            Ok(()) => {
                // EOF from the local side: half-close (as far as the protocol allows) and let
                // the pod's side finish.
                let _ = remote_writer.shutdown().await;
                local_eof.notify_one();
                std::future::pending::<ConnectionError>().await
            }
            Err(source) => ConnectionError::Local {
                direction: "from the local connection to the pod",
                local: port.local,
                remote: port.remote,
                source,
            },
        }
    };
    let to_local = async {
        let copied = tokio::io::copy_buf(&mut remote_reader, &mut local_writer).await;
        if copied.is_ok() {
            let _ = local_writer.shutdown().await;
        }
        copied
    };
    // Without half-close the pod's side never learns of the local EOF: give it the linger
    // time to answer, as long as it keeps sending, then close.
    let lingered = async {
        let Some(linger) = linger else {
            return std::future::pending().await;
        };
        local_eof.notified().await;
        loop {
            let before = received.load(Ordering::Relaxed);
            tokio::time::sleep(linger).await;
            if received.load(Ordering::Relaxed) == before {
                tracing::debug!(
                    local = port.local,
                    remote = port.remote,
                    "local side closed and the pod's side idle: closing"
                );
                return;
            }
        }
    };
    let local_error = tokio::select! {
        _ = token.cancelled() => None,
        () = lingered => None,
        error = to_pod => Some(error),
        copied = to_local => match copied {
            Ok(_) => None,
            // A read error of the stream is its outcome, reported below; a write error is the
            // local side's.
            Err(_) if outcome.get().is_some_and(|o| o.is_err()) => None,
            Err(source) => Some(ConnectionError::Local {
                direction: "from the pod to the local connection",
                local: port.local,
                remote: port.remote,
                source,
            }),
        },
    };
    // Closing both halves closes the WebSocket; its outcome follows within a second or two.
    drop(remote_reader);
    drop(remote_writer);
    let outcome = tokio::time::timeout(Duration::from_secs(5), outcome.wait()).await;
    let error = match outcome {
        Ok(Err(error)) if !token.is_cancelled() => Some(error),
        _ => local_error.map(Arc::new),
    };
    (
        sent.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed),
        error,
    )
}

/// A writer that counts the bytes written through it.
struct Counting<'a, W> {
    inner: W,
    count: &'a AtomicU64,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Counting<'_, W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.count.fetch_add(written as u64, Ordering::Relaxed);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
