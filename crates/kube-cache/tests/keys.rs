//! client-go's object-names_test, the split errors and the DeletedFinalStateUnknown key cases.

mod common;

use std::sync::Arc;

use common::{Obj, mk};
use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::Object;
use kube_cache::{
    DeletedFinalStateUnknown, DeltaFifo, KeyError, ObjectKey, ObjectOrTombstone,
    deletion_handling_meta_namespace_key, meta_namespace_key, split_meta_namespace_key,
};

#[test]
fn split_meta_namespace_key_table() {
    type Case<'a> = (&'a str, Result<(&'a str, &'a str), ()>);
    let cases: &[Case] = &[
        ("name", Ok(("", "name"))),
        ("ns/name", Ok(("ns", "name"))),
        ("", Ok(("", ""))),
        ("/", Ok(("", ""))),
        ("/name", Ok(("", "name"))),
        ("ns/", Ok(("ns", ""))),
        ("a/b/c", Err(())),
        ("//", Err(())),
    ];
    for (key, want) in cases {
        match (split_meta_namespace_key(key), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, *want, "{key}"),
            (Err(KeyError::UnexpectedFormat { key: k }), Err(())) => assert_eq!(k, *key),
            (got, want) => panic!("{key}: got {got:?}, want {want:?}"),
        }
    }
    assert_eq!(
        split_meta_namespace_key("a/b/c").unwrap_err().to_string(),
        r#"unexpected key format: "a/b/c""#
    );
}

/// client-go's TestObjectNames: random strings over "abcdefghi/" parse iff at most one `/`,
/// and print back to themselves (modulo a leading `/`).
#[test]
fn object_names_round_trip() {
    let chars = b"abcdefghi/";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..1000 {
        let mut encoded = String::new();
        for _ in 0..10 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            encoded.push(chars[(seed % chars.len() as u64) as usize] as char);
        }
        let parts: Vec<&str> = encoded.split('/').collect();
        let parsed = encoded.parse::<ObjectKey>();
        assert_eq!(parts.len() > 2, parsed.is_err(), "{encoded}");
        let Ok(key) = parsed else { continue };
        let expected = if parts.len() == 2 {
            ObjectKey::new(parts[0], parts[1])
        } else {
            ObjectKey::cluster(encoded.clone())
        };
        assert_eq!(key, expected);
        let mut recoded = key.to_string();
        if encoded.starts_with('/') {
            recoded.insert(0, '/');
        }
        assert_eq!(encoded, recoded);
    }
}

#[test]
fn keys_of_objects() {
    let mut pod = Pod::default();
    pod.meta_mut().name = Some("web".into());
    assert_eq!(meta_namespace_key(&pod), "web");
    pod.meta_mut().namespace = Some(String::new());
    assert_eq!(
        meta_namespace_key(&pod),
        "web",
        "an empty namespace is none"
    );
    pod.meta_mut().namespace = Some("prod".into());
    assert_eq!(meta_namespace_key(&pod), "prod/web");
    assert_eq!(ObjectKey::of(&pod), ObjectKey::new("prod", "web"));
    assert_eq!(ObjectKey::of(&pod).namespace(), Some("prod"));
    assert_eq!(ObjectKey::cluster("n").namespace(), None);
}

/// client-go's TestDeltaFIFO_KeyOf and the DeletionHandlingMetaNamespaceKeyFunc cases.
#[test]
fn deletion_handling_keys() {
    let fifo = DeltaFifo::<Obj>::default();
    let table: Vec<(ObjectOrTombstone<Obj>, &str)> = vec![
        (mk("A", 0).into(), "A"),
        (
            DeletedFinalStateUnknown {
                key: "B".into(),
                obj: None,
            }
            .into(),
            "B",
        ),
        (
            DeletedFinalStateUnknown {
                key: "ns/D".into(),
                obj: Some(mk("other", 1)),
            }
            .into(),
            "ns/D",
        ),
    ];
    for (obj, key) in &table {
        assert_eq!(fifo.key_of(obj), *key);
        assert_eq!(deletion_handling_meta_namespace_key(obj), *key);
    }
    let tombstone: ObjectOrTombstone<Obj> = DeletedFinalStateUnknown {
        key: "x".into(),
        obj: Some(mk("x", 3)),
    }
    .into();
    assert!(tombstone.is_tombstone());
    assert_eq!(
        tombstone.object().map(Arc::as_ref),
        Some(mk("x", 3).as_ref())
    );
    assert!(ObjectOrTombstone::Object(mk("y", 1)).tombstone().is_none());
}
