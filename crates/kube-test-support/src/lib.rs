//! Shared helpers of the kube-toolkit crates' own tests. Not published: each crate lists it as
//! a path-only dev-dependency, which `cargo package` leaves out.
//!
//! * [`mutate`]: mutations of valid inputs for the parsers' property tests, and a hang
//!   detector.
//! * `cluster` (feature `cluster`): the server of the HTTP tests: a kube-testserver of their
//!   own, or the cluster named by `KUBE_TOOLKIT_TEST_KUBECONFIG`.
//!
//! Test code only: a helper that cannot set up the test's server, client or namespace panics
//! with the reason, which fails the test that called it (the `// ok:` notes say so at each).

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod mutate;
