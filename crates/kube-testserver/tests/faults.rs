//! The fault schedule's faults, seen from a client: restarts refuse connections and keep the
//! data, lose the watch caches; stalls truncate bodies; cuts end watches.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestClient;
use kube_testserver::schedule::{Fault, FaultKind, FaultSchedule, ScheduledFault};
use kube_testserver::{StallEnd, TestServer};
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn plain_server() -> TestServer {
    TestServer::builder()
        .plain_http()
        .simulated_kubelet(None)
        .start()
        .await
        .expect("server")
}

fn rv_of(value: &serde_json::Value) -> u64 {
    value["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("resourceVersion")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_refuses_connections_keeps_the_data_and_loses_the_watch_caches() {
    let server = Arc::new(plain_server().await);
    let c = TestClient::without_pool(&server);
    let path = "/api/v1/namespaces/default/configmaps";
    let first = c
        .post(path, &json!({"metadata": {"name": "a"}}))
        .await
        .json();
    c.post(path, &json!({"metadata": {"name": "b"}})).await;
    let before = rv_of(&first);
    // Before the restart, a watch resumes from the first write.
    let resumed = c
        .get(&format!(
            "{path}?watch=1&resourceVersion={before}&timeoutSeconds=1"
        ))
        .await;
    assert_eq!(resumed.events()[0]["type"], "ADDED");
    let open_watch = {
        let c = TestClient::new(&server);
        tokio::spawn(async move { c.get(&format!("{path}?watch=1&timeoutSeconds=60")).await })
    };
    while server.faults().open_watches() == 0 {
        tokio::task::yield_now().await;
    }
    let restart = {
        let server = Arc::clone(&server);
        tokio::spawn(async move { server.restart(Duration::from_millis(500)).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let refused = tokio::net::TcpStream::connect(server.address()).await;
    assert_eq!(
        refused
            .expect_err("connections are refused while down")
            .kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    restart.await.expect("task").expect("listening again");
    // The open watch ended with the restart.
    tokio::time::timeout(Duration::from_secs(5), open_watch)
        .await
        .expect("the open watch ended")
        .ok();
    // Same port, same data.
    let c = TestClient::without_pool(&server);
    assert_eq!(c.get(&format!("{path}/a")).await.status, 200);
    assert_eq!(c.get(&format!("{path}/b")).await.status, 200);
    // The watch cache was lost: resuming from before the restart is 410 Gone.
    let gone = c
        .get(&format!(
            "{path}?watch=1&resourceVersion={before}&timeoutSeconds=1"
        ))
        .await;
    let events = gone.events();
    assert_eq!(events[0]["type"], "ERROR", "{events:?}");
    assert_eq!(events[0]["object"]["code"], 410);
    // A list at that exact resourceVersion still reads etcd's history.
    let exact = c
        .get(&format!(
            "{path}?resourceVersion={before}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(exact.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_response_pauses_and_may_be_cut() {
    let server = plain_server().await;
    let c = TestClient::without_pool(&server);
    let path = "/api/v1/namespaces/default/configmaps";
    c.post(path, &json!({"metadata": {"name": "a"}})).await;
    server.faults().stall_next(
        Some(http::Method::GET),
        path,
        Duration::from_millis(300),
        StallEnd::Truncate,
        1,
    );
    let started = std::time::Instant::now();
    let cut = c.get(path).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(serde_json::from_slice::<serde_json::Value>(&cut.body).is_err());
    server
        .faults()
        .stall_next(None, path, Duration::from_millis(10), StallEnd::Resume, 1);
    assert_eq!(
        c.get(path).await.json()["items"][0]["metadata"]["name"],
        "a"
    );
    assert_eq!(c.get(path).await.json()["kind"], "ConfigMapList");
    assert_eq!(server.faults().stalls_injected(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_applies_its_faults_in_order_and_reports_them() {
    let server = Arc::new(plain_server().await);
    let path = "/api/v1/namespaces/default/configmaps";
    let mut watches = Vec::new();
    for _ in 0..3 {
        let c = TestClient::new(&server);
        watches.push(tokio::spawn(async move {
            c.get(&format!("{path}?watch=1&timeoutSeconds=60")).await
        }));
    }
    while server.faults().open_watches() < 3 {
        tokio::task::yield_now().await;
    }
    let at = Duration::from_millis;
    let schedule = FaultSchedule::from_faults(
        42,
        at(400),
        vec![
            ScheduledFault {
                at: at(10),
                fault: Fault::CutSomeWatches { percent: 100 },
            },
            ScheduledFault {
                at: at(20),
                fault: Fault::FailRequests {
                    status: 429,
                    count: 1,
                },
            },
            ScheduledFault {
                at: at(30),
                fault: Fault::RestartListener { down: at(100) },
            },
        ],
    );
    let mut seen = Vec::new();
    let report = server
        .run_fault_schedule(&schedule, &CancellationToken::new(), |step, fault| {
            seen.push((step, fault.fault.kind()))
        })
        .await;
    assert_eq!(
        seen,
        [
            (0, FaultKind::CutSomeWatches),
            (1, FaultKind::TooManyRequests),
            (2, FaultKind::RestartListener)
        ]
    );
    assert_eq!(report.seed, 42);
    assert_eq!(report.total(), 3);
    assert_eq!(report.watches_cut, 3);
    for watch in watches {
        tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .expect("cut")
            .ok();
    }
    // The armed 429 that no request met is disarmed at the schedule's end.
    let c = TestClient::without_pool(&server);
    assert_eq!(c.get(path).await.status, 200);
    assert_eq!(report.requests_failed, 0);
}
