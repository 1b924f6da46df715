//! What an informer tells its clients: [`InformerEvent`], the [`ResourceEventHandler`] trait
//! and [`HandlerFuncs`], a handler made of closures (client-go's `ResourceEventHandler`,
//! `ResourceEventHandlerDetailedFuncs`).

use std::fmt;
use std::sync::Arc;

use crate::key::ObjectOrTombstone;

/// One notification of an informer (client-go's `addNotification`, `updateNotification`,
/// `deleteNotification`).
#[derive(Debug)]
pub enum InformerEvent<K> {
    /// An object appeared in the cache, or is in the cache when a handler joins late.
    Added {
        /// The object.
        object: Arc<K>,
        /// Whether the object was part of the initial list (of the informer, or of the cache
        /// as it stood when a late handler joined).
        is_in_initial_list: bool,
    },
    /// An object changed, or was re-delivered by a resync or a relist (then `old` and `new`
    /// have the same resourceVersion).
    Updated {
        /// The state in the cache before.
        old: Arc<K>,
        /// The state in the cache now.
        new: Arc<K>,
    },
    /// An object was deleted: its last known state, or a tombstone when the deletion was
    /// only inferred from a relist.
    Deleted(ObjectOrTombstone<K>),
}

impl<K> Clone for InformerEvent<K> {
    fn clone(&self) -> Self {
        match self {
            InformerEvent::Added {
                object,
                is_in_initial_list,
            } => InformerEvent::Added {
                object: Arc::clone(object),
                is_in_initial_list: *is_in_initial_list,
            },
            InformerEvent::Updated { old, new } => InformerEvent::Updated {
                old: Arc::clone(old),
                new: Arc::clone(new),
            },
            InformerEvent::Deleted(obj) => InformerEvent::Deleted(obj.clone()),
        }
    }
}

impl<K: PartialEq> PartialEq for InformerEvent<K> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                InformerEvent::Added {
                    object: a,
                    is_in_initial_list: ia,
                },
                InformerEvent::Added {
                    object: b,
                    is_in_initial_list: ib,
                },
            ) => a == b && ia == ib,
            (
                InformerEvent::Updated { old: oa, new: na },
                InformerEvent::Updated { old: ob, new: nb },
            ) => oa == ob && na == nb,
            (InformerEvent::Deleted(a), InformerEvent::Deleted(b)) => a == b,
            _ => false,
        }
    }
}

impl<K: 'static> InformerEvent<K> {
    /// The object the event is about: the new state of an update, the last known state of a
    /// deletion (`None` for a tombstone without one).
    pub fn object(&self) -> Option<&Arc<K>> {
        match self {
            InformerEvent::Added { object, .. } => Some(object),
            InformerEvent::Updated { new, .. } => Some(new),
            InformerEvent::Deleted(obj) => obj.object(),
        }
    }

    /// Whether this is an `Added` of the initial list (these count for a handler's
    /// `has_synced`).
    pub(crate) fn is_initial_add(&self) -> bool {
        matches!(
            self,
            InformerEvent::Added {
                is_in_initial_list: true,
                ..
            }
        )
    }

    /// Calls the method of `handler` this event is for.
    pub(crate) fn dispatch(&self, handler: &dyn ResourceEventHandler<K>) {
        match self {
            InformerEvent::Added {
                object,
                is_in_initial_list,
            } => handler.on_add(object, *is_in_initial_list),
            InformerEvent::Updated { old, new } => handler.on_update(old, new),
            InformerEvent::Deleted(obj) => handler.on_delete(obj),
        }
    }
}

/// Receives the notifications of an informer, one at a time and in order for one handler
/// (client-go's `ResourceEventHandler` with `OnAdd(obj, isInInitialList)`).
///
/// The methods run on the handler's own task: a slow handler delays only itself (its
/// notifications wait in its own unbounded buffer). They are synchronous and must return
/// promptly, as in client-go: a method that blocks holds a runtime worker thread. Hand
/// lengthy work to a work queue, or use the informer's event stream from async code.
///
/// A panic in a method is caught and logged; the notification is skipped and the handler
/// receives the next one after one second (client-go's `wait.Until` in `processorListener.run`).
pub trait ResourceEventHandler<K>: Send + Sync + 'static {
    /// An object was added to the cache; `is_in_initial_list` tells whether it came with the
    /// initial list (or the cache's content when the handler joined late).
    fn on_add(&self, obj: &Arc<K>, is_in_initial_list: bool);
    /// An object changed (or a resync or relist re-delivered it: same resourceVersion).
    fn on_update(&self, old: &Arc<K>, new: &Arc<K>);
    /// An object was deleted: its last known state, or a tombstone when the deletion was
    /// only seen by a relist.
    fn on_delete(&self, obj: &ObjectOrTombstone<K>);
}

impl<K, H: ResourceEventHandler<K> + ?Sized> ResourceEventHandler<K> for Arc<H> {
    fn on_add(&self, obj: &Arc<K>, is_in_initial_list: bool) {
        (**self).on_add(obj, is_in_initial_list)
    }
    fn on_update(&self, old: &Arc<K>, new: &Arc<K>) {
        (**self).on_update(old, new)
    }
    fn on_delete(&self, obj: &ObjectOrTombstone<K>) {
        (**self).on_delete(obj)
    }
}

