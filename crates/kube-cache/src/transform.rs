//! Transforms applied to every object before a reflector stores it (client-go's
//! `TransformFunc` and `TransformStripManagedFields`).
//!
//! The objects a cache keeps live as long as the cache: anything a controller never reads is
//! memory wasted for the whole life of the process. `metadata.managedFields` is the usual
//! suspect (about a third of a typical pod), so a [`Reflector`](crate::Reflector) drops it by
//! default; [`Transforms`] holds that switch and the user's own transforms.

use std::fmt;
use std::sync::Arc;

use kube_apimachinery::Object;

/// A transform: edits an object in place before it is stored (client-go's `TransformFunc`,
/// which cannot fail here: a transform that cannot apply leaves the object as it is).
pub type TransformFn<K> = Arc<dyn Fn(&mut K) + Send + Sync>;

/// Clears `metadata.managedFields` (client-go's `TransformStripManagedFields`).
pub fn strip_managed_fields<K: Object>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// The transforms of a reflector, applied in order: first the managedFields drop (on by
/// default), then the user's transforms in the order they were added.
pub struct Transforms<K> {
    drop_managed_fields: bool,
    user: Vec<TransformFn<K>>,
}

impl<K> Clone for Transforms<K> {
    fn clone(&self) -> Self {
        Transforms {
            drop_managed_fields: self.drop_managed_fields,
            user: self.user.clone(),
        }
    }
}

impl<K> fmt::Debug for Transforms<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transforms")
            .field("drop_managed_fields", &self.drop_managed_fields)
            .field("user", &self.user.len())
            .finish()
    }
}

impl<K> Default for Transforms<K> {
    fn default() -> Self {
        Transforms {
            drop_managed_fields: true,
            user: Vec::new(),
        }
    }
}

impl<K: Object> Transforms<K> {
    /// The default: managedFields dropped, no user transform.
    pub fn new() -> Self {
        Transforms::default()
    }

    /// Turns the managedFields drop on or off.
    pub fn drop_managed_fields(mut self, on: bool) -> Self {
        self.drop_managed_fields = on;
        self
    }

    /// Whether managedFields are dropped.
    pub fn drops_managed_fields(&self) -> bool {
        self.drop_managed_fields
    }

    /// Adds a transform, run after the ones already added.
    pub fn push(mut self, transform: impl Fn(&mut K) + Send + Sync + 'static) -> Self {
        self.user.push(Arc::new(transform));
        self
    }

    /// Adds a shared transform.
    pub fn push_shared(mut self, transform: TransformFn<K>) -> Self {
        self.user.push(transform);
        self
    }

    /// Whether applying changes nothing (no drop, no user transform).
    pub fn is_identity(&self) -> bool {
        !self.drop_managed_fields && self.user.is_empty()
    }

    /// Applies every transform to `object`.
    pub fn apply(&self, object: &mut K) {
        if self.drop_managed_fields {
            strip_managed_fields(object);
        }
        for transform in &self.user {
            transform(object);
        }
    }

    /// Applies every transform and shares the result.
    pub fn apply_owned(&self, mut object: K) -> Arc<K> {
        self.apply(&mut object);
        Arc::new(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    fn pod() -> Pod {
        let mut pod = Pod::default();
        pod.meta_mut().name = Some("a".into());
        pod.meta_mut().managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        pod
    }

    #[test]
    fn drops_managed_fields_by_default_then_runs_user_transforms_in_order() {
        let t = Transforms::<Pod>::new()
            .push(|p| p.meta_mut().name.as_mut().unwrap().push('1'))
            .push(|p| p.meta_mut().name.as_mut().unwrap().push('2'));
        let out = t.apply_owned(pod());
        assert!(out.meta().managed_fields.is_none());
        assert_eq!(out.name(), "a12");
        assert!(!t.is_identity());
    }

    #[test]
    fn the_drop_can_be_turned_off() {
        let t = Transforms::<Pod>::new().drop_managed_fields(false);
        assert!(t.is_identity());
        let out = t.apply_owned(pod());
        assert_eq!(out.meta().managed_fields.as_ref().map(Vec::len), Some(1));
    }
}
