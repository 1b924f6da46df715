//! Typed listers over an [`Indexer`] (client-go's `ListAll`, `ListAllByNamespace` and the
//! generated listers).

use std::sync::Arc;

use kube_apimachinery::Object;
use kube_apimachinery::labels::Selector;

use crate::index::{IndexError, NAMESPACE_INDEX};
use crate::indexer::Indexer;

/// Reads an [`Indexer`] by label selector, namespace and name; every object comes back as the
/// stored `Arc<K>`, never a copy (client-go's generated `PodLister` and friends).
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_apimachinery::Object;
/// use kube_apimachinery::labels::Selector;
/// use kube_cache::{Indexer, Lister};
///
/// fn pod(ns: &str, name: &str, app: &str) -> Pod {
///     let mut pod = Pod::default();
///     pod.meta_mut().namespace = Some(ns.into());
///     pod.meta_mut().name = Some(name.into());
///     pod.meta_mut().labels = Some([("app".to_string(), app.to_string())].into());
///     pod
/// }
///
/// let indexer = Indexer::new();
/// indexer.add(pod("prod", "web-0", "web"));
/// indexer.add(pod("prod", "db-0", "db"));
/// indexer.add(pod("dev", "web-0", "web"));
/// let pods = Lister::new(indexer);
///
/// let web = Selector::parse("app=web").unwrap();
/// assert_eq!(pods.list(&web).len(), 2);
/// assert_eq!(pods.list(&Selector::everything()).len(), 3);
/// assert_eq!(pods.namespaced("prod").list(&web).len(), 1);
/// assert_eq!(pods.get("prod", "db-0").unwrap().name(), "db-0");
/// assert!(pods.namespaced("dev").get("db-0").is_none());
/// ```
pub struct Lister<K> {
    indexer: Indexer<K>,
}

impl<K> Clone for Lister<K> {
    fn clone(&self) -> Self {
        Lister {
            indexer: self.indexer.clone(),
        }
    }
}

impl<K> std::fmt::Debug for Lister<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lister").finish_non_exhaustive()
    }
}

/// A [`Lister`] limited to one namespace (client-go's `PodNamespaceLister`).
pub struct NamespacedLister<K> {
    indexer: Indexer<K>,
    namespace: String,
}

impl<K> Clone for NamespacedLister<K> {
    fn clone(&self) -> Self {
        NamespacedLister {
            indexer: self.indexer.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

impl<K> std::fmt::Debug for NamespacedLister<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespacedLister")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

fn key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}/{name}")
    }
}

/// Keeps the objects whose labels match (all of them, without looking, for an empty
/// selector: client-go's fast path).
fn select<K: Object>(objects: Vec<Arc<K>>, selector: &Selector) -> Vec<Arc<K>> {
    if selector.is_empty() {
        return objects;
    }
    objects
        .into_iter()
        .filter(|obj| selector.matches(obj.labels()))
        .collect()
}

impl<K: Object + Send + Sync + 'static> Lister<K> {
    /// A lister over this indexer (which it shares).
    pub fn new(indexer: Indexer<K>) -> Lister<K> {
        Lister { indexer }
    }

    /// The indexer read.
    pub fn indexer(&self) -> &Indexer<K> {
        &self.indexer
    }

    /// Every object whose labels match, in every namespace (client-go's `ListAll`).
    pub fn list(&self, selector: &Selector) -> Vec<Arc<K>> {
        if selector.is_empty() {
            return self.indexer.list();
        }
        let mut out = Vec::new();
        self.indexer.for_each(|obj| {
            if selector.matches(obj.labels()) {
                out.push(Arc::clone(obj));
            }
        });
        out
    }

    /// The object `namespace/name`; `""` as namespace for a cluster-scoped object.
    /// client-go answers a NotFound error where this answers `None`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.indexer.get_by_key(&key(namespace, name))
    }

    /// The objects indexed under `value` by index `index_name`.
    pub fn by_index(&self, index_name: &str, value: &str) -> Result<Vec<Arc<K>>, IndexError> {
        self.indexer.by_index(index_name, value)
    }

    /// A view of one namespace; `""` means every namespace for `list` (client-go's
    /// `NamespaceAll`) and cluster-scoped objects for `get`.
    pub fn namespaced(&self, namespace: impl Into<String>) -> NamespacedLister<K> {
        NamespacedLister {
            indexer: self.indexer.clone(),
            namespace: namespace.into(),
        }
    }
}

impl<K: Object + Send + Sync + 'static> NamespacedLister<K> {
    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The objects of the namespace whose labels match, through the namespace index, or by
    /// scanning every object when the indexer has none (client-go's `ListAllByNamespace`).
    pub fn list(&self, selector: &Selector) -> Vec<Arc<K>> {
        if self.namespace.is_empty() {
            return Lister::new(self.indexer.clone()).list(selector);
        }
        match self.indexer.by_index(NAMESPACE_INDEX, &self.namespace) {
            Ok(objects) => select(objects, selector),
            Err(_) => {
                tracing::debug!(
                    namespace = %self.namespace,
                    "no namespace index: listing by scanning every object"
                );
                let mut out = Vec::new();
                self.indexer.for_each(|obj| {
                    if obj.namespace().unwrap_or("") == self.namespace
                        && selector.matches(obj.labels())
                    {
                        out.push(Arc::clone(obj));
                    }
                });
                out
            }
        }
    }

    /// The object `name` of the namespace.
    pub fn get(&self, name: &str) -> Option<Arc<K>> {
        self.indexer.get_by_key(&key(&self.namespace, name))
    }
}
