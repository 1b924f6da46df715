//! kube-rest: client-go's `clientcmd`, `rest` and typed clients in async Rust.
//!
//! * [`config`]: load a [`Config`] from kubeconfig files (with `$KUBECONFIG` merging, relative
//!   paths and overrides) or from the in-cluster service account.
//! * [`Client`]: a pooled HTTPS client (rustls with ring, HTTP/2 when offered) with bearer
//!   tokens (rotating token files), client certificates, basic auth, client-side throttling
//!   (QPS 5, burst 10 by default) and bounded `Retry-After` retries.
//! * [`Api`]: typed get, list, create, replace, patch, delete and watch over k8s-openapi types,
//!   and over [`DynamicObject`]s of any resource ([`Api::dynamic`]).
//! * [`discovery`]: server version, groups and resources (aggregated or legacy discovery), an
//!   on-disk [`DiscoveryCache`], and resolution from kinds or kubectl-style names.
//! * [`watch`]: incremental decoding of watch streams into [`WatchEvent`]s.
//! * [`logs`]: container logs, whole or followed ([`LogStream`](logs::LogStream) is an
//!   `AsyncBufRead`, [`Api::log_lines`] a `Stream`); [`exec`]: exec and attach with stdin,
//!   stdout, stderr, a terminal and exit codes, over the WebSocket channel protocols of
//!   [`channel`] and the upgrades of [`upgrade`].
//! * [`labels`] and [`fields`]: apimachinery's label and field selectors (kube-apimachinery's,
//!   re-exported; [`Selector`] is the label selector); `certs`: a generated CA and PEM
//!   helpers.
//!
//! Errors are one [`Error`] enum; API failures carry the server's decoded [`Status`] and answer
//! [`Error::is_not_found`], [`Error::is_conflict`] and friends.
//!
//! The vocabulary shared with the other kube-toolkit crates ([`ResourceInfo`],
//! [`DynamicObject`], [`ObjectList`], [`WatchEvent`], [`Status`], [`ListParams`],
//! [`WatchParams`], the [`Object`] metadata trait) comes from [`kube_apimachinery`] and is
//! re-exported here.
//!
//! Features: `ws` (default) adds exec, attach and WebSocket upgrades ([`exec`], [`channel`],
//! [`upgrade`]); `certs` adds the certificate helpers of `certs`. The Kubernetes version
//! is the application's choice: enable one `k8s-openapi/v1_XX` feature (or `latest`) in the
//! application, or kube-rest's `k8s-latest` convenience feature; a library depending on
//! kube-rest must enable neither.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_rest::{Api, Client, ListParams};
//!
//! # async fn run() -> Result<(), kube_rest::Error> {
//! let client = Client::try_default()?; // $KUBECONFIG, ~/.kube/config or in-cluster
//! let pods: Api<Pod> = Api::default_namespaced(client);
//! for pod in pods.list_all(&ListParams::default().labels("app=web")).await? {
//!     println!("{}", pod.metadata.name.unwrap_or_default());
//! }
//! match pods.get("missing").await {
//!     Err(e) if e.is_not_found() => println!("no such pod"),
//!     other => println!("{:?}", other.map(|p| p.metadata.name)),
//! }
//! # Ok(())
//! # }
//! ```

pub mod api;
mod auth;
mod body;
#[cfg(feature = "certs")]
pub mod certs;
#[cfg(feature = "ws")]
pub mod channel;
pub mod client;
pub mod config;
pub mod discovery;
pub mod error;
#[cfg(feature = "ws")]
pub mod exec;
#[cfg(test)]
mod fuzz_tests;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gzip;
pub mod kubeconfig;
pub mod logs;
pub mod params;
mod proxy;
mod proxy_env;
pub use proxy::ProxyUrl;
pub mod tls;
#[cfg(feature = "ws")]
pub mod upgrade;
pub mod watch;

pub use api::{Api, ApiResource};
pub use body::Body;
#[cfg(feature = "ws")]
pub use client::UpgradeConnection;
pub use client::{Client, ClientBuilder, RequestBuilder};
pub use config::{Config, Credentials, KubeconfigLoader, Overrides, Source};
pub use discovery::{DiscoveredResource, Discovery, DiscoveryCache, ServerVersion};
pub use error::{ConfigError, Error};
pub use kube_apimachinery::labels::{
    Error as SelectorError, Labels, Operator, Requirement, Selector,
};
pub use kube_apimachinery::{
    Bookmark, DynamicObject, ListMeta, ListParams, Object, ObjectList, ResourceInfo, Scope, Status,
    StatusCause, StatusDetails, VersionMatch, WatchEvent, WatchParams,
};
pub use kube_apimachinery::{fields, labels};
pub use kubeconfig::Kubeconfig;
pub use params::{DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
pub use watch::WatchStream;

pub use k8s_openapi;
pub use kube_apimachinery;

/// The README's example, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
