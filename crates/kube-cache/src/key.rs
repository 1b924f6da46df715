//! Object keys (client-go's `MetaNamespaceKeyFunc`, `SplitMetaNamespaceKey`, `ObjectName`) and
//! deletion tombstones (`DeletedFinalStateUnknown`, `DeletionHandlingMetaNamespaceKeyFunc`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use kube_apimachinery::Object;

/// A key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key has more than one `/` (client-go's `unexpected key format: %q`).
    #[error("unexpected key format: {key:?}")]
    UnexpectedFormat {
        /// The key as given.
        key: String,
    },
}

/// The store key of an object: `namespace/name`, or `name` for a cluster-scoped object
/// (client-go's `MetaNamespaceKeyFunc`).
///
/// ```
/// use k8s_openapi::api::core::v1::{Namespace, Pod};
/// use kube_apimachinery::Object;
/// use kube_cache::meta_namespace_key;
///
/// let mut pod = Pod::default();
/// pod.meta_mut().name = Some("web-0".into());
/// pod.meta_mut().namespace = Some("prod".into());
/// assert_eq!(meta_namespace_key(&pod), "prod/web-0");
///
/// let mut ns = Namespace::default();
/// ns.meta_mut().name = Some("prod".into());
/// assert_eq!(meta_namespace_key(&ns), "prod");
/// ```
pub fn meta_namespace_key<K: Object + ?Sized>(obj: &K) -> String {
    let name = obj.name();
    match obj.namespace() {
        Some(namespace) => {
            let mut key = String::with_capacity(namespace.len() + 1 + name.len());
            key.push_str(namespace);
            key.push('/');
            key.push_str(name);
            key
        }
        None => name.to_owned(),
    }
}

/// Splits a key made by [`meta_namespace_key`] into `(namespace, name)`; the namespace is `""`
/// for a key without `/` (client-go's `SplitMetaNamespaceKey`, same error for a key with more
/// than one `/`).
///
/// ```
/// use kube_cache::{KeyError, split_meta_namespace_key};
///
/// assert_eq!(split_meta_namespace_key("prod/web-0"), Ok(("prod", "web-0")));
/// assert_eq!(split_meta_namespace_key("node-1"), Ok(("", "node-1")));
/// assert_eq!(
///     split_meta_namespace_key("a/b/c").unwrap_err().to_string(),
///     r#"unexpected key format: "a/b/c""#
/// );
/// ```
pub fn split_meta_namespace_key(key: &str) -> Result<(&str, &str), KeyError> {
    let mut parts = key.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, _) => Ok(("", name)),
        (Some(namespace), Some(name), None) => Ok((namespace, name)),
        _ => Err(KeyError::UnexpectedFormat {
            key: key.to_owned(),
        }),
    }
}

/// A namespace and a name (client-go's `ObjectName`): `Display` gives the store key,
/// `FromStr` parses one.
///
/// ```
/// use kube_cache::ObjectKey;
///
/// let key: ObjectKey = "prod/web-0".parse().unwrap();
/// assert_eq!(key, ObjectKey::new("prod", "web-0"));
/// assert_eq!(key.to_string(), "prod/web-0");
/// assert_eq!(ObjectKey::cluster("node-1").to_string(), "node-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectKey {
    /// The namespace, `""` for a cluster-scoped object.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// A namespaced key (an empty namespace makes a cluster-scoped key).
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ObjectKey {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// A cluster-scoped key.
    pub fn cluster(name: impl Into<String>) -> ObjectKey {
        ObjectKey::new(String::new(), name)
    }

    /// The key of an object.
    pub fn of<K: Object + ?Sized>(obj: &K) -> ObjectKey {
        ObjectKey::new(obj.namespace().unwrap_or(""), obj.name())
    }

    /// The namespace, `None` for a cluster-scoped key.
    pub fn namespace(&self) -> Option<&str> {
        Some(self.namespace.as_str()).filter(|ns| !ns.is_empty())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

impl FromStr for ObjectKey {
    type Err = KeyError;

    fn from_str(key: &str) -> Result<ObjectKey, KeyError> {
        let (namespace, name) = split_meta_namespace_key(key)?;
        Ok(ObjectKey::new(namespace, name))
    }
}

/// The tombstone a [`DeltaFifo`](crate::DeltaFifo) or [`RealFifo`](crate::RealFifo) queues
/// when a relist shows that an object was deleted while the watch was down: the deletion event
/// was missed, so the final state is unknown and `obj` (the last state the queue or the store
/// knew, if any) may be stale (client-go's `DeletedFinalStateUnknown`).
#[derive(Debug)]
pub struct DeletedFinalStateUnknown<K> {
    /// The store key of the deleted object.
    pub key: String,
    /// The last known state of the object, `None` when the known-objects store lost it.
    pub obj: Option<Arc<K>>,
}

impl<K> Clone for DeletedFinalStateUnknown<K> {
    fn clone(&self) -> Self {
        DeletedFinalStateUnknown {
            key: self.key.clone(),
            obj: self.obj.clone(),
        }
    }
}

impl<K: PartialEq> PartialEq for DeletedFinalStateUnknown<K> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.obj == other.obj
    }
}

/// What a delete notification carries: the object, or a tombstone when the final state is
/// unknown (client-go hands `interface{}` that may be a `DeletedFinalStateUnknown`).
#[derive(Debug)]
pub enum ObjectOrTombstone<K> {
    /// The object itself.
    Object(Arc<K>),
    /// A deletion whose final state was missed.
    Tombstone(DeletedFinalStateUnknown<K>),
}

