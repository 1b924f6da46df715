//! client-go's store_test, index_test and thread_safe_store_test, ported to `Indexer`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{Obj, mk, val};
use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::Object;
use kube_cache::{IndexError, Indexer, Indexers, NAMESPACE_INDEX};

fn by_val() -> Indexers<Obj> {
    Indexers::new().with("by_val", |obj: &Obj, out| out.push(val(obj)))
}

/// client-go's doTestStore (TestCache).
fn do_test_store(store: &Indexer<Obj>) {
    store.add(mk("foo", "bar"));
    assert_eq!(val(&store.get(&mk("foo", "")).expect("inserted")), "bar");
    store.update(mk("foo", "baz"));
    assert_eq!(val(&store.get(&mk("foo", "")).expect("updated")), "baz");
    store.delete(mk("foo", ""));
    assert!(store.get(&mk("foo", "")).is_none(), "found deleted item");

    store.add(mk("a", "b"));
    store.add(mk("c", "d"));
    store.add(mk("e", "e"));
    let found: BTreeSet<String> = store.list().iter().map(|o| val(o).to_string()).collect();
    assert_eq!(found, BTreeSet::from(["b".into(), "d".into(), "e".into()]));

    store.replace([mk("foo", "foo"), mk("bar", "bar")], "0");
    let found: BTreeSet<String> = store.list().iter().map(|o| val(o).to_string()).collect();
    assert_eq!(found, BTreeSet::from(["foo".into(), "bar".into()]));
}

#[test]
fn cache() {
    do_test_store(
        &Indexer::builder()
            .without_namespace_index()
            .build()
            .unwrap(),
    );
    do_test_store(&Indexer::new());
    do_test_store(&Indexer::builder().indexers(by_val()).build().unwrap());
}

/// client-go's doTestIndex (TestIndex).
#[test]
fn index() {
    let indexer = Indexer::builder().indexers(by_val()).build().unwrap();
    indexer.add(mk("a", "b"));
    indexer.add(mk("c", "b"));
    indexer.add(mk("e", "f"));
    indexer.add(mk("g", "h"));
    let expected = [("b", vec!["a", "c"]), ("f", vec!["e"]), ("h", vec!["g"])];
    for (value, names) in expected {
        let found: BTreeSet<String> = indexer
            .index("by_val", &mk("", value))
            .unwrap()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let names: BTreeSet<String> = names.into_iter().map(String::from).collect();
        assert_eq!(found, names, "index {value}");
    }
}

