//! Object keys in etcd's order: by their path `namespace/name`, the order lists and continue
//! tokens follow.
//!
//! The tuple order of `(namespace, name)` differs when a namespace is a prefix of another
//! followed by `-` or `.`: `("team", _)` sorts before `("team-a", _)`, but `team-a/...` sorts
//! before `team/...`. A collection keyed by [`PathKey`] iterates in etcd's order, so a page is
//! a range of it, and a lookup borrows any [`KeyPath`] without building a key.

use std::borrow::Borrow;
use std::cmp::Ordering;

use crate::store::ObjectKey;

/// Something with a namespace and a name, compared as the path `namespace/name` (just
/// `name` when the namespace is empty).
pub trait KeyPath {
    /// The namespace, empty for a cluster-scoped object.
    fn namespace(&self) -> &str;
    /// The name.
    fn name(&self) -> &str;
}

impl KeyPath for ObjectKey {
    fn namespace(&self) -> &str {
        &self.0
    }
    fn name(&self) -> &str {
        &self.1
    }
}

impl KeyPath for (&str, &str) {
    fn namespace(&self) -> &str {
        self.0
    }
    fn name(&self) -> &str {
        self.1
    }
}

/// Compares `a` and `b` as their paths compare.
pub fn path_cmp(a: &(impl KeyPath + ?Sized), b: &(impl KeyPath + ?Sized)) -> Ordering {
    if a.namespace() == b.namespace() {
        return a.name().cmp(b.name());
    }
    fn path(k: &(impl KeyPath + ?Sized)) -> impl Iterator<Item = u8> + '_ {
        let slash: &'static [u8] = if k.namespace().is_empty() { b"" } else { b"/" };
        k.namespace()
            .bytes()
            .chain(slash.iter().copied())
            .chain(k.name().bytes())
    }
    path(a).cmp(path(b))
}

impl PartialEq for dyn KeyPath + '_ {
    fn eq(&self, other: &Self) -> bool {
        path_cmp(self, other).is_eq()
    }
}

impl Eq for dyn KeyPath + '_ {}

impl PartialOrd for dyn KeyPath + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyPath + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        path_cmp(self, other)
    }
}

/// An [`ObjectKey`] ordered by its path.
#[derive(Debug, Clone)]
pub struct PathKey(pub ObjectKey);

impl PartialEq for PathKey {
    fn eq(&self, other: &Self) -> bool {
        path_cmp(&self.0, &other.0).is_eq()
    }
}

impl Eq for PathKey {}

impl PartialOrd for PathKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathKey {
    fn cmp(&self, other: &Self) -> Ordering {
        path_cmp(&self.0, &other.0)
    }
}

impl<'a> Borrow<dyn KeyPath + 'a> for PathKey {
    fn borrow(&self) -> &(dyn KeyPath + 'a) {
        &self.0
    }
}

/// The key whose path is `path` (names and namespaces hold no `/`, so the first `/`
/// separates them): the inverse of the path, for continue tokens of lists across
/// namespaces.
pub fn key_of_path(path: &str) -> ObjectKey {
    match path.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() => {
            (namespace.to_string(), name.to_string())
        }
        _ => (String::new(), path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str) -> ObjectKey {
        (ns.to_string(), name.to_string())
    }

    #[test]
    fn paths_order_prefix_namespaces_as_etcd_does() {
        let mut keys = vec![
            key("team", "a"),
            key("team-a", "b"),
            key("team", "z"),
            key("team0", "c"),
        ];
        keys.sort();
        assert_eq!(keys[0], key("team", "a"), "tuple order puts team first");
        keys.sort_by(path_cmp);
        assert_eq!(
            keys,
            [
                key("team-a", "b"),
                key("team", "a"),
                key("team", "z"),
                key("team0", "c")
            ]
        );
        assert_eq!(path_cmp(&key("", "b"), &key("", "a")), Ordering::Greater);
    }

    #[test]
    fn key_of_path_inverts_the_path() {
        for (path, want) in [
            ("ns/name\u{0}", key("ns", "name\u{0}")),
            ("name\u{0}", key("", "name\u{0}")),
            ("/odd", key("", "/odd")),
            ("", key("", "")),
        ] {
            let got = key_of_path(path);
            assert_eq!(got, want, "{path:?}");
            let back = if got.0.is_empty() {
                got.1.clone()
            } else {
                format!("{}/{}", got.0, got.1)
            };
            assert_eq!(back, path);
        }
    }

    #[test]
    fn a_map_of_path_keys_is_read_through_borrowed_keys() {
        let mut map = std::collections::BTreeMap::new();
        for (ns, name) in [("team", "a"), ("team-a", "b"), ("team0", "c")] {
            map.insert(PathKey(key(ns, name)), name);
        }
        assert_eq!(map.get(&("team", "a") as &dyn KeyPath), Some(&"a"));
        assert_eq!(map.get(&key("team0", "c") as &dyn KeyPath), Some(&"c"));
        assert_eq!(map.get(&("team", "b") as &dyn KeyPath), None);
        let order: Vec<&str> = map.values().copied().collect();
        assert_eq!(order, ["b", "a", "c"]);
    }
}
