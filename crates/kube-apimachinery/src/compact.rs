//! [`Compact<K>`]: an object kept as typed metadata plus the rest of its compact JSON text,
//! for caches that hold many objects and read their metadata far more often than the rest.
//!
//! k8s-openapi's generated types keep every optional field inline, so a decoded `Pod` is
//! mostly `None`s: `size_of::<Pod>()` is over 2 KB, a `Container` over 2 KB, a `Volume` over
//! 3 KB, and a realistic pod costs about six times its compact JSON on the heap. A
//! `Compact<Pod>` keeps `metadata` decoded (what stores, indexers, listers and selectors
//! read) and everything else (`apiVersion`, `kind`, `spec`, `status`) as the compact JSON
//! the server sent, about 1.3 times the JSON in all. The typed object is decoded on demand
//! with [`Compact::decode`].
//!
//! `Compact<K>` is a k8s-openapi resource of `K`'s kind (same group, version, kind and
//! scope), so it works wherever `K` does: `Api<Compact<Pod>>` in kube-rest, an informer or an
//! `Indexer<Compact<Pod>>` in kube-cache.
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_apimachinery::{Compact, Object};
//!
//! let json = r#"{"apiVersion":"v1","kind":"Pod",
//!     "metadata":{"name":"web-0","namespace":"prod","labels":{"app":"web"}},
//!     "spec":{"containers":[{"name":"app","image":"nginx:1.27"}]}}"#;
//! let pod: Compact<Pod> = serde_json::from_str(json)?;
//! assert_eq!(pod.name(), "web-0");
//! assert_eq!(pod.labels()["app"], "web");
//! assert_eq!(
//!     pod.rest_json(),
//!     r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"app","image":"nginx:1.27"}]}}"#
//! );
//!
//! let typed: Pod = pod.decode()?;
//! assert_eq!(typed.spec.unwrap().containers[0].image.as_deref(), Some("nginx:1.27"));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ListableResource, Metadata, Resource};
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// An object of kind `K` kept as its typed metadata and the compact JSON text of every other
/// field (see the [module documentation](self)).
pub struct Compact<K> {
    metadata: ObjectMeta,
    /// A JSON object holding every top-level field but `metadata`, without insignificant
    /// whitespace: `{}` when there is none.
    rest: Box<str>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Compact<K> {
    /// The typed metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Every top-level field but `metadata`, as one compact JSON object.
    pub fn rest_json(&self) -> &str {
        &self.rest
    }

    /// Reads one top-level field (`spec`, `status`, `data`...) as `T`, without decoding the
    /// others; `Ok(None)` when the object has no such field.
    pub fn field<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, serde_json::Error> {
        let fields: Vec<(&str, &RawValue)> = parse_fields(&self.rest)?;
        fields
            .into_iter()
            .find(|(key, _)| *key == name)
            .map(|(_, raw)| serde_json::from_str(raw.get()))
            .transpose()
    }

    /// The object as one JSON text, metadata first.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let metadata = serde_json::to_string(&self.metadata)?;
        let mut json = String::with_capacity(metadata.len() + self.rest.len() + 16);
        json.push_str("{\"metadata\":");
        json.push_str(&metadata);
        if self.rest.len() > 2 {
            json.push(',');
            json.push_str(&self.rest[1..]);
        } else {
            json.push('}');
        }
        Ok(json)
    }

    /// Decodes the whole object as `K`.
    pub fn decode(&self) -> Result<K, serde_json::Error>
    where
        K: DeserializeOwned,
    {
        serde_json::from_str(&self.to_json()?)
    }
}

impl<K: Serialize> Compact<K> {
    /// Builds the compact form of a typed object.
    pub fn from_object(object: &K) -> Result<Compact<K>, serde_json::Error> {
        serde_json::from_str(&serde_json::to_string(object)?)
    }
}

