//! client-go's `tools/events` series tests, ported (TestEventSeriesf, TestFinishSeries,
//! TestRefreshExistingEventSeries, TestEventSeriesWithEventSinkImplRace), and series over time
//! on a fake clock.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_flowcontrol::FakeClock;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;

use super::broadcaster::{EventKey, Writer, finish_series, refresh_existing_series};
use super::{Event, EventBroadcaster, EventSeries, EventSink};
use crate::metrics::{EventApi, MetricsHub};
use crate::types::micro_time;
use crate::{EventType, MemorySink, Reference, SinkError, SinkOp};

/// Reports every call with the event it was given (as client-go's test sinks), and stores in
/// a [`MemorySink`]; `fail_patch` makes patches fail with a request error.
#[derive(Clone)]
struct ChannelSink {
    memory: MemorySink,
    tx: mpsc::UnboundedSender<(SinkOp, Event)>,
    fail_patch: bool,
}

impl ChannelSink {
    fn new(fail_patch: bool) -> (ChannelSink, mpsc::UnboundedReceiver<(SinkOp, Event)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            ChannelSink {
                memory: MemorySink::new(),
                tx,
                fail_patch,
            },
            rx,
        )
    }
}

impl EventSink for ChannelSink {
    async fn create(&self, event: &Event) -> Result<Event, SinkError> {
        let _ = self.tx.send((SinkOp::Create, event.clone()));
        EventSink::create(&self.memory, event).await
    }

    async fn update(&self, event: &Event) -> Result<Event, SinkError> {
        let _ = self.tx.send((SinkOp::Update, event.clone()));
        EventSink::update(&self.memory, event).await
    }

    async fn patch(&self, event: &Event, _patch: &Value) -> Result<Event, SinkError> {
        let _ = self.tx.send((SinkOp::Patch, event.clone()));
        if self.fail_patch {
            return Err(SinkError::Request {
                message: "cannot construct".into(),
            });
        }
        // As client-go's test sink: the event received is already patched.
        Ok(event.clone())
    }
}

fn test_pod() -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("foo".into()),
            namespace: Some("baz".into()),
            uid: Some("bar".into()),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    }
}

fn references() -> (Reference, Reference) {
    let pod = test_pod();
    (
        Reference::of(&pod).field_path(".spec.containers[1]"),
        Reference::of(&pod).field_path(".spec.containers[0]"),
    )
}

