//! client-go's delta_fifo_test (and the FIFO cases of fifo_test that apply), ported to
//! `DeltaFifo`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Obj, d, known, mk, tomb, val};
use kube_apimachinery::Object;
use kube_cache::{DeltaFifo, DeltaType::*, Deltas, ObjectOrTombstone, PopError, ProcessError};

type Fifo = DeltaFifo<Obj>;

fn plain() -> Fifo {
    DeltaFifo::default()
}

fn with_known(objs: &[Arc<Obj>]) -> Fifo {
    DeltaFifo::builder().known_objects(known(objs)).build()
}

fn ok(_: &Deltas<Obj>, _: bool) -> Result<(), ProcessError<()>> {
    Ok(())
}

/// client-go's `Pop(f)` test helper: pops without waiting.
fn pop(f: &Fifo) -> Deltas<Obj> {
    f.try_pop(ok).unwrap().expect("something queued")
}

fn newest_val(deltas: &Deltas<Obj>) -> String {
    val(deltas.last().unwrap().object.object().unwrap()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_two_producers_keep_order() {
    let f = plain();
    const AMOUNT: usize = 500;
    let a = tokio::task::spawn_blocking({
        let f = f.clone();
        move || (0..AMOUNT).for_each(|i| f.add(mk(&format!("a{i}"), i + 1)))
    });
    let b = tokio::task::spawn_blocking({
        let f = f.clone();
        move || (0..AMOUNT).for_each(|i| f.add(mk(&format!("b{i}"), i + 1)))
    });
    let (mut last_a, mut last_b) = (0, 0);
    for _ in 0..AMOUNT * 2 {
        let deltas = f.pop(ok).await.unwrap();
        let obj = deltas[0].object.object().unwrap().clone();
        let v: usize = val(&obj).parse().unwrap();
        let last = if obj.name().starts_with('a') {
            &mut last_a
        } else {
            &mut last_b
        };
        assert!(v > *last, "{v} out of order after {last}");
        *last = v;
    }
    a.await.unwrap();
    b.await.unwrap();
}

#[test]
fn replace_with_delete_delta_in() {
    let old = mk("foo", 1);
    let new = mk("foo", 2);
    let f = with_known(std::slice::from_ref(&old));
    f.delete(old.clone());
    f.replace([new.clone()], "");
    assert_eq!(pop(&f), vec![d(Deleted, old), d(Sync, new)]);
}

#[test]
fn replace_makes_deletions_for_objects_only_in_queue() {
    let obj = mk("foo", 2);
    let obj_v2 = mk("foo", 3);
    type Ops = fn(&Fifo, &Arc<Obj>, &Arc<Obj>);
    let table: Vec<(&str, bool, Ops, Deltas<Obj>)> = vec![
        (
            "Added object should be deleted on Replace",
            false,
            |f, obj, _| {
                f.add(obj.clone());
                f.replace(Vec::<Arc<Obj>>::new(), "0");
            },
            vec![d(Added, obj.clone()), tomb("foo", Some(obj.clone()))],
        ),
        (
            "Replaced object should have only a single Delete",
            true,
            |f, obj, _| {
                f.add(obj.clone());
                f.replace([obj.clone()], "0");
                f.replace(Vec::<Arc<Obj>>::new(), "0");
            },
            vec![
                d(Added, obj.clone()),
                d(Replaced, obj.clone()),
                tomb("foo", Some(obj.clone())),
            ],
        ),
        (
            "Deleted object should have only a single Delete",
            false,
            |f, obj, _| {
                f.add(obj.clone());
                f.delete(obj.clone());
                f.replace(Vec::<Arc<Obj>>::new(), "0");
            },
            vec![d(Added, obj.clone()), d(Deleted, obj.clone())],
        ),
        (
            "Synced objects should have a single delete",
            false,
            |f, obj, _| {
                f.add(obj.clone());
                f.replace([obj.clone()], "0");
                f.replace([obj.clone()], "0");
                f.replace(Vec::<Arc<Obj>>::new(), "0");
            },
            vec![
                d(Added, obj.clone()),
                d(Sync, obj.clone()),
                d(Sync, obj.clone()),
                tomb("foo", Some(obj.clone())),
            ],
        ),
        (
            "Added objects should have a single delete on multiple Replaces",
            false,
            |f, obj, _| {
                f.add(obj.clone());
                f.replace(Vec::<Arc<Obj>>::new(), "0");
                f.replace(Vec::<Arc<Obj>>::new(), "1");
            },
            vec![d(Added, obj.clone()), tomb("foo", Some(obj.clone()))],
        ),
        (
            "Added and deleted and added object should be deleted",
            false,
            |f, obj, obj_v2| {
                f.add(obj.clone());
                f.delete(obj.clone());
                f.add(obj_v2.clone());
                f.replace(Vec::<Arc<Obj>>::new(), "0");
            },
            vec![
                d(Added, obj.clone()),
                d(Deleted, obj.clone()),
                d(Added, obj_v2.clone()),
                tomb("foo", Some(obj_v2.clone())),
            ],
        ),
    ];
    for (name, replaced, ops, expected) in table {
        for f in [
            DeltaFifo::builder()
                .known_objects(known(&[]))
                .emit_delta_type_replaced(replaced)
                .build(),
            DeltaFifo::builder()
                .emit_delta_type_replaced(replaced)
                .build(),
        ] {
            ops(&f, &obj, &obj_v2);
            assert_eq!(pop(&f), expected, "{name}");
            assert!(f.is_empty(), "{name}: extra deltas");
        }
    }
}

/// client-go's TestDeltaFIFO_requeueOnPop (ErrRequeue, removed from client-go in v1.33).
#[test]
fn requeue_on_pop() {
    let f = plain();
    f.add(mk("foo", 10));
    let got = f
        .try_pop(|deltas, _| {
            assert_eq!(deltas[0].object.object().unwrap().name(), "foo");
            Err(ProcessError::<String>::Requeue(None))
        })
        .unwrap();
    assert!(got.is_some());
    assert!(
        f.get_by_key("foo").is_some(),
        "object should have been requeued"
    );

    let err = f
        .try_pop(|_, _| Err(ProcessError::Requeue(Some("test error".to_string()))))
        .unwrap_err();
    assert!(matches!(err, PopError::Process(ref e) if e == "test error"));
    assert!(
        f.get_by_key("foo").is_some(),
        "object should have been requeued"
    );

    f.try_pop(|_, _| Ok::<(), ProcessError<String>>(()))
        .unwrap();
    assert!(
        f.get_by_key("foo").is_none(),
        "object should have been removed"
    );

    f.add(mk("bar", 1));
    let err = f
        .try_pop(|_, _| Err(ProcessError::Failed("no".to_string())))
        .unwrap_err();
    assert_eq!(err.to_string(), "processing popped deltas failed");
    assert!(f.is_empty(), "a plain failure does not requeue");
}

#[tokio::test]
async fn add_update() {
    let f = plain();
    f.add(mk("foo", 10));
    f.update(mk("foo", 12));
    f.delete(mk("foo", 15));
    assert_eq!(f.list(), vec![ObjectOrTombstone::Object(mk("foo", 15))]);
    assert_eq!(f.list_keys(), ["foo"]);
    let first = f.pop(ok).await.unwrap();
    assert_eq!(newest_val(&first), "15");
    // Nothing else comes out.
    assert!(f.try_pop(ok).unwrap().is_none(), "got a second value");
    assert!(f.get_by_key("foo").is_none(), "item did not get removed");
}

#[test]
fn enqueueing_no_lister() {
    let f = plain();
    f.add(mk("foo", 10));
    f.update(mk("bar", 15));
    f.add(mk("qux", 17));
    f.delete(mk("qux", 18));
    f.delete(mk("baz", 20));
    for expect in ["10", "15", "18"] {
        assert_eq!(newest_val(&pop(&f)), expect);
    }
    assert!(f.is_empty());
}

#[test]
fn enqueueing_with_lister() {
    let f = with_known(&[mk("foo", 5), mk("bar", 6), mk("baz", 7)]);
    f.add(mk("foo", 10));
    f.update(mk("bar", 15));
    f.delete(mk("baz", 20));
    for expect in ["10", "15", "20"] {
        assert_eq!(newest_val(&pop(&f)), expect);
    }
    assert!(f.is_empty());
}

#[tokio::test]
async fn add_replace() {
    let f = plain();
    f.add(mk("foo", 10));
    f.replace([mk("foo", 15)], "0");
    let first = f.pop(ok).await.unwrap();
    assert_eq!(newest_val(&first), "15");
    assert!(f.try_pop(ok).unwrap().is_none(), "got a second value");
    assert!(f.get_by_key("foo").is_none());
}

#[test]
fn resync_non_existing() {
    let f = with_known(&[mk("foo", 5)]);
    f.delete(mk("foo", 10));
    f.resync();
    let deltas = f.get_by_key("foo").unwrap();
    assert_eq!(deltas.len(), 1);
    assert_eq!(deltas[0].kind, Deleted);
}

#[test]
fn resync() {
    let f = with_known(&[mk("foo", 5)]);
    f.resync();
    let deltas = f.get_by_key("foo").unwrap();
    assert_eq!(deltas, vec![d(Sync, mk("foo", 5))]);
    // Without known objects, resync does nothing.
    let f = plain();
    f.resync();
    assert!(f.is_empty());
}

#[test]
fn delete_existing_non_propagated() {
    let f = with_known(&[]);
    f.add(mk("foo", 5));
    f.delete(mk("foo", 6));
    let deltas = f.get_by_key("foo").unwrap();
    assert_eq!(deltas.len(), 2);
    assert_eq!(deltas[1].kind, Deleted);
}

fn three_known() -> Vec<Arc<Obj>> {
    vec![mk("foo", 5), mk("bar", 6), mk("baz", 7)]
}

fn pop_all(f: &Fifo, expected: Vec<Deltas<Obj>>) {
    for (i, want) in expected.into_iter().enumerate() {
        assert_eq!(pop(f), want, "pop {i}");
    }
}

#[test]
fn replace_makes_deletions() {
    let f = with_known(&three_known());
    f.delete(mk("baz", 10));
    f.replace([mk("foo", 5)], "0");
    pop_all(
        &f,
        vec![
            vec![d(Deleted, mk("baz", 10))],
            vec![d(Sync, mk("foo", 5))],
            vec![tomb("bar", Some(mk("bar", 6)))],
        ],
    );

    let f = with_known(&three_known());
    f.add(mk("baz", 10));
    f.replace([mk("foo", 5)], "0");
    pop_all(
        &f,
        vec![
            vec![d(Added, mk("baz", 10)), tomb("baz", Some(mk("baz", 10)))],
            vec![d(Sync, mk("foo", 5))],
            vec![tomb("bar", Some(mk("bar", 6)))],
        ],
    );

    let f = with_known(&three_known());
    f.delete(mk("bar", 6));
    f.add(mk("bar", 100));
    f.replace([mk("foo", 5)], "0");
    pop_all(
        &f,
        vec![
            vec![
                d(Deleted, mk("bar", 6)),
                d(Added, mk("bar", 100)),
                tomb("bar", Some(mk("bar", 100))),
            ],
            vec![d(Sync, mk("foo", 5))],
            vec![tomb("baz", Some(mk("baz", 7)))],
        ],
    );

    let f = with_known(&three_known());
    f.replace([mk("bar", 100), mk("foo", 5)], "0");
    f.replace([mk("foo", 5)], "0");
    pop_all(
        &f,
        vec![
            vec![d(Sync, mk("bar", 100)), tomb("bar", Some(mk("bar", 100)))],
            vec![d(Sync, mk("foo", 5)), d(Sync, mk("foo", 5))],
            vec![tomb("baz", Some(mk("baz", 7)))],
        ],
    );

    let f = plain();
    f.add(mk("baz", 10));
    f.replace([mk("foo", 5)], "0");
    pop_all(
        &f,
        vec![
            vec![d(Added, mk("baz", 10)), tomb("baz", Some(mk("baz", 10)))],
            vec![d(Sync, mk("foo", 5))],
        ],
    );
}

#[test]
fn replace_makes_deletions_replaced() {
    let f = DeltaFifo::builder()
        .known_objects(known(&three_known()))
        .emit_delta_type_replaced(true)
        .build();
    f.delete(mk("baz", 10));
    f.replace([mk("foo", 6)], "0");
    pop_all(
        &f,
        vec![
            vec![d(Deleted, mk("baz", 10))],
            vec![d(Replaced, mk("foo", 6))],
            vec![tomb("bar", Some(mk("bar", 6)))],
        ],
    );
}

#[test]
fn replace_delta_type() {
    let f = DeltaFifo::builder()
        .known_objects(known(&[mk("foo", 5)]))
        .emit_delta_type_replaced(true)
        .build();
    f.replace([mk("foo", 5)], "0");
    pop_all(&f, vec![vec![d(Replaced, mk("foo", 5))]]);
}

#[test]
fn update_resync_race() {
    let f = with_known(&[mk("foo", 5)]);
    f.update(mk("foo", 6));
    f.resync();
    pop_all(&f, vec![vec![d(Updated, mk("foo", 6))]]);
}

/// A task waiting for the sync must not wake before the last initial item is processed:
/// it would read a store missing that item (client-go's `HasSynced` waits for the lock `Pop`
/// holds while processing).
#[test]
fn sync_is_signalled_after_the_last_initial_item_is_processed() {
    use std::future::Future;
    use std::task::{Context, Waker};

    let f = plain();
    f.replace([mk("a", 1), mk("b", 1)], "1");
    let mut waiter = Box::pin(f.wait_for_sync());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(waiter.as_mut().poll(&mut cx).is_pending());
    let mut ready_during_process = Vec::new();
    for _ in 0..2 {
        f.try_pop(|_, _| {
            let mut probe = Box::pin(f.wait_for_sync());
            ready_during_process.push(probe.as_mut().poll(&mut cx).is_ready());
            Ok::<(), ProcessError<()>>(())
        })
        .unwrap()
        .unwrap();
    }
    assert_eq!(ready_during_process, [false, false]);
    assert!(waiter.as_mut().poll(&mut cx).is_ready());
    assert!(f.has_synced());
}

#[test]
fn has_synced_correct_on_deletion() {
    let f = with_known(&three_known());
    f.replace([mk("foo", 5)], "0");
    let expected = vec![
        vec![d(Sync, mk("foo", 5))],
        vec![tomb("bar", Some(mk("bar", 6)))],
        vec![tomb("baz", Some(mk("baz", 7)))],
    ];
    for want in expected {
        assert!(!f.has_synced());
        let mut initial = false;
        let got = f
            .try_pop(|_, is_initial| {
                initial = is_initial;
                Ok::<(), ProcessError<()>>(())
            })
            .unwrap()
            .unwrap();
        assert_eq!(got, want);
        assert!(initial, "expected an initial list item");
    }
    assert!(f.has_synced());
    // Later pops are not part of the initial list.
    f.add(mk("late", 1));
    let mut initial = true;
    f.try_pop(|_, is_initial| {
        initial = is_initial;
        Ok::<(), ProcessError<()>>(())
    })
    .unwrap();
    assert!(!initial);
}

#[test]
fn detect_line_jumpers() {
    let f = plain();
    f.add(mk("foo", 10));
    f.add(mk("bar", 1));
    f.add(mk("foo", 11));
    f.add(mk("foo", 13));
    f.add(mk("zab", 30));
    assert_eq!(newest_val(&pop(&f)), "13");
    f.add(mk("foo", 14)); // foo does not jump back in line
    assert_eq!(newest_val(&pop(&f)), "1");
    assert_eq!(newest_val(&pop(&f)), "30");
    assert_eq!(newest_val(&pop(&f)), "14");
}

#[test]
fn has_synced_table() {
    type Action = fn(&Fifo);
    let replace_two: Action = |f| f.replace([mk("a", 1), mk("b", 2)], "0");
    let pop1: Action = |f| {
        pop(f);
    };
    let cases: Vec<(Vec<Action>, bool)> = vec![
        (vec![], false),
        (vec![|f| f.add(mk("a", 1))], true),
        (vec![|f| f.replace(Vec::<Arc<Obj>>::new(), "0")], true),
        (vec![replace_two], false),
        (vec![replace_two, pop1], false),
        (vec![replace_two, pop1, pop1], true),
        (
            vec![|f| f.replace([mk("a", 1), mk("a", 2)], "0"), pop1],
            true,
        ),
        (vec![|f| f.delete(mk("a", 1))], true),
        (vec![|f| f.update(mk("a", 1))], true),
    ];
    for (i, (actions, synced)) in cases.into_iter().enumerate() {
        let f = plain();
        for action in actions {
            action(&f);
        }
        assert_eq!(f.has_synced(), synced, "case {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop_should_unblock_when_closed() {
    let f = with_known(&[mk("foo", 5)]);
    let poppers: Vec<_> = (0..10)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.pop(ok).await })
        })
        .collect();
    tokio::task::yield_now().await;
    f.close();
    for popper in poppers {
        let result = tokio::time::timeout(Duration::from_secs(5), popper)
            .await
            .expect("pop returned after close")
            .unwrap();
        assert!(result.unwrap_err().is_closed());
    }
    assert!(f.is_closed());
    assert!(f.try_pop(ok).unwrap_err().is_closed());
}