/// Reads the top-level fields of a JSON object without decoding their values.
fn parse_fields(json: &str) -> Result<Vec<(&str, &RawValue)>, serde_json::Error> {
    struct Fields;
    impl<'de> Visitor<'de> for Fields {
        type Value = Vec<(&'de str, &'de RawValue)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(4));
            while let Some(key) = map.next_key::<&'de str>()? {
                fields.push((key, map.next_value::<&'de RawValue>()?));
            }
            Ok(fields)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.deserialize_map(Fields)
}

/// Whether `json` holds whitespace outside strings (text a client pretty-printed).
fn has_insignificant_whitespace(json: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b' ' | b'\n' | b'\r' | b'\t' => return true,
                _ => {}
            }
        }
    }
    false
}

impl<'de, K> Deserialize<'de> for Compact<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CompactVisitor<K>(PhantomData<fn() -> K>);

        impl<'de, K> Visitor<'de> for CompactVisitor<K> {
            type Value = Compact<K>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Compact<K>, A::Error> {
                let mut metadata = None;
                let mut rest = String::from("{");
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "metadata" {
                        if metadata.is_some() {
                            return Err(de::Error::duplicate_field("metadata"));
                        }
                        metadata =
                            Some(map.next_value::<Option<ObjectMeta>>()?.unwrap_or_default());
                        continue;
                    }
                    let raw = map.next_value::<Box<RawValue>>()?;
                    if rest.len() > 1 {
                        rest.push(',');
                    }
                    rest.push_str(&serde_json::to_string(&*key).map_err(de::Error::custom)?);
                    rest.push(':');
                    if has_insignificant_whitespace(raw.get()) {
                        let value: serde_json::Value =
                            serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                        rest.push_str(&value.to_string());
                    } else {
                        rest.push_str(raw.get());
                    }
                }
                rest.push('}');
                Ok(Compact {
                    metadata: metadata.unwrap_or_default(),
                    rest: rest.into_boxed_str(),
                    _kind: PhantomData,
                })
            }
        }

        deserializer.deserialize_map(CompactVisitor(PhantomData))
    }
}

impl<K> Serialize for Compact<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let fields = parse_fields(&self.rest).map_err(S::Error::custom)?;
        let mut map = serializer.serialize_map(Some(fields.len() + 1))?;
        let mut metadata_written = false;
        for (key, value) in fields {
            // apiVersion and kind first, as Kubernetes writes them, then metadata.
            if !metadata_written && key != "apiVersion" && key != "kind" {
                map.serialize_entry("metadata", &self.metadata)?;
                metadata_written = true;
            }
            map.serialize_entry(key, value)?;
        }
        if !metadata_written {
            map.serialize_entry("metadata", &self.metadata)?;
        }
        map.end()
    }
}

impl<K> Clone for Compact<K> {
    fn clone(&self) -> Self {
        Compact {
            metadata: self.metadata.clone(),
            rest: self.rest.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K> PartialEq for Compact<K> {
    fn eq(&self, other: &Self) -> bool {
        self.metadata == other.metadata && self.rest == other.rest
    }
}

impl<K> fmt::Debug for Compact<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compact")
            .field("metadata", &self.metadata)
            .field("rest", &&*self.rest)
            .finish()
    }
}

impl<K: Resource> Default for Compact<K> {
    fn default() -> Self {
        Compact {
            metadata: ObjectMeta::default(),
            rest: format!(
                "{{\"apiVersion\":{:?},\"kind\":{:?}}}",
                K::API_VERSION,
                K::KIND
            )
            .into_boxed_str(),
            _kind: PhantomData,
        }
    }
}

impl<K: Resource> Resource for Compact<K> {
    const API_VERSION: &'static str = K::API_VERSION;
    const GROUP: &'static str = K::GROUP;
    const KIND: &'static str = K::KIND;
    const VERSION: &'static str = K::VERSION;
    const URL_PATH_SEGMENT: &'static str = K::URL_PATH_SEGMENT;
    type Scope = K::Scope;
}

impl<K: ListableResource> ListableResource for Compact<K> {
    const LIST_KIND: &'static str = K::LIST_KIND;
}

impl<K: Resource> Metadata for Compact<K> {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};

