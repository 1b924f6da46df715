//! The server's hot paths below HTTP: storing, updating and selecting objects.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kube_testserver::selector::LabelSelector;
use kube_testserver::status::ApiError;
use kube_testserver::store::{Change, Store};
use serde_json::json;

fn configmap(i: usize) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": format!("cm-{i}"), "namespace": "ns", "labels": {"shard": (i % 16).to_string()}},
           "data": {"k": "v"}})
}

/// A store holding configmaps cm-0..cm-999 in namespace `ns`.
fn store_with_1000_configmaps() -> ((String, String), Store) {
    let storage = (String::new(), "configmaps".to_string());
    let store = Store::new(10_000);
    for i in 0..1000 {
        let object = configmap(i);
        store
            .create(
                &storage,
                ("ns".into(), format!("cm-{i}")),
                ApiError::path_not_found,
                |_| Ok(object),
            )
            .expect("create");
    }
    (storage, store)
}

fn store_create(c: &mut Criterion) {
    let storage = (String::new(), "configmaps".to_string());
    c.bench_function("store/create", |b| {
        b.iter_batched(
            || Store::new(10_000),
            |store| {
                for i in 0..1000 {
                    let object = configmap(i);
                    store
                        .create(
                            &storage,
                            ("ns".into(), format!("cm-{i}")),
                            ApiError::path_not_found,
                            |_| Ok(object),
                        )
                        .expect("create");
                }
                store
            },
            BatchSize::PerIteration,
        )
    });
}

fn store_update(c: &mut Criterion) {
    let (storage, store) = store_with_1000_configmaps();
    let mut i = 0usize;
    c.bench_function("store/update", |b| {
        b.iter(|| {
            i = (i + 1) % 1000;
            let key = ("ns".to_string(), format!("cm-{i}"));
            store
                .update(&storage, &key, ApiError::path_not_found, |current| {
                    let mut next = current.clone();
                    next["data"]["k"] = json!(i.to_string());
                    Ok(Change::Replace(next))
                })
                .expect("update")
        })
    });
}

fn list_with_selector(c: &mut Criterion) {
    let (storage, store) = store_with_1000_configmaps();
    let selector = LabelSelector::parse("shard in (1,2)").expect("selector");
    c.bench_function("store/list-1000-select", |b| {
        b.iter(|| {
            let snapshot = store.list(&storage, Some("ns"), None).expect("list");
            let selected = snapshot
                .objects
                .iter()
                .filter(|o| selector.matches(o["metadata"].get("labels")))
                .count();
            black_box(selected)
        })
    });
}

criterion_group!(benches, store_create, store_update, list_with_selector);
criterion_main!(benches);