type AddFn<K> = Box<dyn Fn(&Arc<K>, bool) + Send + Sync>;
type UpdateFn<K> = Box<dyn Fn(&Arc<K>, &Arc<K>) + Send + Sync>;
type DeleteFn<K> = Box<dyn Fn(&ObjectOrTombstone<K>) + Send + Sync>;

/// A handler made of closures, each optional (client-go's `ResourceEventHandlerDetailedFuncs`):
/// a notification without a closure is ignored.
///
/// ```
/// use std::sync::Arc;
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_apimachinery::Object;
/// use kube_cache::informer::HandlerFuncs;
///
/// let handler = HandlerFuncs::<Pod>::new()
///     .on_add(|pod, initial| println!("added {} (initial list: {initial})", pod.name()))
///     .on_update(|_old, new| println!("updated {}", new.name()))
///     .on_delete(|obj| println!("deleted {:?}", obj.object().map(|p| p.name().to_owned())));
/// # let _ = handler;
/// ```
pub struct HandlerFuncs<K> {
    add: Option<AddFn<K>>,
    update: Option<UpdateFn<K>>,
    delete: Option<DeleteFn<K>>,
}

impl<K> Default for HandlerFuncs<K> {
    fn default() -> Self {
        HandlerFuncs {
            add: None,
            update: None,
            delete: None,
        }
    }
}

impl<K> fmt::Debug for HandlerFuncs<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerFuncs")
            .field("on_add", &self.add.is_some())
            .field("on_update", &self.update.is_some())
            .field("on_delete", &self.delete.is_some())
            .finish()
    }
}

impl<K> HandlerFuncs<K> {
    /// A handler that ignores everything until closures are set.
    pub fn new() -> HandlerFuncs<K> {
        HandlerFuncs::default()
    }

    /// The closure called for additions: `(object, is_in_initial_list)`.
    pub fn on_add(mut self, f: impl Fn(&Arc<K>, bool) + Send + Sync + 'static) -> Self {
        self.add = Some(Box::new(f));
        self
    }

    /// The closure called for updates: `(old, new)`.
    pub fn on_update(mut self, f: impl Fn(&Arc<K>, &Arc<K>) + Send + Sync + 'static) -> Self {
        self.update = Some(Box::new(f));
        self
    }

    /// The closure called for deletions.
    pub fn on_delete(mut self, f: impl Fn(&ObjectOrTombstone<K>) + Send + Sync + 'static) -> Self {
        self.delete = Some(Box::new(f));
        self
    }
}

impl<K: Send + Sync + 'static> ResourceEventHandler<K> for HandlerFuncs<K> {
    fn on_add(&self, obj: &Arc<K>, is_in_initial_list: bool) {
        if let Some(f) = &self.add {
            f(obj, is_in_initial_list);
        }
    }
    fn on_update(&self, old: &Arc<K>, new: &Arc<K>) {
        if let Some(f) = &self.update {
            f(old, new);
        }
    }
    fn on_delete(&self, obj: &ObjectOrTombstone<K>) {
        if let Some(f) = &self.delete {
            f(obj);
        }
    }
}

/// Passes to an inner handler only the objects `filter` accepts, turning updates into adds
/// and deletes as objects enter and leave the filter (client-go's
/// `FilteringResourceEventHandler`).
///
/// * add: delivered if the object passes;
/// * update: both pass → update; only the new passes → add (not in the initial list); only the
///   old passes → delete of the old; neither → nothing;
/// * delete: delivered if the last known state passes (a tombstone without state is
///   delivered: whether it passed cannot be known).
pub struct FilteringHandler<K, F, H> {
    filter: F,
    handler: H,
    _kind: std::marker::PhantomData<fn(K)>,
}

impl<K, F, H> FilteringHandler<K, F, H>
where
    F: Fn(&K) -> bool + Send + Sync + 'static,
    H: ResourceEventHandler<K>,
{
    /// Wraps `handler` behind `filter`.
    pub fn new(filter: F, handler: H) -> Self {
        FilteringHandler {
            filter,
            handler,
            _kind: std::marker::PhantomData,
        }
    }
}

impl<K, F, H> ResourceEventHandler<K> for FilteringHandler<K, F, H>
where
    K: 'static,
    F: Fn(&K) -> bool + Send + Sync + 'static,
    H: ResourceEventHandler<K>,
{
    fn on_add(&self, obj: &Arc<K>, is_in_initial_list: bool) {
        if (self.filter)(obj) {
            self.handler.on_add(obj, is_in_initial_list);
        }
    }
    fn on_update(&self, old: &Arc<K>, new: &Arc<K>) {
        match ((self.filter)(old), (self.filter)(new)) {
            (true, true) => self.handler.on_update(old, new),
            (false, true) => self.handler.on_add(new, false),
            (true, false) => self
                .handler
                .on_delete(&ObjectOrTombstone::Object(Arc::clone(old))),
            (false, false) => {}
        }
    }
    fn on_delete(&self, obj: &ObjectOrTombstone<K>) {
        match obj.object() {
            Some(last) if !(self.filter)(last) => {}
            _ => self.handler.on_delete(obj),
        }
    }
}
