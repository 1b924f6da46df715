//! Tests of `Compact<K>` and of its binary encoding.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use proptest::prelude::*;
use serde_json::Value;

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
    assert_eq!(pod.rest_json(), rest_of(POD));
    assert_eq!(
        pod.rest_json(),
        r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"app","image":"nginx:1.27","args":["a b","c\"d"]}]},"status":{"phase":"Running"}}"#
    );

    let compact_input = r#"{"kind":"Pod","metadata":{"name":"a"},"spec":{"x":"a b"}}"#;
    let pod: Compact<Pod> = serde_json::from_str(compact_input).unwrap();
    assert_eq!(pod.rest_json(), r#"{"kind":"Pod","spec":{"x":"a b"}}"#);
}

#[test]
fn whitespace_inside_strings_is_kept() {
    let pretty = "{\n \"kind\": \"Pod\",\n \"spec\": {\"a\": \"x y\\\" z\", \"b\": [1,\n 2]}\n}";
    let pod: Compact<Pod> = serde_json::from_str(pretty).unwrap();
    assert_eq!(
        pod.rest_json(),
        r#"{"kind":"Pod","spec":{"a":"x y\" z","b":[1,2]}}"#
    );
}

#[test]
fn decodes_to_the_same_typed_object() {
    let compact: Compact<Pod> = serde_json::from_str(POD).unwrap();
    let typed: Pod = serde_json::from_str(POD).unwrap();
    assert_eq!(compact.decode().unwrap(), typed);
    let from_object = Compact::from_object(&typed).unwrap();
    assert_eq!(from_object.metadata(), compact.metadata());
    assert_eq!(from_object.decode().unwrap(), typed);
    let status: k8s_openapi::api::core::v1::PodStatus = compact.field("status").unwrap().unwrap();
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

/// The top-level fields of a JSON object but `metadata`, in their order, without
/// insignificant whitespace: what `rest_json` gives.
fn rest_of(json: &str) -> String {
    let mut de = serde_json::Deserializer::from_str(json);
    let fields = serde::Deserializer::deserialize_map(&mut de, RawFields).unwrap();
    let entries: Vec<String> = fields
        .into_iter()
        .filter(|(key, _)| key != "metadata")
        .map(|(key, raw)| format!("{}:{}", Value::from(key), minify(raw.get())))
        .collect();
    format!("{{{}}}", entries.join(","))
}

struct RawFields;

impl<'de> de::Visitor<'de> for RawFields {
    type Value = Vec<(String, &'de serde_json::value::RawValue)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            fields.push((key, map.next_value()?));
        }
        Ok(fields)
    }
}

/// `json` without whitespace outside strings.
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_ascii_whitespace() {
            continue;
        }
        out.push(c);
    }
    out
}

const REALISTIC: &str = include_str!("testdata/pod-realistic.json");

