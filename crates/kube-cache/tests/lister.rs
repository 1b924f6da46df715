//! client-go's listers_test (TestListAll, scaled down) and the namespaced lister.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube_apimachinery::Object;
use kube_apimachinery::labels::Selector;
use kube_cache::{Indexer, Lister};

fn obj(ns: &str, name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap::default();
    if !ns.is_empty() {
        cm.meta_mut().namespace = Some(ns.into());
    }
    cm.meta_mut().name = Some(name.into());
    cm.meta_mut().labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    cm
}

fn store(objects: usize, matching: usize, labels: &[(&str, &str)]) -> Indexer<ConfigMap> {
    let store = Indexer::builder()
        .without_namespace_index()
        .build()
        .unwrap();
    for i in 0..objects {
        let labels = if i < matching { labels } else { &[][..] };
        store.add(obj("", &format!("obj-{i}"), labels));
    }
    store
}

#[test]
fn list_all() {
    let cases = [
        (
            "subset match",
            10_000,
            1_000,
            &[("match", "true")][..],
            "match=true",
            1_000,
        ),
        ("all match", 10_000, 0, &[][..], "", 10_000),
        (
            "no match",
            10_000,
            0,
            &[("nomatch", "true")][..],
            "match=true",
            0,
        ),
    ];
    for (name, objects, matching, labels, selector, expected) in cases {
        let lister = Lister::new(store(objects, matching, labels));
        let selector = Selector::parse(selector).unwrap();
        assert_eq!(lister.list(&selector).len(), expected, "{name}");
    }
}

#[test]
fn namespaced_listing_and_get() {
    let indexer = Indexer::new();
    indexer.add(obj("a", "x", &[("app", "web")]));
    indexer.add(obj("a", "y", &[("app", "db")]));
    indexer.add(obj("b", "x", &[("app", "web")]));
    let lister = Lister::new(indexer.clone());
    let web = Selector::parse("app=web").unwrap();
    let names = |objs: Vec<Arc<ConfigMap>>| {
        let mut keys: Vec<String> = objs
            .iter()
            .map(|o| format!("{}/{}", o.namespace().unwrap_or(""), o.name()))
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(names(lister.namespaced("a").list(&web)), ["a/x"]);
    assert_eq!(
        names(lister.namespaced("a").list(&Selector::everything())),
        ["a/x", "a/y"]
    );
    assert_eq!(
        names(lister.namespaced("").list(&web)),
        ["a/x", "b/x"],
        "\"\" is every namespace"
    );
    assert!(
        lister
            .namespaced("c")
            .list(&Selector::everything())
            .is_empty()
    );
    assert_eq!(
        lister.namespaced("b").get("x").unwrap().namespace(),
        Some("b")
    );
    assert!(lister.namespaced("b").get("y").is_none());
    assert_eq!(lister.get("a", "y").unwrap().name(), "y");
    let stored = indexer.get_by_key("a/y").unwrap();
    assert!(
        Arc::ptr_eq(&stored, &lister.get("a", "y").unwrap()),
        "no copy"
    );
    assert_eq!(lister.by_index("namespace", "b").unwrap().len(), 1);
    assert!(lister.by_index("nope", "b").is_err());

    // Without a namespace index, a namespaced list scans.
    let plain = Indexer::builder()
        .without_namespace_index()
        .build()
        .unwrap();
    plain.add(obj("a", "x", &[("app", "web")]));
    plain.add(obj("b", "x", &[("app", "web")]));
    assert_eq!(
        names(Lister::new(plain).namespaced("b").list(&web)),
        ["b/x"]
    );
}

#[test]
fn cluster_scoped_get() {
    let indexer = Indexer::<Namespace>::new();
    let mut ns = Namespace::default();
    ns.meta_mut().name = Some("prod".into());
    indexer.add(ns);
    let lister = Lister::new(indexer);
    assert_eq!(lister.get("", "prod").unwrap().name(), "prod");
    assert_eq!(lister.namespaced("").get("prod").unwrap().name(), "prod");
}