#[tokio::test]
async fn event_series() {
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder()
        .clock(clock.shared())
        .sleep_duration(Duration::ZERO)
        .build();
    let (sink, mut rx) = ChannelSink::new(false);
    broadcaster.start_recording_to_sink(sink).unwrap();
    let recorder = broadcaster.new_recorder("eventTest");
    assert!(recorder.reporting_instance().starts_with("eventTest-"));
    let (regarding, related) = references();
    let record = |action: &str| {
        recorder
            .eventf(
                &regarding,
                Some(&related),
                EventType::Normal,
                "test",
                action,
                format_args!("some verbose message: {}", 1),
            )
            .unwrap();
    };
    record("started");
    let (op, first) = rx.recv().await.unwrap();
    assert_eq!(op, SinkOp::Create);
    assert!(first.series.is_none());
    assert!(first.event_time.is_some());

    // An isomorphic event: a series of 2, patched onto the first event.
    record("started");
    let (op, patched) = rx.recv().await.unwrap();
    assert_eq!(op, SinkOp::Patch);
    assert_eq!(patched.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(patched.metadata.name, first.metadata.name);

    // A non-isomorphic one (another action): a new event (a nanosecond later: the names of
    // events about the same object differ by their time).
    clock.step(Duration::from_nanos(1));
    record("stopped");
    let (op, other) = rx.recv().await.unwrap();
    assert_eq!(op, SinkOp::Create);
    assert!(other.series.is_none());
    assert_ne!(other.metadata.name, first.metadata.name);
    assert_eq!(other.action.as_deref(), Some("stopped"));
    assert_eq!(other.regarding, Some(regarding.0.clone()));
    assert_eq!(other.related, Some(related.0.clone()));
    assert_eq!(other.reporting_controller.as_deref(), Some("eventTest"));
    assert_eq!(other.note.as_deref(), Some("some verbose message: 1"));
    assert_eq!(other.metadata.namespace.as_deref(), Some("baz"));
}

fn writer_for<S: EventSink>(sink: S, clock: &FakeClock) -> Writer<S> {
    Writer {
        sink: Arc::new(sink),
        clock: clock.shared(),
        sleep_duration: Duration::ZERO,
        deadline: tokio_util::sync::CancellationToken::new(),
        metrics: Arc::new(MetricsHub::new(EventApi::EventsV1, None)),
        series: Arc::new(Mutex::new(Default::default())),
    }
}

fn cached_event(clock: &FakeClock, controller: &str) -> Event {
    let (regarding, related) = references();
    Event {
        metadata: ObjectMeta {
            name: Some("foo.1".into()),
            namespace: Some("baz".into()),
            ..ObjectMeta::default()
        },
        event_time: Some(micro_time(kube_flowcontrol::Clock::wall_now(clock))),
        reporting_controller: Some(controller.into()),
        reporting_instance: Some(format!("{controller}-host")),
        action: Some("started".into()),
        reason: Some("test".into()),
        regarding: Some(regarding.0),
        related: Some(related.0),
        note: Some("some verbose message: 1".into()),
        type_: Some("Normal".into()),
        ..Event::default()
    }
}

#[tokio::test]
async fn finish_series_writes_the_final_count_and_forgets() {
    let clock = FakeClock::new();
    let (sink, mut rx) = ChannelSink::new(false);
    let writer = writer_for(sink, &clock);
    let nine_minutes_ago =
        micro_time(kube_flowcontrol::Clock::wall_now(&clock) - Duration::from_secs(9 * 60));
    let mut finished = cached_event(&clock, "eventTest");
    finished.series = Some(EventSeries {
        count: 10,
        last_observed_time: nine_minutes_ago.clone(),
    });
    let non_finished = cached_event(&clock, "nonFinished-controller");
    {
        let mut cache = writer.series.lock();
        cache.insert(EventKey::of(&finished), finished.clone());
        cache.insert(EventKey::of(&non_finished), non_finished.clone());
    }
    finish_series(&writer).await;
    let (op, event) = rx.recv().await.unwrap();
    assert_eq!(op, SinkOp::Patch);
    assert_eq!(
        event.series.as_ref().map(|s| &s.last_observed_time),
        Some(&nine_minutes_ago)
    );
    assert_eq!(event.series.as_ref().map(|s| s.count), Some(10));
    assert!(rx.try_recv().is_err(), "exactly one write");
    let cache = writer.series.lock();
    assert_eq!(cache.len(), 1);
    assert!(cache.contains_key(&EventKey::of(&non_finished)));
}

#[tokio::test]
async fn refresh_existing_series_keeps_the_cache() {
    for fail_patch in [false, true] {
        let clock = FakeClock::new();
        let (sink, mut rx) = ChannelSink::new(fail_patch);
        let writer = writer_for(sink, &clock);
        let mut event = cached_event(&clock, "eventTest");
        event.series = Some(EventSeries {
            count: 10,
            last_observed_time: micro_time(
                kube_flowcontrol::Clock::wall_now(&clock) - Duration::from_secs(9 * 60),
            ),
        });
        let key = EventKey::of(&event);
        writer.series.lock().insert(key.clone(), event);
        refresh_existing_series(&writer).await;
        let (op, _) = rx.recv().await.unwrap();
        assert_eq!(op, SinkOp::Patch);
        assert!(rx.try_recv().is_err(), "exactly one write");
        let cache = writer.series.lock();
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&key).is_some());
    }
}

fn assert_series(sink: &MemorySink, count: i32) -> Event {
    let events = sink.events_v1();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].series.as_ref().map(|s| s.count), Some(count));
    events[0].clone()
}

#[tokio::test]
async fn two_identical_events_make_one_event_with_a_series() {
    let broadcaster = EventBroadcaster::new();
    let sink = MemorySink::new();
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    let recorder = broadcaster.new_recorder("test");
    for _ in 0..2 {
        recorder
            .event(
                &Reference::default(),
                None,
                EventType::Normal,
                "reason",
                "action",
                "",
            )
            .unwrap();
    }
    sink.wait_until(|s| s.events_v1().first().is_some_and(|e| e.series.is_some()))
        .await;
    assert_series(&sink, 2);
    assert_eq!(
        sink.events_v1()[0].metadata.namespace.as_deref(),
        Some("default")
    );
}

