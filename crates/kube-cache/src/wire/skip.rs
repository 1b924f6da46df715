//! [`WithoutManagedFields`]: decodes an object while skipping `metadata.managedFields`,
//! without building it first.
//!
//! The wrapper puts a thin filtering layer between the object's `Deserialize` and the JSON
//! deserializer, on two levels only: the object's own keys (to find `metadata`), and the keys
//! of `metadata` (where the `managedFields` value is skipped as `IgnoredAny`: scanned, never
//! allocated). Every other value (`spec`, `status`, labels...) goes straight to the JSON
//! deserializer, so the cost is one key comparison per top-level and metadata key.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// The field skipped inside `metadata`.
const MANAGED_FIELDS: &str = "managedFields";

/// `T` decoded without `metadata.managedFields` (left at its default, `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct WithoutManagedFields<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for WithoutManagedFields<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(Filter {
            inner: deserializer,
            level: Level::Object,
        })
        .map(WithoutManagedFields)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The object: watch for the `metadata` key.
    Object,
    /// Its metadata: skip the `managedFields` key.
    Metadata,
}

struct Filter<D> {
    inner: D,
    level: Level,
}

macro_rules! forward {
    ($($method:ident ( $($arg:ident : $ty:ty),* )),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                self.inner.$method($($arg,)* visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Filter<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner.deserialize_any(FilterVisitor {
            inner: visitor,
            level,
        })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner.deserialize_map(FilterVisitor {
            inner: visitor,
            level,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner.deserialize_struct(
            name,
            fields,
            FilterVisitor {
                inner: visitor,
                level,
            },
        )
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner.deserialize_option(FilterVisitor {
            inner: visitor,
            level,
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let level = self.level;
        self.inner.deserialize_newtype_struct(
            name,
            FilterVisitor {
                inner: visitor,
                level,
            },
        )
    }

    forward! {
        deserialize_bool(), deserialize_i8(), deserialize_i16(), deserialize_i32(),
        deserialize_i64(), deserialize_i128(), deserialize_u8(), deserialize_u16(),
        deserialize_u32(), deserialize_u64(), deserialize_u128(), deserialize_f32(),
        deserialize_f64(), deserialize_char(), deserialize_str(), deserialize_string(),
        deserialize_bytes(), deserialize_byte_buf(), deserialize_unit(),
        deserialize_unit_struct(name: &'static str), deserialize_seq(),
        deserialize_tuple(len: usize), deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(), deserialize_ignored_any(),
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

struct FilterVisitor<V> {
    inner: V,
    level: Level,
}

macro_rules! forward_visit {
    ($($method:ident ( $ty:ty )),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for FilterVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(FilterMap {
            inner: map,
            level: self.level,
            next_is_metadata: false,
        })
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Filter {
            inner: d,
            level: self.level,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Filter {
            inner: d,
            level: self.level,
        })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(seq)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(data)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.inner.visit_borrowed_str(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<V::Value, E> {
        self.inner.visit_borrowed_bytes(v)
    }

    forward_visit! {
        visit_bool(bool), visit_i8(i8), visit_i16(i16), visit_i32(i32), visit_i64(i64),
        visit_i128(i128), visit_u8(u8), visit_u16(u16), visit_u32(u32), visit_u64(u64),
        visit_u128(u128), visit_f32(f32), visit_f64(f64), visit_char(char), visit_str(&str),
        visit_string(String), visit_bytes(&[u8]), visit_byte_buf(Vec<u8>),
    }
}

struct FilterMap<A> {
    inner: A,
    level: Level,
    next_is_metadata: bool,
}

/// A map key, borrowed from the input when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'de>(PhantomData<&'de ()>);
        impl<'de> Visitor<'de> for KeyVisitor<'de> {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        d.deserialize_str(KeyVisitor(PhantomData))
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FilterMap<A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<Key<'de>>()? else {
                return Ok(None);
            };
            match self.level {
                Level::Metadata if key.as_str() == MANAGED_FIELDS => {
                    self.inner.next_value::<IgnoredAny>()?;
                    continue;
                }
                Level::Object => self.next_is_metadata = key.as_str() == "metadata",
                Level::Metadata => {}
            }
            return match key {
                Key::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s)),
                Key::Owned(s) => seed.deserialize(StringDeserializer::new(s)),
            }
            .map(Some);
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        if std::mem::take(&mut self.next_is_metadata) {
            self.inner.next_value_seed(FilterSeed {
                inner: seed,
                level: Level::Metadata,
            })
        } else {
            self.inner.next_value_seed(seed)
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct FilterSeed<S> {
    inner: S,
    level: Level,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for FilterSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Filter {
            inner: d,
            level: self.level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube_apimachinery::{DynamicObject, Object, ObjectList};

    const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"ns",
        "managedFields":[{"manager":"kubectl","operation":"Apply","fieldsV1":{"f:spec":{}}}],
        "labels":{"app":"web","managedFields":"kept"},"resourceVersion":"7"},
        "spec":{"containers":[{"name":"c","image":"nginx"}]},
        "status":{"phase":"Running"}}"#;

    #[test]
    fn typed_objects_lose_only_managed_fields() {
        let full: Pod = serde_json::from_str(POD).unwrap();
        assert_eq!(full.meta().managed_fields.as_ref().map(Vec::len), Some(1));
        let WithoutManagedFields(pod) =
            serde_json::from_str::<WithoutManagedFields<Pod>>(POD).unwrap();
        assert!(pod.meta().managed_fields.is_none());
        let mut expected = full.clone();
        expected.meta_mut().managed_fields = None;
        assert_eq!(pod, expected, "everything else decodes the same");
        // A label called managedFields is not metadata.managedFields.
        assert_eq!(pod.labels()["managedFields"], "kept");
    }

    #[test]
    fn dynamic_objects_and_lists() {
        let d: WithoutManagedFields<DynamicObject> = serde_json::from_str(POD).unwrap();
        assert!(d.0.metadata.managed_fields.is_none());
        assert_eq!(d.0.data["status"]["phase"], "Running");
        let list = format!(r#"{{"metadata":{{"resourceVersion":"9"}},"items":[{POD},{POD}]}}"#);
        let list: ObjectList<WithoutManagedFields<Pod>> = serde_json::from_str(&list).unwrap();
        assert_eq!(list.items.len(), 2);
        assert!(
            list.items
                .iter()
                .all(|p| p.0.meta().managed_fields.is_none())
        );
        // Escaped keys still match.
        let escaped = POD.replace("\"managedFields\":[", "\"managed\\u0046ields\":[");
        let p: WithoutManagedFields<Pod> = serde_json::from_str(&escaped).unwrap();
        assert!(p.0.meta().managed_fields.is_none());
        assert_eq!(p.0.name(), "a");
    }

    #[test]
    fn errors_still_surface() {
        let bad = POD.replace("\"name\":\"a\"", "\"name\":7");
        assert!(serde_json::from_str::<WithoutManagedFields<Pod>>(&bad).is_err());
    }
}
