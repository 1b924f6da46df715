//! The informer over the real reflector and an in-memory lister-watcher: client-go's
//! `TestListenerResyncPeriods` through the reflector's resync loop on a fake clock, watch
//! events, the transform handed to the reflector and the last synced resourceVersion.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::{Object, WatchEvent};
use kube_flowcontrol::clock::FakeClock;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::fixtures::{Recorder, run};
use crate::informer::SharedIndexInformer;
use crate::reflector::fake::{Event, FakeLw, fake_watch, page, pod};

const SECOND: Duration = Duration::from_secs(1);

/// A lister-watcher listing `items` at rv 10, whose watches the test feeds.
#[allow(clippy::result_large_err)] // the reflector's test error type
fn source(items: Vec<Pod>) -> (FakeLw, Arc<Mutex<Vec<mpsc::UnboundedSender<Event>>>>) {
    let senders: Arc<Mutex<Vec<mpsc::UnboundedSender<Event>>>> = Arc::default();
    let watches = Arc::clone(&senders);
    let lw = FakeLw::new(
        move |_| Ok(page(items.clone(), "10", None)),
        move |_, _| {
            let (tx, watch) = fake_watch();
            watches.lock().push(tx);
            Ok(watch)
        },
    );
    (lw, senders)
}

#[tokio::test]
async fn listener_resync_periods_through_the_reflector() {
    let clock = FakeClock::new();
    let (lw, _watches) = source(vec![pod("pod1", "1"), pod("pod2", "2")]);
    let informer = SharedIndexInformer::builder(lw)
        .name("pods")
        .resync_period(SECOND)
        .clock(clock.shared())
        .build();
    let (l1, l2, l3) = (Recorder::new(), Recorder::new(), Recorder::new());
    let r1 = informer
        .add_event_handler_with_resync(Arc::clone(&l1), Duration::ZERO)
        .unwrap();
    informer
        .add_event_handler_with_resync(Arc::clone(&l2), 2 * SECOND)
        .unwrap();
    let r3 = informer
        .add_event_handler_with_resync(Arc::clone(&l3), 3 * SECOND)
        .unwrap();
    let (cancel, task) = run(&informer);
    for l in [&l1, &l2, &l3] {
        l.wait_len(2).await;
        assert_eq!(l.names(), ["pod1", "pod2"]);
        l.clear();
    }
    assert_eq!(informer.last_sync_resource_version(), "10");

    // The reflector's resync loop sleeps one check period at a time on the fake clock.
    for _ in 0..2 {
        clock.wait_for_waiters(1).await;
        clock.step(SECOND);
    }
    l2.wait_len(2).await;
    assert!(l2.events().iter().all(|e| e.starts_with("update:")));
    assert_eq!(r1.stats().received, 2);
    assert_eq!(r3.stats().received, 2);
    clock.wait_for_waiters(1).await;
    clock.step(SECOND);
    l3.wait_len(2).await;
    assert_eq!(r1.stats().received, 2);
    assert!(l1.events().is_empty());
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn watch_events_reach_the_handlers_transformed() {
    let (lw, watches) = source(vec![pod("pod1", "1")]);
    let informer = SharedIndexInformer::builder(lw)
        .transform(|p: &mut Pod| {
            let upper = p.name().to_uppercase();
            p.meta_mut().name = Some(upper);
        })
        .build();
    let recorder = Recorder::new();
    informer.add_event_handler(Arc::clone(&recorder)).unwrap();
    let (cancel, task) = run(&informer);
    assert_eq!(recorder.wait_len(1).await, ["add:POD1:initial"]);
    super::fixtures::eventually("a watch", || !watches.lock().is_empty()).await;
    let tx = watches.lock()[0].clone();
    tx.send(Ok(WatchEvent::Added(pod("pod2", "11")))).unwrap();
    tx.send(Ok(WatchEvent::Modified(pod("pod1", "12"))))
        .unwrap();
    tx.send(Ok(WatchEvent::Deleted(pod("pod2", "13")))).unwrap();
    // Per key in order; across keys, as the queue pops them (pod2's add and delete may come
    // out together, before pod1's update).
    let events = recorder.wait_len(4).await;
    let of = |key: &str| -> Vec<&String> { events.iter().filter(|e| e.contains(key)).collect() };
    assert_eq!(of("POD1"), ["add:POD1:initial", "update:POD1"]);
    assert_eq!(of("POD2"), ["add:POD2", "delete:POD2"]);
    super::fixtures::eventually("rv 13", || informer.last_sync_resource_version() == "13").await;
    assert_eq!(informer.indexer().list_keys(), ["ns/POD1"]);
    cancel.cancel();
    task.await.unwrap();
    assert!(informer.is_stopped());
}
