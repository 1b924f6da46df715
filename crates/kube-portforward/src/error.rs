//! Errors: of the forwarder ([`Error`]), of one forwarded connection ([`ConnectionError`]) and
//! of a dialer ([`DialError`]).

use std::io;
use std::net::SocketAddr;

use crate::ports::ForwardedPort;

/// Why the forwarder could not start, or why it stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A port specification is invalid.
    #[error("invalid port specification {spec:?}: {reason}")]
    InvalidPort {
        /// The specification as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A listen address is neither `localhost` nor an IP address.
    #[error("{address} is not a valid IP")]
    InvalidAddress {
        /// The address as given.
        address: String,
    },
    /// The address list was set empty.
    #[error("you must specify at least 1 address")]
    NoAddresses,
    /// [`PortForwarder::forward`](crate::PortForwarder::forward) without any port.
    #[error("you must specify at least 1 port")]
    NoPorts,
    /// No port could be listened on; each port's failures are listed.
    #[error("unable to listen on any of the requested ports: {}", list_ports(.failures))]
    NoListener {
        /// Why each port failed.
        failures: Vec<PortListenError>,
    },
    /// The target could not be reached before listening (the pod does not exist or does not
    /// run), or a connection could not be opened by [`PortForwarder::connect`](crate::PortForwarder::connect).
    #[error("error upgrading connection")]
    Dial(#[source] DialError),
    /// The server answered in a way this client does not understand (a subprotocol that was
    /// not offered, a stream for another port).
    #[error("port-forward protocol error: {0}")]
    Protocol(String),
    /// The forwarder's cancellation token was cancelled: nothing new is started.
    #[error("the port forwarder was stopped")]
    Stopped,
    /// The pod can no longer be reached: it was deleted or stopped running, the API server
    /// cannot be reached any more, or a stream to it broke (client-go's
    /// `ErrLostConnectionToPod`). Every listener and stream was closed.
    #[error("lost connection to pod")]
    LostConnection(#[source] LostCause),
}

/// What made a forwarder give the pod up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LostCause {
    /// The dialer saw the pod go ([`Dialer::lost`](crate::Dialer::lost)).
    #[error(transparent)]
    Target(DialError),
    /// A connection failed in a way that means the pod is out of reach
    /// ([`ConnectionError::is_lost_connection`]), or reported an error while
    /// [`stop_on_remote_error`](crate::PortForwarderBuilder::stop_on_remote_error) is set.
    #[error(transparent)]
    Connection(std::sync::Arc<ConnectionError>),
}

fn list_ports(failures: &[PortListenError]) -> String {
    let ports: Vec<String> = failures.iter().map(|f| f.port.to_string()).collect();
    ports.join(", ")
}

/// Why one port could not be listened on (client-go's address-group rule failed).
#[derive(Debug, thiserror::Error)]
#[error("unable to listen on port {}: listeners failed to create with the following errors: {}", .port.local, list_listen_errors(.errors))]
pub struct PortListenError {
    /// The port (its local half as asked, or as bound by the first address of a `:remote`).
    pub port: ForwardedPort,
    /// Each address that failed, with its error.
    pub errors: Vec<ListenError>,
}

fn list_listen_errors(errors: &[ListenError]) -> String {
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("[{}]", errors.join(", "))
}

/// One listener that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("unable to create listener on {address}: {source}")]
pub struct ListenError {
    /// The address and port.
    pub address: SocketAddr,
    /// The system's error.
    #[source]
    pub source: io::Error,
}

/// What went wrong with one forwarded connection (the forwarder goes on, unless the error
/// means the pod is gone: [`ConnectionError::is_lost_connection`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The stream to the pod could not be opened.
    #[error("error creating the stream for port {remote}")]
    Dial {
        /// The port in the pod.
        remote: u16,
        /// The dialer's error.
        #[source]
        source: DialError,
    },
    /// The remote side reported an error on the port's error channel (the kubelet could not
    /// connect to the port in the pod, for instance).
    #[error("an error occurred forwarding {local} -> {remote}: {message}")]
    Remote {
        /// The local port (0 for a stream from [`PortForwarder::connect`](crate::PortForwarder::connect)).
        local: u16,
        /// The port in the pod.
        remote: u16,
        /// The remote side's message.
        message: String,
    },
    /// The WebSocket to the pod broke (not a clean close).
    #[error("the stream for port {remote} broke: {reason}")]
    Broken {
        /// The port in the pod.
        remote: u16,
        /// What happened.
        reason: String,
        /// The WebSocket error, when there is one.
        #[source]
        source: Option<tokio_tungstenite::tungstenite::Error>,
    },
    /// The server spoke something else than the port-forward protocol.
    #[error("port-forward protocol error on port {remote}: {reason}")]
    Protocol {
        /// The port in the pod.
        remote: u16,
        /// What was wrong.
        reason: String,
    },
    /// Copying to or from the local connection failed.
    #[error("error copying {direction} for port {local} -> {remote}")]
    Local {
        /// `"from the local connection"` or `"to the local connection"`.
        direction: &'static str,
        /// The local port.
        local: u16,
        /// The port in the pod.
        remote: u16,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl ConnectionError {
    /// Whether this error means the pod is out of reach (it ends a forwarder): a dial that
    /// found the pod gone or the server unreachable ([`DialError::is_lost_connection`]), or a
    /// stream that broke.
    pub fn is_lost_connection(&self) -> bool {
        match self {
            ConnectionError::Dial { source, .. } => source.is_lost_connection(),
            ConnectionError::Broken { .. } => true,
            ConnectionError::Remote { .. }
            | ConnectionError::Protocol { .. }
            | ConnectionError::Local { .. } => false,
        }
    }
}

/// Why a [`Dialer`](crate::Dialer) could not open a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// kube-rest's error (the upgrade was refused, the server could not be reached...).
    #[cfg(feature = "rest")]
    #[error(transparent)]
    Rest(kube_rest::Error),
    /// kube-rs's error (feature `kube`: the upgrade was refused with this `Status`, the
    /// server could not be reached...).
    #[cfg(feature = "kube")]
    #[error(transparent)]
    Kube(kube::Error),
    /// The WebSocket handshake of a dialer failed (a wrong accept key, no upgrade).
    #[error("the port-forward WebSocket handshake failed: {reason}")]
    Handshake {
        /// What went wrong.
        reason: String,
    },
    /// The pod does not run (kubectl refuses to forward to it as well).
    #[error("unable to forward port because pod is not running. Current status={phase}")]
    NotRunning {
        /// The pod's phase.
        phase: String,
    },
    /// The pod was deleted, or replaced by another of the same name.
    #[error("pod {name} is gone")]
    Gone {
        /// The pod's name.
        name: String,
    },
    /// The server selected a subprotocol this client does not speak.
    #[error("unable to negotiate protocol: client offers {offered}, server returned {selected:?}")]
    Protocol {
        /// The protocols offered.
        offered: String,
        /// The protocol selected.
        selected: String,
    },
    /// An I/O error of a custom dialer.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
        /// Whether the target is out of reach (see [`DialError::is_lost_connection`]).
        lost: bool,
    },
}

impl DialError {
    /// Whether the pod is out of reach: it is gone or not running, the API server answered
    /// 404 (no such pod), or the server could not be reached at all. Other failures (a 403,
    /// a 500, a throttled request) fail the one connection and the forwarder goes on.
    pub fn is_lost_connection(&self) -> bool {
        match self {
            #[cfg(feature = "rest")]
            DialError::Rest(error) => match error {
                kube_rest::Error::Api(status) => status.code == 404 || status.code == 410,
                kube_rest::Error::Transport { .. } | kube_rest::Error::Tls { .. } => true,
                _ => false,
            },
            #[cfg(feature = "kube")]
            DialError::Kube(error) => match error {
                kube::Error::Api(status) => status.code == 404 || status.code == 410,
                // The server could not be reached, or the connection broke.
                kube::Error::HyperError(_) | kube::Error::Service(_) => true,
                _ => false,
            },
            DialError::Handshake { .. } => false,
            DialError::NotRunning { .. } | DialError::Gone { .. } => true,
            DialError::Protocol { .. } => false,
            DialError::Io { lost, .. } => *lost,
        }
    }
}
