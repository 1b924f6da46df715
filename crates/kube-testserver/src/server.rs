//! The HTTP(S) listener and the [`TestServer`] handle.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use kube_flowcontrol::clock::{RealClock, SharedClock};

use crate::api::{ApiServer, Settings};
use crate::faults::Faults;
use crate::store::Store;
use crate::tls::{ClientCertificate, TlsMaterial};
use crate::watchcache::{DEFAULT_COMPACTION_INTERVAL, WatchCacheSize};
use crate::{Error, kubeconfig};

/// The read buffer under each TLS connection (rustls itself reads at most 4 KiB at a time).
const TLS_READ_BUFFER: usize = 64 << 10;

/// Options for a [`TestServer`].
#[derive(Debug, Clone)]
pub struct TestServerBuilder {
    listen: SocketAddr,
    tls: bool,
    token: Option<String>,
    anonymous: bool,
    history_limit: usize,
    watch_cache: WatchCacheSize,
    compaction_interval: Option<Duration>,
    clock: SharedClock,
    bookmark_interval: Duration,
    watch_list: bool,
    client_cert_auth: bool,
    kubelet: Option<Duration>,
    log_interval: Duration,
}

/// How long the simulated kubelet takes, by default, to start a pod's containers (or a new
/// image's container, or to stop a terminating pod's containers).
pub const DEFAULT_KUBELET_DELAY: Duration = Duration::from_millis(300);

/// The default of [`TestServerBuilder::history_limit`]: the watch cache's largest window.
pub const DEFAULT_HISTORY_LIMIT: usize = 100 * 1024;

/// The user a verified client certificate authenticated, attached to each request of its
/// connection.
#[derive(Debug, Clone)]
pub(crate) struct ClientIdentity(pub(crate) String);

/// The user name the generated client certificate carries.
pub const CLIENT_CERT_USER: &str = "kube-testserver-admin";

impl Default for TestServerBuilder {
    fn default() -> Self {
        TestServerBuilder {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            token: None,
            anonymous: false,
            history_limit: DEFAULT_HISTORY_LIMIT,
            watch_cache: WatchCacheSize::default(),
            compaction_interval: Some(DEFAULT_COMPACTION_INTERVAL),
            clock: RealClock::shared(),
            bookmark_interval: Duration::from_secs(1),
            watch_list: true,
            client_cert_auth: false,
            kubelet: Some(DEFAULT_KUBELET_DELAY),
            log_interval: Duration::from_secs(1),
        }
    }
}

