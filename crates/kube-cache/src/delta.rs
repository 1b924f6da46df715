//! Deltas: what happened to one object while it waited in a queue.

use std::fmt;
use std::sync::Arc;

use kube_apimachinery::Object;

use crate::key::{DeletedFinalStateUnknown, ObjectOrTombstone, meta_namespace_key};

/// The kind of a change (client-go's `DeltaType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeltaType {
    /// The object was added (a watch `ADDED`).
    Added,
    /// The object was modified (a watch `MODIFIED`).
    Updated,
    /// The object was deleted; the object is its final state, or a tombstone when the
    /// deletion was only inferred from a relist.
    Deleted,
    /// The object was listed by a relist (only with `emit_delta_type_replaced`; `Sync`
    /// otherwise).
    Replaced,
    /// A periodic resync (or, without `emit_delta_type_replaced`, a relist) re-delivered the
    /// object.
    Sync,
}

impl DeltaType {
    /// client-go's name: `Added`, `Updated`, `Deleted`, `Replaced`, `Sync`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeltaType::Added => "Added",
            DeltaType::Updated => "Updated",
            DeltaType::Deleted => "Deleted",
            DeltaType::Replaced => "Replaced",
            DeltaType::Sync => "Sync",
        }
    }
}

impl fmt::Display for DeltaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change and the object's state after it (before it, for a deletion) (client-go's
/// `Delta`).
#[derive(Debug)]
pub struct Delta<K> {
    /// What happened.
    pub kind: DeltaType,
    /// The object, or a tombstone for a deletion inferred by a relist.
    pub object: ObjectOrTombstone<K>,
}

impl<K> Clone for Delta<K> {
    fn clone(&self) -> Self {
        Delta {
            kind: self.kind,
            object: self.object.clone(),
        }
    }
}

impl<K: PartialEq> PartialEq for Delta<K> {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.object == other.object
    }
}

impl<K> Delta<K> {
    /// A delta carrying an object.
    pub fn new(kind: DeltaType, object: impl Into<Arc<K>>) -> Delta<K> {
        Delta {
            kind,
            object: ObjectOrTombstone::Object(object.into()),
        }
    }

    /// A `Deleted` delta carrying a tombstone.
    pub fn tombstone(key: impl Into<String>, last_known: Option<Arc<K>>) -> Delta<K> {
        Delta {
            kind: DeltaType::Deleted,
            object: ObjectOrTombstone::Tombstone(DeletedFinalStateUnknown {
                key: key.into(),
                obj: last_known,
            }),
        }
    }
}

impl<K: Object> Delta<K> {
    /// The key of the object (a tombstone's own key).
    pub fn key(&self) -> String {
        match &self.object {
            ObjectOrTombstone::Object(obj) => meta_namespace_key(obj.as_ref()),
            ObjectOrTombstone::Tombstone(t) => t.key.clone(),
        }
    }
}

/// Every change to one object since it was last popped, oldest first; never empty when
/// handed out by a queue (client-go's `Deltas`).
pub type Deltas<K> = Vec<Delta<K>>;

/// The newest delta (client-go's `Deltas.Newest`).
pub fn newest<K>(deltas: &[Delta<K>]) -> Option<&Delta<K>> {
    deltas.last()
}

/// The oldest delta (client-go's `Deltas.Oldest`).
pub fn oldest<K>(deltas: &[Delta<K>]) -> Option<&Delta<K>> {
    deltas.first()
}

/// Anything that lists the keys it knows and finds an object by key: the store a queue's
/// consumer keeps up to date, consulted by `delete`, `replace` and `resync` (client-go's
/// `KeyListerGetter`). [`Indexer`](crate::Indexer) implements it.
pub trait KeyListerGetter<K>: Send + Sync {
    /// Every key known.
    fn list_keys(&self) -> Vec<String>;
    /// The object under `key`, if known.
    fn get_by_key(&self, key: &str) -> Option<Arc<K>>;
}

impl<K: Object + Send + Sync + 'static> KeyListerGetter<K> for crate::Indexer<K> {
    fn list_keys(&self) -> Vec<String> {
        crate::Indexer::list_keys(self)
    }

    fn get_by_key(&self, key: &str) -> Option<Arc<K>> {
        crate::Indexer::get_by_key(self, key)
    }
}