#[test]
fn a_realistic_pod_round_trips() {
    let typed: Pod = serde_json::from_str(REALISTIC).unwrap();
    let compact: Compact<Pod> = serde_json::from_str(REALISTIC).unwrap();
    assert_eq!(compact.decode().unwrap(), typed);
    assert_eq!(compact.field::<Value>("kind").unwrap().unwrap(), "Pod");
    assert_eq!(compact.field("spec").unwrap(), typed.spec);
    assert_eq!(compact.field("status").unwrap(), typed.status);

    // Serialized, it is the server's JSON (compact, keys in the same order), metadata
    // after apiVersion and kind.
    let rest = rest_of(REALISTIC);
    assert_eq!(compact.rest_json(), rest);
    let metadata = serde_json::to_string(compact.metadata()).unwrap();
    assert_eq!(
        serde_json::to_string(&compact).unwrap(),
        rest.replacen(
            r#""kind":"Pod","#,
            &format!(r#""kind":"Pod","metadata":{metadata},"#),
            1
        )
    );

    // The dictionary earns its keep: the rest takes well under half its JSON.
    assert!(
        compact.rest.len() * 2 < rest.len(),
        "{} bytes for {} of JSON",
        compact.rest.len(),
        rest.len()
    );
}

#[test]
fn numbers_keep_their_value() {
    let json = r#"{"a":[0,127,128,-1,-128,9223372036854775807,-9223372036854775808,18446744073709551615,1.5,-0.0,1e300,2.0]}"#;
    let compact: Compact<ConfigMap> = serde_json::from_str(json).unwrap();
    let value: Value = serde_json::from_str(json).unwrap();
    assert_eq!(compact.rest_json(), value.to_string());
    assert_eq!(compact.field::<Value>("a").unwrap().unwrap(), value["a"]);
    assert_eq!(
        compact.field::<Vec<f64>>("a").unwrap().unwrap()[8..],
        [1.5, -0.0, 1e300, 2.0]
    );
    assert!(compact.field::<Vec<u8>>("a").is_err());
}

#[test]
fn enums_decode_as_from_json() {
    #[derive(Deserialize, PartialEq, Debug)]
    enum Shape {
        Empty,
        Circle(f64),
        Rect { w: u32, h: u32 },
        Pair(i8, i8),
    }
    let json = r#"{"shapes":["Empty",{"Circle":1.5},{"Rect":{"w":2,"h":3}},{"Pair":[-1,1]}]}"#;
    let compact: Compact<ConfigMap> = serde_json::from_str(json).unwrap();
    let expected: Vec<Shape> =
        serde_json::from_str(&serde_json::from_str::<Value>(json).unwrap()["shapes"].to_string())
            .unwrap();
    assert_eq!(
        compact.field::<Vec<Shape>>("shapes").unwrap().unwrap(),
        expected
    );
    let bad: Compact<ConfigMap> =
        serde_json::from_str(r#"{"s":{"Circle":1,"Empty":null}}"#).unwrap();
    assert!(bad.field::<Shape>("s").is_err());
    let bad: Compact<ConfigMap> = serde_json::from_str(r#"{"s":3}"#).unwrap();
    assert!(bad.field::<Shape>("s").is_err());
}

#[test]
fn a_tuple_with_trailing_elements_is_an_error() {
    let compact: Compact<ConfigMap> = serde_json::from_str(r#"{"t":[1,2,3]}"#).unwrap();
    assert_eq!(compact.field::<(u8, u8, u8)>("t").unwrap(), Some((1, 2, 3)));
    assert!(compact.field::<(u8, u8)>("t").is_err());
}

/// A typed object whose every other field is kept as JSON values.
#[derive(Deserialize, PartialEq, Debug)]
struct Anything {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// Keys: words of the dictionary, and others (unicode, escapes, empty).
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "name",
            "spec",
            "containers",
            "apiVersion",
            "kind",
            "TCP"
        ])
        .prop_map(str::to_string),
        "\\PC{0,12}",
        "[\"\\\\\n\t\u{0}\u{1f}é✓😀a]{0,6}",
    ]
    .prop_filter("metadata is typed", |key| key != "metadata")
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), -200i64..200].prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        key().prop_map(Value::from),
        prop::sample::select(vec!["True", "IfNotPresent", "Running", "v1"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn json_round_trips(
        entries in prop::collection::vec((key(), json_value()), 0..6),
        name in proptest::option::of("[a-z]{1,8}"),
    ) {
        let object: serde_json::Map<String, Value> = entries.into_iter().collect();
        let rest_json = Value::Object(object.clone()).to_string();
        // As serde_json reads it back (its float parsing is not exact).
        let mut object: serde_json::Map<String, Value> = serde_json::from_str(&rest_json).unwrap();
        let compact_original = Value::Object(object.clone()).to_string();
        let json = match &name {
            Some(name) if object.is_empty() => format!(r#"{{"metadata":{{"name":"{name}"}}}}"#),
            Some(name) => format!(r#"{{"metadata":{{"name":"{name}"}},{}"#, &rest_json[1..]),
            None => rest_json.clone(),
        };
        if let Some(name) = &name {
            object.insert("metadata".into(), serde_json::json!({"name": name}));
        }

        let compact: Compact<Anything> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(compact.rest_json(), compact_original);
        prop_assert_eq!(compact.metadata().name.as_deref(), name.as_deref());
        prop_assert_eq!(
            compact.decode().unwrap(),
            serde_json::from_str::<Anything>(&json).unwrap()
        );
        for (key, value) in &object {
            if key != "metadata" {
                prop_assert_eq!(&compact.field::<Value>(key).unwrap().unwrap(), value);
            }
        }
        // Serialized: the same object, read back as serde_json reads it.
        let serialized: Value =
            serde_json::from_str(&serde_json::to_string(&compact).unwrap()).unwrap();
        let mut expected = object.clone();
        expected.entry("metadata").or_insert(serde_json::json!({}));
        let expected: Value = serde_json::from_str(&Value::Object(expected).to_string()).unwrap();
        prop_assert_eq!(serialized, expected);
        // Every strict prefix of the encoding is corrupt.
        for len in 0..compact.rest.len() {
            prop_assert!(decode::from_bytes::<Value>(&compact.rest[..len]).is_err());
        }
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic(
        mut bytes in prop::collection::vec(any::<u8>(), 0..256),
        object in any::<bool>(),
    ) {
        if object {
            bytes.insert(0, encode::OBJECT);
        }
        let _ = decode::from_bytes::<Value>(&bytes);
        let _ = decode::from_bytes::<Pod>(&bytes);
        let reader = Reader::new(&bytes);
        let _ = serde_json::to_string(&Node { reader: &reader, depth: 0 });
        let compact = Compact::<Pod> {
            metadata: ObjectMeta::default(),
            rest: bytes.into_boxed_slice(),
            _kind: PhantomData,
        };
        let _ = compact.decode();
        let _ = compact.field::<Value>("spec");
        let _ = serde_json::to_string(&compact);
    }

    #[test]
    fn mutated_encodings_are_an_error_not_a_panic(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let compact: Compact<Pod> = serde_json::from_str(REALISTIC).unwrap();
        let mut bytes = compact.rest.to_vec();
        let at = at.index(bytes.len());
        bytes[at] = byte;
        if let Ok(value) = decode::from_bytes::<Value>(&bytes) {
            // A byte changed into another valid encoding: still an object.
            prop_assert!(value.is_object());
        }
        let _ = decode::from_bytes::<Pod>(&bytes);
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = vec![encode::ARRAY; 100_000];
    assert!(decode::from_bytes::<Value>(&deep).is_err());
    let reader = Reader::new(&deep);
    assert!(reader.skip(0).is_err());
    let reader = Reader::new(&deep);
    assert!(
        serde_json::to_string(&Node {
            reader: &reader,
            depth: 0
        })
        .is_err()
    );
    // As deep as serde_json allows is fine.
    let json = format!(r#"{{"a":{}{}}}"#, "[".repeat(126), "]".repeat(126));
    let compact: Compact<ConfigMap> = serde_json::from_str(&json).unwrap();
    assert_eq!(compact.rest_json(), json);
    assert!(compact.field::<Value>("a").unwrap().is_some());
}
