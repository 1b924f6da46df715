//! Handler registration and informer lifecycle (client-go's `TestSharedInformerRemoveHandler`,
//! `...RemoveForeignHandler`, `...MultipleRegistration`, `TestRemovingRemovedSharedInformer`,
//! `TestStateSharedInformer`, `TestAddOnStoppedSharedInformer`,
//! `TestRemoveOnStoppedSharedInformer`, `TestRemoveWhileActive`, `TestAddWhileActive`,
//! `TestSharedInformerInitializationRace`, `TestSharedInformerHandlerAbuse`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio_util::sync::CancellationToken;

use super::fixtures::{Command, Recorder, eventually, informer, pod, run};
use crate::informer::{HandlerFuncs, InformerError, wait_for_cache_sync};

#[tokio::test]
async fn remove_handler() {
    let (informer, _source) = informer(vec![pod("pod1", "1")], Duration::from_secs(1), None);
    let h1 = informer.add_event_handler(HandlerFuncs::new()).unwrap();
    let h2 = informer.add_event_handler(HandlerFuncs::new()).unwrap();
    assert_eq!(informer.handler_count(), 2);
    assert!(informer.remove_event_handler(&h2));
    assert_eq!(informer.handler_count(), 1);
    assert!(informer.remove_event_handler(&h1));
    assert_eq!(informer.handler_count(), 0);
}

#[tokio::test]
async fn remove_foreign_handler() {
    let (informer1, _s1) = informer(vec![pod("pod1", "1")], Duration::from_secs(1), None);
    let (informer2, _s2) = informer(vec![pod("pod1", "1")], Duration::from_secs(1), None);
    let h1 = informer1.add_event_handler(HandlerFuncs::new()).unwrap();
    let h2 = informer1.add_event_handler(HandlerFuncs::new()).unwrap();
    assert_eq!(informer1.handler_count(), 2);
    assert_eq!(informer2.handler_count(), 0);
    assert!(!informer2.is_registered(&h1));
    assert!(!informer2.is_registered(&h2));
    // Removing at the wrong informer does nothing.
    assert!(!informer2.remove_event_handler(&h1));
    assert_eq!(informer1.handler_count(), 2);
    assert!(informer1.is_registered(&h1));
    assert!(informer1.is_registered(&h2));
    assert!(h1.is_active());
    assert!(informer1.remove_event_handler(&h2));
    assert_eq!(informer1.handler_count(), 1);
    assert!(informer1.remove_event_handler(&h1));
    assert_eq!(informer1.handler_count(), 0);
}

#[tokio::test]
async fn multiple_registration_of_one_handler() {
    let (informer, _source) = informer(vec![pod("pod1", "1")], Duration::from_secs(1), None);
    let handler = Arc::new(HandlerFuncs::<Pod>::new());
    let r1 = informer.add_event_handler(Arc::clone(&handler)).unwrap();
    assert!(informer.is_registered(&r1));
    let r2 = informer.add_event_handler(Arc::clone(&handler)).unwrap();
    assert!(informer.is_registered(&r2));
    assert_eq!(informer.handler_count(), 2);
    assert!(informer.remove_event_handler(&r1));
    assert!(!informer.is_registered(&r1));
    assert!(informer.is_registered(&r2));
    assert_eq!(informer.handler_count(), 1);
    // Through the registration itself this time.
    assert!(r2.remove());
    assert!(!informer.is_registered(&r2));
    assert_eq!(informer.handler_count(), 0);
}

#[tokio::test]
async fn removing_a_removed_handler_is_harmless() {
    let (informer, _source) = informer(vec![pod("pod1", "1")], Duration::from_secs(1), None);
    let reg = informer.add_event_handler(HandlerFuncs::new()).unwrap();
    assert!(informer.remove_event_handler(&reg));
    assert!(!informer.is_registered(&reg));
    assert!(!informer.remove_event_handler(&reg));
    assert!(!reg.remove());
    assert!(!reg.is_active());
}

