//! Index functions (client-go's `IndexFunc`, `Indexers`, `MetaNamespaceIndexFunc`).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use kube_apimachinery::Object;

/// The name of the namespace index every [`Indexer`](crate::Indexer) has unless built without
/// it (client-go's `NamespaceIndex`).
pub const NAMESPACE_INDEX: &str = "namespace";

/// An index name was unknown or already taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// No index has this name (client-go's `Index with name %s does not exist`).
    #[error("Index with name {name} does not exist")]
    NoSuchIndex {
        /// The name asked for.
        name: String,
    },
    /// An index of this name exists already (client-go's `indexer conflict`).
    #[error("indexer conflict: {names:?}")]
    Conflict {
        /// The names given twice.
        names: Vec<String>,
    },
}

/// The values an index function gives for one object; they may borrow from the object, so
/// computing a label or namespace index allocates nothing.
///
/// ```
/// use kube_cache::IndexValues;
///
/// let mut values = IndexValues::new();
/// values.push("a");
/// values.push(String::from("b"));
/// values.extend(["c"]);
/// assert_eq!(values.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexValues<'a> {
    first: Option<Cow<'a, str>>,
    rest: Vec<Cow<'a, str>>,
}

impl<'a> IndexValues<'a> {
    /// No values.
    pub fn new() -> IndexValues<'a> {
        IndexValues::default()
    }

    /// Adds a value.
    pub fn push(&mut self, value: impl Into<Cow<'a, str>>) {
        if self.first.is_none() {
            self.first = Some(value.into());
        } else {
            self.rest.push(value.into());
        }
    }

    /// Adds values.
    pub fn extend<I, V>(&mut self, values: I)
    where
        I: IntoIterator<Item = V>,
        V: Into<Cow<'a, str>>,
    {
        for value in values {
            self.push(value);
        }
    }

    /// How many values (duplicates included).
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The values, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.first
            .iter()
            .chain(self.rest.iter())
            .map(|v| v.as_ref())
    }
}

/// A named index function: given an object, the values it is indexed under (none, one or
/// several).
pub(crate) type IndexFn<K> = Arc<dyn for<'a> Fn(&'a K, &mut IndexValues<'a>) + Send + Sync>;

/// A set of named index functions (client-go's `Indexers`), given to
/// [`IndexerBuilder::indexers`](crate::IndexerBuilder::indexers) or
/// [`Indexer::add_indexers`](crate::Indexer::add_indexers).
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_apimachinery::Object;
/// use kube_cache::Indexers;
///
/// let indexers = Indexers::<Pod>::new()
///     .with("app", |pod, out| out.extend(pod.labels().get("app")))
///     .with("owner", |pod, out| {
///         out.extend(pod.owner_references().iter().map(|r| r.uid.as_str()))
///     });
/// assert_eq!(indexers.names().collect::<Vec<_>>(), ["app", "owner"]);
/// ```
pub struct Indexers<K> {
    pub(crate) entries: Vec<(String, IndexFn<K>)>,
}

impl<K> Default for Indexers<K> {
    fn default() -> Self {
        Indexers {
            entries: Vec::new(),
        }
    }
}

impl<K> Clone for Indexers<K> {
    fn clone(&self) -> Self {
        Indexers {
            entries: self.entries.clone(),
        }
    }
}

impl<K> fmt::Debug for Indexers<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl<K> Indexers<K> {
    /// No index functions.
    pub fn new() -> Indexers<K> {
        Indexers::default()
    }

    /// Adds a named index function. A name given twice is refused when the indexers are
    /// installed.
    pub fn with<F>(mut self, name: impl Into<String>, index: F) -> Indexers<K>
    where
        F: for<'a> Fn(&'a K, &mut IndexValues<'a>) + Send + Sync + 'static,
    {
        self.entries.push((name.into(), Arc::new(index)));
        self
    }

    /// The names, in the order given.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|(name, _)| name.as_str())
    }

    /// How many index functions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The namespace index function: the object's namespace, `""` for a cluster-scoped object
/// (client-go's `MetaNamespaceIndexFunc`).
pub fn meta_namespace_index<'a, K: Object>(obj: &'a K, out: &mut IndexValues<'a>) {
    out.push(obj.namespace().unwrap_or(""));
}