fn pod(name: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Pod {
    let mut pod = Pod::default();
    pod.meta_mut().name = Some(name.into());
    let map = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    pod.meta_mut().labels = Some(map(labels));
    pod.meta_mut().annotations = Some(map(annotations));
    pod
}

/// client-go's TestGetIndexFuncValues.
#[test]
fn get_index_func_values() {
    let index = Indexer::<Pod>::builder()
        .index("testmodes", |pod, out| {
            out.push(pod.labels().get("foo").map_or("", String::as_str))
        })
        .build()
        .unwrap();
    index.add(pod("one", &[("foo", "bar")], &[]));
    index.add(pod("two", &[("foo", "bar")], &[]));
    index.add(pod("tre", &[("foo", "biz")], &[]));
    let mut keys = index.list_index_func_values("testmodes");
    keys.sort();
    assert_eq!(keys, ["bar", "biz"]);
    assert!(index.list_index_func_values("nope").is_empty());
}

fn users_index() -> Indexer<Pod> {
    Indexer::<Pod>::builder()
        .index("byUser", |pod, out| {
            out.extend(
                pod.annotations()
                    .get("users")
                    .map_or("", String::as_str)
                    .split(','),
            )
        })
        .build()
        .unwrap()
}

fn names(pods: &[Arc<Pod>]) -> BTreeSet<String> {
    pods.iter().map(|p| p.name().to_string()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// client-go's TestMultiIndexKeys.
#[test]
fn multi_index_keys() {
    let index = users_index();
    let pod1 = pod("one", &[], &[("users", "ernie,bert")]);
    let pod2 = pod("two", &[], &[("users", "bert,oscar")]);
    let pod3 = pod("tre", &[], &[("users", "ernie,elmo")]);
    index.add(pod1);
    index.add(pod2.clone());
    index.add(pod3.clone());
    let expected = [
        ("ernie", set(&["one", "tre"])),
        ("bert", set(&["one", "two"])),
        ("elmo", set(&["tre"])),
        ("oscar", set(&["two"])),
        ("elmo1", set(&[])),
    ];
    for (user, want) in &expected {
        assert_eq!(
            &names(&index.by_index("byUser", user).unwrap()),
            want,
            "{user}"
        );
    }
    index.delete(pod3);
    assert_eq!(
        names(&index.by_index("byUser", "ernie").unwrap()),
        set(&["one"])
    );
    assert!(index.by_index("byUser", "elmo").unwrap().is_empty());

    let mut copy_of_pod2 = pod2;
    copy_of_pod2
        .meta_mut()
        .annotations
        .as_mut()
        .unwrap()
        .insert("users".into(), "oscar".into());
    index.update(copy_of_pod2);
    assert_eq!(
        names(&index.by_index("byUser", "bert").unwrap()),
        set(&["one"])
    );
}

fn string_index(split: bool) -> Indexer<Obj> {
    Indexer::builder()
        .without_namespace_index()
        .index("testIndexer", move |obj: &Obj, out| {
            if split {
                out.extend(val(obj).split(','))
            } else {
                out.push(val(obj))
            }
        })
        .build()
        .unwrap()
}

/// client-go's TestThreadSafeStoreDeleteRemovesEmptySetsFromIndex.
#[test]
fn delete_removes_empty_sets_from_index() {
    let store = string_index(false);
    store.add(mk("testKey", "testKey"));
    assert_eq!(
        store.index_keys("testIndexer", "testKey").unwrap(),
        ["testKey"]
    );
    store.delete_key("testKey");
    assert!(
        store
            .index_keys("testIndexer", "testKey")
            .unwrap()
            .is_empty()
    );
    assert!(
        store.list_index_func_values("testIndexer").is_empty(),
        "the empty set must be gone from the index"
    );
}

/// client-go's TestThreadSafeStoreAddKeepsNonEmptySetPostDeleteFromIndex.
#[test]
fn add_keeps_non_empty_set_post_delete_from_index() {
    let store = string_index(false);
    store.add(mk("retain", "testIndex"));
    store.add(mk("delete", "testIndex"));
    assert_eq!(
        store.index_keys("testIndexer", "testIndex").unwrap().len(),
        2
    );
    store.delete_key("delete");
    assert_eq!(
        store.index_keys("testIndexer", "testIndex").unwrap(),
        ["retain"]
    );
    assert_eq!(store.list_index_func_values("testIndexer"), ["testIndex"]);
}

/// client-go's TestThreadSafeStoreIndexingFunctionsWithMultipleValues.
#[test]
fn indexing_functions_with_multiple_values() {
    let store = string_index(true);
    let compare = |value: &str, want: &[&str]| {
        assert_eq!(
            store.index_keys("testIndexer", value).unwrap(),
            want,
            "index value {value}"
        );
    };
    store.add(mk("key1", "foo"));
    store.add(mk("key2", "bar"));
    compare("foo", &["key1"]);
    compare("bar", &["key2"]);
    store.update(mk("key2", "foo,bar"));
    compare("foo", &["key1", "key2"]);
    compare("bar", &["key2"]);
    store.update(mk("key1", "foo,bar"));
    compare("foo", &["key1", "key2"]);
    compare("bar", &["key1", "key2"]);
    store.add(mk("key3", "foo,bar,baz"));
    compare("foo", &["key1", "key2", "key3"]);
    compare("bar", &["key1", "key2", "key3"]);
    compare("baz", &["key3"]);
    store.update(mk("key1", "foo"));
    compare("foo", &["key1", "key2", "key3"]);
    compare("bar", &["key2", "key3"]);
    compare("baz", &["key3"]);
    store.update(mk("key2", "bar"));
    compare("foo", &["key1", "key3"]);
    compare("bar", &["key2", "key3"]);
    compare("baz", &["key3"]);
    store.delete_key("key1");
    compare("foo", &["key3"]);
    compare("bar", &["key2", "key3"]);
    compare("baz", &["key3"]);
    store.delete_key("key3");
    compare("foo", &[]);
    compare("bar", &["key2"]);
    compare("baz", &[]);
}

fn with_rv(name: &str, rv: &str) -> Arc<Obj> {
    let mut obj = Arc::unwrap_or_clone(mk(name, 0));
    obj.meta_mut().resource_version = Some(rv.into());
    Arc::new(obj)
}

/// client-go's TestThreadSafeStoreRV (transactions left out: not provided).
#[test]
fn last_sync_resource_version() {
    let store = Indexer::<Obj>::new();
    assert_eq!(store.last_sync_resource_version(), "");
    store.add(with_rv("key1", "10"));
    assert_eq!(store.last_sync_resource_version(), "10");
    store.add(with_rv("key3", "10"));
    assert_eq!(store.last_sync_resource_version(), "10");
    store.add(with_rv("key4", "20"));
    assert_eq!(store.last_sync_resource_version(), "20");
    store.delete(with_rv("key4", "30"));
    assert_eq!(
        store.last_sync_resource_version(),
        "30",
        "delete with object"
    );
    store.add(with_rv("key6", "40"));
    store.delete_key("key6");
    assert_eq!(
        store.last_sync_resource_version(),
        "40",
        "nil delete keeps it"
    );

    store.replace([with_rv("key3", "40"), with_rv("key2", "30")], "50");
    assert_eq!(store.last_sync_resource_version(), "50");
    store.bookmark("60");
    assert_eq!(store.last_sync_resource_version(), "60");
}

#[test]
fn unknown_index_is_an_error() {
    let store = Indexer::<Obj>::new();
    let err = store.by_index("nope", "x").unwrap_err();
    assert_eq!(err.to_string(), "Index with name nope does not exist");
    assert!(matches!(
        store.index_keys("nope", "x"),
        Err(IndexError::NoSuchIndex { .. })
    ));
    assert!(store.index("nope", &mk("a", 1)).is_err());
}

/// Adding indexers after items exist indexes them (client-go >= 1.27); a taken name is refused
/// and nothing is installed.
#[test]
fn add_indexers_after_items() {
    let store = Indexer::<Obj>::new();
    store.add(mk("a", "x"));
    store.add(mk("b", "y"));
    store.add_indexers(by_val()).unwrap();
    assert_eq!(store.index_keys("by_val", "x").unwrap(), ["a"]);
    store.add(mk("c", "x"));
    assert_eq!(store.index_keys("by_val", "x").unwrap(), ["a", "c"]);

    let err = store
        .add_indexers(by_val().with("other", |o: &Obj, out| out.push(o.name())))
        .unwrap_err();
    assert_eq!(
        err,
        IndexError::Conflict {
            names: vec!["by_val".into()]
        }
    );
    assert_eq!(err.to_string(), r#"indexer conflict: ["by_val"]"#);
    assert_eq!(
        store.index_names(),
        [NAMESPACE_INDEX, "by_val"],
        "nothing installed"
    );

    let twice = Indexers::new()
        .with("dup", |o: &Obj, out| out.push(o.name()))
        .with("dup", |o: &Obj, out| out.push(o.name()));
    assert!(matches!(
        store.add_indexers(twice.clone()),
        Err(IndexError::Conflict { .. })
    ));
    assert!(Indexer::builder().indexers(twice).build().is_err());
}

#[test]
fn namespace_index_and_cluster_scoped_objects() {
    let store = Indexer::<Pod>::new();
    let mut a = pod("a", &[], &[]);
    a.meta_mut().namespace = Some("ns1".into());
    let b = pod("b", &[], &[]);
    store.add(a.clone());
    store.add(b);
    assert_eq!(store.index_keys(NAMESPACE_INDEX, "ns1").unwrap(), ["ns1/a"]);
    assert_eq!(store.index_keys(NAMESPACE_INDEX, "").unwrap(), ["b"]);
    // Moving an object to another namespace is another key: the old one stays.
    a.meta_mut().namespace = Some("ns2".into());
    store.update(a);
    assert_eq!(store.len(), 3);
    assert!(store.contains_key("ns1/a") && store.contains_key("ns2/a"));
}

#[test]
fn replace_rebuilds_indices_and_keeps_last_duplicate() {
    let store = Indexer::builder().indexers(by_val()).build().unwrap();
    store.add(mk("old", "x"));
    store.replace([mk("a", "x"), mk("a", "y"), mk("b", "y")], "7");
    assert_eq!(
        store.index_keys("by_val", "x").unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(store.index_keys("by_val", "y").unwrap(), ["a", "b"]);
    let mut keys = store.list_keys();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn readers_share_objects() {
    let store = Indexer::<Obj>::new();
    let obj = mk("a", 1);
    store.add(Arc::clone(&obj));
    let got = store.get_by_key("a").unwrap();
    assert!(Arc::ptr_eq(&obj, &got), "no deep clone");
    assert!(Arc::ptr_eq(&obj, &store.list()[0]));
}

/// Readers running while a writer moves objects between index values never see an object
/// under a value it does not have, nor a key without its object.
#[test]
fn readers_never_see_a_half_updated_index() {
    let store = Indexer::builder().indexers(by_val()).build().unwrap();
    for i in 0..64 {
        store.add(mk(&format!("k{i}"), "a"));
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut checks = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || checks == 0 {
                    for value in ["a", "b"] {
                        for obj in store.by_index("by_val", value).unwrap() {
                            assert_eq!(val(&obj), value, "{} listed under {value}", obj.name());
                        }
                        for key in store.index_keys("by_val", value).unwrap() {
                            assert!(store.get_by_key(&key).is_some(), "{key} indexed but absent");
                        }
                    }
                    checks += 1;
                }
            });
        }
        for round in 0..2000 {
            let value = if round % 2 == 0 { "b" } else { "a" };
            for i in 0..64 {
                store.update(mk(&format!("k{i}"), value));
            }
            if round % 100 == 0 {
                store.replace((0..64).map(|i| mk(&format!("k{i}"), value)), "1");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(store.index_keys("by_val", "a").unwrap().len(), 64);
}

/// Keys longer than the stack buffer take the allocating path; both agree.
#[test]
fn long_and_short_keys() {
    let store = Indexer::<Pod>::new();
    for name_len in [1usize, 100, 158, 159, 160, 300] {
        let mut p = pod(&"x".repeat(name_len), &[], &[]);
        p.meta_mut().namespace = Some("ns".into());
        store.add(p.clone());
        let key = kube_cache::meta_namespace_key(&p);
        assert!(store.get_by_key(&key).is_some(), "{name_len}");
        assert!(store.get(&p).is_some());
        assert!(store.delete(p).is_some());
        assert!(!store.contains_key(&key));
    }
    assert!(store.is_empty());
    assert!(store.list_index_func_values(NAMESPACE_INDEX).is_empty());
}