#[tokio::test]
async fn started_and_stopped_states() {
    let (informer, _source) = informer(vec![pod("pod1", "1")], Duration::from_secs(1), None);
    let recorder = Recorder::new();
    informer
        .add_event_handler_with_resync(Arc::clone(&recorder), Duration::ZERO)
        .unwrap();
    assert!(!informer.has_started());
    assert!(!informer.is_stopped());
    let (cancel, task) = run(&informer);
    recorder.wait_len(1).await;
    assert!(informer.has_started());
    assert!(!informer.is_stopped());
    cancel.cancel();
    task.await.unwrap();
    assert!(informer.is_stopped());
    assert!(informer.has_started());
    // Running again does nothing (and returns at once).
    informer.run(CancellationToken::new()).await;
    assert!(informer.is_stopped());
}

#[tokio::test]
async fn add_on_stopped_informer_is_refused() {
    let (informer, _source) = informer(vec![pod("pod1", "1")], Duration::from_secs(1), None);
    let (cancel, task) = run(&informer);
    cancel.cancel();
    task.await.unwrap();
    assert!(informer.is_stopped());
    let err = informer
        .add_event_handler(HandlerFuncs::new())
        .expect_err("a stopped informer refuses handlers");
    assert!(matches!(err, InformerError::Stopped));
    assert!(
        err.to_string()
            .ends_with("was not added to shared informer because it has stopped already")
    );
    assert!(informer.stream().is_err());
    assert!(matches!(
        informer.add_indexers(crate::Indexers::new()),
        Err(InformerError::IndexerStopped)
    ));
}

