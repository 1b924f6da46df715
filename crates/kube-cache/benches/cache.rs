//! The figures of issue 13, against client-go's (the Go side is `peers/cache_test.go`):
//!
//! * `indexer/add_100k_pods_namespace_index`: add of a new pod into an indexer with the
//!   namespace index, filled from empty to 100k pods (the mean is per add);
//! * `indexer/update_100k_pods_namespace_index`: update of one of 100k stored pods (same
//!   namespace, a new object);
//! * `indexer/by_index_namespace_1000_of_100k`: `by_index("namespace", ns)` returning 1000 of
//!   100k pods;
//! * `indexer/get_by_key_100k`: a lookup by key;
//! * `indexer/read_by_key_100k`: a borrowing lookup (no `Arc` clone);
//! * `indexer/get_by_key_100k_2_readers`: the same from 2 threads at once (reads do not block
//!   each other: the time per lookup should stay close to one reader's);
//! * `delta_fifo/add`: add of a new key (queues of up to 100k keys);
//! * `delta_fifo/pop`: pop of a key with one delta, process function doing nothing.
//!
//! Pods are small (name, namespace, uid, one label): these measure the structures, not the
//! objects, which are shared `Arc`s. 100k pods, 100 namespaces of 1000.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::Object;
use kube_cache::{DeltaFifo, Deltas, Indexer, NAMESPACE_INDEX, ProcessError};

const PODS: usize = 100_000;

fn pod(i: usize, version: usize) -> Arc<Pod> {
    let mut pod = Pod::default();
    let meta = pod.meta_mut();
    meta.name = Some(format!("pod-{i}"));
    meta.namespace = Some(format!("ns-{}", i % 100));
    meta.uid = Some(format!("uid-{i}"));
    meta.resource_version = Some(format!("{version}"));
    meta.labels = Some([("app".to_string(), format!("app-{}", i % 10))].into());
    Arc::new(pod)
}

fn pods(version: usize) -> Vec<Arc<Pod>> {
    (0..PODS).map(|i| pod(i, version)).collect()
}

fn filled(pods: &[Arc<Pod>]) -> Indexer<Pod> {
    let indexer = Indexer::new();
    for p in pods {
        indexer.add(Arc::clone(p));
    }
    indexer
}

fn indexer(c: &mut Criterion) {
    let v1 = pods(1);
    let v2 = pods(2);
    let mut group = c.benchmark_group("indexer");

    group.bench_function("add_100k_pods_namespace_index", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(PODS);
                let indexer = Indexer::<Pod>::new();
                let start = Instant::now();
                for p in &v1[..n] {
                    indexer.add(Arc::clone(p));
                }
                total += start.elapsed();
                left -= n;
                drop(indexer);
            }
            total
        })
    });

    let store = filled(&v1);
    let mut i = 0usize;
    group.bench_function("update_100k_pods_namespace_index", |b| {
        b.iter(|| {
            let version = if (i / PODS).is_multiple_of(2) {
                &v2
            } else {
                &v1
            };
            black_box(store.update(Arc::clone(&version[i % PODS])));
            i += 1;
        })
    });

    group.bench_function("by_index_namespace_1000_of_100k", |b| {
        b.iter(|| {
            let pods = store.by_index(NAMESPACE_INDEX, black_box("ns-7")).unwrap();
            assert_eq!(pods.len(), 1000);
            pods
        })
    });

    let keys: Vec<String> = (0..PODS)
        .map(|i| format!("ns-{}/pod-{i}", i % 100))
        .collect();
    let mut k = 0usize;
    group.bench_function("get_by_key_100k", |b| {
        b.iter(|| {
            k = (k + 7919) % PODS;
            black_box(store.get_by_key(&keys[k]))
        })
    });

    group.bench_function("read_by_key_100k", |b| {
        b.iter(|| {
            k = (k + 7919) % PODS;
            black_box(store.read_by_key(&keys[k], |_| ()))
        })
    });

    group.bench_function("get_by_key_100k_2_readers", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2 {
                    let store = &store;
                    let keys = &keys;
                    s.spawn(move || {
                        let mut k = t * 31;
                        for _ in 0..iters {
                            k = (k + 7919) % PODS;
                            black_box(store.get_by_key(&keys[k]));
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    group.finish();
}

fn ok(_: &Deltas<Pod>, _: bool) -> Result<(), ProcessError<()>> {
    Ok(())
}

fn delta_fifo(c: &mut Criterion) {
    let v1 = pods(1);
    let mut group = c.benchmark_group("delta_fifo");
    group.bench_function("add", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(PODS);
                let fifo = DeltaFifo::<Pod>::default();
                let start = Instant::now();
                for p in &v1[..n] {
                    fifo.add(Arc::clone(p));
                }
                total += start.elapsed();
                left -= n;
                drop(fifo);
            }
            total
        })
    });
    group.bench_function("pop", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(PODS);
                let fifo = DeltaFifo::<Pod>::default();
                for p in &v1[..n] {
                    fifo.add(Arc::clone(p));
                }
                let start = Instant::now();
                for _ in 0..n {
                    black_box(fifo.try_pop(ok).unwrap());
                }
                total += start.elapsed();
                left -= n;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, indexer, delta_fifo);
criterion_main!(benches);
