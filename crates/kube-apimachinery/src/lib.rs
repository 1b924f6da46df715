//! kube-apimachinery: the shared vocabulary of the kube-toolkit crates.
//!
//! What several crates must agree on lives here, with no HTTP and no Kubernetes-version
//! feature (the role kube-core plays for kube-rs, and apimachinery for client-go):
//!
//! * [`Object`]: the object-metadata trait, implemented for every k8s-openapi resource with
//!   `ObjectMeta` and for [`DynamicObject`];
//! * [`ResourceInfo`]: group, version, kind, plural and [`Scope`] of a resource;
//! * [`ObjectList`] and [`ListMeta`]: a page of a list;
//! * [`WatchEvent`] and [`Bookmark`]: what a watch delivers;
//! * [`Status`]: the API server's error answer, with apimachinery's classifiers
//!   ([`Status::is_not_found`], [`Status::is_gone`]...);
//! * [`ListParams`] and [`WatchParams`]: list and watch options and their query strings;
//! * [`labels`]: label selectors with apimachinery's grammar, validation, canonical form,
//!   matching (over any [`labels::Labels`]: string maps or a JSON object) and error messages,
//!   and the conversion from a `LabelSelector`;
//! * [`fields`]: field selectors (`=`, `==`, `!=`, escaping) with apimachinery's rules;
//! * [`Compact`]: an object kept as typed metadata plus the compact JSON of the rest, for
//!   caches of many objects (about a fifth of the heap of a decoded k8s-openapi `Pod`);
//! * `protobuf` (feature `protobuf`): Kubernetes protobuf read into any serde type (typed,
//!   `Compact`, `serde_json::Value`), as the JSON the Go types would write;
//! * [`channel`]: the `*.channel.k8s.io` WebSocket framing of exec, attach and port
//!   forwarding, for clients and servers, independent of the WebSocket library.
//!
//! ```
//! use kube_apimachinery::{fields, labels, ListParams};
//!
//! let selector = labels::Selector::new().eq("app", "web")?.is_in("tier", ["fe", "be"])?;
//! let fields = fields::Selector::new().ne("status.phase", "Succeeded");
//! let params = ListParams::default().labels(selector).fields(fields).limit(100);
//! let query = params.to_query();
//! assert!(query.contains(&("labelSelector", "app=web,tier in (be,fe)".to_string())));
//! assert!(query.contains(&("fieldSelector", "status.phase!=Succeeded".to_string())));
//! # Ok::<(), labels::Error>(())
//! ```
//!
//! k8s-openapi is a dependency without a version feature: the application picks the
//! Kubernetes version by enabling one `k8s-openapi/v1_XX` (or `latest`) feature itself. The
//! k8s-openapi parts (`Object`, `DynamicObject`, `ResourceInfo::of`, the `LabelSelector`
//! conversion) sit behind the default `k8s-openapi` feature: a server that only handles JSON
//! (kube-testserver) turns it off and needs no Kubernetes version at all.

pub mod channel;
#[cfg(feature = "k8s-openapi")]
pub mod compact;
pub mod fields;
mod gofmt;
pub mod labels;
mod list;
#[cfg(feature = "k8s-openapi")]
mod object;
mod params;
#[cfg(feature = "protobuf")]
pub mod protobuf;
mod resource;
mod status;
mod watch;

#[cfg(feature = "k8s-openapi")]
pub use compact::Compact;
pub use list::{ListMeta, ObjectList};
#[cfg(feature = "k8s-openapi")]
pub use object::{DynamicObject, Object};
pub use params::{ListParams, VersionMatch, WatchParams};
pub use resource::{ResourceInfo, Scope};
pub use status::{Status, StatusCause, StatusDetails, reason_for_code};
pub use watch::{Bookmark, INITIAL_EVENTS_END_ANNOTATION, WatchEvent};

#[cfg(feature = "k8s-openapi")]
pub use k8s_openapi;

/// The README's examples, compiled and run as doc tests.
#[cfg(all(doctest, feature = "k8s-openapi"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
