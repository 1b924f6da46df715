//! The recorders against kube-testserver over HTTP, through `RestSink` (feature `rest`), or
//! against the cluster of `KUBE_TOOLKIT_TEST_KUBECONFIG` when it is set (each test in a
//! namespace of its own; the tests that inject faults skip themselves there). See
//! `cluster/mod.rs`.

use kube_test_support::cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_flowcontrol::FakeClock;
use kube_record::{EventBroadcaster, EventType, RestSink};
use kube_rest::{Api, Client, DeleteParams, ListParams};
use kube_testserver::TestServer;

use cluster::{TestEnv, skip_on_cluster};

/// The test's namespace on kube-testserver.
const NAMESPACE: &str = "records";

/// The test's server (or cluster), its client and namespace.
async fn start(test: &str) -> (TestEnv, Client, String) {
    // No client-side retries of Retry-After answers: the recorder's own retries are tested.
    let env = TestEnv::start_configured(test, TestServer::builder(), &[NAMESPACE], |config| {
        config.with_max_retries(0)
    })
    .await;
    let (client, namespace) = (env.client.clone(), env.ns(NAMESPACE).to_string());
    (env, client, namespace)
}

fn pod(namespace: &str, name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    }
}

async fn events(client: &Client, namespace: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), namespace)
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
    let (_env, client, ns) = start("fifty-tasks").await;
    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("fifty");
    let tasks: Vec<_> = (0..50)
        .map(|task| {
            let (recorder, ns) = (recorder.clone(), ns.clone());
            tokio::spawn(async move {
                let pod = pod(&ns, &format!("pod-{task}"));
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
    let events = events(&client, &ns).await;
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
    let (_env, client, ns) = start("thirty-identical").await;
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder().clock(clock.shared()).build();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("thirty");
    let pod = pod(&ns, "crashy");
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
    let events = events(&client, &ns).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.count, Some(30));
    assert_ne!(event.first_timestamp, event.last_timestamp);
    assert_eq!(broadcaster.counters().spam_filtered, 0);
    broadcaster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_similar_events_aggregate_after_the_tenth() {
    let (_env, client, ns) = start("fifteen-similar").await;
    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("similar");
    let pod = pod(&ns, "flaky");
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
    let events = events(&client, &ns).await;
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
    let (_env, client, ns) = start("spam-filter").await;
    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("spammy");
    let pod = pod(&ns, "noisy");
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
    let events = events(&client, &ns).await;
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
    if skip_on_cluster("server_errors_for_a_while", "it injects server errors") {
        return;
    }
    let (env, client, ns) = start("server-errors").await;
    let server = env.server().expect("kube-testserver");
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
                &pod(&ns, &format!("p{i}")),
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
    assert_eq!(events(&client, &ns).await.len(), 3);
    broadcaster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_without_blocking() {
    if skip_on_cluster("a_full_queue_drops", "it slows the server down on demand") {
        return;
    }
    let (env, client, ns) = start("full-queue").await;
    let server = env.server().expect("kube-testserver");
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
                &pod(&ns, &format!("p{i}")),
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
    let (_env, client, ns) = start("deleted-event").await;
    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("again");
    let pod = pod(&ns, "p");
    recorder
        .event(&pod, EventType::Normal, "Pulled", "pulled")
        .unwrap();
    eventually(|| broadcaster.counters().written == 1).await;
    let api = Api::<Event>::namespaced(client.clone(), &ns);
    let name = events(&client, &ns).await[0].metadata.name.clone().unwrap();
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    // The repeat's patch answers 404: the writer creates it again, with count 2.
    recorder
        .event(&pod, EventType::Normal, "Pulled", "pulled")
        .unwrap();
    assert!(broadcaster.shutdown().await.flushed);
    let events = events(&client, &ns).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count, Some(2));
    assert_eq!(events[0].metadata.name.as_deref(), Some(name.as_str()));
    // The 404 is the expected fallback path, not a sink error.
    let counters = broadcaster.counters();
    assert_eq!((counters.written, counters.sink_errors), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_k8s_io_series_over_http() {
    let (_env, client, ns) = start("events-series").await;
    // 8 workers write concurrently: the series patch can overtake the first create, answered
    // 404, then AlreadyExists, and is retried after the pause (short here).
    let broadcaster = kube_record::events::EventBroadcaster::builder()
        .sleep_duration(Duration::from_millis(50))
        .build();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder_with_instance("series-controller", "series-0");
    let pod = pod(&ns, "p");
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
    let api = Api::<EventsV1Event>::namespaced(client.clone(), &ns);
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
