//! [`PortForwarder`]: its options, the listen rules, and the listener-less [`PortForwarder::connect`].

use std::net::SocketAddr;
use std::sync::Arc;

use kube_apimachinery::channel::ChannelProtocol;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::dialer::Dialer;
use crate::error::{DialError, Error, ListenError, PortListenError};
use crate::forwarding::{self, Forwarding};
use crate::ports::{FailureMode, ForwardedPort, ListenAddress, parse_addresses, parse_ports};
use crate::preconnect::{self, Spare};
use crate::stream::{DEFAULT_PROTOCOLS, PortStream, negotiated};

/// See [`PortForwarderBuilder::half_close_linger`].
const DEFAULT_HALF_CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Forwards local ports to a pod (client-go's `PortForwarder`), or opens streams to it
/// directly.
///
/// ```no_run
/// # #[cfg(feature = "rest")]
/// # async fn run(client: kube_rest::Client) -> Result<(), kube_portforward::Error> {
/// use kube_portforward::PortForwarder;
/// use kube_portforward::rest::PodDialer;
///
/// let dialer = PodDialer::new(client, "default", "nginx");
/// let forwarder = PortForwarder::builder(dialer)
///     .addresses(["0.0.0.0"])
///     .ports(["8080:80", ":9090"])
///     .build()?;
/// let forwarding = forwarder.forward().await?; // listening: the ready signal
/// for port in forwarding.ports() {
///     println!("Forwarding from {} -> {}", port.local, port.remote);
/// }
/// forwarding.wait().await // until stopped, or the pod is lost
/// # }
/// ```
///
/// Each accepted connection gets its own WebSocket (`pods/{name}/portforward?ports=N`, the
/// kubelet's `v4.channel.k8s.io` protocol that the API server passes through): that protocol
/// carries one stream per port per WebSocket, so a WebSocket per connection is how several
/// connections to one port run at once. (kubectl since 1.30 instead tunnels SPDY through one
/// WebSocket, `SPDY/3.1+portforward.k8s.io`; SPDY is not implemented here.) The cost is one
/// upgrade request per connection; nothing is shared between connections, so one broken
/// connection does not take the others down.
#[derive(Clone)]
pub struct PortForwarder {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) dialer: Arc<dyn Dialer>,
    pub(crate) addresses: Vec<ListenAddress>,
    pub(crate) ports: Vec<ForwardedPort>,
    pub(crate) protocols: Vec<ChannelProtocol>,
    pub(crate) token: CancellationToken,
    pub(crate) stop_on_remote_error: bool,
    pub(crate) half_close_linger: std::time::Duration,
    pub(crate) warm: bool,
    /// The spare connection (`preconnect`).
    pub(crate) spare: Option<Arc<Spare>>,
    /// Stops keeping the spare once the last handle is dropped.
    _spare_stop: Option<DropGuard>,
}

impl std::fmt::Debug for PortForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortForwarder")
            .field("addresses", &self.inner.addresses)
            .field("ports", &self.inner.ports)
            .field("protocols", &self.inner.protocols)
            .finish_non_exhaustive()
    }
}

/// Options of a [`PortForwarder`].
#[must_use]
pub struct PortForwarderBuilder {
    dialer: Arc<dyn Dialer>,
    addresses: Vec<String>,
    ports: Vec<String>,
    protocols: Vec<ChannelProtocol>,
    token: Option<CancellationToken>,
    stop_on_remote_error: bool,
    half_close_linger: std::time::Duration,
    warm: bool,
    preconnect: bool,
}

