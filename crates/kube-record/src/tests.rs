//! client-go's `event_test.go`, ported (TestEventf, TestEventfNoNamespace, TestMultiSinkCache,
//! TestWriteEventError, TestUpdateExpiredEvent, TestCancelEvent, TestLotsOfEvents,
//! TestNonRacyShutdown), and the broadcaster's queueing, retry and shutdown behaviour, on fake
//! clocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_flowcontrol::{Clock, FakeClock};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::correlator::tests::validate_event;
use crate::correlator::{CorrelatorOptions, EventCorrelator};
use crate::metrics::{EventApi, MetricsHub};
use crate::writer::{WriterContext, record_to_sink};
use crate::{
    EventBroadcaster, EventSink, EventType, MemorySink, RecordError, Reference, Referent,
    SinkError, SinkOp,
};

/// client-go's `testEventSink` with `OnCreateFactory`/`OnPatchFactory`: stores in a
/// [`MemorySink`] and reports each successful call with the event as the test sees it.
#[derive(Clone)]
struct ChannelSink {
    memory: MemorySink,
    tx: mpsc::UnboundedSender<(SinkOp, Event)>,
}

impl ChannelSink {
    fn new() -> (ChannelSink, mpsc::UnboundedReceiver<(SinkOp, Event)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            ChannelSink {
                memory: MemorySink::new(),
                tx,
            },
            rx,
        )
    }

    fn report(&self, op: SinkOp, result: &Result<Event, SinkError>) {
        if let Ok(event) = result {
            let mut event = event.clone();
            event.metadata.resource_version = None;
            let _ = self.tx.send((op, event));
        }
    }
}

impl EventSink for ChannelSink {
    async fn create(&self, event: &Event) -> Result<Event, SinkError> {
        let result = EventSink::create(&self.memory, event).await;
        self.report(SinkOp::Create, &result);
        result
    }

    async fn update(&self, event: &Event) -> Result<Event, SinkError> {
        let result = EventSink::update(&self.memory, event).await;
        self.report(SinkOp::Update, &result);
        result
    }

    async fn patch(&self, event: &Event, patch: &Value) -> Result<Event, SinkError> {
        let result = EventSink::patch(&self.memory, event, patch).await;
        self.report(SinkOp::Patch, &result);
        result
    }
}

type Handler = Arc<dyn Fn(&Event) -> Result<Event, SinkError> + Send + Sync>;

/// A sink made of closures (client-go's `testEventSink`); an unset one succeeds with the event.
#[derive(Clone, Default)]
struct FnSink {
    on_create: Option<Handler>,
    on_patch: Option<Handler>,
}

impl EventSink for FnSink {
    async fn create(&self, event: &Event) -> Result<Event, SinkError> {
        self.on_create
            .as_ref()
            .map_or_else(|| Ok(event.clone()), |f| f(event))
    }

    async fn update(&self, event: &Event) -> Result<Event, SinkError> {
        Ok(event.clone())
    }

    async fn patch(&self, event: &Event, _patch: &Value) -> Result<Event, SinkError> {
        self.on_patch
            .as_ref()
            .map_or_else(|| Ok(event.clone()), |f| f(event))
    }
}

fn test_pod(uid: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("foo".into()),
            namespace: Some("baz".into()),
            uid: Some(uid.into()),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    }
}

fn reference(kind: &str, namespace: &str, uid: &str, field_path: &str) -> ObjectReference {
    ObjectReference {
        kind: Some(kind.into()),
        name: Some("foo".into()),
        namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
        uid: Some(uid.into()),
        api_version: Some("v1".into()),
        field_path: (!field_path.is_empty()).then(|| field_path.to_string()),
        resource_version: None,
    }
}

fn expected(
    namespace: &str,
    involved: ObjectReference,
    reason: &str,
    message: &str,
    count: i32,
) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some("foo".into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        involved_object: involved,
        reason: Some(reason.into()),
        message: Some(message.into()),
        source: Some(EventSource {
            component: Some("eventTest".into()),
            host: None,
        }),
        reporting_component: Some("eventTest".into()),
        count: Some(count),
        type_: Some("Normal".into()),
        ..Event::default()
    }
}

