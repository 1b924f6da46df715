//! client-go's the_real_fifo_test (non-atomic mode), ported to `RealFifo`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Literal, Obj, d, known, mk, tomb, val};
use kube_cache::{Delta, DeltaType::*, Deltas, RealFifo};

type Fifo = RealFifo<Obj>;

fn empty_known() -> Fifo {
    RealFifo::new(known(&[]))
}

fn with_known(objs: &[Arc<Obj>]) -> Fifo {
    RealFifo::new(Literal(objs.to_vec()))
}

fn ok(_: &Deltas<Obj>, _: bool) -> Result<(), ()> {
    Ok(())
}

fn pop(f: &Fifo) -> Deltas<Obj> {
    f.try_pop(ok).unwrap().expect("something queued")
}

fn pop_val(f: &Fifo) -> String {
    val(pop(f)[0].object.object().unwrap()).to_string()
}

fn pop_all(f: &Fifo, expected: Vec<Delta<Obj>>) {
    for (i, want) in expected.into_iter().enumerate() {
        assert_eq!(pop(f), vec![want], "pop {i}");
    }
    assert!(f.is_empty(), "extra events: {:?}", f.list());
}

fn three_known() -> Vec<Arc<Obj>> {
    vec![mk("foo", 5), mk("bar", 6), mk("baz", 7)]
}

#[test]
fn replace_with_delete_delta_in() {
    let old = mk("foo", 1);
    let new = mk("foo", 2);
    let f = with_known(std::slice::from_ref(&old));
    f.delete(old.clone());
    f.replace([new.clone()], "");
    assert_eq!(f.list(), vec![d(Deleted, old), d(Replaced, new)]);
}

#[test]
fn replace_makes_deletions_for_objects_only_in_queue() {
    let obj = mk("foo", 2);
    let obj_v2 = mk("foo", 3);
    type Ops = fn(&Fifo, &Arc<Obj>, &Arc<Obj>);
    let table: Vec<(&str, Ops, Vec<Delta<Obj>>)> = vec![
        (
            "Added object should be deleted on Replace",
            |f, obj, _| {
                f.add(obj.clone());
                f.replace(Vec::<Arc<Obj>>::new(), "0");
            },
            vec![d(Added, obj.clone()), tomb("foo", Some(obj.clone()))],
        ),
        (
            "Deleted object should have only a single Delete",
            |f, obj, _| {
                f.add(obj.clone());
                f.delete(obj.clone());
                f.replace(Vec::<Arc<Obj>>::new(), "0");
            },
            vec![d(Added, obj.clone()), d(Deleted, obj.clone())],
        ),
        (
            "Synced objects should have a single delete",
            |f, obj, _| {
                f.add(obj.clone());
                f.replace([obj.clone()], "0");
                f.replace([obj.clone()], "0");
                f.replace(Vec::<Arc<Obj>>::new(), "0");
            },
            vec![
                d(Added, obj.clone()),
                d(Replaced, obj.clone()),
                d(Replaced, obj.clone()),
                tomb("foo", Some(obj.clone())),
            ],
        ),
        (
            "Added objects should have a single delete on multiple Replaces",
            |f, obj, _| {
                f.add(obj.clone());
                f.replace(Vec::<Arc<Obj>>::new(), "0");
                f.replace(Vec::<Arc<Obj>>::new(), "1");
            },
            vec![d(Added, obj.clone()), tomb("foo", Some(obj.clone()))],
        ),
        (
            "Added and deleted and added object should be deleted",
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
    for (name, ops, expected) in table {
        let f = empty_known();
        ops(&f, &obj, &obj_v2);
        let mut got = Vec::new();
        while let Some(deltas) = f.try_pop(ok).unwrap() {
            assert_eq!(deltas.len(), 1, "{name}: one event per pop");
            got.extend(deltas);
        }
        assert_eq!(got, expected, "{name}");
    }
}

#[tokio::test]
async fn add_update_delivers_every_event() {
    let f = empty_known();
    f.add(mk("foo", 10));
    f.update(mk("foo", 12));
    f.delete(mk("foo", 15));
    assert_eq!(
        f.list(),
        vec![
            d(Added, mk("foo", 10)),
            d(Updated, mk("foo", 12)),
            d(Deleted, mk("foo", 15))
        ]
    );
    for want in ["10", "12", "15"] {
        let got = f.pop(ok).await.unwrap();
        assert_eq!(val(got[0].object.object().unwrap()), want);
    }
    assert!(f.try_pop(ok).unwrap().is_none(), "nothing else queued");
}

#[test]
fn enqueueing_no_lister() {
    let f = empty_known();
    f.add(mk("foo", 10));
    f.update(mk("bar", 15));
    f.add(mk("qux", 17));
    f.delete(mk("qux", 18));
    f.delete(mk("baz", 20));
    for want in ["10", "15", "17", "18", "20"] {
        assert_eq!(pop_val(&f), want);
    }
    assert!(f.is_empty());
}

#[test]
fn enqueueing_with_lister() {
    let f = with_known(&three_known());
    f.add(mk("foo", 10));
    f.update(mk("bar", 15));
    f.delete(mk("baz", 20));
    for want in ["10", "15", "20"] {
        assert_eq!(pop_val(&f), want);
    }
    assert!(f.is_empty());
}

#[tokio::test]
async fn add_replace() {
    let f = empty_known();
    f.add(mk("foo", 10));
    f.replace([mk("foo", 15)], "0");
    let popper = tokio::spawn({
        let f = f.clone();
        async move {
            let mut got = Vec::new();
            while let Ok(deltas) = f.pop(ok).await {
                got.push(val(deltas[0].object.object().unwrap()).to_string());
            }
            got
        }
    });
    // Close drains: the popper gets both events, then `Closed`.
    f.close();
    assert_eq!(popper.await.unwrap(), ["10", "15"]);
}

#[test]
fn resync_non_existing() {
    let f = with_known(&[mk("foo", 5)]);
    f.delete(mk("foo", 10));
    f.resync();
    let events = f.list();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, Deleted);
}

#[test]
fn resync() {
    let f = with_known(&[mk("foo", 5)]);
    f.resync();
    assert_eq!(f.list(), vec![d(Sync, mk("foo", 5))]);
}

#[test]
fn delete_existing_non_propagated() {
    let f = empty_known();
    f.add(mk("foo", 5));
    f.delete(mk("foo", 6));
    let events = f.list();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].kind, Deleted);
}