impl std::fmt::Debug for PortForwarderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortForwarderBuilder")
            .field("addresses", &self.addresses)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl PortForwarderBuilder {
    /// The addresses to listen on (default `localhost`: `127.0.0.1` and `::1`); replaces
    /// the list. See [`ports`](crate::ports) for the rules.
    pub fn addresses<I, S>(mut self, addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.addresses = addresses.into_iter().map(Into::into).collect();
        self
    }

    /// Adds port specifications: `8080:80`, `:80` (a free local port), `80`.
    pub fn ports<I, S>(mut self, ports: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ports.extend(ports.into_iter().map(Into::into));
        self
    }

    /// Adds one port specification.
    pub fn port(mut self, spec: impl Into<String>) -> Self {
        self.ports.push(spec.into());
        self
    }

    /// The subprotocols offered, best first (default `v4.channel.k8s.io`,
    /// `v4.base64.channel.k8s.io`: what kubelets speak). Offering `v5.channel.k8s.io` first
    /// gives half-close with a server that accepts it.
    pub fn protocols(mut self, protocols: impl IntoIterator<Item = ChannelProtocol>) -> Self {
        self.protocols = protocols.into_iter().collect();
        self
    }

    /// Stops the forwarder (every listener and stream) when `token` is cancelled.
    pub fn cancellation_token(mut self, token: CancellationToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Whether an error the pod's side reports on a connection's error channel ends the
    /// forwarder with [`Error::LostConnection`] (client-go since 1.28 does that, so a
    /// supervising loop can restart against a new pod). Default `false`: the error is
    /// reported for that connection and the listeners go on, as kubectl did before.
    pub fn stop_on_remote_error(mut self, stop: bool) -> Self {
        self.stop_on_remote_error = stop;
        self
    }

    /// How long a forwarded connection stays open after the local side's EOF when the
    /// protocol cannot half-close (`v4.channel.k8s.io`, which kubelets speak): the pod's
    /// side does not learn of the EOF, so the connection closes when the pod's side closes
    /// or has sent nothing for this long (default 1 s, the grace containerd gives the second
    /// direction of a forwarded connection). With `v5.channel.k8s.io` the EOF is passed on and
    /// the connection waits for the pod's side.
    pub fn half_close_linger(mut self, linger: std::time::Duration) -> Self {
        self.half_close_linger = linger;
        self
    }

    /// Keeps one stream per forwarded port open ahead of time (default `false`): an
    /// accepted connection then takes an already-upgraded WebSocket instead of waiting for
    /// a TCP connection, a TLS handshake and the upgrade request (most of the setup time:
    /// see the crate README's figures), and a new spare is dialed behind it.
    ///
    /// The trade-off: the kubelet connects to the pod's port as soon as a WebSocket opens,
    /// so the pod sees one idle connection per forwarded port before any local client
    /// connects (and a new one after each accepted connection), each spare is one more
    /// upgrade request through the client's throttle, and a spare is held open by the
    /// stream's pings. A spare that ended while idle (the pod's side closed it, or the
    /// server) is dropped when the next connection comes and that connection dials its own;
    /// spares are never redialed in a loop. [`PortForwarder::connect`] does not use them.
    pub fn warm_streams(mut self, warm: bool) -> Self {
        self.warm = warm;
        self
    }

    /// Keeps one connection to the API server open ahead of time, TCP and TLS handshakes
    /// done but no request sent (default `true`): a new stream sends its upgrade request on
    /// it, which saves most of the setup time (the crate README has the figures), and
    /// another is opened behind it. Nothing reaches the kubelet or the pod until a stream is
    /// opened; the server only sees one idle connection (replaced after 25 s unused, before
    /// kube-apiserver's 32 s limit for a connection without a request).
    ///
    /// Only dialers that implement [`Dialer::prepare`] can: `rest::PodDialer` does,
    /// `kube::PodDialer` does not (kube-rs's client has no way to open a connection without
    /// a request), and then every stream dials its own connection.
    pub fn preconnect(mut self, preconnect: bool) -> Self {
        self.preconnect = preconnect;
        self
    }

    /// Checks the addresses and ports (client-go's `NewOnAddresses` rules, except that no
    /// port is needed here: a forwarder without ports serves [`PortForwarder::connect`], and
    /// [`PortForwarder::forward`] refuses it).
    pub fn build(self) -> Result<PortForwarder, Error> {
        if self.addresses.is_empty() {
            return Err(Error::NoAddresses);
        }
        let addresses = parse_addresses(&self.addresses)?;
        let ports = parse_ports(&self.ports)?;
        let protocols = if self.protocols.is_empty() {
            DEFAULT_PROTOCOLS.to_vec()
        } else {
            self.protocols
        };
        let token = self.token.unwrap_or_default();
        let (spare, spare_stop) = if self.preconnect {
            let stop = token.child_token();
            let spare = Spare::new(self.dialer.clone(), stop.clone(), preconnect::MAX_IDLE);
            (Some(Arc::new(spare)), Some(stop.drop_guard()))
        } else {
            (None, None)
        };
        Ok(PortForwarder {
            inner: Arc::new(Inner {
                dialer: self.dialer,
                addresses,
                ports,
                protocols,
                token,
                stop_on_remote_error: self.stop_on_remote_error,
                half_close_linger: self.half_close_linger,
                warm: self.warm,
                spare,
                _spare_stop: spare_stop,
            }),
        })
    }
}

impl PortForwarder {
    /// A builder for a forwarder over `dialer`.
    pub fn builder(dialer: impl Dialer) -> PortForwarderBuilder {
        PortForwarderBuilder {
            dialer: Arc::new(dialer),
            addresses: vec!["localhost".to_string()],
            ports: Vec::new(),
            protocols: Vec::new(),
            token: None,
            stop_on_remote_error: false,
            half_close_linger: DEFAULT_HALF_CLOSE_LINGER,
            warm: false,
            preconnect: true,
        }
    }

    /// The listen addresses, parsed.
    pub fn addresses(&self) -> &[ListenAddress] {
        &self.inner.addresses
    }

    /// The ports as configured (a local 0 is chosen when listening; see
    /// [`Forwarding::ports`]).
    pub fn ports(&self) -> &[ForwardedPort] {
        &self.inner.ports
    }

    /// Opens a stream to `remote_port` of the pod, without a listener: for programs that talk
    /// to the pod themselves.
    pub async fn connect(&self, remote_port: u16) -> Result<PortStream, Error> {
        if self.inner.token.is_cancelled() {
            return Err(Error::Stopped);
        }
        self.open(remote_port, 0, self.inner.token.child_token())
            .await
            .map_err(Error::Dial)
    }

    pub(crate) async fn open(
        &self,
        remote: u16,
        local: u16,
        token: CancellationToken,
    ) -> Result<PortStream, DialError> {
        if remote == 0 {
            return Err(DialError::Io {
                context: "remote port must be > 0".into(),
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
                lost: false,
            });
        }
        let names: Vec<&str> = self.inner.protocols.iter().map(|p| p.name()).collect();
        let dialer = &self.inner.dialer;
        let prepared = match &self.inner.spare {
            Some(spare) => spare.take().await,
            None => None,
        };
        let upgraded = match prepared {
            Some(prepared) => dialer.dial_prepared(prepared, remote, &names).await?,
            None => dialer.dial(remote, &names).await?,
        };
        let protocol = negotiated(&upgraded.protocol, &self.inner.protocols)?;
        Ok(PortStream::start(upgraded, protocol, remote, local, token).await)
    }

    /// Checks the target, listens on every port and address, and forwards each accepted
    /// connection until stopped. Returns once listening (client-go's ready signal), with the
    /// ports actually bound.
    ///
    /// A port is listened on when client-go's address rules hold (see
    /// [`ports`](crate::ports)); a port that cannot be listened on is logged and listed in
    /// [`Forwarding::listen_failures`], and it is an error only when no port can be.
    pub async fn forward(&self) -> Result<Forwarding, Error> {
        if self.inner.ports.is_empty() {
            return Err(Error::NoPorts);
        }
        if self.inner.token.is_cancelled() {
            return Err(Error::Stopped);
        }
        self.inner.dialer.check().await.map_err(Error::Dial)?;
        if let Some(spare) = &self.inner.spare {
            // The first connection finds its spare ready.
            spare.start();
        }
        let mut listeners = Vec::new();
        let mut failures = Vec::new();
        let mut bound_ports = Vec::new();
        for &port in &self.inner.ports {
            match listen_on_port(&self.inner.addresses, port) {
                Ok((port, bound)) => {
                    for (listener, address) in bound {
                        tracing::info!("Forwarding from {address} -> {}", port.remote);
                        listeners.push((listener, address, port));
                    }
                    bound_ports.push(port);
                }
                Err(error) => {
                    tracing::warn!(%error, "Unable to listen on port {}", port.local);
                    failures.push(error);
                }
            }
        }
        if listeners.is_empty() {
            return Err(Error::NoListener { failures });
        }
        Ok(forwarding::start(
            self.clone(),
            listeners,
            bound_ports,
            failures,
        ))
    }
}

/// A bound listener, its address and its port pair.
pub(crate) type Bound = (TcpListener, SocketAddr, ForwardedPort);

/// client-go's `listenOnPort`: listens on every address; the `localhost` group may fail as a
/// whole only if none of it succeeds, an explicit address must succeed. With local port 0,
/// the first listener picks the port and the others take the same one.
fn listen_on_port(
    addresses: &[ListenAddress],
    mut port: ForwardedPort,
) -> Result<(ForwardedPort, Vec<(TcpListener, SocketAddr)>), PortListenError> {
    let mut bound = Vec::new();
    let mut errors = Vec::new();
    let (mut all_ok, mut all_failed, mut any_failed) = (0, 0, 0);
    for address in addresses {
        match listen(address, &mut port) {
            Ok(listener) => {
                bound.push(listener);
                if address.failure_mode == FailureMode::All {
                    all_ok += 1;
                }
            }
            Err(error) => {
                errors.push(error);
                match address.failure_mode {
                    FailureMode::All => all_failed += 1,
                    FailureMode::Any => any_failed += 1,
                }
            }
        }
    }
    if (all_ok == 0 && all_failed > 0) || any_failed > 0 {
        // Dropping the listeners that did open closes them.
        return Err(PortListenError { port, errors });
    }
    Ok((port, bound))
}

/// client-go's `getListener`: binds `address:port.local` and records the port bound.
fn listen(
    address: &ListenAddress,
    port: &mut ForwardedPort,
) -> Result<(TcpListener, SocketAddr), ListenError> {
    let wanted = SocketAddr::new(address.ip, port.local);
    let error = |source| ListenError {
        address: wanted,
        source,
    };
    let listener = std::net::TcpListener::bind(wanted).map_err(error)?;
    listener.set_nonblocking(true).map_err(error)?;
    let local = listener.local_addr().map_err(error)?;
    let listener = TcpListener::from_std(listener).map_err(error)?;
    port.local = local.port();
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::parse_addresses;

    /// client-go's TestGetListener: a listener on port 0 of each address, the address family
    /// must match.
    #[tokio::test]
    async fn get_listener() {
        for (host, expected) in [("127.0.0.1", Some("127.0.0.1")), ("::1", Some("::1"))] {
            let address = parse_addresses(&[host]).unwrap()[0];
            let mut port = ForwardedPort {
                local: 0,
                remote: 12345,
            };
            match listen(&address, &mut port) {
                Ok((_listener, bound)) => {
                    assert_eq!(Some(bound.ip().to_string().as_str()), expected);
                    assert_eq!(bound.port(), port.local);
                    assert_ne!(port.local, 0);
                }
                // A machine without IPv6 loopback cannot run this case.
                Err(error) if host == "::1" => eprintln!("cannot test {host}: {error}"),
                Err(error) => panic!("{host}: {error}"),
            }
        }
    }

    #[tokio::test]
    async fn localhost_group_shares_the_random_port_and_tolerates_one_failure() {
        let localhost = parse_addresses(&["localhost"]).unwrap();
        let (port, bound) = listen_on_port(
            &localhost,
            ForwardedPort {
                local: 0,
                remote: 80,
            },
        )
        .unwrap();
        assert_ne!(port.local, 0);
        assert!(!bound.is_empty());
        for (_, address) in &bound {
            assert_eq!(
                address.port(),
                port.local,
                "every address gets the same port"
            );
        }
        // The port is taken on 127.0.0.1 now: the group still succeeds through ::1 when the
        // machine has IPv6 loopback; an explicit 127.0.0.1 must fail.
        let taken = ForwardedPort {
            local: port.local,
            remote: 80,
        };
        let explicit = parse_addresses(&["127.0.0.1"]).unwrap();
        let error = listen_on_port(&explicit, taken).unwrap_err();
        assert_eq!(error.errors.len(), 1);
        assert!(
            error.to_string().contains("unable to listen on port"),
            "{error}"
        );
        let both = parse_addresses(&["localhost", "127.0.0.1"]).unwrap();
        assert!(
            listen_on_port(&both, taken).is_err(),
            "an explicit address must succeed"
        );
        drop(bound);
        // Once free, every listener of the group opens again.
        let (again, bound) = listen_on_port(&localhost, taken).unwrap();
        assert_eq!(again, taken);
        assert!(!bound.is_empty());
    }

    #[tokio::test]
    async fn the_all_group_fails_when_every_member_fails() {
        let localhost = parse_addresses(&["localhost"]).unwrap();
        let (port, bound) = listen_on_port(
            &localhost,
            ForwardedPort {
                local: 0,
                remote: 80,
            },
        )
        .unwrap();
        // Both members are taken now (or ::1 does not exist): the group fails as a whole.
        let error = listen_on_port(&localhost, port).unwrap_err();
        assert!(!error.errors.is_empty());
        drop(bound);
    }
}
