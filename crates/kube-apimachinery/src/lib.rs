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
//! * [`ListParams`] and [`WatchParams`]: list and watch options and their query strings.
//!
//! k8s-openapi is a dependency without a version feature: the application picks the
//! Kubernetes version by enabling one `k8s-openapi/v1_XX` (or `latest`) feature itself.

pub mod channel;
pub mod fields;
mod gofmt;
pub mod labels;
mod list;
mod object;
mod params;
mod resource;
mod status;
mod watch;

pub use list::{ListMeta, ObjectList};
pub use object::{DynamicObject, Object};
pub use params::{ListParams, VersionMatch, WatchParams};
pub use resource::{ResourceInfo, Scope};
pub use status::{Status, StatusCause, StatusDetails, reason_for_code};
pub use watch::{Bookmark, INITIAL_EVENTS_END_ANNOTATION, WatchEvent};

pub use k8s_openapi;
