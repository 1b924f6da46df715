//! [`Compact<K>`]: an object kept as typed metadata plus a compact binary encoding of the
//! rest, for caches that hold many objects and read their metadata far more often than the
//! rest.
//!
//! k8s-openapi's generated types keep every optional field inline, so a decoded `Pod` is
//! mostly `None`s: `size_of::<Pod>()` is over 2 KB, a `Container` over 2 KB, a `Volume` over
//! 3 KB, and a realistic pod costs about six times its compact JSON on the heap. A
//! `Compact<Pod>` keeps `metadata` decoded (what stores, indexers, listers and selectors
//! read) and everything else (`apiVersion`, `kind`, `spec`, `status`) in a self-describing
//! binary encoding of the JSON the server sent, where Kubernetes field names and frequent
//! values (`TCP`, `IfNotPresent`, `True`...) are one- or two-byte ids of a static,
//! compiled-in dictionary: about 0.9 times the compact JSON in all for a realistic pod
//! (docs/perf.md, "Heap per cached pod"). The typed object is decoded on demand with
//! [`Compact::decode`], straight from the bytes.
//!
//! `Compact<K>` is a k8s-openapi resource of `K`'s kind (same group, version, kind and
//! scope), so it works wherever `K` does: `Api<Compact<Pod>>` in kube-rest, an informer or an
//! `Indexer<Compact<Pod>>` in kube-cache. It serializes as the object, keys in the order they
//! came; numbers keep their value, not their text, as with `serde_json::Value`.
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

mod decode;
mod dictionary;
mod encode;
mod serialize;
#[cfg(test)]
mod tests;

use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ListableResource, Metadata, Resource};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::ser::{Error as _, SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};

use decode::{Decoder, Reader};
use serialize::Node;

/// An object of kind `K` kept as its typed metadata and a compact binary encoding of every
/// other field (see the [module documentation](self)).
pub struct Compact<K> {
    metadata: ObjectMeta,
    /// An encoded object (`encode`'s format) holding every top-level field but `metadata`, in
    /// the order they came.
    rest: Box<[u8]>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Compact<K> {
    /// The typed metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Every top-level field but `metadata`, as one compact JSON object (`{}` when there is
    /// none), written from the binary encoding.
    pub fn rest_json(&self) -> String {
        let reader = Reader::new(&self.rest);
        // ok: the bytes come from our own encoder (valid by construction, UTF-8 strings,
        // string keys), and serde_json writing to a String has no I/O to fail.
        serde_json::to_string(&Node {
            reader: &reader,
            depth: 0,
        })
        .expect("a Compact's own encoding serializes")
    }

    /// Reads one top-level field (`spec`, `status`, `data`...) as `T`, without decoding the
    /// others; `Ok(None)` when the object has no such field.
    pub fn field<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, serde_json::Error> {
        let reader = Reader::object_entries(&self.rest)?;
        while let Some(key) = reader.key()? {
            if key == name {
                return T::deserialize(Decoder {
                    reader: &reader,
                    depth: 1,
                })
                .map(Some);
            }
            reader.skip(1)?;
        }
        Ok(None)
    }

    /// The object as one JSON text, metadata first.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let metadata = serde_json::to_string(&self.metadata)?;
        let rest = self.rest_json();
        let mut json = String::with_capacity(metadata.len() + rest.len() + 16);
        json.push_str("{\"metadata\":");
        json.push_str(&metadata);
        if rest.len() > 2 {
            json.push(',');
            json.push_str(&rest[1..]);
        } else {
            json.push('}');
        }
        Ok(json)
    }

    /// Decodes the whole object as `K`, straight from the typed metadata and the binary
    /// encoding of the rest.
    pub fn decode(&self) -> Result<K, serde_json::Error>
    where
        K: DeserializeOwned,
    {
        let reader = Reader::object_entries(&self.rest)?;
        K::deserialize(WholeObject {
            metadata: &self.metadata,
            reader: &reader,
        })
    }
}

