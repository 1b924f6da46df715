//! The narrow interface to the server: open one port-forward WebSocket.

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

    fn check(&self) -> BoxFuture<'_, Result<(), DialError>> {
        (**self).check()
    }

    fn lost(&self) -> BoxFuture<'_, DialError> {
        (**self).lost()
    }
}
