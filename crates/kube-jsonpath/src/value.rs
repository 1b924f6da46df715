//! Input documents: the [`JsonValue`] trait and the order-preserving [`Document`].

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::Error;

/// A JSON value a template can be executed against.
///
/// Implemented for [`serde_json::Value`] and for [`Document`]; the trait is sealed.
///
/// Numbers follow kubectl's decoding: a number that is an integer and fits in 64 signed bits
/// is an integer (printed as such), every other number is a 64-bit float (printed the way
/// Go prints a `float64`, for example `1.234567e+06`).
///
/// Map wildcards (`.*`) and recursive descent (`..`) visit a map's values in the value's
/// iteration order: document order for [`Document`], key order for `serde_json::Value`
/// (unless serde_json's `preserve_order` feature is on). kubectl's own order is random, so
/// any order is one kubectl could print.
pub trait JsonValue: sealed::Sealed {}

impl JsonValue for serde_json::Value {}
impl JsonValue for Document {}

pub(crate) mod sealed {
    /// A read-only view of one JSON value.
    pub enum View<'a, V> {
        Null,
        Bool(bool),
        Int(i64),
        Float(f64),
        Str(&'a str),
        Array(&'a [V]),
        Object(&'a V),
    }

    /// The methods the evaluator needs; private so that the trait can evolve.
    pub trait Sealed: Sized {
        /// What kind of value this is.
        fn view(&self) -> View<'_, Self>;
        /// Looks up `key` when `self` is an object.
        fn get_key(&self, key: &str) -> Option<&Self>;
        /// Calls `f` on each entry in iteration order when `self` is an object.
        fn for_each_entry<'a>(&'a self, f: &mut dyn FnMut(&'a str, &'a Self));
        /// Number of entries when `self` is an object.
        fn entry_count(&self) -> usize;
    }
}

use sealed::{Sealed, View};

fn number_view<V>(n: &serde_json::Number) -> View<'_, V> {
    if let Some(i) = n.as_i64() {
        View::Int(i)
    } else if let Some(u) = n.as_u64() {
        // Above i64::MAX: kubectl falls back to float64.
        View::Float(u as f64)
    } else {
        View::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

impl Sealed for serde_json::Value {
    fn view(&self) -> View<'_, Self> {
        match self {
            serde_json::Value::Null => View::Null,
            serde_json::Value::Bool(b) => View::Bool(*b),
            serde_json::Value::Number(n) => number_view(n),
            serde_json::Value::String(s) => View::Str(s),
            serde_json::Value::Array(a) => View::Array(a),
            serde_json::Value::Object(_) => View::Object(self),
        }
    }

    fn get_key(&self, key: &str) -> Option<&Self> {
        match self {
            serde_json::Value::Object(map) => map.get(key),
            _ => None,
        }
    }

    fn for_each_entry<'a>(&'a self, f: &mut dyn FnMut(&'a str, &'a Self)) {
        if let serde_json::Value::Object(map) = self {
            for (k, v) in map {
                f(k, v);
            }
        }
    }

    fn entry_count(&self) -> usize {
        match self {
            serde_json::Value::Object(map) => map.len(),
            _ => 0,
        }
    }
}

/// A JSON document that keeps its maps in document order, with kubectl's number decoding.
///
/// Use it when the order of map wildcards matters (the CLI does), or to execute templates on
/// YAML input or on typed values:
///
/// ```
/// use kube_jsonpath::{Document, JsonPath};
///
/// let doc = Document::from_json_str(r#"{"labels": {"tier": "web", "app": "shop"}}"#)?;
/// let jp = JsonPath::parse("{.labels.*}")?;
/// assert_eq!(jp.render(&doc)?, "web shop");
/// # Ok::<(), kube_jsonpath::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Document {
    /// `null`
    #[default]
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number written without fraction or exponent that fits in an `i64`.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Document>),
    /// A map, in document order. A repeated key keeps its first position and its last value
    /// (Go's decoder keeps the last value too).
    Object(IndexMap<String, Document>),
}

impl Document {
    /// Parses a JSON text.
    ///
    /// Like kubectl, an escaped UTF-16 surrogate that is not part of a pair (`"\ud800"`)
    /// reads as U+FFFD.
    pub fn from_json_str(text: &str) -> Result<Self, Error> {
        serde_json::from_str(&replace_lone_surrogates(text))
            .map_err(|e| Error::Input(format!("invalid JSON: {e}")))
    }

