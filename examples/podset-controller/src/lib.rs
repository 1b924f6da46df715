//! The flagship of kube-toolkit: a leader-elected controller for a small custom resource,
//! `PodSet` (`spec.replicas` pods made from `spec.template`, `status.readyReplicas`), built
//! from every crate of the workspace:
//!
//! | piece | crate |
//! | --- | --- |
//! | the CRD, the typed `Api<PodSet>` and `Api<Pod>`, watch | kube-rest, kube-apimachinery |
//! | a shared informer factory over PodSets and their pods, with an owner index and listers | kube-cache |
//! | a rate-limited workqueue with several workers and per-key backoff | kube-workqueue |
//! | events on the PodSet for every create, delete and failure | kube-record |
//! | leader election on a Lease, `/healthz` | kube-leader |
//! | waiting for the CRD (`wait::poll_immediate`); the throttle and backoff under kube-rest and kube-workqueue | kube-flowcontrol |
//! | the demo's status line | kube-jsonpath |
//! | the demo's embedded API server and simulated kubelet | kube-testserver |
//!
//! `cargo run -p podset-controller` runs the demo (see the package README); `run` runs one
//! replica against a cluster; `bench` measures reconciles.

pub mod bench;
pub mod controller;
pub mod demo;
pub mod expectations;
pub mod http;
pub mod metrics;
pub mod plan;
pub mod podset;
pub mod reconcile;
pub mod replica;
pub mod target;

pub use controller::{Controller, ControllerOptions};
pub use podset::{PodSet, PodSetSpec, PodSetStatus};
pub use reconcile::{Reconciled, Reconciler};
pub use replica::{Replica, ReplicaOptions};
