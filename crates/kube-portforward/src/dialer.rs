//! The narrow interface to the server: open one port-forward WebSocket.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::DialError;

/// A boxed future, as [`Dialer`]'s methods return them (so a dialer can be a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The byte stream of an upgraded connection: the WebSocket handshake is done, frames follow.
pub trait UpgradedIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> UpgradedIo for T {}

/// A connection a [`Dialer`] opened.
pub struct Upgraded {
    /// The connection, right after the `101 Switching Protocols` (nothing read from it yet).
    pub io: Box<dyn UpgradedIo>,
    /// The subprotocol the server selected (`""` when it named none, which the kubelet reads
    /// as the binary `channel.k8s.io` framing).
    pub protocol: String,
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// A connection to the server opened ahead of a dial by [`Dialer::prepare`] and handed back
/// to [`Dialer::dial_prepared`]; what it holds is the dialer's business (kube-rest's
/// `UpgradeConnection` for `rest::PodDialer`: TCP and TLS done, no request sent).
pub struct Prepared(Box<dyn Any + Send>);

impl Prepared {
    /// Wraps a dialer's connection.
    pub fn new<T: Any + Send>(connection: T) -> Prepared {
        Prepared(Box::new(connection))
    }

    /// The connection, if it is a `T`; the `Prepared` back otherwise.
    pub fn downcast<T: Any>(self) -> Result<T, Prepared> {
        self.0.downcast::<T>().map(|b| *b).map_err(Prepared)
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").finish_non_exhaustive()
    }
}

/// Opens port-forward WebSockets to one pod.
///
/// [`rest::PodDialer`](crate::rest::PodDialer) (feature `rest`) is the implementation on an
/// API server; tests implement it over in-memory pipes.
pub trait Dialer: Send + Sync + 'static {
    /// Opens a WebSocket forwarding `port` of the pod (the API server's
    /// `GET pods/{name}/portforward?ports={port}` upgrade), offering `protocols` in order.
    /// The server then opens channel 0 (data) and channel 1 (errors).
    fn dial<'a>(
        &'a self,
        port: u16,
        protocols: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Upgraded, DialError>>;

    /// Opens a connection to the server for a later [`dial_prepared`](Self::dial_prepared),
    /// sending nothing on it: the TCP and TLS handshakes now, the upgrade request when a
    /// connection needs it. `None` (the default) when this dialer cannot; the forwarder then
    /// only uses [`dial`](Self::dial).
    ///
    /// The forwarder keeps one such connection spare (see
    /// [`PortForwarderBuilder::preconnect`](crate::PortForwarderBuilder::preconnect)), so it
    /// must not touch the pod: no port is opened until the upgrade request.
    fn prepare(&self) -> Option<BoxFuture<'_, Result<Prepared, DialError>>> {
        None
    }

    /// Like [`dial`](Self::dial), sending the upgrade request on `prepared` (from
    /// [`prepare`](Self::prepare)); a dialer falls back to a new connection when `prepared`
    /// was closed meanwhile. The default ignores `prepared` and dials.
    fn dial_prepared<'a>(
        &'a self,
        prepared: Prepared,
        port: u16,
        protocols: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
        drop(prepared);
        self.dial(port, protocols)
    }

    /// Checks, before the forwarder listens, that the target can be forwarded to (kubectl
    /// checks that the pod runs). The default accepts.
    fn check(&self) -> BoxFuture<'_, Result<(), DialError>> {
        Box::pin(async { Ok(()) })
    }

    /// Resolves when the target is out of reach for good (the pod was deleted or stopped),
    /// which ends a forwarder with [`Error::LostConnection`](crate::Error::LostConnection)
    /// even while no connection is open. The default never resolves: the forwarder then
    /// notices a lost pod only through a failed dial or a broken stream.
    fn lost(&self) -> BoxFuture<'_, DialError> {
        Box::pin(std::future::pending())
    }
}

impl<D: Dialer + ?Sized> Dialer for std::sync::Arc<D> {
    fn dial<'a>(
        &'a self,
        port: u16,
        protocols: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
        (**self).dial(port, protocols)
    }

    fn prepare(&self) -> Option<BoxFuture<'_, Result<Prepared, DialError>>> {
        (**self).prepare()
    }

    fn dial_prepared<'a>(
        &'a self,
        prepared: Prepared,
        port: u16,
        protocols: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
        (**self).dial_prepared(prepared, port, protocols)
    }

    fn check(&self) -> BoxFuture<'_, Result<(), DialError>> {
        (**self).check()
    }

    fn lost(&self) -> BoxFuture<'_, DialError> {
        (**self).lost()
    }
}