#[tokio::test]
async fn series_finish_after_six_minutes_of_silence() {
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder().clock(clock.shared()).build();
    let sink = MemorySink::new();
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    let recorder = broadcaster.new_recorder_with_instance("ctl", "ctl-0");
    let pod = test_pod();
    let record = || {
        recorder
            .event(
                &pod,
                None,
                EventType::Warning,
                "BackOff",
                "Restart",
                "back-off",
            )
            .unwrap()
    };
    for _ in 0..5 {
        record();
        clock.step(Duration::from_secs(60));
    }
    // The server has the series (count 2 as first patched, or more if the refresh pass that
    // runs when recording starts saw it); the cache counts 5.
    sink.wait_until(|s| s.events_v1().first().is_some_and(|e| e.series.is_some()))
        .await;
    assert_eq!(sink.events_v1().len(), 1);
    assert_eq!(broadcaster.cached_series(), 1);
    assert_eq!(broadcaster.counters().aggregated, 4);

    // The finish pass runs every 6 minutes; the series was last observed 1 minute ago, then
    // more than 6 minutes of silence.
    for _ in 0..3 {
        clock.step(Duration::from_secs(6 * 60));
        tokio::task::yield_now().await;
    }
    sink.wait_until(|s| {
        s.events_v1()
            .first()
            .and_then(|e| e.series.as_ref())
            .is_some_and(|s| s.count == 5)
    })
    .await;
    let finished = assert_series(&sink, 5);
    tokio::time::timeout(Duration::from_secs(5), async {
        while broadcaster.cached_series() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the finished series leaves the cache");

    // The next occurrence starts a new event.
    record();
    sink.wait_until(|s| s.events_v1().len() == 2).await;
    assert!(
        sink.events_v1()
            .iter()
            .any(|e| e.metadata.name != finished.metadata.name && e.series.is_none())
    );
}

#[tokio::test]
async fn shutdown_writes_open_series_counts() {
    let broadcaster = EventBroadcaster::new();
    let sink = MemorySink::new();
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    let recorder = broadcaster.new_recorder_with_instance("ctl", "ctl-0");
    for _ in 0..7 {
        recorder
            .event(
                &test_pod(),
                None,
                EventType::Normal,
                "Synced",
                "Sync",
                "synced",
            )
            .unwrap();
    }
    assert!(broadcaster.shutdown().await.flushed);
    assert_series(&sink, 7);
    assert!(
        recorder
            .event(
                &test_pod(),
                None,
                EventType::Normal,
                "Synced",
                "Sync",
                "late"
            )
            .is_err()
    );
}

#[tokio::test]
async fn full_queues_drop_and_count() {
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder().clock(clock.shared()).build();
    let sink = MemorySink::with_clock(clock.shared());
    sink.set_latency(Some(Duration::from_secs(3600)));
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    let recorder = broadcaster.new_recorder_with_instance("ctl", "ctl-0");
    let mut pod = test_pod();
    let mut errors = 0;
    for i in 0..1100 {
        pod.metadata.name = Some(format!("pod-{i}"));
        if recorder
            .event(
                &pod,
                None,
                EventType::Normal,
                "Created",
                "Create",
                "created",
            )
            .is_err()
        {
            errors += 1;
        }
    }
    assert_eq!(errors, 100, "the broadcaster queue holds 1000");
    // The watcher moves them to the write queue (1000); 8 workers hold one each on the stuck
    // server: nothing beyond 1000 + 8 fits.
    clock.wait_for_waiters(8).await;
    for i in 0..100 {
        pod.metadata.name = Some(format!("more-{i}"));
        let _ = recorder.event(
            &pod,
            None,
            EventType::Normal,
            "Created",
            "Create",
            "created",
        );
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        while broadcaster.counters().recorded < 1100 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    let counters = broadcaster.counters();
    assert_eq!(counters.dropped_queue_full, 100, "{counters:?}");
    assert_eq!(counters.recorded, 1100);
}