    /// Parses JSON bytes.
    ///
    /// Like kubectl, invalid UTF-8 reads as U+FFFD (one for each maximal invalid sequence)
    /// and so does an escaped UTF-16 surrogate that is not part of a pair.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_json_str(&String::from_utf8_lossy(bytes))
    }

    /// Parses one YAML document.
    ///
    /// Non-string map keys (`1: x`, `true: y`) become strings, and floats whose JSON form is
    /// an integer (`-0.0`, `1234567.0`, `1e6`) become integers, as in kubectl's YAML to JSON
    /// conversion (the YAML is written out as JSON, which is read back with integers kept).
    #[cfg(feature = "yaml")]
    pub fn from_yaml_str(text: &str) -> Result<Self, Error> {
        let mut document: Document = serde_yaml_ng::from_str(text)
            .map_err(|e| Error::Input(format!("invalid YAML: {e}")))?;
        integral_floats_to_ints(&mut document);
        Ok(document)
    }

    /// Converts any serializable value (a `k8s-openapi` object, your own struct) by going
    /// through its JSON form, so struct fields keep their declaration order.
    pub fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::Input(format!("cannot serialize to JSON: {e}")))?;
        Self::from_json_slice(&bytes)
    }
}

impl From<serde_json::Value> for Document {
    fn from(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Document::Null,
            serde_json::Value::Bool(b) => Document::Bool(b),
            serde_json::Value::Number(n) => match number_view::<Document>(&n) {
                View::Int(i) => Document::Int(i),
                View::Float(f) => Document::Float(f),
                _ => Document::Null,
            },
            serde_json::Value::String(s) => Document::String(s),
            serde_json::Value::Array(a) => Document::Array(a.into_iter().map(Into::into).collect()),
            serde_json::Value::Object(m) => {
                Document::Object(m.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}

impl Sealed for Document {
    fn view(&self) -> View<'_, Self> {
        match self {
            Document::Null => View::Null,
            Document::Bool(b) => View::Bool(*b),
            Document::Int(i) => View::Int(*i),
            Document::Float(f) => View::Float(*f),
            Document::String(s) => View::Str(s),
            Document::Array(a) => View::Array(a),
            Document::Object(_) => View::Object(self),
        }
    }

    fn get_key(&self, key: &str) -> Option<&Self> {
        match self {
            Document::Object(map) => map.get(key),
            _ => None,
        }
    }

    fn for_each_entry<'a>(&'a self, f: &mut dyn FnMut(&'a str, &'a Self)) {
        if let Document::Object(map) = self {
            for (k, v) in map {
                f(k, v);
            }
        }
    }

    fn entry_count(&self) -> usize {
        match self {
            Document::Object(map) => map.len(),
            _ => 0,
        }
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DocumentVisitor)
    }
}

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Document, E> {
        Ok(Document::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Document, E> {
        Ok(Document::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Document, D::Error> {
        Document::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Document, E> {
        Ok(Document::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Document, E> {
        Ok(Document::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Document, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Document::Int(i),
            Err(_) => Document::Float(v as f64),
        })
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Document, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Document::Int(i),
            Err(_) => Document::Float(v as f64),
        })
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Document, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Document::Int(i),
            Err(_) => Document::Float(v as f64),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Document, E> {
        Ok(Document::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Document, E> {
        Ok(Document::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Document, E> {
        Ok(Document::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Document, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element::<Document>()? {
            items.push(item);
        }
        Ok(Document::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let mut entries = IndexMap::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(MapKey(key)) = map.next_key::<MapKey>()? {
            let value = map.next_value::<Document>()?;
            entries.insert(key, value);
        }
        Ok(Document::Object(entries))
    }
}

/// What kubectl's YAML to JSON conversion does to a number: Go's `encoding/json` writes a
/// float without fraction or exponent when it is integral and below 1e21 in magnitude, and
/// the JSON decoder reads that back as an integer when it fits in 64 bits.
#[cfg(feature = "yaml")]
fn integral_floats_to_ints(document: &mut Document) {
    let mut pending = vec![document];
    while let Some(value) = pending.pop() {
        match value {
            // i64's range: -2^63 is exact as an f64, 2^63 is the first float past it.
            Document::Float(f)
                if f.fract() == 0.0
                    && *f >= -9_223_372_036_854_775_808.0
                    && *f < 9_223_372_036_854_775_808.0 =>
            {
                *value = Document::Int(*f as i64);
            }
            Document::Array(items) => pending.extend(items.iter_mut()),
            Document::Object(map) => pending.extend(map.values_mut()),
            _ => {}
        }
    }
}

/// Rewrites escaped UTF-16 surrogates that are not part of a pair as `\ufffd`, the way Go's
/// JSON decoder reads them: a high surrogate must be followed at once by an escaped low
/// one, otherwise it alone becomes U+FFFD (and what follows is read on its own).
fn replace_lone_surrogates(text: &str) -> std::borrow::Cow<'_, str> {
    fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
        let digits = bytes.get(at..at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        u32::from_str_radix(text, 16).ok()
    }
    let escape_at = |bytes: &[u8], at: usize| -> Option<u32> {
        if bytes.get(at) == Some(&b'\\') && bytes.get(at + 1) == Some(&b'u') {
            hex4(bytes, at + 2)
        } else {
            None
        }
    };
    if !text.contains("\\u") {
        return std::borrow::Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if !in_string {
            in_string = c == b'"';
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_string = false;
                i += 1;
            }
            b'\\' => match escape_at(bytes, i) {
                Some(0xD800..=0xDBFF)
                    if escape_at(bytes, i + 6)
                        .is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) =>
                {
                    // A valid pair.
                    i += 12;
                }
                Some(0xD800..=0xDFFF) => {
                    out.push_str(&text[copied..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    copied = i;
                }
                Some(_) => i += 6,
                None => i += 2,
            },
            _ => i += 1,
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied.min(text.len())..]);
    std::borrow::Cow::Owned(out)
}

/// A map key; YAML allows scalars other than strings, which become their text.
struct MapKey(String);

impl<'de> Deserialize<'de> for MapKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = MapKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<MapKey, E> {
                Ok(MapKey(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<MapKey, E> {
                let mut out = Vec::new();
                crate::print::go_float_v(&mut out, v);
                Ok(MapKey(String::from_utf8_lossy(&out).into_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MapKey, E> {
                Ok(MapKey("null".to_string()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_kubectl_decoding() {
        let doc = Document::from_json_str(
            r#"[1, -0, 1.0, 1e3, 9223372036854775807, 9223372036854775808, -9223372036854775808]"#,
        )
        .expect("json");
        let Document::Array(items) = doc else {
            panic!("array expected")
        };
        assert_eq!(items[0], Document::Int(1));
        assert!(matches!(items[1], Document::Int(0) | Document::Float(_)));
        assert_eq!(items[2], Document::Float(1.0));
        assert_eq!(items[3], Document::Float(1000.0));
        assert_eq!(items[4], Document::Int(i64::MAX));
        assert_eq!(items[5], Document::Float(9223372036854775808.0));
        assert_eq!(items[6], Document::Int(i64::MIN));
    }

    #[test]
    fn maps_keep_document_order_and_last_duplicate() {
        let doc = Document::from_json_str(r#"{"b": 1, "a": 2, "b": 3}"#).expect("json");
        let Document::Object(map) = doc else {
            panic!("object expected")
        };
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(map["b"], Document::Int(3));
    }

    #[test]
    fn from_serde_json_value_and_serialize() {
        let value =
            serde_json::json!({"x": [1, 2.5, "s", null, true], "big": 18446744073709551615u64});
        let doc = Document::from(value.clone());
        let Document::Object(map) = &doc else {
            panic!("object expected")
        };
        assert_eq!(map["big"], Document::Float(18446744073709551615.0));
        assert_eq!(Document::from_serialize(&value).expect("serialize"), doc);

        #[derive(serde::Serialize)]
        struct Pod {
            zeta: u8,
            alpha: &'static str,
        }
        let doc = Document::from_serialize(&Pod {
            zeta: 1,
            alpha: "a",
        })
        .expect("serialize");
        let Document::Object(map) = doc else {
            panic!("object expected")
        };
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["zeta", "alpha"]);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(Document::from_json_str("{").is_err());
        assert!(Document::from_json_slice(b"\xff").is_err());
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn yaml_documents() {
        let doc = Document::from_yaml_str("b: 1\na: [x, 2.5]\n1: one\ntrue: yes\n").expect("yaml");
        let Document::Object(map) = doc else {
            panic!("object expected")
        };
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["b", "a", "1", "true"]);
        assert_eq!(
            map["a"],
            Document::Array(vec![Document::String("x".into()), Document::Float(2.5)])
        );
        assert!(Document::from_yaml_str("a: [").is_err());
    }
}