    use super::*;
    use crate::Object;

    const POD: &str = r#"{
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "prod", "resourceVersion": "42",
                     "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                 "args": ["a b", "c\"d"]}]},
        "status": {"phase": "Running"}
    }"#;

    #[test]
    fn keeps_metadata_typed_and_the_rest_compact() {
        let pod: Compact<Pod> = serde_json::from_str(POD).unwrap();
        assert_eq!(pod.name(), "web-0");
        assert_eq!(pod.namespace(), Some("prod"));
        assert_eq!(pod.resource_version(), Some("42"));
        assert!(!has_insignificant_whitespace(pod.rest_json()));
        let rest: serde_json::Value = serde_json::from_str(pod.rest_json()).unwrap();
        let mut whole: serde_json::Value = serde_json::from_str(POD).unwrap();
        whole.as_object_mut().unwrap().remove("metadata");
        assert_eq!(rest, whole);

        let compact_input = r#"{"kind":"Pod","metadata":{"name":"a"},"spec":{"x":"a b"}}"#;
        let pod: Compact<Pod> = serde_json::from_str(compact_input).unwrap();
        assert_eq!(pod.rest_json(), r#"{"kind":"Pod","spec":{"x":"a b"}}"#);
    }

    #[test]
    fn whitespace_inside_strings_is_significant() {
        assert!(!has_insignificant_whitespace(r#"{"a":"x y\" z"}"#));
        assert!(has_insignificant_whitespace(r#"{"a": 1}"#));
        assert!(has_insignificant_whitespace("[1,\n2]"));
    }

    #[test]
    fn decodes_to_the_same_typed_object() {
        let compact: Compact<Pod> = serde_json::from_str(POD).unwrap();
        let typed: Pod = serde_json::from_str(POD).unwrap();
        assert_eq!(compact.decode().unwrap(), typed);
        assert_eq!(Compact::from_object(&typed).unwrap(), compact);
        let status: k8s_openapi::api::core::v1::PodStatus =
            compact.field("status").unwrap().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(compact.field::<String>("data").unwrap().is_none());
    }

    #[test]
    fn serializes_as_the_object() {
        let compact: Compact<Pod> = serde_json::from_str(POD).unwrap();
        let json = serde_json::to_string(&compact).unwrap();
        assert!(json.starts_with(r#"{"apiVersion":"v1","kind":"Pod","metadata":{"#));
        let back: Pod = serde_json::from_str(&json).unwrap();
        assert_eq!(back, compact.decode().unwrap());
    }

    #[test]
    fn an_object_without_other_fields() {
        let cm: Compact<ConfigMap> = serde_json::from_str(r#"{"metadata":{"name":"c"}}"#).unwrap();
        assert_eq!(cm.rest_json(), "{}");
        assert_eq!(cm.to_json().unwrap(), r#"{"metadata":{"name":"c"}}"#);
        assert_eq!(cm.decode().unwrap().metadata.name.as_deref(), Some("c"));
        let default = Compact::<ConfigMap>::default();
        assert_eq!(
            default.rest_json(),
            r#"{"apiVersion":"v1","kind":"ConfigMap"}"#
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(serde_json::from_str::<Compact<Pod>>("[1]").is_err());
        assert!(serde_json::from_str::<Compact<Pod>>(r#"{"metadata":{"name":1}}"#).is_err());
        assert!(serde_json::from_str::<Compact<Pod>>(r#"{"metadata":{},"metadata":{}}"#).is_err());
        assert!(serde_json::from_str::<Compact<Pod>>(r#"{"spec":"#).is_err());
    }

    #[test]
    fn is_a_resource_of_the_same_kind() {
        assert_eq!(<Compact<Pod> as Resource>::KIND, "Pod");
        assert_eq!(<Compact<Pod> as ListableResource>::LIST_KIND, "PodList");
        assert_eq!(
            crate::ResourceInfo::of::<Compact<Pod>>(),
            crate::ResourceInfo::of::<Pod>()
        );
    }
}
