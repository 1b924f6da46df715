//! Property tests: indices always equal a recomputation from the items; a DeltaFIFO never
//! loses the last known state of an object and never hands one key to two poppers at once.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use common::{Obj, mk, val};
use kube_apimachinery::Object;
use kube_cache::{DeltaFifo, DeltaType, Indexer, NAMESPACE_INDEX, ProcessError, RealFifo};
use proptest::prelude::*;

/// A namespaced object whose `val` is a comma-separated list of index values.
fn obj(ns: u8, name: u8, vals: &BTreeSet<u8>) -> Arc<Obj> {
    let joined: Vec<String> = vals.iter().map(|v| format!("v{v}")).collect();
    let mut o = Arc::unwrap_or_clone(mk(&format!("n{name}"), joined.join(",")));
    if ns > 0 {
        o.meta_mut().namespace = Some(format!("ns{ns}"));
    }
    Arc::new(o)
}

#[derive(Debug, Clone)]
enum StoreOp {
    Add(u8, u8, BTreeSet<u8>),
    Delete(u8, u8),
    Replace(Vec<(u8, u8, BTreeSet<u8>)>),
    AddIndexer,
}

fn store_op() -> impl Strategy<Value = StoreOp> {
    let item = || (0u8..3, 0u8..8, prop::collection::btree_set(0u8..5, 0..4));
    prop_oneof![
        6 => item().prop_map(|(ns, n, v)| StoreOp::Add(ns, n, v)),
        3 => (0u8..3, 0u8..8).prop_map(|(ns, n)| StoreOp::Delete(ns, n)),
        1 => prop::collection::vec(item(), 0..6).prop_map(StoreOp::Replace),
        1 => Just(StoreOp::AddIndexer),
    ]
}

fn split_vals(obj: &Obj) -> Vec<String> {
    val(obj)
        .split(',')
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect()
}

/// Recomputes an index from the items and compares it with the indexer's.
fn check_index(store: &Indexer<Obj>, name: &str, f: impl Fn(&Obj) -> Vec<String>) {
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for obj in store.list() {
        let key = kube_cache::meta_namespace_key(obj.as_ref());
        for value in f(&obj) {
            expected.entry(value).or_default().insert(key.clone());
        }
    }
    let values: BTreeSet<String> = store.list_index_func_values(name).into_iter().collect();
    assert_eq!(
        values,
        expected.keys().cloned().collect(),
        "values of {name}"
    );
    for (value, keys) in &expected {
        let got: BTreeSet<String> = store.index_keys(name, value).unwrap().into_iter().collect();
        assert_eq!(&got, keys, "{name}={value}");
        // `by_index` hands out exactly the stored objects (the same `Arc`s, none stale).
        let mut got: Vec<(String, *const Obj)> = store
            .by_index(name, value)
            .unwrap()
            .iter()
            .map(|o| (kube_cache::meta_namespace_key(o.as_ref()), Arc::as_ptr(o)))
            .collect();
        got.sort();
        let mut want: Vec<(String, *const Obj)> = keys
            .iter()
            .map(|k| (k.clone(), Arc::as_ptr(&store.get_by_key(k).unwrap())))
            .collect();
        want.sort();
        assert_eq!(got, want, "by_index {name}={value}");
    }
}

proptest! {
    #[test]
    fn indices_equal_recomputation(ops in prop::collection::vec(store_op(), 1..40)) {
        let store = Indexer::<Obj>::builder()
            .index("vals", |o: &Obj, out| out.extend(val(o).split(',').filter(|v| !v.is_empty())))
            .build()
            .unwrap();
        let mut model: BTreeMap<String, Arc<Obj>> = BTreeMap::new();
        let mut late_index = false;
        for op in ops {
            match op {
                StoreOp::Add(ns, n, v) => {
                    let o = obj(ns, n, &v);
                    model.insert(kube_cache::meta_namespace_key(o.as_ref()), o.clone());
                    store.add(o);
                }
                StoreOp::Delete(ns, n) => {
                    let o = obj(ns, n, &BTreeSet::new());
                    model.remove(&kube_cache::meta_namespace_key(o.as_ref()));
                    store.delete(o);
                }
                StoreOp::Replace(items) => {
                    let objs: Vec<Arc<Obj>> = items.iter().map(|(ns, n, v)| obj(*ns, *n, v)).collect();
                    model = objs.iter().map(|o| (kube_cache::meta_namespace_key(o.as_ref()), o.clone())).collect();
                    store.replace(objs, "1");
                }
                StoreOp::AddIndexer => {
                    let result = store.add_indexers(kube_cache::Indexers::new()
                        .with("first", |o: &Obj, out| out.extend(val(o).split(',').take(1).filter(|v| !v.is_empty()))));
                    prop_assert_eq!(result.is_ok(), !late_index);
                    late_index = true;
                }
            }
            let mut keys = store.list_keys();
            keys.sort();
            prop_assert_eq!(keys, model.keys().cloned().collect::<Vec<_>>());
            for (key, o) in &model {
                prop_assert!(Arc::ptr_eq(&store.get_by_key(key).unwrap(), o));
            }
            check_index(&store, NAMESPACE_INDEX, |o| vec![o.namespace().unwrap_or("").to_string()]);
            check_index(&store, "vals", split_vals);
            // `index` (several values per object): every object sharing a value, once each.
            for o in model.values() {
                let mine: BTreeSet<String> = split_vals(o).into_iter().collect();
                let mut want: Vec<*const Obj> = model
                    .values()
                    .filter(|other| split_vals(other).iter().any(|v| mine.contains(v)))
                    .map(Arc::as_ptr)
                    .collect();
                want.sort();
                let mut got: Vec<*const Obj> = store.index("vals", o).unwrap().iter().map(Arc::as_ptr).collect();
                got.sort();
                prop_assert_eq!(got, want);
            }
            if late_index {
                check_index(&store, "first", |o| split_vals(o).into_iter().take(1).collect());
            }
        }
    }
}