impl TestServerBuilder {
    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, address: SocketAddr) -> Self {
        self.listen = address;
        self
    }

    /// Serve plain HTTP instead of HTTPS.
    pub fn plain_http(mut self) -> Self {
        self.tls = false;
        self
    }

    /// The bearer token clients must send (default: a random one, in the kubeconfig).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Serve requests without credentials too (by default they get 403 Forbidden, as with
    /// RBAC and anonymous auth on).
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.anonymous = allow;
        self
    }

    /// The most changes kept per resource, whatever the watch cache and compaction would
    /// keep (default [`DEFAULT_HISTORY_LIMIT`], the watch cache's largest window): a bound on
    /// memory. Lists at older resourceVersions, continue tokens and watches from them get 410
    /// Gone.
    pub fn history_limit(mut self, events: usize) -> Self {
        self.history_limit = events;
        self
    }

    /// How many events per resource the emulated watch cache keeps for watches resuming from
    /// a resourceVersion (default: kube-apiserver's dynamic window, 100 to 102,400 events, as
    /// many as the last 75 seconds saw). A watch from before the window gets `410 Gone`
    /// ("too old resource version: X (Y)"). [`WatchCacheSize::Unbounded`] turns the window
    /// off: watches then resume from anything compaction left.
    pub fn watch_cache(mut self, size: WatchCacheSize) -> Self {
        self.watch_cache = size;
        self
    }

    /// How often the emulated etcd is compacted, as kube-apiserver's
    /// `--etcd-compaction-interval` does (default 5 minutes; `None` never compacts): each run
    /// compacts to the revision of the previous run, so lists at an exact resourceVersion
    /// and continue tokens older than that get 410 Gone, and the watch cache of a resource
    /// that did not change since relists (its window starts at the current revision and its
    /// open watches end). See [`TestServer::compact`] to compact on demand.
    pub fn compaction_interval(mut self, interval: Option<Duration>) -> Self {
        self.compaction_interval = interval.filter(|i| !i.is_zero());
        self
    }

    /// The clock that ages the watch cache's events and runs the compactor (default: the
    /// real one). A [`FakeClock`](kube_flowcontrol::clock::FakeClock) lets a test make
    /// minutes pass at once; the other timers (kubelet, bookmarks, watch timeouts) run on
    /// tokio's time.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How often watches that allow bookmarks get one (default 1s; the real server: ~1 min).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Serve watch-list (`sendInitialEvents=true`) as Kubernetes 1.27+ does (default on);
    /// off, watches validate their options as v1.24 does.
    pub fn watch_list(mut self, enabled: bool) -> Self {
        self.watch_list = enabled;
        self
    }

    /// Also authenticate clients by certificate: the server generates a client certificate
    /// (`CN=kube-testserver-admin, O=system:masters`, signed by its CA) and the kubeconfig uses
    /// it instead of the token. Tokens are still accepted. Needs TLS.
    pub fn client_cert_auth(mut self, enabled: bool) -> Self {
        self.client_cert_auth = enabled;
        self
    }

    /// The simulated kubelet (on by default, with a delay of [`DEFAULT_KUBELET_DELAY`]): a
    /// node named [`NODE_NAME`](crate::kubelet::NODE_NAME) exists, and `delay` after a pod is
    /// created (or its image changes) it is bound to that node and reported Running and Ready,
    /// with container statuses (a new image counts as a restart, and the previous instance
    /// goes to `lastState.terminated`); a deleted pod's containers stop within `delay` (or its
    /// grace period, whichever is shorter) and the pod is then removed. Running containers
    /// write logs (see [`log_interval`](TestServerBuilder::log_interval)).
    ///
    /// `None` turns it off: pods stay Pending, and a deleted pod that is bound to a node stays
    /// Terminating, as on a cluster whose kubelet is gone.
    pub fn simulated_kubelet(mut self, delay: Option<Duration>) -> Self {
        self.kubelet = delay;
        self
    }

    /// How often a simulated container writes a log line (default 1s). Every running container
    /// runs the equivalent of `while :; do date +%s; sleep 1; done`: from its start, one line
    /// per interval with the Unix time of the line in seconds.
    pub fn log_interval(mut self, interval: Duration) -> Self {
        self.log_interval = interval;
        self
    }

    /// Starts listening and serving.
    pub async fn start(self) -> Result<TestServer, Error> {
        let listener = TcpListener::bind(self.listen)
            .await
            .map_err(|source| Error::Bind {
                address: self.listen,
                source,
            })?;
        let address = listener.local_addr().map_err(Error::Io)?;
        if self.client_cert_auth && !self.tls {
            return Err(Error::Tls(
                "client certificate authentication needs TLS (not plain_http)".into(),
            ));
        }
        let tls = if self.tls {
            Some(TlsMaterial::generate(
                self.client_cert_auth.then_some(CLIENT_CERT_USER),
            )?)
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{address}");
        let token = self.token.unwrap_or_else(|| {
            let random: String = (0..32).map(|_| fastrand::alphanumeric()).collect();
            format!("kube-testserver-{random}")
        });
        let settings = Settings {
            tokens: [(token.clone(), "kube-testserver-admin".to_string())]
                .into_iter()
                .collect(),
            anonymous_allowed: self.anonymous,
            bookmark_interval: self.bookmark_interval,
            watch_list: self.watch_list,
            server_address: address.to_string(),
            log_interval: self.log_interval,
        };
        let store = Store::new(
            self.history_limit,
            self.watch_cache,
            Arc::clone(&self.clock),
        );
        let state = ApiServer::new(settings, store);
        if let Some(interval) = self.compaction_interval {
            tokio::spawn(run_compactor(Arc::clone(&state), self.clock, interval));
        }
        // Attach shows the container's main process, which writes the log lines.
        *state.streaming.attach_interval.lock() = self.log_interval;
        if let Some(delay) = self.kubelet {
            state.register_node(crate::kubelet::node());
            tokio::spawn(crate::kubelet::run(Arc::clone(&state), delay));
        }
        let credentials = match tls.as_ref().and_then(|t| t.client.as_ref()) {
            Some(client) => kubeconfig::Credentials::ClientCertificate {
                cert_pem: &client.cert_pem,
                key_pem: &client.key_pem,
            },
            None => kubeconfig::Credentials::Token(&token),
        };
        let kubeconfig =
            kubeconfig::build(&url, tls.as_ref().map(|t| t.ca_pem.as_str()), credentials);
        let acceptor = match &tls {
            Some(material) => Some(tokio_rustls::TlsAcceptor::from(material.server_config()?)),
            None => None,
        };
        let server = TestServer {
            state,
            address,
            url,
            token,
            tls,
            kubeconfig,
            acceptor,
            listener: Mutex::new(None),
        };
        server.spawn_listener(listener);
        tracing::info!(url = %server.url, "kube-testserver listening");
        Ok(server)
    }
}

