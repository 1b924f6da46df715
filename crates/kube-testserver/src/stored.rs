//! How the store keeps an object: its JSON encoding, the bytes every answer sends, plus the
//! string labels for selectors, instead of a `serde_json::Value` tree.
//!
//! A `Value` costs many times its JSON: every object of the tree is a `BTreeMap` whose nodes
//! hold eleven slots, and the `fieldsV1` of `managedFields` are deep trees of one-key objects.
//! A realistic pod (7.9 KB of JSON with its managedFields) took about 120 KB as a `Value`; its
//! encoding is what lists and watches send anyway, so the store keeps that and parses an object
//! back only where it is read as a tree (updates, patches, field selectors, tables).

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

/// An object as the store keeps it: its JSON (serde_json's compact encoding, keys in order, as
/// every answer writes it) and its string labels.
#[derive(Debug)]
pub struct StoredObject {
    json: Bytes,
    /// Where the list-item form of a built-in kind starts: the members after `apiVersion` and
    /// `kind`, when those lead the encoding (they sort first); `None` when they do not.
    item_from: Option<usize>,
    /// `metadata.labels` with string values (a label with another value is no label).
    labels: Box<[(Box<str>, Box<str>)]>,
    /// The tree itself, for an object nested deeper than serde_json parses back (its recursion
    /// limit is 128; a patch can nest a stored object deeper than a request body may be).
    deep: Option<Box<Value>>,
}

/// Nesting deeper than this is kept as a tree as well (serde_json refuses 128 levels).
const PARSE_DEPTH: usize = 120;

fn deeper_than(value: &Value, limit: usize) -> bool {
    match value {
        _ if limit == 0 => true,
        Value::Array(items) => items.iter().any(|v| deeper_than(v, limit - 1)),
        Value::Object(map) => map.values().any(|v| deeper_than(v, limit - 1)),
        _ => false,
    }
}

/// The labels of a [`StoredObject`], for label selectors.
#[derive(Debug, Clone, Copy)]
pub struct StoredLabels<'a>(&'a [(Box<str>, Box<str>)]);

impl kube_apimachinery::labels::Labels for StoredLabels<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, value)| &**value)
    }
}

/// `"key":<value>` as serde_json writes a member.
fn member(key: &str, value: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(key).unwrap_or_default();
    out.push(b':');
    out.extend(serde_json::to_vec(value).unwrap_or_default());
    out
}

/// Where the members after `apiVersion` and `kind` start in `json` (the encoding of `value`),
/// if those lead it.
fn item_start(value: &Value, json: &[u8]) -> Option<usize> {
    let map = value.as_object()?;
    let mut at = 1;
    for key in ["apiVersion", "kind"] {
        let Some(field) = map.get(key) else {
            continue;
        };
        let expected = member(key, field);
        if !json.get(at..)?.starts_with(&expected) {
            return None;
        }
        at += expected.len();
        if json.get(at) == Some(&b',') {
            at += 1;
        }
    }
    Some(at)
}