impl<K: Serialize> Compact<K> {
    /// Builds the compact form of a typed object.
    pub fn from_object(object: &K) -> Result<Compact<K>, serde_json::Error> {
        serde_json::from_str(&serde_json::to_string(object)?)
    }
}

/// The whole object as a serde `Deserializer`: `metadata` (from the typed `ObjectMeta`), then
/// the encoded entries, the reader just past the object's opening tag.
struct WholeObject<'a, 'de> {
    metadata: &'a ObjectMeta,
    reader: &'a Reader<'de>,
}

impl<'de> Deserializer<'de> for WholeObject<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(WholeObjectEntries {
            metadata: Some(self.metadata),
            metadata_next: false,
            reader: self.reader,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct WholeObjectEntries<'a, 'de> {
    /// The metadata, until its key is read.
    metadata: Option<&'a ObjectMeta>,
    /// Whether the next value is the metadata.
    metadata_next: bool,
    reader: &'a Reader<'de>,
}

impl<'de> MapAccess<'de> for WholeObjectEntries<'_, 'de> {
    type Error = serde_json::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        let key = if self.metadata.is_some() && !self.metadata_next {
            self.metadata_next = true;
            "metadata"
        } else {
            match self.reader.key()? {
                Some(key) => key,
                None => return Ok(None),
            }
        };
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        if self.metadata_next {
            self.metadata_next = false;
            if let Some(metadata) = self.metadata.take() {
                return seed.deserialize(serde_json::to_value(metadata)?);
            }
        }
        seed.deserialize(Decoder {
            reader: self.reader,
            depth: 1,
        })
    }
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
                let mut rest = Vec::with_capacity(INITIAL_CAPACITY);
                rest.push(encode::OBJECT);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "metadata" {
                        if metadata.is_some() {
                            return Err(de::Error::duplicate_field("metadata"));
                        }
                        metadata =
                            Some(map.next_value::<Option<ObjectMeta>>()?.unwrap_or_default());
                        continue;
                    }
                    encode::put_key(&mut rest, &key);
                    map.next_value_seed(encode::ValueSeed {
                        out: &mut rest,
                        depth: 1,
                    })?;
                }
                encode::end_object(&mut rest);
                Ok(Compact {
                    metadata: metadata.unwrap_or_default(),
                    rest: rest.into_boxed_slice(),
                    _kind: PhantomData,
                })
            }
        }

        deserializer.deserialize_map(CompactVisitor(PhantomData))
    }
}

/// The encoding buffer's first capacity: a realistic pod's rest takes about 2 KB.
const INITIAL_CAPACITY: usize = 2048;

impl<K> Serialize for Compact<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let reader = Reader::object_entries(&self.rest).map_err(S::Error::custom)?;
        let node = Node {
            reader: &reader,
            depth: 1,
        };
        let mut map = serializer.serialize_map(None)?;
        let mut metadata_written = false;
        while let Some(key) = reader.key().map_err(S::Error::custom)? {
            // apiVersion and kind first, as Kubernetes writes them, then metadata.
            if !metadata_written && key != "apiVersion" && key != "kind" {
                map.serialize_entry("metadata", &self.metadata)?;
                metadata_written = true;
            }
            map.serialize_entry(key, &node)?;
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
            .field("rest", &self.rest_json())
            .finish()
    }
}

impl<K: Resource> Default for Compact<K> {
    fn default() -> Self {
        let mut rest = vec![encode::OBJECT];
        encode::put_key(&mut rest, "apiVersion");
        encode::put_str(&mut rest, K::API_VERSION);
        encode::put_key(&mut rest, "kind");
        encode::put_str(&mut rest, K::KIND);
        encode::end_object(&mut rest);
        Compact {
            metadata: ObjectMeta::default(),
            rest: rest.into_boxed_slice(),
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
