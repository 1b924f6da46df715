//! The recorders against kube-testserver through kube-rs's client (`KubeSink`, feature
//! `kube`): the correlator's counting, the 404 fallback, server errors retried by the writer,
//! and events.k8s.io series, as through kube-rest.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_flowcontrol::FakeClock;
use kube_record::{EventBroadcaster, EventType, KubeSink};
use kube_testserver::TestServer;

const NAMESPACE: &str = "records";

async fn start() -> (TestServer, kube::Client) {
    let server = TestServer::builder().start().await.unwrap();
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    // No client-side retries: the recorder's own retries are tested.
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
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

async fn events(client: &kube::Client) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_identical_events_become_one_event_with_count_30() {
    let (_server, client) = start().await;
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder().clock(clock.shared()).build();
    broadcaster
        .start_recording_to_sink(KubeSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("thirty");
    let pod = pod("crashy");
    for i in 0..30 {
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
    assert_eq!(events[0].count, Some(30));
    assert_eq!(
        events[0].source.as_ref().unwrap().component.as_deref(),
        Some("thirty")
    );
    broadcaster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_event_is_created_again_after_the_404() {
    let (_server, client) = start().await;
    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(KubeSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("again");
    let pod = pod("p");
    recorder
        .event(&pod, EventType::Normal, "Pulled", "pulled")
        .unwrap();
    eventually(|| broadcaster.counters().written == 1).await;
    let name = events(&client).await[0].metadata.name.clone().unwrap();
    Api::<Event>::namespaced(client.clone(), NAMESPACE)
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    recorder
        .event(&pod, EventType::Normal, "Pulled", "pulled")
        .unwrap();
    assert!(broadcaster.shutdown().await.flushed);
    let events = events(&client).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count, Some(2));
    let counters = broadcaster.counters();
    assert_eq!((counters.written, counters.sink_errors), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_a_bad_request_is_not() {
    let (server, client) = start().await;
    let clock = FakeClock::new();
    let broadcaster = EventBroadcaster::builder().clock(clock.shared()).build();
    broadcaster
        .start_recording_to_sink(KubeSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder("patient");
    server.faults().fail_next(
        None,
        &format!("/api/v1/namespaces/{NAMESPACE}/events"),
        500,
        4,
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while broadcaster.counters().written < 3 {
        assert!(Instant::now() < deadline, "{:?}", broadcaster.counters());
        tokio::select! {
            _ = clock.wait_for_waiters(1) => { clock.step_to_next_deadline(); }
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    let counters = broadcaster.counters();
    assert_eq!((counters.sink_errors, counters.abandoned), (4, 0));
    assert_eq!(events(&client).await.len(), 3);
    // A 400 is not retried: abandoned at once.
    server.faults().fail_next(
        None,
        &format!("/api/v1/namespaces/{NAMESPACE}/events"),
        400,
        1,
    );
    recorder
        .event(&pod("p9"), EventType::Normal, "Created", "created")
        .unwrap();
    eventually(|| broadcaster.counters().abandoned == 1).await;
    assert_eq!(broadcaster.counters().sink_errors, 5);
    broadcaster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_k8s_io_series() {
    let (_server, client) = start().await;
    let broadcaster = kube_record::events::EventBroadcaster::builder()
        .sleep_duration(Duration::from_millis(50))
        .build();
    broadcaster
        .start_recording_to_sink(KubeSink::new(client.clone()))
        .unwrap();
    let recorder = broadcaster.new_recorder_with_instance("series-controller", "series-0");
    let pod = pod("p");
    for i in 0..5 {
        recorder
            .eventf(
                &pod,
                None,
                EventType::Normal,
                "Scheduled",
                "Binding",
                format_args!("attempt {i}"),
            )
            .unwrap();
    }
    assert!(broadcaster.shutdown().await.flushed);
    let events = Api::<EventsV1Event>::namespaced(client, NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].series.as_ref().map(|s| s.count), Some(5));
    assert_eq!(events[0].note.as_deref(), Some("attempt 0"));
}