/// A running in-memory API server. Dropping it stops it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), kube_testserver::Error> {
/// let server = kube_testserver::TestServer::builder().plain_http().start().await?;
/// assert!(server.url().starts_with("http://127.0.0.1:"));
/// assert!(server.kubeconfig_yaml().contains(server.token()));
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub struct TestServer {
    state: Arc<ApiServer>,
    address: SocketAddr,
    url: String,
    token: String,
    tls: Option<TlsMaterial>,
    kubeconfig: Value,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    listener: Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Options for a new server.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// The base URL (`https://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The bearer token the server accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The client certificate clients may authenticate with, when
    /// [`client_cert_auth`](TestServerBuilder::client_cert_auth) is on.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.tls.as_ref().and_then(|t| t.client.as_ref())
    }

    /// The CA certificate (PEM) clients must trust, when serving TLS.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// A kubeconfig for this server, as a value.
    pub fn kubeconfig(&self) -> &Value {
        &self.kubeconfig
    }

    /// A kubeconfig for this server, as YAML.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::to_yaml(&self.kubeconfig)
    }

    /// Writes the kubeconfig to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        std::fs::write(path, self.kubeconfig_yaml()).map_err(Error::Io)
    }

    /// The latest resourceVersion handed out: one counter for every object, like etcd's
    /// revision (a watch from here sees only later changes).
    pub fn resource_version(&self) -> u64 {
        self.state.store.current_rv()
    }

    /// How many objects the server holds (all resources and namespaces).
    pub fn object_count(&self) -> usize {
        self.state.store.object_count()
    }

    /// How many watches are open.
    pub fn watch_count(&self) -> usize {
        self.state.store.watcher_count()
    }

    /// Fault injection: failing requests and adding latency.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// How many pod log response bodies are open (following ones included): a body the client
    /// dropped is gone here once the server noticed the disconnect.
    #[doc(hidden)]
    pub fn active_log_streams(&self) -> usize {
        self.state
            .log_streams
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ends every open watch stream.
    pub fn close_all_watches(&self) {
        self.state.close_all_watches();
    }

    /// How many exec and attach sessions are running (each ends when its command does, the
    /// client leaves or the server shuts down).
    pub fn exec_sessions(&self) -> usize {
        self.state.streaming.sessions()
    }

    /// Routes `port` of pod `namespace/pod` to a local TCP `address`: connections
    /// port-forwarded to that pod port connect there, whatever the pod declares (without a
    /// route, an `nginx…` image serves its welcome page on 80, other declared ports echo, and
    /// the rest refuse).
    pub fn route_pod_port(&self, namespace: &str, pod: &str, port: u16, address: SocketAddr) {
        self.state.port_forward.route(namespace, pod, port, address);
    }

    /// How many port-forward sessions are open (each ends when its ports are done, the
    /// client leaves, the pod stops or the server shuts down).
    pub fn port_forward_sessions(&self) -> usize {
        self.state.port_forward.sessions()
    }

    /// Forgets the history: resuming a watch or a paged list from any earlier resourceVersion
    /// now gets 410 Gone (open watches go on).
    pub fn compact(&self) {
        self.state.store.compact();
    }

    /// The revision the emulated etcd was last compacted to (0 before any compaction); see
    /// [`TestServerBuilder::compaction_interval`].
    pub fn compacted_revision(&self) -> u64 {
        self.state.store.compacted_revision()
    }

    fn spawn_listener(&self, listener: TcpListener) {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&self.state),
            self.acceptor.clone(),
            cancel.clone(),
        ));
        *self.listener.lock() = Some((cancel, task));
    }

    /// Stops accepting connections and drops the open ones (clients see connection errors);
    /// the data is kept. [`restart_listener`](TestServer::restart_listener) resumes.
    pub async fn stop_listener(&self) {
        let running = self.listener.lock().take();
        if let Some((cancel, task)) = running {
            cancel.cancel();
            let _ = task.await;
        }
    }

    /// Listens again on the same address after [`stop_listener`](TestServer::stop_listener).
    pub async fn restart_listener(&self) -> Result<(), Error> {
        self.stop_listener().await;
        let listener = TcpListener::bind(self.address)
            .await
            .map_err(|source| Error::Bind {
                address: self.address,
                source,
            })?;
        self.spawn_listener(listener);
        Ok(())
    }

    /// Stops the listener and drops every connection for `down` (connections are refused
    /// meanwhile), then listens again on the same address; data and watch caches are kept.
    pub async fn bounce_listener(&self, down: Duration) -> Result<(), Error> {
        self.stop_listener().await;
        tokio::time::sleep(down).await;
        self.restart_listener().await
    }

    /// An API server restart that keeps its data (etcd): the listener stops and every
    /// connection drops for `down` (connections are refused meanwhile), the watch caches are
    /// lost (rebuilt at the current resourceVersion, so a watch resuming from an older one gets
    /// 410 Gone), and the server listens again on the same address.
    pub async fn restart(&self, down: Duration) -> Result<(), Error> {
        self.stop_listener().await;
        self.state.close_all_watches();
        let rebuilt = self.state.store.restart_watch_caches();
        tracing::debug!(rebuilt, "watch caches lost in the restart");
        tokio::time::sleep(down).await;
        self.restart_listener().await
    }

    /// Stops the server: the listener, every connection and every watch.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        self.stop_listener().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
        if let Some((cancel, _)) = self.listener.lock().take() {
            cancel.cancel();
        }
    }
}