#[derive(Debug, Clone)]
enum FifoOp {
    Upsert(u8, u16),
    Delete(u8),
    Replace(Vec<(u8, u16)>),
    Resync,
    Pop,
    PopRequeue,
}

fn fifo_op() -> impl Strategy<Value = FifoOp> {
    prop_oneof![
        6 => (0u8..6, any::<u16>()).prop_map(|(n, v)| FifoOp::Upsert(n, v)),
        2 => (0u8..6).prop_map(FifoOp::Delete),
        1 => prop::collection::vec((0u8..6, any::<u16>()), 0..5).prop_map(FifoOp::Replace),
        1 => Just(FifoOp::Resync),
        4 => Just(FifoOp::Pop),
        1 => Just(FifoOp::PopRequeue),
    ]
}

/// Pops one key the way an informer does: applies its deltas to the known-objects store.
fn pop_into(fifo: &DeltaFifo<Obj>, store: &Indexer<Obj>, requeue: bool) -> bool {
    let popped = fifo.try_pop(|deltas, _| {
        if requeue {
            return Err(ProcessError::<()>::Requeue(None));
        }
        for delta in deltas {
            match delta.kind {
                DeltaType::Deleted => {
                    store.delete_key(&delta.key());
                }
                _ => {
                    store.update(Arc::clone(delta.object.object().expect("an object")));
                }
            }
        }
        Ok(())
    });
    matches!(popped, Ok(Some(_)))
}

/// The last state the queue or the store holds for `key`: the newest queued delta, else the
/// store's object. `None` means "deleted".
fn last_known(fifo: &DeltaFifo<Obj>, store: &Indexer<Obj>, key: &str) -> Option<String> {
    match fifo.get_by_key(key) {
        Some(deltas) => {
            let newest = deltas.last().expect("never empty");
            match newest.kind {
                DeltaType::Deleted => None,
                _ => Some(val(newest.object.object().unwrap()).to_string()),
            }
        }
        None => store.get_by_key(key).map(|o| val(&o).to_string()),
    }
}

proptest! {
    #[test]
    fn delta_fifo_never_loses_the_last_state(
        ops in prop::collection::vec(fifo_op(), 1..60),
        emit_replaced in any::<bool>(),
    ) {
        let store = Indexer::<Obj>::new();
        let fifo = DeltaFifo::builder()
            .known_objects(store.clone())
            .emit_delta_type_replaced(emit_replaced)
            .build();
        // What the API server holds.
        let mut truth: BTreeMap<String, String> = BTreeMap::new();
        for op in ops {
            match op {
                FifoOp::Upsert(n, v) => {
                    let o = mk(&format!("n{n}"), v);
                    let existed = truth.insert(o.name().to_string(), v.to_string()).is_some();
                    if existed { fifo.update(o) } else { fifo.add(o) }
                }
                FifoOp::Delete(n) => {
                    if let Some(v) = truth.remove(&format!("n{n}")) {
                        fifo.delete(mk(&format!("n{n}"), v));
                    }
                }
                FifoOp::Replace(items) => {
                    truth.clear();
                    let objs: Vec<Arc<Obj>> = items.iter().map(|(n, v)| {
                        truth.insert(format!("n{n}"), v.to_string());
                        mk(&format!("n{n}"), v)
                    }).collect();
                    // The list holds each key's final state once (as an API server's does).
                    let objs: Vec<Arc<Obj>> = objs.into_iter().filter(|o| truth[o.name()] == val(o)).collect::<Vec<_>>();
                    let mut seen = HashSet::new();
                    let objs: Vec<Arc<Obj>> = objs.into_iter().filter(|o| seen.insert(o.name().to_string())).collect();
                    fifo.replace(objs, "1");
                }
                FifoOp::Resync => fifo.resync(),
                FifoOp::Pop => { pop_into(&fifo, &store, false); }
                FifoOp::PopRequeue => { pop_into(&fifo, &store, true); }
            }
            for n in 0..6u8 {
                let key = format!("n{n}");
                prop_assert_eq!(last_known(&fifo, &store, &key), truth.get(&key).cloned(), "key {}", key);
            }
            // Every queued key has deltas, and the queue has no duplicates.
            let keys = fifo.list_keys();
            prop_assert_eq!(keys.iter().collect::<HashSet<_>>().len(), keys.len());
        }
        while pop_into(&fifo, &store, false) {}
        let stored: BTreeMap<String, String> = store.list().iter().map(|o| (o.name().to_string(), val(o).to_string())).collect();
        prop_assert_eq!(stored, truth);
    }
}