impl StoredObject {
    /// Encodes `value` for storage.
    pub fn encode(value: &Value) -> StoredObject {
        let mut json = serde_json::to_vec(value).unwrap_or_default();
        // The encoder grows its buffer by doubling: keep only what is used.
        json.shrink_to_fit();
        let item_from = item_start(value, &json);
        let labels = value
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
                    .collect()
            })
            .unwrap_or_default();
        let deep = deeper_than(value, PARSE_DEPTH).then(|| Box::new(value.clone()));
        StoredObject {
            json: Bytes::from(json),
            item_from,
            labels,
            deep,
        }
    }

    /// The object's JSON.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The object as a tree (parsed anew at every call).
    pub fn value(&self) -> Value {
        if let Some(deep) = &self.deep {
            return (**deep).clone();
        }
        // The bytes are serde_json's own encoding of a `Value` nested less than its recursion
        // limit: they parse back.
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// The object's string labels.
    pub fn labels(&self) -> StoredLabels<'_> {
        StoredLabels(&self.labels)
    }

    /// Appends the object as an item of a list of a built-in kind (without `apiVersion` and
    /// `kind`) to `out`.
    pub fn write_builtin_item(&self, out: &mut BytesMut) {
        match self.item_from {
            Some(from) => {
                out.put_u8(b'{');
                out.extend_from_slice(&self.json[from..]);
            }
            None => {
                let mut value = self.value();
                if let Some(map) = value.as_object_mut() {
                    map.remove("apiVersion");
                    map.remove("kind");
                }
                out.extend(serde_json::to_vec(&value).unwrap_or_default());
            }
        }
    }

    /// The length of what [`write_builtin_item`](Self::write_builtin_item) writes.
    pub fn builtin_item_len(&self) -> usize {
        match self.item_from {
            Some(from) => 1 + self.json.len() - from,
            None => {
                let mut out = BytesMut::new();
                self.write_builtin_item(&mut out);
                out.len()
            }
        }
    }
}

/// A watch-event line for an object already encoded: `{"object":…,"type":"KIND"}` and a newline,
/// as serde_json writes `{"type": kind, "object": object}` (keys in order).
pub fn event_line(kind: &str, object_json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(object_json.len() + kind.len() + 24);
    out.extend_from_slice(b"{\"object\":");
    out.extend_from_slice(object_json);
    out.extend_from_slice(b",\"type\":");
    out.extend(serde_json::to_vec(kind).unwrap_or_default());
    out.extend_from_slice(b"}\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube_apimachinery::labels::Selector;
    use serde_json::json;

    fn item(object: &StoredObject) -> String {
        let mut out = BytesMut::new();
        object.write_builtin_item(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn list_items_are_the_encoding_without_api_version_and_kind() {
        for value in [
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}),
            json!({"apiVersion": "v1", "kind": "Pod"}),
            json!({"kind": "Pod", "metadata": {"name": "p"}}),
            json!({"metadata": {"name": "p"}}),
            json!({}),
            // Keys that sort before `apiVersion`: the slow path.
            json!({"Zed": 1, "apiVersion": "v1", "kind": "Pod", "metadata": {}}),
            json!({"apiVersion": "v1", "aa": 1, "kind": "Pod"}),
        ] {
            let stored = StoredObject::encode(&value);
            assert_eq!(stored.json(), &serde_json::to_vec(&value).unwrap());
            let mut expected = value.clone();
            let map = expected.as_object_mut().unwrap();
            map.remove("apiVersion");
            map.remove("kind");
            assert_eq!(item(&stored), serde_json::to_string(&expected).unwrap());
            assert_eq!(stored.builtin_item_len(), item(&stored).len());
            assert_eq!(stored.value(), value);
        }
    }

    #[test]
    fn deeply_nested_objects_read_back() {
        let mut deep = json!(1);
        for _ in 0..300 {
            deep = json!({"a": deep});
        }
        let value = json!({"metadata": {"name": "x"}, "data": deep});
        assert_eq!(StoredObject::encode(&value).value(), value);
    }

    #[test]
    fn event_lines_match_serde_json() {
        let object = json!({"metadata": {"name": "p\"q"}, "data": {"k": "é"}});
        let line = event_line("MODIFIED", &serde_json::to_vec(&object).unwrap());
        let mut expected =
            serde_json::to_vec(&json!({"type": "MODIFIED", "object": object})).unwrap();
        expected.push(b'\n');
        assert_eq!(line, expected);
    }

    #[test]
    fn only_string_labels_are_labels() {
        let stored = StoredObject::encode(
            &json!({"metadata": {"labels": {"app": "demo", "n": 4}}, "spec": {}}),
        );
        let matches = |s: &str| s.parse::<Selector>().unwrap().matches(&stored.labels());
        assert!(matches("app=demo"));
        assert!(matches("!n"));
        assert!(!matches("app=other"));
    }
}
