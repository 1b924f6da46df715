//! Where a real API server is less kind than an in-memory one: the watch cache's bounded
//! window, etcd compaction, and graceful deletion's two writes.

mod common;

use std::time::Duration;

use common::{TestClient, pod};
use kube_flowcontrol::clock::FakeClock;
use kube_testserver::{DEFAULT_COMPACTION_INTERVAL, TestServer, WatchCacheSize};
use serde_json::{Value, json};

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("resourceVersion")
}

fn summary(events: &[Value]) -> Vec<(String, u64, bool, Value)> {
    events
        .iter()
        .filter(|e| e["type"] != "BOOKMARK")
        .map(|e| {
            let metadata = &e["object"]["metadata"];
            (
                e["type"].as_str().unwrap_or("").to_string(),
                rv(&e["object"]),
                metadata.get("deletionTimestamp").is_some(),
                metadata["deletionGracePeriodSeconds"].clone(),
            )
        })
        .collect()
}

async fn server(kubelet: Option<Duration>) -> (TestServer, TestClient) {
    let server = TestServer::builder()
        .plain_http()
        .simulated_kubelet(kubelet)
        .start()
        .await
        .expect("server");
    let client = TestClient::new(&server);
    (server, client)
}

#[tokio::test]
async fn deleting_an_unbound_pod_writes_its_deletion_then_removes_it() {
    let (_server, c) = server(None).await;
    let created = c
        .post("/api/v1/namespaces/default/pods", &pod("p", json!({})))
        .await
        .json();
    let created_rv = rv(&created);
    let deleted = c.delete("/api/v1/namespaces/default/pods/p").await;
    assert_eq!(deleted.status, 200);
    let deleted = deleted.json();
    let events = c
        .get(&format!(
            "/api/v1/namespaces/default/pods?watch=1&resourceVersion={created_rv}&timeoutSeconds=1"
        ))
        .await
        .events();
    // As recorded (watch/from-rv-with-mutations): a MODIFIED carrying deletionTimestamp and a
    // zero grace period, then the DELETED, two consecutive writes.
    assert_eq!(
        summary(&events),
        vec![
            ("MODIFIED".into(), created_rv + 1, true, json!(0)),
            ("DELETED".into(), created_rv + 2, true, json!(0)),
        ]
    );
    // The answer is the deleted object at the deletion's resourceVersion (as v1.35 answers).
    assert_eq!(rv(&deleted), created_rv + 2);
    assert_eq!(deleted["metadata"]["deletionGracePeriodSeconds"], 0);
}

#[tokio::test]
async fn objects_without_graceful_deletion_are_removed_in_one_write() {
    let (_server, c) = server(None).await;
    let created = c
        .post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "cm"}, "data": {"a": "b"}}),
        )
        .await
        .json();
    let created_rv = rv(&created);
    assert_eq!(
        c.delete("/api/v1/namespaces/default/configmaps/cm")
            .await
            .status,
        200
    );
    let events = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={created_rv}&timeoutSeconds=1"
        ))
        .await
        .events();
    // The DELETED carries the object as it was stored.
    assert_eq!(
        summary(&events),
        vec![("DELETED".into(), created_rv + 1, false, Value::Null)]
    );
}

#[tokio::test]
async fn the_kubelet_stops_a_bound_pod_then_deletes_it_with_no_grace() {
    let (_server, c) = server(Some(Duration::from_millis(50))).await;
    let mut body = pod("p", json!({}));
    body["spec"]["terminationGracePeriodSeconds"] = json!(30);
    c.post("/api/v1/namespaces/default/pods", &body).await;
    let running = loop {
        let current = c.get("/api/v1/namespaces/default/pods/p").await.json();
        if current["status"]["phase"] == "Running" {
            break current;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let from = rv(&running);
    let deleted = c.delete("/api/v1/namespaces/default/pods/p").await.json();
    assert_eq!(deleted["metadata"]["deletionGracePeriodSeconds"], 30);
    let gone = async {
        while c.get("/api/v1/namespaces/default/pods/p").await.status == 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .expect("the kubelet removes the pod");
    let events = c
        .get(&format!(
            "/api/v1/namespaces/default/pods?watch=1&resourceVersion={from}&timeoutSeconds=1"
        ))
        .await
        .events();
    // The API server marks it (grace 30); the kubelet reports its containers stopped, then
    // deletes it with grace 0: one more MODIFIED (grace 0), and the DELETED.
    let seen = summary(&events);
    let kinds: Vec<(&str, bool, &Value)> = seen
        .iter()
        .map(|(kind, _, terminating, grace)| (kind.as_str(), *terminating, grace))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("MODIFIED", true, &json!(30)),
            ("MODIFIED", true, &json!(30)),
            ("MODIFIED", true, &json!(0)),
            ("DELETED", true, &json!(0)),
        ]
    );
    let stopped = &events[1]["object"]["status"]["containerStatuses"][0]["state"];
    assert_eq!(stopped["terminated"]["exitCode"], 143);
    let rvs: Vec<u64> = seen.iter().map(|e| e.1).collect();
    assert_eq!(rvs[3], rvs[2] + 1, "the final delete's two writes: {rvs:?}");
}

#[tokio::test]
async fn a_watch_from_before_the_watch_cache_window_gets_410() {
    let server = TestServer::builder()
        .plain_http()
        .simulated_kubelet(None)
        .watch_cache(WatchCacheSize::Fixed(3))
        .start()
        .await
        .expect("server");
    let c = TestClient::new(&server);
    let mut rvs = Vec::new();
    for i in 0..5 {
        let created = c
            .post(
                "/api/v1/namespaces/default/configmaps",
                &json!({"metadata": {"name": format!("cm{i}")}}),
            )
            .await
            .json();
        rvs.push(rv(&created));
    }
    // The window holds the last three changes: resuming after the second is fine.
    let events = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={}&timeoutSeconds=1",
            rvs[1]
        ))
        .await
        .events();
    assert_eq!(summary(&events).len(), 3);
    let expired = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={}&timeoutSeconds=1",
            rvs[0]
        ))
        .await;
    assert_eq!(expired.status, 200);
    let error = &expired.events()[0];
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert_eq!(
        error["object"]["message"],
        format!("too old resource version: {} ({})", rvs[0], rvs[2] - 1)
    );
    // etcd still has that revision: an exact list reads it.
    let exact = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?resourceVersion={}&resourceVersionMatch=Exact",
            rvs[0]
        ))
        .await;
    assert_eq!(exact.status, 200);
    assert_eq!(exact.json()["items"].as_array().map(Vec::len), Some(1));
}