struct Item {
    object: Reference,
    reason: &'static str,
    message: &'static str,
    expect: Event,
    expect_update: bool,
}

/// TestEventf's table (also TestMultiSinkCache's).
fn eventf_table() -> Vec<Item> {
    let pod = test_pod("bar");
    let pod2 = test_pod("differentUid");
    let ref1 = Reference::of(&pod).field_path("spec.containers[2]");
    let ref2 = Reference::of(&pod2).field_path("spec.containers[3]");
    let r1 = reference("Pod", "baz", "bar", "spec.containers[2]");
    let r2 = reference("Pod", "baz", "differentUid", "spec.containers[3]");
    let started = "some verbose message: 1";
    vec![
        Item {
            object: ref1.clone(),
            reason: "Started",
            message: started,
            expect: expected("baz", r1.clone(), "Started", started, 1),
            expect_update: false,
        },
        Item {
            object: Reference::of(&pod),
            reason: "Killed",
            message: "some other verbose message: 1",
            expect: expected(
                "baz",
                reference("Pod", "baz", "bar", ""),
                "Killed",
                "some other verbose message: 1",
                1,
            ),
            expect_update: false,
        },
        Item {
            object: ref1.clone(),
            reason: "Started",
            message: started,
            expect: expected("baz", r1.clone(), "Started", started, 2),
            expect_update: true,
        },
        Item {
            object: ref2.clone(),
            reason: "Started",
            message: started,
            expect: expected("baz", r2.clone(), "Started", started, 1),
            expect_update: false,
        },
        Item {
            object: ref1.clone(),
            reason: "Started",
            message: started,
            expect: expected("baz", r1.clone(), "Started", started, 3),
            expect_update: true,
        },
        Item {
            object: ref2.clone(),
            reason: "Stopped",
            message: started,
            expect: expected("baz", r2.clone(), "Stopped", started, 1),
            expect_update: false,
        },
        Item {
            object: ref2.clone(),
            reason: "Stopped",
            message: started,
            expect: expected("baz", r2.clone(), "Stopped", started, 2),
            expect_update: true,
        },
    ]
}

fn test_broadcaster(clock: &FakeClock) -> EventBroadcaster {
    EventBroadcaster::builder()
        .clock(clock.shared())
        .sleep_duration(Duration::ZERO)
        .build()
}

async fn play(
    table: &[Item],
    clock: &FakeClock,
    recorder: &crate::EventRecorder,
    sink_rx: &mut mpsc::UnboundedReceiver<(SinkOp, Event)>,
    watched: Option<&mut mpsc::UnboundedReceiver<Event>>,
) {
    let mut watched = watched;
    for (index, item) in table.iter().enumerate() {
        clock.step(Duration::from_secs(1));
        let (verbose, one) = item.message.split_at(item.message.len() - 1);
        recorder
            .eventf(
                &item.object,
                EventType::Normal,
                item.reason,
                format_args!("{verbose}{one}"),
            )
            .unwrap();
        if let Some(watched) = watched.as_deref_mut() {
            let seen = watched.recv().await.unwrap();
            assert_eq!(seen.reason.as_deref(), Some(item.reason), "{index}");
            assert_eq!(seen.count, Some(1), "watchers see the event as recorded");
        }
        let (op, event) = sink_rx.recv().await.unwrap();
        let want = if item.expect_update {
            SinkOp::Patch
        } else {
            SinkOp::Create
        };
        assert_eq!(op, want, "item {index}");
        validate_event(&index.to_string(), &event, &item.expect);
    }
}

#[tokio::test]
async fn eventf() {
    let clock = FakeClock::new();
    let broadcaster = test_broadcaster(&clock);
    let (sink, mut sink_rx) = ChannelSink::new();
    broadcaster.start_recording_to_sink(sink).unwrap();
    let (tx, mut watched) = mpsc::unbounded_channel();
    broadcaster
        .start_event_watcher(move |event| {
            let _ = tx.send(event.clone());
        })
        .unwrap();
    broadcaster.start_logging().unwrap();
    let recorder = broadcaster.new_recorder("eventTest");
    play(
        &eventf_table(),
        &clock,
        &recorder,
        &mut sink_rx,
        Some(&mut watched),
    )
    .await;
    let report = broadcaster.shutdown().await;
    assert!(report.flushed);
    let counters = broadcaster.counters();
    assert_eq!(counters.recorded, 7);
    assert_eq!(counters.written, 7);
    assert_eq!(counters.dropped(), 0);
}