/// Pops one event of a RealFIFO into the store; returns the event's key and value.
fn real_pop_into(fifo: &RealFifo<Obj>, store: &Indexer<Obj>) -> Option<(String, Option<String>)> {
    let mut seen = None;
    fifo.try_pop(|deltas, _| {
        let delta = &deltas[0];
        let key = delta.key();
        match delta.kind {
            DeltaType::Deleted => {
                store.delete_key(&key);
                seen = Some((key, None));
            }
            _ => {
                let obj = delta.object.object().expect("an object");
                seen = Some((key, Some(val(obj).to_string())));
                store.update(Arc::clone(obj));
            }
        }
        Ok::<(), ()>(())
    })
    .unwrap()?;
    seen
}

proptest! {
    /// A RealFIFO delivers every write, in order, and the store it feeds converges to the
    /// server's state (relists included).
    #[test]
    fn real_fifo_delivers_every_event_in_order(ops in prop::collection::vec(fifo_op(), 1..60)) {
        let store = Indexer::<Obj>::new();
        let fifo = RealFifo::new(store.clone());
        let mut truth: BTreeMap<String, String> = BTreeMap::new();
        // Writes not yet popped, in order: (key, value or None for a deletion).
        let mut expected: std::collections::VecDeque<(String, Option<String>)> = Default::default();
        for op in ops {
            match op {
                FifoOp::Upsert(n, v) => {
                    let o = mk(&format!("n{n}"), v);
                    truth.insert(o.name().to_string(), v.to_string());
                    expected.push_back((o.name().to_string(), Some(v.to_string())));
                    fifo.update(o);
                }
                FifoOp::Delete(n) => {
                    if let Some(v) = truth.remove(&format!("n{n}")) {
                        expected.push_back((format!("n{n}"), None));
                        fifo.delete(mk(&format!("n{n}"), v));
                    }
                }
                FifoOp::Replace(items) => {
                    // A relist adds tombstones and replays: stop checking the exact order
                    // from here, keep checking convergence.
                    truth.clear();
                    let mut seen = HashSet::new();
                    let objs: Vec<Arc<Obj>> = items.iter().rev().filter(|(n, _)| seen.insert(*n)).map(|(n, v)| {
                        truth.insert(format!("n{n}"), v.to_string());
                        mk(&format!("n{n}"), v)
                    }).collect();
                    fifo.replace(objs, "1");
                    expected.clear();
                    while real_pop_into(&fifo, &store).is_some() {}
                }
                FifoOp::Resync => {
                    fifo.resync();
                    expected.clear();
                    while real_pop_into(&fifo, &store).is_some() {}
                }
                FifoOp::Pop | FifoOp::PopRequeue => {
                    let got = real_pop_into(&fifo, &store);
                    prop_assert_eq!(got, expected.pop_front());
                }
            }
        }
        while let Some(got) = real_pop_into(&fifo, &store) {
            prop_assert_eq!(Some(got), expected.pop_front());
        }
        prop_assert!(expected.is_empty());
        let stored: BTreeMap<String, String> = store.list().iter().map(|o| (o.name().to_string(), val(o).to_string())).collect();
        prop_assert_eq!(stored, truth);
    }
}

/// Several poppers and producers at once: a key is never being processed by two poppers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_never_handed_to_two_poppers() {
    let fifo = DeltaFifo::<Obj>::default();
    let in_flight = Arc::new(Mutex::new(HashSet::<String>::new()));
    let processed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let fifo = fifo.clone();
            tokio::spawn(async move {
                for i in 0..5000u32 {
                    fifo.update(mk(&format!("k{}", (i * 7 + p) % 16), i));
                    if i.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let poppers: Vec<_> = (0..4)
        .map(|_| {
            let fifo = fifo.clone();
            let in_flight = Arc::clone(&in_flight);
            let processed = Arc::clone(&processed);
            tokio::spawn(async move {
                loop {
                    let result = fifo
                        .pop(|deltas, _| {
                            let key = deltas[0].key();
                            assert!(
                                in_flight.lock().unwrap().insert(key.clone()),
                                "{key} handed out twice"
                            );
                            assert!(deltas.iter().all(|d| d.key() == key), "one key per pop");
                            std::hint::spin_loop();
                            in_flight.lock().unwrap().remove(&key);
                            processed.fetch_add(deltas.len(), std::sync::atomic::Ordering::Relaxed);
                            Ok::<(), ProcessError<()>>(())
                        })
                        .await;
                    if result.is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.await.unwrap();
    }
    fifo.close();
    for p in poppers {
        p.await.unwrap();
    }
    assert_eq!(
        processed.load(std::sync::atomic::Ordering::Relaxed),
        10_000,
        "every delta delivered"
    );
}
