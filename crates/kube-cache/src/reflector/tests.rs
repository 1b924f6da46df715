//! Unit tests with an in-memory ListerWatcher: client-go's reflector_test.go cases, ported.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::{Object, Status, StatusCause, StatusDetails, WatchEvent};
use kube_flowcontrol::{Clock, FakeClock};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::fake::*;
use super::*;
use crate::{DeltaFifo, DeltaType, Indexer};

/// A store that records what the reflector does to it.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock())
    }
    fn len(&self) -> usize {
        self.0.lock().len()
    }
}

impl ReflectorStore<Pod> for Recorder {
    fn add(&self, obj: Arc<Pod>) {
        self.0.lock().push(format!("add {}", obj.name()));
    }
    fn update(&self, obj: Arc<Pod>) {
        self.0.lock().push(format!("update {}", obj.name()));
    }
    fn delete(&self, obj: Arc<Pod>) {
        self.0.lock().push(format!("delete {}", obj.name()));
    }
    fn replace(&self, list: Vec<Arc<Pod>>, resource_version: &str) {
        let mut names: Vec<&str> = list.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        self.0
            .lock()
            .push(format!("replace [{}] {resource_version}", names.join(",")));
    }
    fn resync(&self) {
        self.0.lock().push("resync".into());
    }
}

fn pods(n: usize) -> Vec<Pod> {
    (0..n).map(|i| pod(&format!("pod-{i}"), "1")).collect()
}

