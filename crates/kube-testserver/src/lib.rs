//! An in-memory Kubernetes API server with the real HTTP semantics, for tests and demos.
//!
//! client-go has a fake clientset without HTTP and kube-rs has hand-written mock services;
//! testing a controller against real list/watch semantics otherwise needs a real cluster.
//! `kube-testserver` is a real HTTP(S) server, in process or as a binary, that answers like
//! kube-apiserver v1.24 (recorded answers of a real server are replayed in its tests):
//!
//! * HTTP/1.1 and HTTP/2, plain or TLS with a generated CA, bearer-token authentication
//!   (401 for a bad token, 403 without one), and a ready kubeconfig;
//! * namespaces, nodes, pods, services, endpoints, configmaps, secrets, serviceaccounts,
//!   core/v1 and events.k8s.io/v1 events, leases, deployments, replicasets (both with the
//!   `scale` subresource), jobs, cronjobs, and CustomResourceDefinitions that serve new
//!   resources at runtime;
//! * Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) for built-in kinds, as kubectl
//!   and client-go's typed clients send it: see [`protobuf`];
//! * object semantics: uid, creationTimestamp, one global resourceVersion counter, generation,
//!   generateName, name validation, 404/409/422 `Status` errors with the real messages,
//!   optimistic concurrency, the status subresource, JSON/merge/strategic-merge/apply patches,
//!   delete preconditions, finalizers and deletecollection;
//! * list with label and field selectors and consistent `limit`/`continue` paging;
//! * watch with resourceVersion semantics, 410 Expired, selector transitions, bookmarks,
//!   `sendInitialEvents`, timeouts and single-object watches;
//! * `pods/exec` and `pods/attach` over the WebSocket remote-command protocols (v5 down to
//!   `channel.k8s.io`, framed by [`kube_apimachinery::channel`]), exec running a tiny built-in
//!   shell (`echo`, `cat`, `env`, `hostname`, `date`, `sleep`, `exit`, `true`, `false`, `pwd`,
//!   `stty size` and `sh -c` scripts with `;`, `&&`, `||`, quoting and `$VAR` expansion, or an
//!   interactive `sh` with a TTY), attach streaming the container's main process;
//! * label and field selectors parsed and matched by [`kube_apimachinery::labels`] and
//!   [`kube_apimachinery::fields`] (apimachinery's rules; a bad selector gets the API server's
//!   400 message);
//! * discovery documents; fault injection ([`TestServer::faults`]: failures, latency, stalled
//!   responses; closing all or some watches, compaction, listener and server restarts) and
//!   seeded random schedules of those faults ([`schedule`], or the binary's `--fault-seed`);
//! * a simulated kubelet, on by default ([`TestServerBuilder::simulated_kubelet`]): pods are
//!   bound to a node and go Running and Ready after a short delay, a new image restarts the
//!   container (`restartCount`, `lastState.terminated`), and a deleted pod is Terminating until
//!   its containers stopped, within its grace period;
//! * pod logs (`pods/{name}/log`): every container writes the seed's
//!   `while :; do date +%s; sleep 1; done`, with `follow`, `tailLines`, `sinceSeconds`,
//!   `sinceTime`, `timestamps`, `previous`, `limitBytes` and `container`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), kube_testserver::Error> {
//! use kube_testserver::TestServer;
//!
//! let server = TestServer::builder().start().await?; // HTTPS on a free port
//! let dir = std::env::temp_dir().join(format!("kts-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! server.write_kubeconfig(dir.join("kubeconfig"))?; // point kubectl or kube-rs here
//! assert!(server.url().starts_with("https://"));
//! # Ok(()) }
//! ```
//!
//! # Public API
//!
//! What a test needs: [`TestServer`] and its [`TestServerBuilder`] (TLS or plain HTTP,
//! tokens, client certificates, the simulated kubelet's switches, watch settings), the
//! kubeconfig ([`TestServer::write_kubeconfig`]), [`Faults`] and [`StallEnd`], the fault
//! [`schedule`]s, the [`ClientCertificate`] of
//! client-certificate authentication, and the constants [`NODE_NAME`],
//! [`DEFAULT_KUBELET_DELAY`] and [`CLIENT_CERT_USER`]. Everything else (storage, patching,
//! the shell, the registry of resources...) is internal: tests talk to the server over HTTP,
//! as a client does, and can read [`TestServer::resource_version`],
//! [`TestServer::object_count`] and [`TestServer::watch_count`] for assertions. The
//! [`protobuf`] module encodes and decodes Kubernetes protobuf bodies and watch frames, for
//! tests that speak it as client-go's typed clients do.
//!
//! # Where it differs from kube-apiserver
//!
//! * No `managedFields`; apply patches are merged like strategic merge patches (no field
//!   ownership or conflicts); strategic merge knows the merge keys of common built-in lists.
//! * Defaulting and validation cover what clients commonly read back (pod defaults and
//!   Pending status, names, pod containers), not every rule of every kind.
//! * Deleting a namespace deletes its content and then the namespace, as the namespace
//!   controller of a full cluster does (the recorded server had no controller-manager).
//! * Everyone authenticated may do everything (no RBAC).
//! * Watches that fall more than 65,536 events behind are closed (the client re-watches).
//! * The watch cache and etcd compaction are emulated ([`TestServerBuilder::watch_cache`],
//!   [`TestServerBuilder::compaction_interval`]): a watch from before a resource's window, or
//!   a list or continue token from before the last compaction, gets 410 Gone, and a resource
//!   that saw no change since the compacted revision has its watch cache relisted (its open
//!   watches end). Lists at an exact resourceVersion read the history, not cache snapshots.
//! * Exec and attach speak WebSocket, not SPDY (port forwarding speaks both), and exec runs a
//!   built-in shell rather than the container image (no pipes, redirections or files); a
//!   missing executable gets containerd's `InternalError` status.
//! * Port forwarding reaches simulated listeners, not processes: nginx's welcome page on port
//!   80 of an `nginx…` image, an echo on the other declared TCP ports, or a local address a
//!   test routed with [`TestServer::route_pod_port`].
//! * Containers run nothing: their logs are computed from their start time (one line per
//!   [`log_interval`](TestServerBuilder::log_interval)), they exit on SIGTERM (code 143) when
//!   their pod is deleted, and the kubelet reports the phase as a v1.24 kubelet does (it stays
//!   Running until the pod is removed).
//! * With the kubelet off ([`simulated_kubelet(None)`](TestServerBuilder::simulated_kubelet)),
//!   pods stay Pending, and a deleted pod bound to a node stays Terminating, as on a cluster
//!   whose kubelet is gone (`gracePeriodSeconds=0` removes it).

mod api;
mod crd;
mod discovery;
mod exec;
mod faults;
#[cfg(test)]
mod fuzz_tests;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gojson;
mod gzip;
mod kubeconfig;
mod kubelet;
mod list_body;
mod logs;
mod object;
mod openapi;
mod patch;
mod pathkey;
mod pod_connect;
mod portforward;
pub mod protobuf;
mod registry;
mod remotecommand;
mod request;
mod scale;
pub mod schedule;
mod selector;
mod server;
mod shell;
mod spdy;
mod stall;
mod status;
mod store;
mod stored;
mod table;
mod tls;
mod views;
mod watch;
mod watchcache;

use std::net::SocketAddr;

pub use faults::{Faults, StallEnd};
pub use kubelet::NODE_NAME;
pub use server::{
    CLIENT_CERT_USER, DEFAULT_HISTORY_LIMIT, DEFAULT_KUBELET_DELAY, TestServer, TestServerBuilder,
};
pub use tls::ClientCertificate;
pub use watchcache::{DEFAULT_COMPACTION_INTERVAL, WatchCacheSize};

/// Why a server could not start or a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation or TLS configuration failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// An I/O error (writing the kubeconfig, reading the local address).
    #[error(transparent)]
    Io(std::io::Error),
}