#[tokio::test]
async fn eventf_no_namespace() {
    let clock = FakeClock::new();
    let broadcaster = test_broadcaster(&clock);
    let (sink, mut sink_rx) = ChannelSink::new();
    broadcaster.start_recording_to_sink(sink).unwrap();
    let recorder = broadcaster.new_recorder("eventTest");
    let mut pod = test_pod("bar");
    pod.metadata.namespace = None;
    let item = Item {
        object: Reference::of(&pod).field_path("spec.containers[2]"),
        reason: "Started",
        message: "some verbose message: 1",
        expect: expected(
            "default",
            reference("Pod", "", "bar", "spec.containers[2]"),
            "Started",
            "some verbose message: 1",
            1,
        ),
        expect_update: false,
    };
    play(&[item], &clock, &recorder, &mut sink_rx, None).await;
}

#[tokio::test]
async fn multi_sink_cache() {
    let clock = FakeClock::new();
    let broadcaster = test_broadcaster(&clock);
    let recorder = broadcaster.new_recorder("eventTest");
    let (sink, mut sink_rx) = ChannelSink::new();
    let watcher = broadcaster.start_recording_to_sink(sink).unwrap();
    play(&eventf_table(), &clock, &recorder, &mut sink_rx, None).await;
    watcher.stop();
    watcher.finished().await;
    // Another sink starts with a clean cache: the same table gives the same writes.
    let (sink2, mut sink_rx2) = ChannelSink::new();
    broadcaster.start_recording_to_sink(sink2).unwrap();
    play(&eventf_table(), &clock, &recorder, &mut sink_rx2, None).await;
    assert!(
        sink_rx.try_recv().is_err(),
        "the stopped sink saw nothing more"
    );
}

fn writer_context(clock: &FakeClock, sleep: Duration) -> WriterContext {
    WriterContext {
        clock: clock.shared(),
        sleep_duration: sleep,
        deadline: tokio_util::sync::CancellationToken::new(),
        metrics: Arc::new(MetricsHub::new(EventApi::CoreV1, None)),
    }
}

#[tokio::test]
async fn write_event_error() {
    let transport = || SinkError::Transport {
        message: "A weird error".into(),
        source: None,
    };
    let request = || SinkError::Request {
        message: "cannot construct".into(),
    };
    let status = || SinkError::status(0, "", "");
    type MakeError = fn() -> SinkError;
    let table: Vec<(&str, usize, usize, MakeError)> = vec![
        ("giveUp1", 1000, 1, request),
        ("giveUp2", 1000, 1, status),
        ("retry1", 1000, 12, || {
            SinkError::status(500, "InternalError", "unexpected object")
        }),
        ("retry2", 1000, 12, transport),
        ("succeedEventually", 2, 2, transport),
    ];
    let clock = FakeClock::new();
    let correlator = EventCorrelator::new(CorrelatorOptions::default().clock(clock.shared()));
    for (name, times_to_send_error, attempts_wanted, error) in table {
        let attempts = Arc::new(AtomicUsize::new(0));
        let sink = FnSink {
            on_create: Some(Arc::new({
                let attempts = attempts.clone();
                move |event| {
                    let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                    if attempt < times_to_send_error {
                        Err(error())
                    } else {
                        Ok(event.clone())
                    }
                }
            })),
            on_patch: None,
        };
        let ctx = writer_context(&clock, Duration::ZERO);
        record_to_sink(&sink, Event::default(), &correlator, &ctx).await;
        assert_eq!(attempts.load(Ordering::SeqCst), attempts_wanted, "{name}");
        let counters = ctx.metrics.snapshot();
        let gave_up = attempts_wanted == 1 || attempts_wanted == 12;
        assert_eq!(counters.abandoned, u64::from(gave_up), "{name}");
        assert_eq!(counters.written, u64::from(!gave_up), "{name}");
    }
}

