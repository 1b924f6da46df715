//! The recorders against kube-testserver over HTTP, through `RestSink` (feature `rest`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_flowcontrol::FakeClock;
use kube_record::{EventBroadcaster, EventType, RestSink};
use kube_rest::{Api, Client, Config, DeleteParams, Kubeconfig, ListParams, PostParams};
use kube_testserver::TestServer;

const NAMESPACE: &str = "records";

async fn start() -> (TestServer, Client) {
    let server = TestServer::builder().start().await.unwrap();
    let kubeconfig = Kubeconfig::parse(
        &server.kubeconfig_yaml(),
        Path::new("/testserver/kubeconfig"),
    )
    .unwrap();
    // No client-side retries of Retry-After answers: the recorder's own retries are tested.
    let config = Config::from_kubeconfig(&kubeconfig)
        .unwrap()
        .without_throttle()
        .with_max_retries(0);
    let client = Client::try_from_config(config).unwrap();
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::cluster(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    (server, client)
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NAMESPACE.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    }
}

async fn events(client: &Client) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

/// Waits (in real time, at most 20 s) until `condition` holds.
async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_tasks_write_the_expected_events_and_counts() {
    let (_server, client) = start().await;
    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("fifty");
    let tasks: Vec<_> = (0..50)
        .map(|task| {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let pod = pod(&format!("pod-{task}"));
                for _ in 0..10 {
                    recorder
                        .event(&pod, EventType::Normal, "Synced", "synced")
                        .unwrap();
                    tokio::task::yield_now().await;
                }
                recorder
                    .eventf(
                        &pod,
                        EventType::Warning,
                        "Slow",
                        format_args!("task {task} done"),
                    )
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(broadcaster.shutdown().await.flushed);
    let counters = broadcaster.counters();
    assert_eq!(counters.recorded, 550);
    assert_eq!(counters.written, 550);
    assert_eq!(counters.dropped(), 0);
    let events = events(&client).await;
    assert_eq!(events.len(), 100);
    for task in 0..50 {
        let name = format!("pod-{task}");
        let about: Vec<&Event> = events
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name.as_str()))
            .collect();
        assert_eq!(about.len(), 2, "{name}");
        let synced = about
            .iter()
            .find(|e| e.reason.as_deref() == Some("Synced"))
            .unwrap();
        assert_eq!(synced.count, Some(10), "{name}");
        assert_eq!(
            synced.source.as_ref().unwrap().component.as_deref(),
            Some("fifty")
        );
        assert_eq!(synced.involved_object.kind.as_deref(), Some("Pod"));
        assert_eq!(synced.involved_object.uid, Some(format!("uid-{name}")));
        let slow = about
            .iter()
            .find(|e| e.reason.as_deref() == Some("Slow"))
            .unwrap();
        assert_eq!(slow.count, Some(1));
        assert_eq!(slow.type_.as_deref(), Some("Warning"));
        assert_eq!(slow.message, Some(format!("task {task} done")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_identical_events_become_one_event_with_count_30() {
    let (_server, client) = start().await;
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder().clock(clock.shared()).build();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("thirty");
    let pod = pod("crashy");
    for i in 0..30 {
        // The spam filter allows 25 at once, then one every 5 minutes.
        if i >= 25 {
            clock.step(Duration::from_secs(300));
        }
        recorder
            .event(
                &pod,
                EventType::Warning,
                "BackOff",
                "Back-off restarting failed container",
            )
            .unwrap();
        let written = i + 1;
        eventually(|| broadcaster.counters().written == written).await;
    }
    let events = events(&client).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.count, Some(30));
    assert_ne!(event.first_timestamp, event.last_timestamp);
    assert_eq!(broadcaster.counters().spam_filtered, 0);
    broadcaster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_similar_events_aggregate_after_the_tenth() {
    let (_server, client) = start().await;
    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("similar");
    let pod = pod("flaky");
    for i in 0..15 {
        recorder
            .eventf(
                &pod,
                EventType::Warning,
                "FailedMount",
                format_args!("volume {i} not ready"),
            )
            .unwrap();
    }
    assert!(broadcaster.shutdown().await.flushed);
    let events = events(&client).await;
    assert_eq!(events.len(), 10, "9 events, then one aggregate");
    let aggregate: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.message
                .as_deref()
                .is_some_and(|m| m.starts_with("(combined from similar events): "))
        })
        .collect();
    assert_eq!(aggregate.len(), 1);
    assert_eq!(aggregate[0].count, Some(6));
    assert_eq!(
        aggregate[0].message.as_deref(),
        Some("(combined from similar events): volume 14 not ready")
    );
    for i in 0..9 {
        let message = format!("volume {i} not ready");
        assert!(
            events
                .iter()
                .any(|e| e.message.as_deref() == Some(message.as_str()) && e.count == Some(1))
        );
    }
    assert_eq!(broadcaster.counters().aggregated, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spam_filter_holds_at_burst_25() {
    let (_server, client) = start().await;
    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("spammy");
    let pod = pod("noisy");
    for _ in 0..40 {
        recorder
            .event(
                &pod,
                EventType::Warning,
                "Unhealthy",
                "Liveness probe failed",
            )
            .unwrap();
    }
    // Other reasons about the same object share the bucket (source + object + type).
    recorder
        .event(&pod, EventType::Warning, "Other", "also filtered")
        .unwrap();
    // Another type has its own bucket.
    recorder
        .event(&pod, EventType::Normal, "Pulled", "image pulled")
        .unwrap();
    assert!(broadcaster.shutdown().await.flushed);
    let events = events(&client).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let unhealthy = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("Unhealthy"))
        .unwrap();
    assert_eq!(unhealthy.count, Some(25));
    assert_eq!(broadcaster.counters().spam_filtered, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_for_a_while_lose_nothing_within_the_retry_budget() {
    let (server, client) = start().await;
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder().clock(clock.shared()).build();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("patient");
    // The next 11 event writes fail with 500: the first event is written at its 12th and last
    // try, the others at once.
    server.faults().fail_next(
        None,
        &format!("/api/v1/namespaces/{NAMESPACE}/events"),
        500,
        11,
    );
    for i in 0..3 {
        recorder
            .event(
                &pod(&format!("p{i}")),
                EventType::Normal,
                "Created",
                "created",
            )
            .unwrap();
    }
    // Drive the retry pauses on the fake clock until all three are written.
    let deadline = Instant::now() + Duration::from_secs(30);
    while broadcaster.counters().written < 3 {
        assert!(Instant::now() < deadline, "{:?}", broadcaster.counters());
        tokio::select! {
            _ = clock.wait_for_waiters(1) => { clock.step_to_next_deadline(); }
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    let counters = broadcaster.counters();
    assert_eq!(counters.sink_errors, 11);
    assert_eq!(counters.abandoned, 0);
    assert_eq!(events(&client).await.len(), 3);
    broadcaster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_without_blocking() {
    let (server, client) = start().await;
    server
        .faults()
        .set_latency(Some(Duration::from_millis(200)));
    let broadcaster = EventBroadcaster::builder()
        .flush_timeout(Duration::from_millis(500))
        .build();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("flood");
    let mut dropped = 0;
    let started = Instant::now();
    for i in 0..1100 {
        if recorder
            .event(
                &pod(&format!("p{i}")),
                EventType::Normal,
                "Created",
                "created",
            )
            .is_err()
        {
            dropped += 1;
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(200),
        "1100 calls took {elapsed:?}"
    );
    assert!((99..=100).contains(&dropped), "{dropped}");
    let counters = broadcaster.counters();
    assert_eq!(counters.dropped_queue_full, dropped);
    assert_eq!(counters.recorded, 1100 - dropped);
    let report = broadcaster.shutdown().await;
    assert!(!report.flushed);
    let counters = broadcaster.counters();
    // Everything recorded was written, abandoned at the deadline, or dropped from the queue.
    assert_eq!(
        counters.written + counters.abandoned + counters.dropped_flush_timeout,
        counters.recorded,
        "{counters:?}"
    );
    assert!(counters.dropped_flush_timeout > 900, "{counters:?}");
    server.faults().set_latency(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_event_is_created_again() {
    let (_server, client) = start().await;
    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("again");
    let pod = pod("p");
    recorder
        .event(&pod, EventType::Normal, "Pulled", "pulled")
        .unwrap();
    eventually(|| broadcaster.counters().written == 1).await;
    let api = Api::<Event>::namespaced(client.clone(), NAMESPACE);
    let name = events(&client).await[0].metadata.name.clone().unwrap();
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    // The repeat's patch answers 404: the writer creates it again, with count 2.
    recorder
        .event(&pod, EventType::Normal, "Pulled", "pulled")
        .unwrap();
    assert!(broadcaster.shutdown().await.flushed);
    let events = events(&client).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count, Some(2));
    assert_eq!(events[0].metadata.name.as_deref(), Some(name.as_str()));
    // The 404 is the expected fallback path, not a sink error.
    let counters = broadcaster.counters();
    assert_eq!((counters.written, counters.sink_errors), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_k8s_io_series_over_http() {
    let (_server, client) = start().await;
    // 8 workers write concurrently: the series patch can overtake the first create, answered
    // 404, then AlreadyExists, and is retried after the pause (short here).
    let broadcaster = kube_record::events::EventBroadcaster::builder()
        .sleep_duration(Duration::from_millis(50))
        .build();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder_with_instance("series-controller", "series-0");
    let pod = pod("p");
    let node = Arc::new(k8s_openapi::api::core::v1::Node {
        metadata: ObjectMeta {
            name: Some("node-1".into()),
            ..ObjectMeta::default()
        },
        ..Default::default()
    });
    for i in 0..5 {
        recorder
            .eventf(
                &pod,
                Some(&*node),
                EventType::Normal,
                "Scheduled",
                "Binding",
                format_args!("attempt {i}"),
            )
            .unwrap();
    }
    assert!(broadcaster.shutdown().await.flushed);
    let api = Api::<EventsV1Event>::namespaced(client.clone(), NAMESPACE);
    let events = api.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.series.as_ref().map(|s| s.count), Some(5));
    assert_eq!(
        event.reporting_controller.as_deref(),
        Some("series-controller")
    );
    assert_eq!(event.reporting_instance.as_deref(), Some("series-0"));
    assert_eq!(event.action.as_deref(), Some("Binding"));
    assert_eq!(event.note.as_deref(), Some("attempt 0"));
    assert_eq!(
        event.related.as_ref().and_then(|r| r.name.as_deref()),
        Some("node-1")
    );
}