#[test]
fn replace_makes_deletions() {
    let f = with_known(&three_known());
    f.delete(mk("baz", 10));
    f.replace([mk("foo", 5)], "0");
    pop_all(
        &f,
        vec![
            d(Deleted, mk("baz", 10)),
            tomb("bar", Some(mk("bar", 6))),
            d(Replaced, mk("foo", 5)),
        ],
    );

    let f = with_known(&three_known());
    f.add(mk("baz", 10));
    f.replace([mk("foo", 5)], "0");
    pop_all(
        &f,
        vec![
            d(Added, mk("baz", 10)),
            tomb("baz", Some(mk("baz", 10))),
            tomb("bar", Some(mk("bar", 6))),
            d(Replaced, mk("foo", 5)),
        ],
    );

    let f = with_known(&three_known());
    f.delete(mk("bar", 6));
    f.add(mk("bar", 100));
    f.replace([mk("foo", 5)], "0");
    pop_all(
        &f,
        vec![
            d(Deleted, mk("bar", 6)),
            d(Added, mk("bar", 100)),
            tomb("bar", Some(mk("bar", 100))),
            tomb("baz", Some(mk("baz", 7))),
            d(Replaced, mk("foo", 5)),
        ],
    );

    let f = with_known(&three_known());
    f.replace([mk("bar", 100), mk("foo", 5)], "0");
    f.replace([mk("foo", 5)], "0");
    pop_all(
        &f,
        vec![
            tomb("baz", Some(mk("baz", 7))),
            d(Replaced, mk("bar", 100)),
            d(Replaced, mk("foo", 5)),
            tomb("bar", Some(mk("bar", 100))),
            d(Replaced, mk("foo", 5)),
        ],
    );

    let f = empty_known();
    f.add(mk("baz", 10));
    f.replace([mk("foo", 5)], "0");
    pop_all(
        &f,
        vec![
            d(Added, mk("baz", 10)),
            tomb("baz", Some(mk("baz", 10))),
            d(Replaced, mk("foo", 5)),
        ],
    );
}

#[test]
fn update_resync_race() {
    let f = with_known(&[mk("foo", 5)]);
    f.update(mk("foo", 6));
    f.resync();
    pop_all(&f, vec![d(Updated, mk("foo", 6))]);
}

#[test]
fn has_synced_correct_on_deletion() {
    let f = with_known(&three_known());
    f.replace([mk("foo", 5)], "0");
    let expected = vec![
        tomb("bar", Some(mk("bar", 6))),
        tomb("baz", Some(mk("baz", 7))),
        d(Replaced, mk("foo", 5)),
    ];
    for want in expected {
        assert!(!f.has_synced());
        let mut initial = false;
        let mut synced_while_processing = true;
        let got = f
            .try_pop(|_, is_initial| {
                initial = is_initial;
                synced_while_processing = false;
                Ok::<(), ()>(())
            })
            .unwrap()
            .unwrap();
        assert_eq!(got, vec![want]);
        assert!(initial);
        assert!(!synced_while_processing);
    }
    assert!(f.has_synced());
}

#[test]
fn detect_line_jumpers() {
    let f = empty_known();
    f.add(mk("foo", 10));
    f.add(mk("bar", 1));
    f.add(mk("foo", 11));
    f.add(mk("foo", 13));
    f.add(mk("zab", 30));
    assert_eq!(pop_val(&f), "10");
    f.add(mk("foo", 14));
    for want in ["1", "11", "13", "30", "14"] {
        assert_eq!(pop_val(&f), want);
    }
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
        // Every event counts, duplicates included.
        (
            vec![|f| f.replace([mk("a", 1), mk("a", 2)], "0"), pop1],
            false,
        ),
        (
            vec![|f| f.replace([mk("a", 1), mk("a", 2)], "0"), pop1, pop1],
            true,
        ),
    ];
    for (i, (actions, synced)) in cases.into_iter().enumerate() {
        let f = empty_known();
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
}

#[test]
fn process_error_is_returned_and_event_dropped() {
    let f = empty_known();
    f.add(mk("a", 1));
    let err = f.try_pop(|_, _| Err("boom")).unwrap_err();
    assert!(matches!(err, kube_cache::PopError::Process("boom")));
    assert!(f.is_empty());
}