#[tokio::test]
async fn update_expired_event_falls_back_to_create() {
    let clock = FakeClock::new();
    let correlator = EventCorrelator::new(CorrelatorOptions::default().clock(clock.shared()));
    let created = Arc::new(Mutex::new(None::<Event>));
    let sink = FnSink {
        on_patch: Some(Arc::new(|_| {
            Err(SinkError::status(404, "NotFound", "gone"))
        })),
        on_create: Some(Arc::new({
            let created = created.clone();
            move |event| {
                *created.lock() = Some(event.clone());
                Ok(event.clone())
            }
        })),
    };
    let mut event = Event::default();
    event.metadata.resource_version = Some("updated-resource-version".into());
    event.count = Some(2);
    let ctx = writer_context(&clock, Duration::ZERO);
    record_to_sink(&sink, event, &correlator, &ctx).await;
    let created = created
        .lock()
        .clone()
        .expect("created after the patch failed");
    assert_eq!(created.metadata.resource_version, None);
}

#[tokio::test]
async fn cancel_event_tries_once() {
    let clock = FakeClock::new();
    let correlator = EventCorrelator::new(CorrelatorOptions::default().clock(clock.shared()));
    let attempts = Arc::new(AtomicUsize::new(0));
    let sink = FnSink {
        on_create: Some(Arc::new({
            let attempts = attempts.clone();
            move |_| {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(SinkError::Transport {
                    message: "unexpected object".into(),
                    source: None,
                })
            }
        })),
        on_patch: None,
    };
    let ctx = writer_context(&clock, Duration::from_secs(1));
    ctx.deadline.cancel();
    record_to_sink(&sink, Event::default(), &correlator, &ctx).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(ctx.metrics.snapshot().abandoned, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lots_of_events() {
    // Every event fails four times before it is written: nothing is dropped or lost.
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..1000).map(|_| AtomicUsize::new(0)).collect());
    let sink = FnSink {
        on_create: Some(Arc::new({
            let counts = counts.clone();
            move |event| {
                let n: usize = event.message.as_deref().unwrap_or("").parse().unwrap();
                if counts[n].fetch_add(1, Ordering::SeqCst) + 1 < 5 {
                    Err(SinkError::Transport {
                        message: "fake error".into(),
                        source: None,
                    })
                } else {
                    Ok(event.clone())
                }
            }
        })),
        on_patch: None,
    };
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder()
        .clock(clock.shared())
        .sleep_duration(Duration::ZERO)
        .build();
    broadcaster.start_recording_to_sink(sink).unwrap();
    let logged = Arc::new(AtomicUsize::new(0));
    broadcaster
        .start_event_watcher({
            let logged = logged.clone();
            move |_| {
                logged.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    let recorder = broadcaster.new_recorder("eventTest");
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                // A unique object per event (no spam filtering), a unique reason (no
                // aggregation).
                let object = Reference(ObjectReference {
                    kind: Some("Pod".into()),
                    name: Some(format!("foo-{i}")),
                    namespace: Some("baz".into()),
                    uid: Some("bar".into()),
                    api_version: Some("version".into()),
                    ..ObjectReference::default()
                });
                recorder.eventf(
                    &object,
                    EventType::Normal,
                    &format!("Reason-{i}"),
                    format_args!("{i}"),
                )
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert!(broadcaster.shutdown().await.flushed);
    assert_eq!(logged.load(Ordering::SeqCst), 1000);
    for (i, count) in counts.iter().enumerate() {
        assert_eq!(count.load(Ordering::SeqCst), 5, "event {i}");
    }
    let counters = broadcaster.counters();
    assert_eq!(counters.written, 1000);
    assert_eq!(counters.sink_errors, 4000);
    assert_eq!(counters.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_racy_shutdown() {
    let clock = FakeClock::new();
    let broadcaster = test_broadcaster(&clock);
    let sink = MemorySink::new();
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    let recorder = broadcaster.new_recorder("eventTest");
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                recorder.eventf(
                    &Reference::default(),
                    EventType::Normal,
                    "Started",
                    format_args!("blah"),
                )
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert!(broadcaster.shutdown().await.flushed);
    // 100 identical events: 25 pass the spam filter (one event, count 25).
    let events = sink.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count, Some(25));
    assert_eq!(broadcaster.counters().spam_filtered, 75);
    let after = recorder.event(&Reference::default(), EventType::Normal, "Started", "late");
    assert_eq!(after, Err(RecordError::ShutDown));
    assert_eq!(broadcaster.counters().dropped_shut_down, 1);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_blocking() {
    let clock = FakeClock::new();
    let broadcaster = test_broadcaster(&clock);
    let sink = MemorySink::with_clock(clock.shared());
    sink.set_latency(Some(Duration::from_secs(3600))); // a stuck API server
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    let recorder = broadcaster.new_recorder("test");
    let mut pod = test_pod("u");
    let mut results = Vec::new();
    let started = std::time::Instant::now();
    // The watcher task has not run yet (current-thread runtime): its queue takes 1000.
    for i in 0..1100 {
        pod.metadata.name = Some(format!("pod-{i}"));
        results.push(recorder.event(&pod, EventType::Normal, "Created", "created"));
    }
    let elapsed = started.elapsed();
    assert!(results[..1000].iter().all(Result::is_ok));
    assert!(
        results[1000..]
            .iter()
            .all(|r| *r == Err(RecordError::QueueFull { watcher: "sink" }))
    );
    let counters = broadcaster.counters();
    assert_eq!(counters.recorded, 1000);
    assert_eq!(counters.dropped_queue_full, 100);
    assert!(
        elapsed < Duration::from_secs(1),
        "recording took {elapsed:?}"
    );

    // The sink task takes one event and waits on the stuck server; the queue frees one slot.
    clock.wait_for_waiters(1).await;
    assert!(
        recorder
            .event(&pod, EventType::Normal, "Created", "x")
            .is_ok()
    );
    assert!(
        recorder
            .event(&pod, EventType::Normal, "Created", "y")
            .is_err()
    );

    // Shutdown: the flush bound passes on the fake clock; what is left is dropped and counted.
    let shutdown = tokio::spawn({
        let broadcaster = broadcaster.clone();
        async move { broadcaster.shutdown().await }
    });
    clock.wait_for_waiters(2).await; // the stuck call and the flush bound
    clock.step(crate::DEFAULT_FLUSH_TIMEOUT);
    let report = shutdown.await.unwrap();
    assert!(!report.flushed);
    let counters = broadcaster.counters();
    assert_eq!(counters.dropped_flush_timeout, 1000, "{counters:?}");
    assert_eq!(counters.abandoned, 1, "the event in flight");
    assert!(sink.events().is_empty());
}

#[tokio::test]
async fn shutdown_flushes_within_the_bound() {
    let clock = FakeClock::new();
    let broadcaster = test_broadcaster(&clock);
    let sink = MemorySink::with_clock(clock.shared());
    sink.set_latency(Some(Duration::from_secs(1)));
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    let recorder = broadcaster.new_recorder("test");
    let mut pod = test_pod("u");
    for i in 0..5 {
        pod.metadata.name = Some(format!("pod-{i}"));
        recorder
            .event(&pod, EventType::Normal, "Created", "created")
            .unwrap();
    }
    let shutdown = tokio::spawn({
        let broadcaster = broadcaster.clone();
        async move { broadcaster.shutdown().await }
    });
    for _ in 0..5 {
        clock.wait_for_waiters(2).await; // one sink call and the flush bound
        clock.step(Duration::from_secs(1));
    }
    let report = shutdown.await.unwrap();
    assert!(report.flushed);
    assert_eq!(sink.events().len(), 5);
    assert_eq!(broadcaster.counters().dropped(), 0);
    assert!(broadcaster.is_shut_down());
}

#[tokio::test]
async fn server_errors_are_retried_on_the_clock_and_nothing_is_lost() {
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder().clock(clock.shared()).build();
    let sink = MemorySink::new();
    sink.fail_next(Some(SinkOp::Create), 5, 500);
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    let recorder = broadcaster.new_recorder("test");
    recorder
        .event(&test_pod("u"), EventType::Warning, "Failed", "boom")
        .unwrap();
    // First retry: a random fraction of 10 s; then 10 s each.
    let start = clock.now();
    clock.wait_for_waiters(1).await;
    let first = clock.next_deadline().unwrap() - start;
    assert!(first <= Duration::from_secs(10), "{first:?}");
    clock.step(first);
    for _ in 0..4 {
        clock.wait_for_waiters(1).await;
        let before = clock.now();
        assert_eq!(
            clock.next_deadline().unwrap() - before,
            Duration::from_secs(10)
        );
        clock.step(Duration::from_secs(10));
    }
    sink.wait_until(|s| s.events().len() == 1).await;
    assert_eq!(sink.calls().create, 6);
    let counters = broadcaster.counters();
    assert_eq!(counters.sink_errors, 5);
    assert_eq!(counters.written, 1);
    assert_eq!(counters.abandoned, 0);
}

#[tokio::test]
async fn retry_limit_is_twelve_tries() {
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder().clock(clock.shared()).build();
    let sink = MemorySink::new();
    sink.fail_next(None, 100, 503);
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    broadcaster
        .new_recorder("test")
        .event(&test_pod("u"), EventType::Warning, "Failed", "boom")
        .unwrap();
    for _ in 0..11 {
        clock.wait_for_waiters(1).await;
        clock.step_to_next_deadline();
    }
    sink.wait_until(|s| s.calls().create == 12).await;
    assert!(broadcaster.shutdown().await.flushed);
    assert_eq!(sink.calls().create, 12);
    assert_eq!(broadcaster.counters().abandoned, 1);
}

#[tokio::test]
async fn already_exists_and_terminating_namespaces_end_retries() {
    use kube_apimachinery::{Status, StatusCause, StatusDetails};
    let clock = FakeClock::new();
    for error in [
        (|| SinkError::status(409, "AlreadyExists", "exists")) as fn() -> SinkError,
        || {
            let mut status = Status::failure(403, "Forbidden", "namespace baz is being terminated");
            status.details = Some(StatusDetails {
                causes: vec![StatusCause {
                    reason: crate::NAMESPACE_TERMINATING_CAUSE.into(),
                    ..StatusCause::default()
                }],
                ..StatusDetails::default()
            });
            SinkError::Status(Box::new(status))
        },
    ] {
        let broadcaster = EventBroadcaster::builder().clock(clock.shared()).build();
        let sink = MemorySink::new();
        sink.fail_next_with(None, 100, error);
        broadcaster.start_recording_to_sink(sink.clone()).unwrap();
        broadcaster
            .new_recorder("test")
            .event(&test_pod("u"), EventType::Normal, "Created", "x")
            .unwrap();
        assert!(broadcaster.shutdown().await.flushed);
        assert_eq!(sink.calls().create, 1);
        assert_eq!(broadcaster.counters().abandoned, 1);
    }
}

#[tokio::test]
async fn stream_and_annotations() {
    use futures_util::StreamExt as _;
    let broadcaster = EventBroadcaster::new();
    let mut stream = broadcaster.stream().unwrap();
    let recorder = broadcaster.new_recorder_with_source(EventSource {
        component: Some("kubelet".into()),
        host: Some("node-1".into()),
    });
    let annotations = [("a".to_string(), "b".to_string())].into();
    recorder
        .annotated_event(
            &test_pod("u"),
            annotations,
            EventType::Warning,
            "Unhealthy",
            "probe failed",
        )
        .unwrap();
    let event = stream.next().await.unwrap();
    assert_eq!(event.metadata.annotations.as_ref().unwrap()["a"], "b");
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.reporting_component.as_deref(), Some("kubelet"));
    assert_eq!(event.reporting_instance.as_deref(), Some("node-1"));
    assert_eq!(
        event.source.as_ref().unwrap().host.as_deref(),
        Some("node-1")
    );
    assert!(event.metadata.name.as_deref().unwrap().starts_with("foo."));
    broadcaster.shutdown().await;
    assert!(stream.next().await.is_none(), "the stream ends at shutdown");
}

#[test]
fn watchers_need_a_runtime() {
    let broadcaster = EventBroadcaster::new();
    assert_eq!(
        broadcaster.start_logging().unwrap_err(),
        crate::StartError::NoRuntime
    );
    // Recording does not: with no watcher, the event goes nowhere.
    let recorder = broadcaster.new_recorder("x");
    assert!(
        recorder
            .event(&test_pod("u"), EventType::Normal, "R", "m")
            .is_ok()
    );
    let _ = Reference::default().object_reference();
}
