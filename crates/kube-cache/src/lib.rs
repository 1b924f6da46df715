//! kube-cache: client-go's `tools/cache` in Rust, the local cache every controller reads the
//! cluster through.
//!
//! | type | what it does | client-go |
//! | --- | --- | --- |
//! | [`ObjectKey`], [`meta_namespace_key`], [`split_meta_namespace_key`] | store keys `namespace/name` | `ObjectName`, `MetaNamespaceKeyFunc`, `SplitMetaNamespaceKey` |
//! | [`DeletedFinalStateUnknown`], [`ObjectOrTombstone`], [`deletion_handling_meta_namespace_key`] | deletions whose final state was missed | same names |
//! | [`Indexer`] | thread-safe store with named multi-value indices | `Indexer`, `ThreadSafeStore` |
//! | [`DeltaFifo`] | per-key delta lists, relist tombstones, resync, async pop | `DeltaFIFO` |
//! | [`RealFifo`] | every event in order | `RealFIFO` |
//! | [`Lister`], [`NamespacedLister`] | typed reads by label selector, namespace, name, index | `ListAll`, generated listers |
//! | [`Reflector`], [`ReflectorHandle`], [`ReflectorStats`] | list then watch into a [`ReflectorStore`], relists, backoff, resync | `Reflector` |
//! | [`informer`]: `SharedIndexInformer`, handlers, `SharedInformerFactory` | one reflector and store per resource feeding any number of handlers | `SharedIndexInformer`, `informers` factory |
//! | [`ListerWatcher`], `rest` (feature `rest`), `kube` (feature `kube`) | what a reflector lists and watches with; kube-rest's `Api<K>`; kube-rs's `kube::Api<K>` | `ListerWatcher`, `ListWatch` |
//! | [`Transforms`] | edits objects before they are stored (managedFields dropped by default) | `TransformFunc` |
//!
//! Objects are any [`kube_apimachinery::Object`] (k8s-openapi resources and
//! `DynamicObject`), stored and handed out as `Arc<K>`: reading the cache never deep-clones
//! an object. There is no HTTP here: the reflector and informers that feed these types from
//! an API server come in a later part.
//!
//! # Feeding a store from a queue
//!
//! ```
//! use std::sync::Arc;
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_apimachinery::Object;
//! use kube_cache::{DeltaFifo, DeltaType, Indexer, NAMESPACE_INDEX, ProcessError};
//!
//! fn pod(ns: &str, name: &str) -> Pod {
//!     let mut pod = Pod::default();
//!     pod.meta_mut().namespace = Some(ns.into());
//!     pod.meta_mut().name = Some(name.into());
//!     pod
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = Indexer::<Pod>::new();
//! let fifo = DeltaFifo::builder()
//!     .known_objects(store.clone())
//!     .emit_delta_type_replaced(true)
//!     .build();
//!
//! // A first list, then a watch event.
//! fifo.replace([pod("prod", "web-0"), pod("prod", "web-1")], "100");
//! fifo.delete(pod("prod", "web-1"));
//!
//! while !fifo.is_empty() {
//!     fifo.pop(|deltas, _is_in_initial_list| {
//!         for delta in deltas {
//!             match delta.kind {
//!                 DeltaType::Deleted => {
//!                     store.delete_key(&delta.key());
//!                 }
//!                 _ => {
//!                     store.update(Arc::clone(delta.object.object().unwrap()));
//!                 }
//!             }
//!         }
//!         Ok::<(), ProcessError<()>>(())
//!     })
//!     .await
//!     .unwrap();
//! }
//! assert!(fifo.has_synced());
//! assert_eq!(store.list_keys(), ["prod/web-0"]);
//! assert_eq!(store.by_index(NAMESPACE_INDEX, "prod").unwrap().len(), 1);
//! # }
//! ```
//!
//! # Where we differ from client-go
//!
//! * Keys are always [`meta_namespace_key`]: objects are typed, so a key cannot fail to be
//!   computed and the writes return nothing instead of a `KeyError`.
//! * Index functions cannot fail (client-go panics inside the store when one does); they
//!   push borrowed values into [`IndexValues`], so indexing allocates only for new values.
//! * [`Indexer::add_indexers`] indexes the objects already stored (as client-go does since
//!   v1.27) and refuses a taken name with [`IndexError::Conflict`].
//! * [`DeltaFifo::pop`] keeps client-go's removed `ErrRequeue` as
//!   [`ProcessError::Requeue`]; the process function runs under the queue lock, as in
//!   client-go, and waiting for a key is async.
//! * No transformer, no client-go `FIFO` (deprecated in practice), no `RealFIFO` atomic mode.

mod delta;
mod delta_fifo;
mod index;
mod indexer;
pub mod informer;
mod key;
#[cfg(feature = "kube")]
pub mod kube;
mod lister;
mod lister_watcher;
mod queue;
mod real_fifo;
mod reflector;
mod reflector_store;
#[cfg(feature = "rest")]
pub mod rest;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    //! Entry points of crate-private parsers for the cargo-fuzz targets in `fuzz/` (the
    //! `fuzzing` feature). Not a stable API.

    /// Scans a list body fed in `chunks`, as `Api::list` does while it arrives; the number
    /// of items, or the error's message.
    pub fn scan_list(chunks: &[&[u8]]) -> Result<usize, String> {
        crate::wire::fuzz_scan_list(chunks)
    }
}
mod store;
pub mod transform;
#[cfg(any(feature = "rest", feature = "kube"))]
mod wire;

pub use delta::{Delta, DeltaType, Deltas, KeyListerGetter, newest, oldest};
pub use delta_fifo::{DeltaFifo, DeltaFifoBuilder};
pub use index::{IndexError, IndexValues, Indexers, NAMESPACE_INDEX, meta_namespace_index};
pub use indexer::{Indexer, IndexerBuilder};
pub use key::{
    DeletedFinalStateUnknown, KeyError, ObjectKey, ObjectOrTombstone,
    deletion_handling_meta_namespace_key, meta_namespace_key, split_meta_namespace_key,
};
pub use lister::{Lister, NamespacedLister};
pub use lister_watcher::{ListPage, ListWatchError, ListerWatcher};
pub use queue::{PopError, ProcessError};
pub use real_fifo::RealFifo;
pub use reflector::{
    DEFAULT_PAGE_SIZE, MIN_WATCH_TIMEOUT, Reflector, ReflectorBuilder, ReflectorError,
    ReflectorHandle, ReflectorStats, WatchErrorHandler, default_watch_error_handler,
};
pub use reflector_store::ReflectorStore;
pub use transform::{TransformFn, Transforms, strip_managed_fields};

/// The README's examples, compiled as doc tests (they use the `rest` feature).
#[cfg(all(doctest, feature = "rest"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
