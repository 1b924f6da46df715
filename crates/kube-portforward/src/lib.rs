//! Port forwarding to Kubernetes pods, as client-go's `tools/portforward` and
//! `kubectl port-forward` do it, over the API server's WebSocket port-forward protocol.
//!
//! - [`PortForwarder`] listens on local ports (kubectl's port specifications `8080:80`, `:80`,
//!   `80`, and its address rules: `localhost` means `127.0.0.1` and `::1`) and forwards each
//!   accepted connection through its own stream to the pod. [`PortForwarder::forward`] returns
//!   once listening, with the ports actually bound ([`Forwarding::ports`], client-go's
//!   `GetPorts`); it stops through a `CancellationToken`, [`Forwarding::stop`] or a drop, and
//!   ends with [`Error::LostConnection`] when the pod goes away.
//! - [`PortForwarder::connect`] opens one [`PortStream`] (`AsyncRead + AsyncWrite`) to a port
//!   of the pod, for programs that talk to the pod themselves.
//! - An error the pod's side reports for one connection (nothing listens on that port, for
//!   instance) is logged, sent as an [`Event`], and the listeners go on.
//! - The server is reached through a [`Dialer`]; feature `rest` provides
//!   `rest::PodDialer` over kube-rest's client, feature `kube` provides `kube::PodDialer` over
//!   kube-rs's `kube::Client`.
//!
//! ```no_run
//! # #[cfg(feature = "rest")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use kube_portforward::PortForwarder;
//! use kube_portforward::rest::PodDialer;
//! use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
//!
//! let client = kube_rest::Client::try_default()?;
//! let forwarder = PortForwarder::builder(PodDialer::new(client, "default", "nginx")).build()?;
//! let mut stream = forwarder.connect(80).await?;
//! stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
//! let mut page = String::new();
//! stream.read_to_string(&mut page).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## The protocol
//!
//! A stream is a WebSocket upgrade of `GET /api/v1/namespaces/{ns}/pods/{name}/portforward?ports={port}`
//! with the subprotocol `v4.channel.k8s.io` (or `v4.base64.channel.k8s.io`): the kubelet's
//! WebSocket port forwarding, which the API server passes through. The port gets a data channel
//! (0) and an error channel (1), each opened by the server with the port number (two bytes,
//! little endian), as the kubelet's `handleWebSocketStreams` writes them. That protocol has no
//! half-close: see [`PortStream`].

mod dialer;
mod error;
mod forwarder;
mod forwarding;
#[cfg(feature = "kube")]
pub mod kube;
#[cfg(any(feature = "rest", feature = "kube"))]
mod pod_watch;
pub mod ports;
mod preconnect;
#[cfg(feature = "rest")]
pub mod rest;
mod stream;

pub use dialer::{BoxFuture, Dialer, Prepared, Upgraded, UpgradedIo};
pub use error::{ConnectionError, DialError, Error, ListenError, LostCause, PortListenError};
pub use forwarder::{PortForwarder, PortForwarderBuilder};
pub use forwarding::{Event, Forwarding, Stats};
pub use kube_apimachinery::channel::ChannelProtocol;
pub use ports::{FailureMode, ForwardedPort, ListenAddress};
pub use stream::{DEFAULT_PROTOCOLS, Outcome, OutcomeHandle, PortReader, PortStream, PortWriter};
pub use tokio_util::sync::CancellationToken;