fn too_large() -> FakeError {
    let mut e = FakeError::status(504, "Timeout", "Too large resource version");
    e.status.as_mut().unwrap().details = Some(StatusDetails {
        causes: vec![StatusCause {
            reason: "ResourceVersionTooLarge".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    e
}

fn expired() -> FakeError {
    FakeError::status(410, "Expired", "too old resource version")
}

/// A list at rv "1" that is empty, watches that never end.
fn quiet_lw() -> FakeLw {
    let keep = Arc::new(Mutex::new(Vec::new()));
    FakeLw::new(
        |_| Ok(page(vec![], "1", None)),
        move |_, _| {
            let (tx, w) = fake_watch();
            keep.lock().push(tx);
            Ok(w)
        },
    )
}

async fn until(mut f: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition not reached");
}

// client-go TestReflectorWatchHandlerError
#[tokio::test]
async fn watch_handler_error_event_is_returned() {
    let r = Reflector::builder(quiet_lw(), Recorder::default()).build();
    let mut w = Box::pin(closed_watch(vec![Ok(WatchEvent::Error(Status::failure(
        500,
        "InternalError",
        "boom",
    )))]));
    let ended = r
        .inner
        .handle_watch(r.inner.config.clock.now(), w.as_mut(), Sink::Store, false)
        .await;
    assert!(matches!(ended, Err(ReflectorError::WatchStatus(s)) if s.code == 500));
}

// client-go TestReflectorWatchHandler
#[tokio::test]
async fn watch_handler_applies_events_and_tracks_the_version() {
    let store = Indexer::<Pod>::new();
    store.add(pod("foo", "1"));
    store.add(pod("bar", "1"));
    let r = Reflector::builder(quiet_lw(), store.clone()).build();
    let mut w = Box::pin(closed_watch(vec![
        Ok(WatchEvent::Deleted(pod("foo", "2"))),
        Ok(WatchEvent::Modified(pod("bar", "55"))),
        Ok(WatchEvent::Added(pod("baz", "32"))),
    ]));
    let ended = r
        .inner
        .handle_watch(r.inner.config.clock.now(), w.as_mut(), Sink::Store, false)
        .await;
    assert!(matches!(ended, Ok(WatchEnd::Closed)));
    assert!(store.get_by_key("ns/foo").is_none());
    assert_eq!(
        store.get_by_key("ns/bar").unwrap().resource_version(),
        Some("55")
    );
    assert_eq!(
        store.get_by_key("ns/baz").unwrap().resource_version(),
        Some("32")
    );
    // The last version seen, not the highest.
    assert_eq!(r.last_sync_resource_version(), "32");
    assert_eq!(r.handle().stats().events, 3);
}

// client-go TestReflectorStopWatch / TestReflectorWatchStoppedBefore/After
#[tokio::test]
async fn run_stops_when_cancelled() {
    let r = Reflector::builder(quiet_lw(), Recorder::default()).build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(r.run(cancel.clone()));
    until(|| handle.stats().watches_started == 1).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("run returns once cancelled")
        .unwrap();
}

#[tokio::test]
async fn a_very_short_empty_watch_is_an_error() {
    let r = Reflector::builder(quiet_lw(), Recorder::default())
        .clock(FakeClock::new().shared())
        .build();
    let mut w = Box::pin(closed_watch(vec![]));
    let ended = r
        .inner
        .handle_watch(r.inner.config.clock.now(), w.as_mut(), Sink::Store, false)
        .await;
    assert!(matches!(ended, Err(ReflectorError::VeryShortWatch)));
}

// client-go TestReflectorListAndWatch
#[tokio::test]
async fn list_and_watch_resumes_from_the_last_version() {
    let (senders_tx, mut senders) = mpsc::unbounded_channel();
    let lw = FakeLw::new(
        |_| Ok(page(vec![], "1", None)),
        move |_, _| {
            let (tx, w) = fake_watch();
            senders_tx.send(tx).unwrap();
            Ok(w)
        },
    );
    let calls = Arc::clone(&lw.calls);
    let store = Indexer::<Pod>::new();
    let r = Reflector::builder(lw, store.clone())
        .clock(FakeClock::new().shared())
        .build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));

    let ids = ["foo", "bar", "baz", "qux", "zoo"];
    let mut tx = None;
    for (i, id) in ids.iter().enumerate() {
        let sender = match tx.take() {
            Some(s) => s,
            None => senders.recv().await.unwrap(),
        };
        let rv = (i + 2).to_string();
        sender.send(Ok(WatchEvent::Added(pod(id, &rv)))).unwrap();
        if rv == "3" {
            drop(sender); // the watch ends: the reflector watches again from "3"
        } else {
            tx = Some(sender);
        }
    }
    until(|| store.len() == 5).await;
    let rvs: Vec<String> = calls
        .lock()
        .watches
        .iter()
        .map(|(_, rv)| rv.clone())
        .collect();
    assert_eq!(rvs, ["1", "3"]);
    let watch = &calls.lock().watches[0].0;
    assert!(watch.bookmarks, "bookmarks are asked for");
    let timeout = watch.timeout_seconds.unwrap();
    assert!((300..600).contains(&timeout), "timeout {timeout}");
    assert_eq!(handle.last_sync_resource_version(), "6");
    let stats = handle.stats();
    assert_eq!(
        (stats.lists, stats.relists, stats.watches_started),
        (1, 0, 2)
    );
    cancel.cancel();
}

// client-go TestReflectorListAndWatchWithErrors
#[tokio::test]
async fn list_and_watch_with_errors() {
    let clock = FakeClock::new();
    let step_at = Arc::new(AtomicUsize::new(0));
    let s2 = Arc::clone(&step_at);
    let s3 = Arc::clone(&step_at);
    let (senders_tx, mut senders) = mpsc::unbounded_channel();
    let lw = FakeLw::new(
        move |_| {
            if s2.load(Ordering::SeqCst) == 0 {
                Err(FakeError::msg("list failed"))
            } else {
                Ok(page(vec![pod("a", "1")], "1", None))
            }
        },
        move |_, _| {
            if s3.load(Ordering::SeqCst) == 1 {
                return Err(FakeError::msg("watch failed"));
            }
            let (tx, w) = fake_watch();
            senders_tx.send(tx).unwrap();
            Ok(w)
        },
    );
    let errors = Arc::new(Mutex::new(Vec::new()));
    let errors2 = Arc::clone(&errors);
    let store = Recorder::default();
    let r = Reflector::builder(lw, store.clone())
        .clock(clock.shared())
        .watch_error_handler(move |_, e| errors2.lock().push(e.to_string()))
        .build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    // Step 0: the list fails, the handler hears it, the reflector backs off.
    clock.wait_for_waiters(1).await;
    assert_eq!(errors.lock().len(), 1);
    assert!(errors.lock()[0].contains("list failed"));
    step_at.store(1, Ordering::SeqCst);
    clock.step_to_next_deadline();
    // Step 1: the list works, the watch fails to start.
    clock.wait_for_waiters(1).await;
    assert_eq!(errors.lock().len(), 2);
    assert!(errors.lock()[1].contains("watch failed"));
    step_at.store(2, Ordering::SeqCst);
    clock.step_to_next_deadline();
    // Step 2: both work.
    let _tx = senders.recv().await.unwrap();
    assert_eq!(errors.lock().len(), 2);
    assert_eq!(store.take(), ["replace [a] 1", "replace [a] 1"]);
    let stats = handle.stats();
    assert_eq!(stats.backoffs, 2);
    assert_eq!(stats.relists, 1);
    assert_eq!((stats.list_errors, stats.watch_errors), (1, 1));
    assert!(handle.has_synced());
    cancel.cancel();
}

// client-go TestReflectorResync / TestReflectorResyncChan
#[tokio::test]
async fn resync_asks_should_resync_every_period() {
    let clock = FakeClock::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let asked2 = Arc::clone(&asked);
    let store = Recorder::default();
    let r = Reflector::builder(quiet_lw(), store.clone())
        .clock(clock.shared())
        .resync_period(Duration::from_secs(10))
        // Say no once, then yes.
        .should_resync(move || asked2.fetch_add(1, Ordering::SeqCst) > 0)
        .build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    clock.wait_for_waiters(1).await;
    assert_eq!(
        clock.next_deadline(),
        Some(clock.now() + Duration::from_secs(10))
    );
    assert_eq!(store.take(), ["replace [] 1"]);
    clock.step(Duration::from_secs(10));
    until(|| asked.load(Ordering::SeqCst) == 1).await;
    clock.wait_for_waiters(1).await;
    clock.step(Duration::from_secs(10));
    until(|| store.len() == 1).await;
    assert_eq!(store.take(), ["resync"]);
    assert_eq!(handle.stats().resyncs, 1);
    cancel.cancel();
}

// client-go TestReflectorWatchListPageSize
#[tokio::test]
async fn paged_list_with_a_page_size() {
    let all = pods(10);
    let lw = FakeLw::new(
        move |p| {
            assert_eq!(p.limit, Some(4));
            let start: usize = p
                .continue_token
                .as_deref()
                .map_or(0, |c| c.parse().unwrap());
            let end = (start + 4).min(all.len());
            let next = (end < all.len()).then(|| end.to_string());
            Ok(page(all[start..end].to_vec(), "10", next.as_deref()))
        },
        |_, _| Ok(fake_watch().1),
    );
    let calls = Arc::clone(&lw.calls);
    let store = Indexer::<Pod>::new();
    let r = Reflector::builder(lw, store.clone()).page_size(4).build();
    let mut state = State { ..r.state };
    r.inner.list(&mut state).await.unwrap();
    assert_eq!(store.len(), 10);
    let lists = &calls.lock().lists;
    assert_eq!(lists.len(), 3);
    assert_eq!(lists[0].resource_version.as_deref(), Some("0"));
    assert_eq!(lists[1].continue_token.as_deref(), Some("4"));
    // A continued page gives no resourceVersion (the token has it).
    assert_eq!(lists[1].resource_version, None);
    assert_eq!(r.last_sync_resource_version(), "10");
    // The initial list at "0" came paged: the watch cache is off, keep paging.
    assert!(state.paginated_result);
}

// client-go TestReflectorSetExpectedType's neighbour: paging defaults (TestReflectorListAndWatch
// with WatchListPageSize unset): pages of 500 at "0" and "", none at a given version.
#[tokio::test]
async fn paging_defaults_follow_the_resource_version() {
    let lw = FakeLw::new(|_| Ok(page(vec![], "10", None)), |_, _| Ok(fake_watch().1));
    let calls = Arc::clone(&lw.calls);
    let r = Reflector::builder(lw, Recorder::default()).build();
    let mut state = State { ..r.state };
    r.inner.list(&mut state).await.unwrap(); // at "0"
    r.inner.list(&mut state).await.unwrap(); // at "10": served from the watch cache, unpaged
    state.last_sync_resource_version_unavailable = true;
    r.inner.list(&mut state).await.unwrap(); // at "": paged
    let lists: Vec<_> = calls
        .lock()
        .lists
        .iter()
        .map(|p| (p.resource_version.clone().unwrap(), p.limit.unwrap()))
        .collect();
    assert_eq!(
        lists,
        [("0".into(), 500), ("10".into(), 0), (String::new(), 500)]
    );
    assert!(!state.paginated_result);
}

// client-go TestReflectorFullListIfExpired
#[tokio::test]
async fn full_list_when_a_continue_token_expires() {
    let all = pods(10);
    let lw = FakeLw::new(
        move |p| match (p.limit, p.continue_token.as_deref()) {
            (Some(4), Some("C1")) => Err(expired()),
            (Some(4), None) => Ok(page(all[..4].to_vec(), "10", Some("C1"))),
            (None, None) => {
                assert_eq!(p.resource_version.as_deref(), Some("0"));
                Ok(page(all.clone(), "11", None))
            }
            other => panic!("unexpected list {other:?}"),
        },
        |_, _| Ok(fake_watch().1),
    );
    let store = Indexer::<Pod>::new();
    let r = Reflector::builder(lw, store.clone()).page_size(4).build();
    let mut state = State { ..r.state };
    r.inner.list(&mut state).await.unwrap();
    assert_eq!(store.len(), 10);
    assert_eq!(r.last_sync_resource_version(), "11");
    let stats = r.handle().stats();
    assert_eq!(stats.expired_continue_fallbacks, 1);
    assert_eq!(stats.list_pages, 3);
}

// client-go TestReflectorFullListIfTooLarge
#[tokio::test]
async fn relist_at_latest_when_the_version_is_too_large_or_expired() {
    for error in [too_large(), expired()] {
        let lw = FakeLw::new(
            move |p| match p.resource_version.as_deref() {
                Some("") => Ok(page(vec![pod("a", "20")], "20", None)),
                _ => Err(error.clone()),
            },
            |_, _| Ok(fake_watch().1),
        );
        let calls = Arc::clone(&lw.calls);
        let r = Reflector::builder(lw, Recorder::default()).build();
        let mut state = State { ..r.state };
        r.inner.list(&mut state).await.unwrap();
        let rvs: Vec<_> = calls
            .lock()
            .lists
            .iter()
            .map(|p| p.resource_version.clone().unwrap())
            .collect();
        assert_eq!(rvs, ["0", ""]);
        assert!(!state.last_sync_resource_version_unavailable);
        assert_eq!(r.handle().stats().lists, 2);
    }
}

#[tokio::test]
async fn a_not_found_list_empties_the_store() {
    let lw = FakeLw::new(
        |_| {
            Err(FakeError::status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ))
        },
        |_, _| Ok(fake_watch().1),
    );
    let store = Recorder::default();
    let r = Reflector::builder(lw, store.clone()).build();
    let mut state = State { ..r.state };
    let e = r.inner.list(&mut state).await.unwrap_err();
    assert!(matches!(e, ReflectorError::List { .. }));
    assert_eq!(store.take(), ["replace [] "]);
}

/// A reflector that lists `a` at rv 1, then serves each watch from `watches` in order.
fn scripted(watches: Vec<std::result::Result<Vec<Event>, FakeError>>, keep_open: bool) -> FakeLw {
    let watches = Mutex::new(watches.into_iter());
    let keep = Mutex::new(Vec::new());
    FakeLw::new(
        |_| Ok(page(vec![pod("a", "1")], "1", None)),
        move |_, _| match watches.lock().next() {
            Some(Ok(events)) => {
                let (tx, w) = fake_watch();
                for e in events {
                    tx.send(e).unwrap();
                }
                if keep_open {
                    keep.lock().push(tx);
                }
                Ok(w)
            }
            Some(Err(e)) => Err(e),
            None => {
                let (tx, w) = fake_watch();
                keep.lock().push(tx);
                Ok(w)
            }
        },
    )
}

#[tokio::test]
async fn a_410_during_the_watch_relists_at_the_last_version() {
    let clock = FakeClock::new();
    let lw = scripted(
        vec![Ok(vec![
            Ok(WatchEvent::Added(pod("b", "2"))),
            Ok(WatchEvent::Error(Status::failure(
                410, "Expired", "too old",
            ))),
        ])],
        false,
    );
    let calls = Arc::clone(&lw.calls);
    let r = Reflector::builder(lw, Recorder::default())
        .clock(clock.shared())
        .build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    clock.wait_for_waiters(1).await; // the backoff before the relist
    let delay = clock.next_deadline().unwrap() - clock.now();
    assert!(
        delay >= Duration::from_millis(800) && delay < Duration::from_millis(1600),
        "{delay:?}"
    );
    clock.step_to_next_deadline();
    until(|| calls.lock().watches.len() == 2).await;
    let lists: Vec<_> = calls
        .lock()
        .lists
        .iter()
        .map(|p| (p.resource_version.clone().unwrap(), p.limit.unwrap()))
        .collect();
    // Relisted at the last version seen, unpaged (client-go: the watch cache serves it).
    assert_eq!(lists, [("0".into(), 500), ("2".into(), 0)]);
    let stats = handle.stats();
    assert_eq!(
        (stats.relists, stats.watch_errors, stats.backoffs),
        (1, 1, 1)
    );
    cancel.cancel();
}

#[tokio::test]
async fn a_cut_watch_resumes_without_a_relist() {
    let lw = scripted(
        vec![Ok(vec![
            Ok(WatchEvent::Added(pod("b", "2"))),
            Err(FakeError::cut()),
        ])],
        false,
    );
    let calls = Arc::clone(&lw.calls);
    let r = Reflector::builder(lw, Recorder::default())
        .clock(FakeClock::new().shared())
        .build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    until(|| calls.lock().watches.len() == 2).await;
    assert_eq!(calls.lock().watches[1].1, "2");
    assert_eq!(calls.lock().lists.len(), 1);
    let stats = handle.stats();
    assert_eq!((stats.watch_cuts, stats.relists, stats.backoffs), (1, 0, 0));
    cancel.cancel();
}

// client-go isWatchErrorRetriable: 429 and refused connections back off, then watch again.
#[tokio::test]
async fn a_refused_watch_backs_off_and_watches_again() {
    let clock = FakeClock::new();
    let lw = scripted(
        vec![
            Err(FakeError::status(429, "TooManyRequests", "slow down")),
            Err(FakeError::refused()),
        ],
        false,
    );
    let calls = Arc::clone(&lw.calls);
    let r = Reflector::builder(lw, Recorder::default())
        .clock(clock.shared())
        .build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    for _ in 0..2 {
        clock.wait_for_waiters(1).await;
        clock.step_to_next_deadline();
    }
    until(|| calls.lock().watches.len() == 3).await;
    let rvs: Vec<_> = calls.lock().watches.iter().map(|w| w.1.clone()).collect();
    assert_eq!(rvs, ["1", "1", "1"]);
    assert_eq!(calls.lock().lists.len(), 1, "no relist");
    assert_eq!(handle.stats().backoffs, 2);
    cancel.cancel();
}

// wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0): doubling, capped, jittered.
#[tokio::test]
async fn backoff_doubles_up_to_30s() {
    let clock = FakeClock::new();
    let lw = FakeLw::new(|_| Err(FakeError::msg("down")), |_, _| Ok(fake_watch().1));
    let r = Reflector::builder(lw, Recorder::default())
        .clock(clock.shared())
        .watch_error_handler(|_, _| {})
        .build();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    let mut base = Duration::from_millis(800);
    for _ in 0..8 {
        clock.wait_for_waiters(1).await;
        let delay = clock.next_deadline().unwrap() - clock.now();
        assert!(
            delay >= base && delay < base * 2,
            "{delay:?} for base {base:?}"
        );
        base = (base * 2).min(Duration::from_secs(30));
        clock.step_to_next_deadline();
    }
    // Two healthy minutes later, back to 800ms.
    clock.wait_for_waiters(1).await;
    clock.step(Duration::from_secs(200));
    clock.wait_for_waiters(1).await;
    let delay = clock.next_deadline().unwrap() - clock.now();
    assert!(delay < Duration::from_millis(1600), "{delay:?}");
    cancel.cancel();
}

#[tokio::test]
async fn streaming_list_fills_the_store_then_keeps_watching() {
    let (senders_tx, mut senders) = mpsc::unbounded_channel();
    let lw = FakeLw::new(
        |_| panic!("no list when streaming works"),
        move |p, rv| {
            let (tx, w) = fake_watch();
            if p.send_initial_events {
                assert_eq!(rv, "");
                assert!(p.bookmarks);
                tx.send(Ok(WatchEvent::Added(pod("a", "3")))).unwrap();
                tx.send(Ok(WatchEvent::Added(pod("b", "4")))).unwrap();
                tx.send(Ok(WatchEvent::Deleted(pod("a", "5")))).unwrap();
                tx.send(bookmark("5", true)).unwrap();
            }
            senders_tx.send(tx).unwrap();
            Ok(w)
        },
    )
    .streaming();
    let calls = Arc::clone(&lw.calls);
    let store = Recorder::default();
    let r = Reflector::builder(lw, store.clone()).build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    let tx = senders.recv().await.unwrap();
    until(|| store.len() == 1).await;
    tx.send(Ok(WatchEvent::Added(pod("c", "6")))).unwrap();
    until(|| store.len() == 2).await;
    assert_eq!(store.take(), ["replace [b] 5", "add c"]);
    assert_eq!(handle.last_sync_resource_version(), "6");
    assert_eq!(calls.lock().watches.len(), 1, "the same watch goes on");
    let stats = handle.stats();
    assert_eq!((stats.streaming_lists, stats.lists), (1, 0));
    cancel.cancel();
}

#[tokio::test]
async fn streaming_list_refused_falls_back_to_lists_for_good() {
    let clock = FakeClock::new();
    let lw = FakeLw::new(
        |_| Ok(page(vec![pod("a", "1")], "1", None)),
        move |p, _| {
            if p.send_initial_events {
                return Err(FakeError::status(
                    422,
                    "Invalid",
                    "resourceVersionMatch is forbidden for watch",
                ));
            }
            // Watches end at once with an error: each cycle relists.
            Ok(closed_watch(vec![Ok(WatchEvent::Error(Status::failure(
                410, "Expired", "old",
            )))]))
        },
    )
    .streaming();
    let calls = Arc::clone(&lw.calls);
    let r = Reflector::builder(lw, Recorder::default())
        .clock(clock.shared())
        .build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    for _ in 0..2 {
        clock.wait_for_waiters(1).await;
        clock.step_to_next_deadline();
    }
    clock.wait_for_waiters(1).await;
    let streaming = calls
        .lock()
        .watches
        .iter()
        .filter(|w| w.0.send_initial_events)
        .count();
    assert_eq!(streaming, 1, "tried once");
    assert_eq!(calls.lock().lists.len(), 3);
    let stats = handle.stats();
    assert_eq!((stats.streaming_lists, stats.streaming_fallbacks), (1, 1));
    cancel.cancel();
}

#[tokio::test]
async fn streaming_is_not_used_when_the_lister_watcher_cannot() {
    let lw = quiet_lw(); // supports_streaming_list() == false
    let calls = Arc::clone(&lw.calls);
    let r = Reflector::builder(lw, Recorder::default())
        .streaming_list(true)
        .build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    until(|| handle.stats().watches_started == 1).await;
    assert!(!calls.lock().watches[0].0.send_initial_events);
    assert_eq!(calls.lock().lists.len(), 1);
    cancel.cancel();
}

// Deleted while disconnected: the relist's Replace queues tombstones in a DeltaFIFO.
#[tokio::test]
async fn relist_after_410_surfaces_deletions_as_tombstones() {
    let known = Indexer::<Pod>::new();
    let fifo = DeltaFifo::builder()
        .known_objects(known.clone())
        .emit_delta_type_replaced(true)
        .build();
    let lists = Mutex::new(
        vec![
            page(vec![pod("a", "1"), pod("b", "1")], "1", None),
            page(vec![pod("a", "1")], "9", None),
        ]
        .into_iter(),
    );
    let lw = FakeLw::new(
        move |_| {
            Ok(lists
                .lock()
                .next()
                .unwrap_or_else(|| page(vec![pod("a", "1")], "9", None)))
        },
        |_, rv| {
            if rv == "1" {
                Ok(closed_watch(vec![Ok(WatchEvent::Error(Status::failure(
                    410, "Gone", "gone",
                )))]))
            } else {
                let (tx, w) = fake_watch();
                std::mem::forget(tx);
                Ok(w)
            }
        },
    );
    let clock = FakeClock::new();
    let r = Reflector::builder(lw, fifo.clone())
        .clock(clock.shared())
        .build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    // Process the first list into `known`.
    until(|| handle.has_synced()).await;
    while !fifo.is_empty() {
        fifo.pop(|deltas, _| {
            for d in deltas {
                known.update(Arc::clone(d.object.object().unwrap()));
            }
            Ok::<(), crate::ProcessError<()>>(())
        })
        .await
        .unwrap();
    }
    clock.wait_for_waiters(1).await;
    clock.step_to_next_deadline();
    until(|| handle.stats().relists == 1).await;
    let mut deleted = Vec::new();
    while !fifo.is_empty() {
        fifo.pop(|deltas, _| {
            for d in deltas {
                if d.kind == DeltaType::Deleted {
                    assert!(d.object.is_tombstone(), "a tombstone");
                    deleted.push(d.key().to_string());
                }
            }
            Ok::<(), crate::ProcessError<()>>(())
        })
        .await
        .unwrap();
    }
    assert_eq!(deleted, ["ns/b"]);
    cancel.cancel();
}

#[tokio::test]
async fn transforms_drop_managed_fields_and_run_user_code() {
    let mut with_mf = pod("a", "1");
    with_mf.meta_mut().managed_fields = Some(vec![Default::default()]);
    let lw = FakeLw::new(
        move |_| Ok(page(vec![with_mf.clone()], "1", None)),
        |_, _| Ok(fake_watch().1),
    );
    let store = Indexer::<Pod>::new();
    let r = Reflector::builder(lw, store.clone())
        .transform(|p: &mut Pod| {
            p.meta_mut().labels = Some([("seen".to_string(), "yes".to_string())].into());
        })
        .build();
    let mut state = State { ..r.state };
    r.inner.list(&mut state).await.unwrap();
    let a = store.get_by_key("ns/a").unwrap();
    assert!(a.meta().managed_fields.is_none());
    assert_eq!(a.labels()["seen"], "yes");
}

/// A store that records the versions it is told about (client-go's `ResourceVersionUpdater`).
#[derive(Clone, Default)]
struct VersionRecorder(Arc<Mutex<Vec<String>>>);

impl ReflectorStore<Pod> for VersionRecorder {
    fn add(&self, _: Arc<Pod>) {}
    fn update(&self, _: Arc<Pod>) {}
    fn delete(&self, _: Arc<Pod>) {}
    fn replace(&self, _: Vec<Arc<Pod>>, _: &str) {}
    fn resync(&self) {}
    fn update_resource_version(&self, rv: &str) {
        self.0.lock().push(rv.to_string());
    }
}

// client-go TestReflectorResourceVersionUpdate
#[tokio::test]
async fn every_event_and_bookmark_updates_the_store_version() {
    let store = VersionRecorder::default();
    let r = Reflector::builder(quiet_lw(), store.clone()).build();
    let mut w = Box::pin(closed_watch(vec![
        Ok(WatchEvent::Added(pod("a", "10"))),
        Ok(WatchEvent::Modified(pod("a", "20"))),
        bookmark("30", false),
        Ok(WatchEvent::Deleted(pod("a", "40"))),
    ]));
    let ended = r
        .inner
        .handle_watch(r.inner.config.clock.now(), w.as_mut(), Sink::Store, false)
        .await;
    assert!(matches!(ended, Ok(WatchEnd::Closed)));
    assert_eq!(*store.0.lock(), ["10", "20", "30", "40"]);
    assert_eq!(r.last_sync_resource_version(), "40");
}

// A streaming list whose watch closes before the initial-events-end bookmark starts over.
#[tokio::test]
async fn streaming_list_without_its_bookmark_is_retried() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a2 = Arc::clone(&attempts);
    let keep = Arc::new(Mutex::new(Vec::new()));
    let lw = FakeLw::new(
        |_| panic!("no list"),
        move |_, _| {
            let n = a2.fetch_add(1, Ordering::SeqCst);
            let (tx, w) = fake_watch();
            tx.send(Ok(WatchEvent::Added(pod("a", "2")))).unwrap();
            if n > 0 {
                tx.send(bookmark("3", true)).unwrap();
                keep.lock().push(tx);
            }
            Ok(w)
        },
    )
    .streaming();
    let store = Recorder::default();
    let r = Reflector::builder(lw, store.clone()).build();
    let handle = r.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(r.run(cancel.clone()));
    until(|| handle.has_synced()).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(store.take(), ["replace [a] 3"]);
    assert_eq!(handle.stats().streaming_lists, 2);
    cancel.cancel();
}