async fn run_compactor(clock: &FakeClock, times: usize) {
    for _ in 0..times {
        clock.wait_for_waiters(1).await;
        clock.step(DEFAULT_COMPACTION_INTERVAL);
    }
    clock.wait_for_waiters(1).await;
}

#[tokio::test]
async fn compaction_expires_old_lists_and_relists_idle_watch_caches() {
    let clock = FakeClock::new();
    let server = TestServer::builder()
        .plain_http()
        .simulated_kubelet(None)
        .clock(clock.shared())
        .start()
        .await
        .expect("server");
    let c = TestClient::new(&server);
    let p = c
        .post("/api/v1/namespaces/default/pods", &pod("p", json!({})))
        .await
        .json();
    let pod_rv = rv(&p);
    for i in 0..3 {
        c.post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": format!("cm{i}")}}),
        )
        .await;
    }
    let first_page = c
        .get("/api/v1/namespaces/default/configmaps?limit=1")
        .await
        .json();
    let token = first_page["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    // A watch on pods that the relist will end, long before its timeout.
    let watch = tokio::spawn({
        let c = TestClient::new(&server);
        async move {
            c.get(&format!(
                "/api/v1/namespaces/default/pods?watch=1&resourceVersion={pod_rv}&timeoutSeconds=25"
            ))
            .await
        }
    });
    while server.watch_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    run_compactor(&clock, 1).await;
    // The first run only records where it stands.
    assert_eq!(server.compacted_revision(), 0);
    // Configmaps keep changing; pods do not.
    let late = c
        .post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "late"}}),
        )
        .await
        .json();
    run_compactor(&clock, 1).await;
    assert!(server.compacted_revision() > pod_rv);
    let ended = watch.await.expect("watch task");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the relist ended the watch"
    );
    assert_eq!(ended.status, 200);
    let current = server.resource_version();
    let expired = c
        .get(&format!(
            "/api/v1/namespaces/default/pods?watch=1&resourceVersion={pod_rv}&timeoutSeconds=1"
        ))
        .await
        .events();
    assert_eq!(
        expired[0]["object"]["message"],
        format!("too old resource version: {pod_rv} ({current})")
    );
    // Configmaps changed after the compacted revision: their window is intact.
    let late_rv = rv(&late);
    let resumed = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={}&timeoutSeconds=1",
            late_rv - 1
        ))
        .await
        .events();
    assert_eq!(summary(&resumed).len(), 1);
    // Lists before the compacted revision are gone from etcd.
    let exact = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?resourceVersion={pod_rv}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(exact.status, 410);
    assert_eq!(
        exact.json()["message"],
        "The resourceVersion for the provided list is too old."
    );
    let next = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?limit=1&continue={token}"
        ))
        .await;
    assert_eq!(next.status, 410);
    assert_eq!(next.json()["reason"], "Expired");
}

#[tokio::test]
async fn compaction_and_the_window_can_be_turned_off() {
    let clock = FakeClock::new();
    let server = TestServer::builder()
        .plain_http()
        .simulated_kubelet(None)
        .clock(clock.shared())
        .compaction_interval(None)
        .watch_cache(WatchCacheSize::Unbounded)
        .start()
        .await
        .expect("server");
    let c = TestClient::new(&server);
    let first = rv(&c
        .post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "cm0"}}),
        )
        .await
        .json());
    for i in 1..300 {
        c.post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": format!("cm{i}")}}),
        )
        .await;
    }
    // Nothing sleeps on the clock: no compactor.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!clock.has_waiters());
    clock.step(DEFAULT_COMPACTION_INTERVAL * 10);
    assert_eq!(server.compacted_revision(), 0);
    let events = c
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={first}&timeoutSeconds=1"
        ))
        .await
        .events();
    assert_eq!(summary(&events).len(), 299);
}
