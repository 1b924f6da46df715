//! Shared informers (client-go's `SharedIndexInformer`, `sharedProcessor`,
//! `processorListener` and the `informers` factory): one reflector and one indexed store per
//! resource, feeding any number of event handlers.
//!
//! | type | what it does | client-go |
//! | --- | --- | --- |
//! | [`SharedIndexInformer`] | reflector + [`DeltaFifo`](crate::DeltaFifo) + [`Indexer`](crate::Indexer) + handlers | `SharedIndexInformer` |
//! | [`ResourceEventHandler`], [`HandlerFuncs`], [`FilteringHandler`] | handler shapes | `ResourceEventHandler`, `ResourceEventHandlerDetailedFuncs`, `FilteringResourceEventHandler` |
//! | [`EventStream`] | the notifications as an `impl Stream` for async code | — |
//! | [`HandlerRegistration`] | per-handler `has_synced`, buffer counters, removal | `ResourceEventHandlerRegistration` |
//! | [`wait_for_cache_sync`] | waits for informers and handlers to sync | `WaitForCacheSync` |
//! | [`SharedInformerFactory`] | one informer per type, namespace and selectors; start, sync, shutdown | `informers.SharedInformerFactory` |
//!
//! # Where we differ from client-go
//!
//! * A handler's buffer is a `VecDeque` filled under a short lock and drained by the
//!   handler's task (client-go: two unbuffered channels, a pump goroutine and a growing ring
//!   buffer). Adding never waits for the consumer; the buffer shrinks back after a backlog
//!   drains, and its size, high-water mark and drops are reported ([`ListenerStats`]).
//! * A panicking handler has its initial-list notification counted as handled, so its
//!   `has_synced` does not stay false forever (client-go skips `Finished` on a panic).
//! * On stop, the queue is not drained: deltas still queued are left (and logged).
//! * [`SharedIndexInformer::remove_event_handler`] returns whether the handler was
//!   registered instead of an error that is always nil.

mod builder;
mod factory;
mod handler;
mod listener;
mod processor;
mod registration;
#[cfg(feature = "rest")]
mod rest;
mod shared;

pub use builder::SharedIndexInformerBuilder;
pub use factory::{
    FactoryError, InformerKey, InformerScope, ListOptions, ListerWatcherFactory,
    SharedInformerFactory, SharedInformerFactoryBuilder,
};
pub use handler::{FilteringHandler, HandlerFuncs, InformerEvent, ResourceEventHandler};
pub use listener::ListenerStats;
pub use registration::{CacheSync, EventStream, HandlerRegistration, wait_for_cache_sync};
#[cfg(feature = "rest")]
pub use rest::InformerResourceScope;
pub use shared::{InformerError, MINIMUM_RESYNC_PERIOD, SharedIndexInformer};

#[cfg(test)]
mod tests;
