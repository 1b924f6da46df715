//! Handler shapes and delivery: streams, closures, filtering, late joins, slow and panicking
//! handlers, deletions with tombstones, transforms (client-go's
//! `TestSharedInformerTransformer` among them).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_core::Stream;
use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::Object;
use kube_flowcontrol::clock::FakeClock;

use super::fixtures::{
    Command, Recorder, ScriptedSource, eventually, informer, pod, run, scripted_builder,
};
use crate::informer::{FilteringHandler, HandlerFuncs, InformerEvent};
use crate::key::ObjectOrTombstone;

async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    let fut = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx));
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("an event within 10 s")
}

#[tokio::test]
async fn stream_receives_events_in_order_and_counts_for_sync() {
    let (informer, source) = informer(vec![pod("a", "1"), pod("b", "2")], Duration::ZERO, None);
    let mut stream = informer.stream().unwrap();
    let reg = stream.registration().clone();
    let (cancel, task) = run(&informer);
    informer.wait_for_sync().await;
    let mut initial = Vec::new();
    for _ in 0..2 {
        match next(&mut stream).await.unwrap() {
            InformerEvent::Added {
                object,
                is_in_initial_list,
            } => {
                assert!(is_in_initial_list);
                initial.push(object.name().to_string());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    initial.sort();
    assert_eq!(initial, ["a", "b"]);
    assert!(reg.has_synced());
    source.send(Command::Update(pod("a", "3")));
    match next(&mut stream).await.unwrap() {
        InformerEvent::Updated { old, new } => {
            assert_eq!(old.resource_version(), Some("1"));
            assert_eq!(new.resource_version(), Some("3"));
        }
        other => panic!("unexpected {other:?}"),
    }
    source.send(Command::Delete(pod("b", "4")));
    match next(&mut stream).await.unwrap() {
        InformerEvent::Deleted(ObjectOrTombstone::Object(p)) => assert_eq!(p.name(), "b"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(informer.handler_count(), 1);
    drop(stream);
    // Dropping the stream removes its registration.
    assert_eq!(informer.handler_count(), 0);
    assert!(!reg.is_active());
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn stream_ends_when_the_informer_stops() {
    let (informer, _source) = informer(vec![pod("a", "1")], Duration::ZERO, None);
    let mut stream = informer.stream().unwrap();
    let (cancel, task) = run(&informer);
    assert!(next(&mut stream).await.is_some());
    cancel.cancel();
    task.await.unwrap();
    assert!(next(&mut stream).await.is_none());
}

#[tokio::test]
async fn late_handler_gets_the_cache_as_initial_adds() {
    let (informer, source) = informer(vec![pod("a", "1"), pod("b", "2")], Duration::ZERO, None);
    let early = Recorder::new();
    informer.add_event_handler(Arc::clone(&early)).unwrap();
    let (cancel, task) = run(&informer);
    early.wait_len(2).await;
    let mut events = early.events();
    events.sort();
    assert_eq!(events, ["add:a:initial", "add:b:initial"]);
    source.send(Command::Add(pod("c", "3")));
    early.wait_len(3).await;

    let late = Recorder::new();
    let reg = informer.add_event_handler(Arc::clone(&late)).unwrap();
    reg.wait_for_sync().await;
    let mut events = late.wait_len(3).await;
    events.sort();
    assert_eq!(events, ["add:a:initial", "add:b:initial", "add:c:initial"]);
    source.send(Command::Delete(pod("a", "4")));
    assert_eq!(late.wait_len(4).await[3], "delete:a");
    assert_eq!(early.wait_len(4).await[3], "delete:a");
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn removed_and_re_added_handler_starts_over() {
    let (informer, source) = informer(vec![pod("a", "1")], Duration::ZERO, None);
    let recorder = Recorder::new();
    let reg = informer.add_event_handler(Arc::clone(&recorder)).unwrap();
    let (cancel, task) = run(&informer);
    recorder.wait_len(1).await;
    assert!(reg.remove());
    source.send(Command::Add(pod("b", "2")));
    eventually("b cached", || informer.indexer().len() == 2).await;
    // Listener "restart": the same handler registered again gets the whole cache first.
    let again = informer.add_event_handler(Arc::clone(&recorder)).unwrap();
    again.wait_for_sync().await;
    let events = recorder.wait_len(3).await;
    let mut tail = events[1..].to_vec();
    tail.sort();
    assert_eq!(events[0], "add:a:initial");
    assert_eq!(tail, ["add:a:initial", "add:b:initial"]);
    assert!(!reg.is_active());
    assert!(again.is_active());
    cancel.cancel();
    task.await.unwrap();
    assert!(!again.is_active());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
#[allow(clippy::await_holding_lock)] // the held gate is what makes the handler slow
async fn slow_handler_does_not_delay_a_fast_one() {
    let (informer, source) = informer(vec![], Duration::ZERO, None);
    let gate = Arc::new(parking_lot::Mutex::new(()));
    let slow_seen = Arc::new(AtomicUsize::new(0));
    let slow = {
        let gate = Arc::clone(&gate);
        let seen = Arc::clone(&slow_seen);
        HandlerFuncs::<Pod>::new().on_add(move |_, _| {
            let _g = gate.lock(); // blocks while the test holds the gate
            seen.fetch_add(1, Ordering::SeqCst);
        })
    };
    let slow_reg = informer.add_event_handler(slow).unwrap();
    let fast = Recorder::new();
    informer.add_event_handler(Arc::clone(&fast)).unwrap();
    // A stream nobody polls is a slow consumer too.
    let idle = informer.stream().unwrap();
    let (cancel, task) = run(&informer);
    informer.wait_for_sync().await;

    let held = gate.lock();
    const N: usize = 3000;
    for i in 0..N {
        source.send(Command::Add(pod(&format!("p{i}"), &i.to_string())));
    }
    fast.wait_len(N).await;
    // The slow handler is stuck on its first notification; the rest waits in its buffer.
    let stats = slow_reg.stats();
    assert!(slow_seen.load(Ordering::SeqCst) == 0);
    assert_eq!(stats.received, N as u64);
    assert!(stats.pending >= N - 1, "{stats:?}");
    assert!(stats.max_pending >= N - 1);
    assert!(stats.capacity >= N - 1);
    assert_eq!(idle.registration().stats().pending, N);
    drop(held);
    eventually("the slow handler caught up", || {
        slow_seen.load(Ordering::SeqCst) == N
    })
    .await;
    eventually("delivered counted", || {
        slow_reg.stats().delivered == N as u64
    })
    .await;
    let stats = slow_reg.stats();
    assert_eq!(stats.pending, 0);
    // The buffer gave back the backlog's memory.
    assert!(
        stats.capacity <= crate::informer::listener::INITIAL_BUFFER_SIZE,
        "{stats:?}"
    );
    drop(idle);
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn pending_notifications_are_dropped_and_counted_on_stop() {
    let (informer, _source) = informer(vec![pod("a", "1"), pod("b", "2")], Duration::ZERO, None);
    let stream = informer.stream().unwrap();
    let reg = stream.registration().clone();
    let (cancel, task) = run(&informer);
    informer.wait_for_sync().await;
    eventually("two queued", || reg.stats().pending == 2).await;
    assert!(
        !reg.has_synced(),
        "the stream has not yielded its initial list"
    );
    cancel.cancel();
    task.await.unwrap();
    let stats = reg.stats();
    assert_eq!(stats.pending, 0);
    assert_eq!(stats.dropped, 2);
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_skips_one_notification_and_goes_on() {
    let clock = FakeClock::new();
    let (informer, source) = informer(vec![], Duration::ZERO, Some(&clock));
    let recorder = Recorder::new();
    let reg = {
        let recorder = Arc::clone(&recorder);
        informer
            .add_event_handler(HandlerFuncs::<Pod>::new().on_add(move |obj, initial| {
                if obj.name() == "boom" {
                    panic!("handler failure under test");
                }
                crate::informer::ResourceEventHandler::on_add(&*recorder, obj, initial);
            }))
            .unwrap()
    };
    let (cancel, task) = run(&informer);
    source.send(Command::Add(pod("boom", "1")));
    source.send(Command::Add(pod("after", "2")));
    // The handler rests one second (of the informer's clock) after a panic.
    clock.wait_for_waiters(1).await;
    assert!(recorder.events().is_empty());
    clock.step(Duration::from_secs(1));
    assert_eq!(recorder.wait_len(1).await, ["add:after"]);
    // Counted once the handler returns, just after the recorder saw the event.
    eventually("both delivered", || reg.stats().delivered == 2).await;
    assert_eq!(reg.stats().panics, 1);
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn relist_deletions_arrive_as_tombstones() {
    let (informer, source) = informer(vec![pod("a", "1"), pod("b", "2")], Duration::ZERO, None);
    let recorder = Recorder::new();
    informer.add_event_handler(Arc::clone(&recorder)).unwrap();
    let (cancel, task) = run(&informer);
    recorder.wait_len(2).await;
    source.send(Command::Replace(vec![pod("a", "1")]));
    let events = recorder.wait_len(4).await;
    // a was unchanged: a sync notification, which goes to every handler as long as no
    // resync check ran (client-go marks new listeners syncing; this informer never resyncs).
    assert_eq!(events[2..], ["update:a", "delete:tombstone default/b"]);
    assert_eq!(informer.indexer().list_keys(), ["default/a"]);
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn filtering_handler_turns_updates_into_adds_and_deletes() {
    let (informer, source) = informer(vec![pod("a", "1")], Duration::ZERO, None);
    let recorder = Recorder::new();
    let labeled = |p: &Pod| p.labels().get("watch").is_some_and(|v| v == "yes");
    informer
        .add_event_handler(FilteringHandler::new(labeled, Arc::clone(&recorder)))
        .unwrap();
    let (cancel, task) = run(&informer);
    informer.wait_for_sync().await;
    let mut a = pod("a", "2");
    a.meta_mut().labels = Some([("watch".to_string(), "yes".to_string())].into());
    source.send(Command::Update(a.clone()));
    assert_eq!(recorder.wait_len(1).await, ["add:a"]);
    a.meta_mut().resource_version = Some("3".into());
    source.send(Command::Update(a.clone()));
    recorder.wait_len(2).await;
    source.send(Command::Update(pod("a", "4")));
    assert_eq!(
        recorder.wait_len(3).await,
        ["add:a", "update:a", "delete:a"]
    );
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn transform_is_applied_before_storing() {
    // client-go's TestSharedInformerTransformer: names upper-cased by the transform.
    let (_source, feed) = ScriptedSource::new(vec![pod("pod1", "1"), pod("pod2", "2")]);
    let informer = scripted_builder(feed)
        .transform(|p: &mut Pod| {
            let upper = p.name().to_uppercase();
            p.meta_mut().name = Some(upper);
        })
        .build();
    let recorder = Recorder::new();
    informer.add_event_handler(Arc::clone(&recorder)).unwrap();
    let (cancel, task) = run(&informer);
    recorder.wait_len(2).await;
    assert_eq!(recorder.names(), ["POD1", "POD2"]);
    assert!(informer.lister().get("default", "POD1").is_some());
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn default_transform_drops_managed_fields() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    let mut p = pod("a", "1");
    p.meta_mut().managed_fields = Some(vec![ManagedFieldsEntry::default()]);
    let (informer, _source) = informer(vec![p.clone()], Duration::ZERO, None);
    let (cancel, task) = run(&informer);
    informer.wait_for_sync().await;
    let stored = informer.indexer().get_by_key("default/a").unwrap();
    assert!(stored.meta().managed_fields.is_none());

    let (_source, feed) = ScriptedSource::new(vec![p]);
    let keep = scripted_builder(feed).drop_managed_fields(false).build();
    let (cancel2, task2) = run(&keep);
    keep.wait_for_sync().await;
    assert!(
        keep.indexer()
            .get_by_key("default/a")
            .unwrap()
            .meta()
            .managed_fields
            .is_some()
    );
    cancel.cancel();
    cancel2.cancel();
    task.await.unwrap();
    task2.await.unwrap();
}