#[tokio::test]
async fn remove_on_stopped_informer() {
    let (informer, _source) = informer(vec![pod("pod1", "1")], Duration::from_secs(1), None);
    let reg = informer.add_event_handler(HandlerFuncs::new()).unwrap();
    let (cancel, task) = run(&informer);
    cancel.cancel();
    task.await.unwrap();
    assert!(informer.is_stopped());
    // The stopped informer forgot its handlers; removing is not an error.
    assert!(!informer.remove_event_handler(&reg));
    assert!(!reg.is_active());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_while_active() {
    let (informer, source) = informer(vec![], Duration::ZERO, None);
    let recorder = Recorder::new();
    let reg = informer.add_event_handler(Arc::clone(&recorder)).unwrap();
    let (cancel, task) = run(&informer);
    source.send(Command::Add(pod("pod1", "1")));
    assert_eq!(recorder.wait_len(1).await, ["add:pod1"]);
    assert!(informer.remove_event_handler(&reg));
    assert!(!informer.is_registered(&reg));
    // A second handler shows when pod2 has been distributed.
    let witness = Recorder::new();
    informer.add_event_handler(Arc::clone(&witness)).unwrap();
    source.send(Command::Add(pod("pod2", "2")));
    witness.wait_len(2).await;
    assert_eq!(recorder.events(), ["add:pod1"]);
    assert_eq!(reg.stats().received, 1);
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_while_active() {
    let (informer, source) = informer(vec![], Duration::ZERO, None);
    let first = Recorder::new();
    let h1 = informer.add_event_handler(Arc::clone(&first)).unwrap();
    assert!(!h1.has_synced(), "synced before run");
    let (cancel, task) = run(&informer);
    source.send(Command::Add(pod("pod1", "1")));
    first.wait_len(1).await;
    tokio::time::timeout(Duration::from_secs(10), h1.wait_for_sync())
        .await
        .expect("synced after run");

    // A handler that cannot handle anything yet: it must not report synced.
    let gate = Arc::new(parking_lot::Mutex::new(()));
    let second = Recorder::new();
    let held = gate.lock();
    let handler = {
        let gate = Arc::clone(&gate);
        let second = Arc::clone(&second);
        HandlerFuncs::<Pod>::new().on_add(move |obj, initial| {
            let _g = gate.lock();
            crate::informer::ResourceEventHandler::on_add(&*second, obj, initial);
        })
    };
    let h2 = informer.add_event_handler(handler).unwrap();
    assert!(!h2.has_synced(), "synced before processing anything");
    drop(held);
    h2.wait_for_sync().await;
    assert!(h2.has_synced());

    source.send(Command::Add(pod("pod2", "2")));
    assert_eq!(second.wait_len(2).await, ["add:pod1:initial", "add:pod2"]);
    assert_eq!(first.wait_len(2).await, ["add:pod1", "add:pod2"]);
    assert!(informer.is_registered(&h1));
    assert!(informer.is_registered(&h2));
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialization_race() {
    // Adding a handler while the informer starts and stops must neither deadlock nor panic.
    for _ in 0..50 {
        let (informer, _source) = informer(vec![pod("pod1", "1")], Duration::from_secs(1), None);
        let cancel = CancellationToken::new();
        let adder = tokio::spawn({
            let informer = informer.clone();
            async move {
                let _ = informer.add_event_handler_with_resync(HandlerFuncs::new(), Duration::ZERO);
            }
        });
        let runner = tokio::spawn({
            let informer = informer.clone();
            let cancel = cancel.clone();
            async move { informer.run(cancel).await }
        });
        cancel.cancel();
        adder.await.unwrap();
        runner.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handler_abuse() {
    let (informer, source) = informer(vec![], Duration::from_secs(1), None);
    let (cancel, task) = run(&informer);
    let workers: Vec<_> = (0..20)
        .map(|seed| {
            let informer = informer.clone();
            tokio::spawn(async move {
                let mut rng = fastrand_like(seed);
                let mut handles = Vec::new();
                loop {
                    if rng().is_multiple_of(2) {
                        match informer.add_event_handler_with_resync(
                            HandlerFuncs::new()
                                .on_add(|_, _| {})
                                .on_update(|_, _| {})
                                .on_delete(|_| {}),
                            Duration::from_secs(1),
                        ) {
                            Ok(reg) => handles.push(reg),
                            Err(InformerError::Stopped) => return,
                            Err(e) => panic!("unexpected error {e}"),
                        }
                    } else if !handles.is_empty() {
                        let i = rng() as usize % handles.len();
                        let reg = handles.swap_remove(i);
                        informer.remove_event_handler(&reg);
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut live: Vec<Pod> = Vec::new();
    let mut rng = fastrand_like(99);
    for i in 0..2000 {
        if live.is_empty() {
            let p = pod(&format!("pod{i}"), &i.to_string());
            live.push(p.clone());
            source.send(Command::Add(p));
        }
        match rng() % 3 {
            0 => {
                let p = pod(&format!("pod{i}"), &i.to_string());
                live.push(p.clone());
                source.send(Command::Add(p));
            }
            1 => {
                let idx = rng() as usize % live.len();
                let mut p = live[idx].clone();
                p.metadata.resource_version = Some(format!("{i}u"));
                source.send(Command::Update(p));
            }
            _ => {
                let idx = rng() as usize % live.len();
                source.send(Command::Delete(live.swap_remove(idx)));
            }
        }
        if i % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    cancel.cancel();
    for worker in workers {
        worker.await.unwrap();
    }
    task.await.unwrap();
    assert_eq!(informer.handler_count(), 0);
}

/// A small deterministic generator (xorshift), so the abuse test needs no dependency.
fn fastrand_like(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[tokio::test]
async fn wait_for_cache_sync_gives_up_on_cancel() {
    let (informer, _source) = informer(vec![pod("pod1", "1")], Duration::ZERO, None);
    let cancel = CancellationToken::new();
    cancel.cancel();
    // Never run: never synced.
    assert!(!wait_for_cache_sync(&[&informer], &cancel).await);
    let (stop, task) = run(&informer);
    let reg = informer.add_event_handler(HandlerFuncs::new()).unwrap();
    assert!(wait_for_cache_sync(&[&informer, &reg], &CancellationToken::new()).await);
    assert!(informer.has_synced());
    assert!(reg.has_synced());
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn last_sync_resource_version_follows_the_source() {
    let (informer, source) = informer(vec![pod("pod1", "1")], Duration::ZERO, None);
    assert_eq!(informer.last_sync_resource_version(), "");
    let recorder = Recorder::new();
    informer.add_event_handler(Arc::clone(&recorder)).unwrap();
    let (cancel, task) = run(&informer);
    recorder.wait_len(1).await;
    source.send(Command::Add(pod("pod2", "7")));
    recorder.wait_len(2).await;
    eventually("rv 7", || informer.last_sync_resource_version() == "7").await;
    cancel.cancel();
    task.await.unwrap();
}