#[tokio::test]
async fn close_drains_first() {
    let f = plain();
    f.add(mk("a", 1));
    f.close();
    assert_eq!(f.pop(ok).await.unwrap().len(), 1, "queued keys still pop");
    assert!(f.pop(ok).await.unwrap_err().is_closed());
}

#[tokio::test]
async fn wait_for_sync_and_waiting_pop() {
    let f = plain();
    f.replace([mk("a", 1)], "1");
    let waiter = tokio::spawn({
        let f = f.clone();
        async move { f.wait_for_sync().await }
    });
    let popper = tokio::spawn({
        let f = f.clone();
        async move {
            let first = f.pop(ok).await.unwrap();
            let second = f.pop(ok).await.unwrap();
            (first, second)
        }
    });
    tokio::task::yield_now().await;
    f.add(mk("b", 2));
    let (first, second) = popper.await.unwrap();
    assert_eq!(first, vec![d(Sync, mk("a", 1))]);
    assert_eq!(second, vec![d(Added, mk("b", 2))]);
    waiter.await.unwrap();
    assert!(f.has_synced());
}

#[test]
fn two_trailing_deletions_dedup() {
    // A real deletion after a tombstone wins; a tombstone after a real deletion is dropped.
    let f = with_known(&[mk("foo", 1)]);
    f.replace(Vec::<Arc<Obj>>::new(), "0");
    f.delete(mk("foo", 2));
    assert_eq!(f.get_by_key("foo").unwrap(), vec![d(Deleted, mk("foo", 2))]);

    let f = with_known(&[mk("foo", 1)]);
    f.delete(mk("foo", 2));
    f.replace(Vec::<Arc<Obj>>::new(), "0");
    assert_eq!(f.get_by_key("foo").unwrap(), vec![d(Deleted, mk("foo", 2))]);
}