/// kube-apiserver's etcd compactor: every `interval`, compact to the previous run's revision.
async fn run_compactor(state: Arc<ApiServer>, clock: SharedClock, interval: Duration) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = clock.sleep(interval) => {}
        }
        state.store.compactor_run();
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<ApiServer>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = state.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let acceptor = acceptor.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let connection = async {
                match acceptor {
                    // rustls reads the socket 4 KiB at a time; a buffer below it turns the
                    // four or five reads of each 16 KiB record into one.
                    Some(acceptor) => match acceptor
                        .accept(tokio::io::BufReader::with_capacity(TLS_READ_BUFFER, stream))
                        .await
                    {
                        Ok(tls) => {
                            let identity = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|certs| certs.first())
                                .and_then(|cert| crate::tls::certificate_user(cert))
                                .map(ClientIdentity);
                            serve_connection(TokioIo::new(tls), state, identity).await
                        }
                        Err(error) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    },
                    None => serve_connection(TokioIo::new(stream), state, None).await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = connection => {}
            }
        });
    }
}

async fn serve_connection<I>(io: I, state: Arc<ApiServer>, identity: Option<ClientIdentity>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
        if let Some(identity) = &identity {
            request.extensions_mut().insert(identity.clone());
        }
        let state = Arc::clone(&state);
        let gzip = crate::gzip::accepts_gzip(request.headers());
        async move {
            let response = state.handle(request).await;
            Ok::<_, Infallible>(crate::gzip::maybe_compress(gzip, response))
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(error) = builder.serve_connection_with_upgrades(io, service).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}
