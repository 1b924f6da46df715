//! [`ReflectorStore`]: where a reflector writes what it lists and watches (client-go's
//! `cache.ReflectorStore`: `Add`, `Update`, `Delete`, `Replace`, `Resync`).
//!
//! Implemented by [`DeltaFifo`] and [`RealFifo`] (the informer path) and by [`Indexer`]
//! (a plain cache with no handlers).

use std::sync::Arc;

use kube_apimachinery::Object;

use crate::{DeltaFifo, Indexer, RealFifo};

/// The writes a reflector makes. Each takes the object already transformed.
pub trait ReflectorStore<K>: Send + Sync + 'static {
    /// A watch `ADDED` event.
    fn add(&self, obj: Arc<K>);
    /// A watch `MODIFIED` event.
    fn update(&self, obj: Arc<K>);
    /// A watch `DELETED` event.
    fn delete(&self, obj: Arc<K>);
    /// A full list: the store's content becomes `list` (missing keys are deleted).
    fn replace(&self, list: Vec<Arc<K>>, resource_version: &str);
    /// A periodic resync (client-go's `ShouldResync` then `Resync`).
    fn resync(&self);
    /// A bookmark or a watch event moved the last seen resourceVersion
    /// (client-go's `ResourceVersionUpdater`); most stores ignore it.
    fn update_resource_version(&self, _resource_version: &str) {}
}

impl<K: Object + Send + Sync + 'static> ReflectorStore<K> for DeltaFifo<K> {
    fn add(&self, obj: Arc<K>) {
        DeltaFifo::add(self, obj);
    }
    fn update(&self, obj: Arc<K>) {
        DeltaFifo::update(self, obj);
    }
    fn delete(&self, obj: Arc<K>) {
        DeltaFifo::delete(self, obj);
    }
    fn replace(&self, list: Vec<Arc<K>>, resource_version: &str) {
        DeltaFifo::replace(self, list, resource_version);
    }
    fn resync(&self) {
        DeltaFifo::resync(self);
    }
}

impl<K: Object + Send + Sync + 'static> ReflectorStore<K> for RealFifo<K> {
    fn add(&self, obj: Arc<K>) {
        RealFifo::add(self, obj);
    }
    fn update(&self, obj: Arc<K>) {
        RealFifo::update(self, obj);
    }
    fn delete(&self, obj: Arc<K>) {
        RealFifo::delete(self, obj);
    }
    fn replace(&self, list: Vec<Arc<K>>, resource_version: &str) {
        RealFifo::replace(self, list, resource_version);
    }
    fn resync(&self) {
        RealFifo::resync(self);
    }
}

impl<K: Object + Send + Sync + 'static> ReflectorStore<K> for Indexer<K> {
    fn add(&self, obj: Arc<K>) {
        Indexer::add(self, obj);
    }
    fn update(&self, obj: Arc<K>) {
        Indexer::update(self, obj);
    }
    fn delete(&self, obj: Arc<K>) {
        Indexer::delete(self, obj);
    }
    fn replace(&self, list: Vec<Arc<K>>, resource_version: &str) {
        Indexer::replace(self, list, resource_version);
    }
    fn resync(&self) {
        Indexer::resync(self);
    }
    fn update_resource_version(&self, resource_version: &str) {
        Indexer::bookmark(self, resource_version);
    }
}
