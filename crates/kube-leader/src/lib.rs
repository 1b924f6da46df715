//! Leader election for Kubernetes controllers, with client-go's rules
//! (`tools/leaderelection` and `resourcelock`).
//!
//! Candidates share a [`Lock`] holding a [`LeaderElectionRecord`]. A [`LeaderElector`]
//! acquires it, calls `on_started_leading` with a [`CancellationToken`], renews every retry
//! period, and cancels the token when it cannot renew within the renew deadline. Others take
//! over only after seeing no change of the record for the lease duration, measured on their own
//! clock from when they *observed* the last change, so clock skew between machines does not
//! matter (only the rate of their clocks).
//!
//! | item | what it is | client-go |
//! | --- | --- | --- |
//! | [`LeaderElector`], [`LeaderElectorBuilder`] | the candidate and its configuration | `LeaderElector`, `LeaderElectionConfig` |
//! | [`Lock`], [`Observed`], [`LockError`] | where the record lives | `resourcelock.Interface` |
//! | [`MemoryStore`], [`MemoryLock`] | an in-memory lock with fault injection | (the fake clientset) |
//! | [`MultiLock`] | two locks during a migration | `MultiLock` |
//! | `rest::LeaseLock`, `rest::ConfigMapLock`, `rest::EndpointsLock` (feature `rest`) | API server locks | `LeaseLock`, `configMapLock`, `endpointsLock` |
//! | [`HealthzAdaptor`] | liveness check for a stuck leader | `HealthzAdaptor` |
//! | [`LeaderMetrics`], `prometheus::PrometheusMetrics` (feature `prometheus`) | metrics | `leader_election_master_status` |
//!
//! ```
//! use std::time::Duration;
//! use kube_leader::{LeaderElector, MemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // With the `rest` feature: kube_leader::rest::LeaseLock::new(Api::namespaced(client, "ns"), "my-controller", "pod-a")
//! let lock = MemoryStore::new("default/my-controller").lock("pod-a");
//! let elector = LeaderElector::builder(lock)
//!     .lease_duration(Duration::from_secs(15))
//!     .renew_deadline(Duration::from_secs(10))
//!     .retry_period(Duration::from_secs(2))
//!     .release_on_cancel(true)
//!     .on_started_leading(|token| async move {
//!         // The leader's work: run until the token is cancelled.
//!         token.cancelled().await;
//!     })
//!     .on_stopped_leading(|| println!("stopped leading"))
//!     .on_new_leader(|identity| println!("the leader is now {identity:?}"))
//!     .build()
//!     .expect("a valid configuration");
//!
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let run = tokio::spawn({
//!     let (elector, cancel) = (elector.clone(), cancel.clone());
//!     async move { elector.run(cancel).await }
//! });
//! while !elector.is_leader() {
//!     tokio::task::yield_now().await;
//! }
//! cancel.cancel(); // stop: the token is cancelled, then the lock released
//! run.await.unwrap().unwrap();
//! assert_eq!(elector.leader(), ""); // released
//! # }
//! ```
//!
//! # Safety
//!
//! With lease duration > renew deadline, at most one candidate is inside its leading section
//! (between `on_started_leading` and the cancellation of its token) at any instant, whatever the
//! faults: pauses, crashes, failing, slow or lost requests. The argument: a leader stops at the
//! latest `renew_deadline` after the start of its last successful renewal; every other candidate
//! saw that write (or a later one) no earlier than the write was applied, which is after that
//! start, and waits `lease_duration` from its observation. The crate's `safety` test checks this
//! on thousands of randomized failovers. [`LeaderElector`] lists where the rules differ from
//! client-go to make the argument hold.
//!
//! Leader work that can stall (a stop-the-world pause, a blocked thread) must still check its
//! token before acting: a paused process does not see its token cancelled until it runs again.

mod config;
mod elector;
mod healthz;
mod lock;
mod memory;
mod metrics;
mod multilock;
mod record;

#[cfg(feature = "kube")]
pub mod kube;
#[cfg(any(feature = "rest", feature = "kube"))]
mod lease;
#[cfg(feature = "prometheus")]
pub mod prometheus;
#[cfg(feature = "rest")]
pub mod rest;

pub use config::{
    ConfigError, DEFAULT_LEASE_DURATION, DEFAULT_RENEW_DEADLINE, DEFAULT_RETRY_PERIOD,
    JITTER_FACTOR, LeaderElectorBuilder,
};
pub use elector::{AlreadyRunning, LeaderElector, RenewOverdue};
pub use healthz::HealthzAdaptor;
pub use lock::{Lock, LockError, Observed};
pub use memory::{
    Fault, FaultInjector, FaultOutcome, MemoryLock, MemoryStore, Operation, OperationCounts,
    WriteEvent, WriteObserver,
};
pub use metrics::{LeaderMetrics, NoopMetrics};
pub use multilock::{MultiLock, UNKNOWN_LEADER, concat_raw_records};
pub use record::{LEADER_ELECTION_RECORD_ANNOTATION, LeaderElectionRecord, RecordError};

pub use tokio_util::sync::CancellationToken;