impl<K> Clone for ObjectOrTombstone<K> {
    fn clone(&self) -> Self {
        match self {
            ObjectOrTombstone::Object(obj) => ObjectOrTombstone::Object(Arc::clone(obj)),
            ObjectOrTombstone::Tombstone(t) => ObjectOrTombstone::Tombstone(t.clone()),
        }
    }
}

impl<K: PartialEq> PartialEq for ObjectOrTombstone<K> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ObjectOrTombstone::Object(a), ObjectOrTombstone::Object(b)) => a == b,
            (ObjectOrTombstone::Tombstone(a), ObjectOrTombstone::Tombstone(b)) => a == b,
            _ => false,
        }
    }
}

impl<K> ObjectOrTombstone<K> {
    /// The object: the live one, or the tombstone's last known state.
    pub fn object(&self) -> Option<&Arc<K>> {
        match self {
            ObjectOrTombstone::Object(obj) => Some(obj),
            ObjectOrTombstone::Tombstone(t) => t.obj.as_ref(),
        }
    }

    /// The tombstone, if this is one.
    pub fn tombstone(&self) -> Option<&DeletedFinalStateUnknown<K>> {
        match self {
            ObjectOrTombstone::Object(_) => None,
            ObjectOrTombstone::Tombstone(t) => Some(t),
        }
    }

    /// Whether this is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        matches!(self, ObjectOrTombstone::Tombstone(_))
    }
}

impl<K> From<Arc<K>> for ObjectOrTombstone<K> {
    fn from(obj: Arc<K>) -> Self {
        ObjectOrTombstone::Object(obj)
    }
}

impl<K> From<DeletedFinalStateUnknown<K>> for ObjectOrTombstone<K> {
    fn from(t: DeletedFinalStateUnknown<K>) -> Self {
        ObjectOrTombstone::Tombstone(t)
    }
}

/// The key of an object or of a tombstone: a tombstone's own key, the object's
/// [`meta_namespace_key`] otherwise (client-go's `DeletionHandlingMetaNamespaceKeyFunc`).
///
/// ```
/// use std::sync::Arc;
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_cache::{DeletedFinalStateUnknown, ObjectOrTombstone, deletion_handling_meta_namespace_key};
///
/// let tombstone: ObjectOrTombstone<Pod> =
///     DeletedFinalStateUnknown { key: "prod/web-0".into(), obj: None }.into();
/// assert_eq!(deletion_handling_meta_namespace_key(&tombstone), "prod/web-0");
/// ```
pub fn deletion_handling_meta_namespace_key<K: Object>(obj: &ObjectOrTombstone<K>) -> String {
    match obj {
        ObjectOrTombstone::Object(obj) => meta_namespace_key(obj.as_ref()),
        ObjectOrTombstone::Tombstone(t) => t.key.clone(),
    }
}

/// An object's [`meta_namespace_key`] that does not borrow the object: on the stack when it
/// is short, so a write path can move the object after computing its key.
pub(crate) enum KeyBuf {
    Inline { buf: [u8; KeyBuf::INLINE], len: u8 },
    Heap(String),
}

impl KeyBuf {
    const INLINE: usize = 160;

    pub(crate) fn of<K: Object + ?Sized>(obj: &K) -> KeyBuf {
        let name = obj.name();
        let namespace = obj.namespace();
        let len = namespace.map_or(0, |ns| ns.len() + 1) + name.len();
        if len > KeyBuf::INLINE {
            return KeyBuf::Heap(meta_namespace_key(obj));
        }
        let mut buf = [0u8; KeyBuf::INLINE];
        let mut at = 0;
        if let Some(namespace) = namespace {
            buf[..namespace.len()].copy_from_slice(namespace.as_bytes());
            buf[namespace.len()] = b'/';
            at = namespace.len() + 1;
        }
        buf[at..len].copy_from_slice(name.as_bytes());
        KeyBuf::Inline {
            buf,
            len: len as u8, // len <= 160, checked above
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Strings joined by '/' are UTF-8: the empty fallback is never taken.
            KeyBuf::Inline { buf, len } => std::str::from_utf8(&buf[..*len as usize]).unwrap_or(""),
            KeyBuf::Heap(key) => key,
        }
    }
}

/// Calls `f` with the object's [`meta_namespace_key`], built on the stack when it is short
/// (the write paths look a key up far more often than they store a new one).
pub(crate) fn with_key<K: Object + ?Sized, R>(obj: &K, f: impl FnOnce(&str) -> R) -> R {
    const INLINE: usize = 160;
    let name = obj.name();
    let Some(namespace) = obj.namespace() else {
        return f(name);
    };
    let len = namespace.len() + 1 + name.len();
    if len <= INLINE {
        let mut buf = [0u8; INLINE];
        buf[..namespace.len()].copy_from_slice(namespace.as_bytes());
        buf[namespace.len()] = b'/';
        buf[namespace.len() + 1..len].copy_from_slice(name.as_bytes());
        // Two strings joined by '/' are UTF-8; the fallback is never taken.
        if let Ok(key) = std::str::from_utf8(&buf[..len]) {
            return f(key);
        }
    }
    f(&meta_namespace_key(obj))
}
