//! Locks on the API server, through kube-rest (feature `rest`).
//!
//! * [`LeaseLock`]: a `coordination.k8s.io/v1` `Lease`, the lock to use.
//! * [`ConfigMapLock`] and [`EndpointsLock`]: the record as JSON in the
//!   `control-plane.alpha.kubernetes.io/leader` annotation of a `ConfigMap` or `Endpoints`, as
//!   components before Kubernetes 1.28 wrote it; for reading old elections and migrating from
//!   them with [`MultiLock`](crate::MultiLock) (client-go removed these locks in 1.28).
//!
//! Each keeps the object it read as the version, so an update keeps the object's other fields
//! and carries its `resourceVersion`: a concurrent write makes it fail with a conflict.
//!
//! Give the client a request timeout shorter than the renew deadline (client-go uses
//! `max(1 s, renew deadline / 2)`), so one hung request cannot cost the leadership by itself;
//! the elector abandons a request at the deadline in any case.

mod annotation;
mod lease;

pub use crate::lease::{lease_spec_to_record, record_to_lease_spec};
pub use annotation::{AnnotationLock, ConfigMapLock, EndpointsLock};
pub use lease::LeaseLock;

use crate::lock::LockError;

fn api_error(lock: &str, source: kube_rest::Error) -> LockError {
    LockError::Api {
        lock: lock.to_string(),
        source,
    }
}

fn describe(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}
