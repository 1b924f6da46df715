//! Pod logs and graceful pod deletion with the simulated kubelet, over real HTTP.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::TestClient;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kube_testserver::TestServer;
use serde_json::{Value, json};

const INTERVAL: Duration = Duration::from_millis(25);

async fn server(kubelet: Option<Duration>) -> (TestServer, TestClient) {
    let server = TestServer::builder()
        .plain_http()
        .simulated_kubelet(kubelet)
        .log_interval(INTERVAL)
        .start()
        .await
        .expect("server");
    let client = TestClient::new(&server);
    (server, client)
}

/// The seed's pod, with the default grace period (30s) unless one is given.
fn seed_pod(name: &str, containers: &[&str]) -> Value {
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": "busybox", "command": ["/bin/sh", "-c", "while :; do date +%s; sleep 1; done"]}))
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": containers}})
}

fn pod_path(name: &str) -> String {
    format!("/api/v1/namespaces/default/pods/{name}")
}

/// Polls until `done` holds for the pod (or its absence), for at most 5 seconds.
async fn wait_for(
    c: &TestClient,
    name: &str,
    done: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    for _ in 0..500 {
        let reply = c.get(&pod_path(name)).await;
        let pod = (reply.status == StatusCode::OK).then(|| reply.json());
        if done(pod.as_ref()) {
            return pod;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("pod {name} did not reach the expected state");
}

async fn running_pod(c: &TestClient, name: &str, containers: &[&str]) -> Value {
    let reply = c
        .post(
            "/api/v1/namespaces/default/pods",
            &seed_pod(name, containers),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    wait_for(c, name, |p| {
        p.is_some_and(|p| p["status"]["phase"] == "Running")
    })
    .await
    .expect("pod")
}

async fn logs(c: &TestClient, name: &str, query: &str) -> (StatusCode, String) {
    let reply = c.get(&format!("{}/log?{query}", pod_path(name))).await;
    (
        reply.status,
        String::from_utf8_lossy(&reply.body).to_string(),
    )
}

fn values(text: &str) -> Vec<i64> {
    text.lines()
        .map(|l| l.parse().expect("a Unix time"))
        .collect()
}

/// Waits until the container wrote at least `n` lines.
async fn wait_for_lines(c: &TestClient, name: &str, n: usize) {
    for _ in 0..500 {
        if logs(c, name, "").await.1.lines().count() >= n {
            return;
        }
        tokio::time::sleep(INTERVAL).await;
    }
    panic!("the container did not write {n} lines");
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[tokio::test]
async fn logs_are_the_seed_loop_with_tail_since_timestamps_and_limit() {
    let (_server, c) = server(Some(Duration::from_millis(20))).await;
    let pod = running_pod(&c, "clock", &["main"]).await;
    let started: jiff::Timestamp =
        pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
            .as_str()
            .expect("startedAt")
            .parse()
            .expect("time");
    wait_for_lines(&c, "clock", 6).await;

    let (status, text) = logs(&c, "clock", "").await;
    assert_eq!(status, StatusCode::OK);
    let all = values(&text);
    assert!(all.len() >= 6);
    assert!(all.windows(2).all(|w| w[0] <= w[1]));
    assert!(all[0] >= started.as_second() && *all.last().unwrap() <= unix_now());

    let (_, text) = logs(&c, "clock", "tailLines=2").await;
    assert_eq!(values(&text).len(), 2);
    let (_, text) = logs(&c, "clock", "tailLines=0").await;
    assert_eq!(text, "");

    // Timestamps: the line's time, then the line; one interval apart.
    let (_, text) = logs(&c, "clock", "tailLines=3&timestamps=true").await;
    let stamped: Vec<(jiff::Timestamp, i64)> = text
        .lines()
        .map(|line| {
            let (time, value) = line.split_once(' ').expect("timestamp and line");
            assert_eq!(time.len(), "2026-11-23T20:43:31.000000000Z".len(), "{time}");
            (
                time.parse().expect("RFC 3339"),
                value.parse().expect("number"),
            )
        })
        .collect();
    assert_eq!(stamped.len(), 3);
    for (time, value) in &stamped {
        assert_eq!(time.as_second(), *value);
    }
    let step = stamped[1].0.duration_since(stamped[0].0);
    assert_eq!(step, jiff::SignedDuration::try_from(INTERVAL).unwrap());

    // Since: only the lines written at or after it.
    // The cutoff is taken before asking: the server's own is later, never earlier.
    let cutoff = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    let (_, text) = logs(&c, "clock", "sinceSeconds=1&timestamps=true").await;
    for line in text.lines() {
        let time: jiff::Timestamp = line.split(' ').next().unwrap().parse().unwrap();
        assert!(time >= cutoff - jiff::SignedDuration::from_millis(100));
    }
    let (_, text) = logs(&c, "clock", "sinceTime=2099-01-01T00:00:00Z").await;
    assert_eq!(text, "");
    let (_, text) = logs(&c, "clock", "sinceTime=2020-01-01T00:00:00Z").await;
    assert!(values(&text).len() >= all.len());

    // limitBytes truncates the body.
    let (_, text) = logs(&c, "clock", "limitBytes=15").await;
    assert_eq!(text.len(), 15);
    assert_eq!(text, format!("{}\n{}", all[0], &all[1].to_string()[..4]));
}

#[tokio::test]
async fn log_errors_are_the_api_servers() {
    let (_server, c) = server(Some(Duration::from_millis(20))).await;
    let (status, body) = logs(&c, "missing", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["message"],
        "pods \"missing\" not found"
    );
    running_pod(&c, "two", &["a", "b"]).await;
    let (status, body) = logs(&c, "two", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let status_body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status_body["message"],
        "a container name must be specified for pod two, choose one of: [a b]"
    );
    assert_eq!(status_body["reason"], "BadRequest");
    let (status, body) = logs(&c, "two", "container=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("container x is not valid for pod two"),
        "{body}"
    );
    let (status, _) = logs(&c, "two", "container=b").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = logs(&c, "two", "container=a&previous=true").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains(r#"previous terminated container \"a\" in pod \"two\" not found"#),
        "{body}"
    );
    for (query, field) in [
        ("container=a&tailLines=-1", "tailLines"),
        ("container=a&sinceSeconds=0", "sinceSeconds"),
        ("container=a&limitBytes=0", "limitBytes"),
        (
            "container=a&sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z",
            "",
        ),
    ] {
        let (status, body) = logs(&c, "two", query).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["details"]["kind"], "PodLogOptions");
        assert_eq!(body["details"]["causes"][0]["field"], field);
    }
    let (status, _) = logs(&c, "two", "container=a&tailLines=many").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logs_without_a_kubelet() {
    let (_server, c) = server(None).await;
    // Not scheduled: 204 No Content, as kube-apiserver (v1.35) answers without a node to ask.
    c.post(
        "/api/v1/namespaces/default/pods",
        &seed_pod("pending", &["main"]),
    )
    .await;
    let (status, text) = logs(&c, "pending", "").await;
    assert_eq!((status, text.as_str()), (StatusCode::NO_CONTENT, ""));
    // Scheduled but never started.
    let mut bound = seed_pod("bound", &["main"]);
    bound["spec"]["nodeName"] = json!("somewhere");
    c.post("/api/v1/namespaces/default/pods", &bound).await;
    let (status, body) = logs(&c, "bound", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains(
            r#"container \"main\" in pod \"bound\" is waiting to start: ContainerCreating"#
        ),
        "{body}"
    );
}

#[tokio::test]
async fn previous_logs_after_an_image_change() {
    let (_server, c) = server(Some(Duration::from_millis(20))).await;
    running_pod(&c, "web", &["main"]).await;
    wait_for_lines(&c, "web", 3).await;
    let reply = c
        .patch(
            &pod_path("web"),
            "application/strategic-merge-patch+json",
            &json!({"spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let pod = wait_for(&c, "web", |p| {
        p.is_some_and(|p| p["status"]["containerStatuses"][0]["restartCount"] == 1)
    })
    .await
    .expect("pod");
    let status = &pod["status"]["containerStatuses"][0];
    let last = &status["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137);
    assert_eq!(last["reason"], "Error");
    assert_ne!(last["containerID"], status["containerID"]);
    let finished: jiff::Timestamp = last["finishedAt"].as_str().unwrap().parse().unwrap();

    let (status, text) = logs(&c, "web", "previous=true").await;
    assert_eq!(status, StatusCode::OK);
    let previous = values(&text);
    assert!(previous.len() >= 3, "{text}");
    assert!(*previous.last().unwrap() <= finished.as_second());
    // The previous output is over: asking again gives the same lines.
    assert_eq!(logs(&c, "web", "previous=true").await.1, text);
    // Following the previous instance ends at once.
    let (status, again) = logs(&c, "web", "previous=true&follow=true").await;
    assert_eq!((status, again), (StatusCode::OK, text));
}

/// Starts a following log request and returns its streaming body.
async fn follow(server: &TestServer, name: &str, query: &str) -> hyper::body::Incoming {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::builder()
        .method(Method::GET)
        .uri(format!(
            "{}{}/log?follow=true&{query}",
            server.url(),
            pod_path(name)
        ))
        .header(header::AUTHORIZATION, format!("Bearer {}", server.token()))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = client.request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body()
}

async fn read_lines(body: &mut hyper::body::Incoming, text: &mut String, lines: usize) {
    while text.lines().count() < lines {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a line in time")
            .expect("the stream goes on")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).expect("utf-8"));
        }
    }
}

async fn wait_for_no_log_streams(server: &TestServer) {
    for _ in 0..500 {
        if server.active_log_streams() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} log streams still open", server.active_log_streams());
}

#[tokio::test]
async fn follow_streams_new_lines_and_stops_when_cancelled() {
    let (server, c) = server(Some(Duration::from_millis(20))).await;
    running_pod(&c, "clock", &["main"]).await;
    wait_for_lines(&c, "clock", 2).await;
    let mut body = follow(&server, "clock", "tailLines=1").await;
    let mut text = String::new();
    // One existing line, then new ones as they are written.
    read_lines(&mut body, &mut text, 5).await;
    let seen = values(text.lines().take(5).collect::<Vec<_>>().join("\n").as_str());
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(server.active_log_streams(), 1);
    // Cancel mid-stream: the server notices and stops producing lines.
    drop(body);
    wait_for_no_log_streams(&server).await;

    // A follow with limitBytes ends once the limit is reached.
    let body = follow(&server, "clock", "limitBytes=25").await;
    let all = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("ends")
        .expect("body")
        .to_bytes();
    assert_eq!(all.len(), 25);
    wait_for_no_log_streams(&server).await;
}

#[tokio::test]
async fn follow_from_a_future_since_time_starts_there() {
    let (server, c) = server(Some(Duration::from_millis(20))).await;
    running_pod(&c, "clock", &["main"]).await;
    wait_for_lines(&c, "clock", 2).await;
    let since = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1500);
    let query = format!(
        "timestamps=true&sinceTime={}",
        since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    );
    // sinceTime has seconds precision on the wire: round the expectation the same way.
    let cutoff = jiff::Timestamp::from_second(since.as_second()).unwrap();
    let mut body = follow(&server, "clock", &query).await;
    let mut text = String::new();
    read_lines(&mut body, &mut text, 2).await;
    for line in text.lines() {
        let time: jiff::Timestamp = line.split(' ').next().unwrap().parse().unwrap();
        assert!(time >= cutoff, "{line} is before {cutoff}");
    }
}

#[tokio::test]
async fn follow_ends_when_the_pod_is_deleted() {
    let (server, c) = server(Some(Duration::from_millis(20))).await;
    running_pod(&c, "clock", &["main"]).await;
    let mut body = follow(&server, "clock", "").await;
    let mut text = String::new();
    read_lines(&mut body, &mut text, 2).await;
    let reply = c.delete(&pod_path("clock")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("the stream ends")
        .expect("body")
        .to_bytes();
    text.push_str(std::str::from_utf8(&rest).unwrap());
    assert!(values(&text).len() >= 2);
    wait_for(&c, "clock", |p| p.is_none()).await;
    wait_for_no_log_streams(&server).await;
}

#[tokio::test]
async fn deleting_a_running_pod_honours_its_grace_period() {
    let delay = Duration::from_millis(150);
    let (_server, c) = server(Some(delay)).await;
    running_pod(&c, "web", &["main"]).await;
    let started = std::time::Instant::now();
    let asked = jiff::Timestamp::now();
    let reply = c.delete(&pod_path("web")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let deleted = reply.json();
    assert_eq!(deleted["metadata"]["deletionGracePeriodSeconds"], 30);
    let deadline: jiff::Timestamp = deleted["metadata"]["deletionTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The deadline is the server's now (truncated to seconds) plus 30 s.
    let answered = jiff::Timestamp::now();
    let grace = deadline.duration_since(asked);
    assert!(
        grace >= jiff::SignedDuration::from_secs(29)
            && grace <= answered.duration_since(asked) + jiff::SignedDuration::from_secs(30),
        "{grace:?}"
    );
    // Terminating: still there, until the kubelet stopped its containers.
    let terminating = c.get(&pod_path("web")).await;
    assert_eq!(terminating.status, StatusCode::OK);
    if started.elapsed() < delay {
        assert!(terminating.json()["metadata"]["deletionTimestamp"].is_string());
    }
    // A second delete with a longer grace period changes nothing.
    let again = c
        .delete(&format!("{}?gracePeriodSeconds=60", pod_path("web")))
        .await;
    if again.status == StatusCode::OK {
        assert_eq!(again.json()["metadata"]["deletionGracePeriodSeconds"], 30);
    }
    wait_for(&c, "web", |p| p.is_none()).await;
    assert!(started.elapsed() >= delay);

    // Grace period 0: gone at once.
    running_pod(&c, "now", &["main"]).await;
    let reply = c
        .delete(&format!("{}?gracePeriodSeconds=0", pod_path("now")))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(c.get(&pod_path("now")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_a_kubelet_bound_pods_stay_terminating() {
    let (_server, c) = server(None).await;
    // Not scheduled: deleted at once whatever its grace period.
    c.post(
        "/api/v1/namespaces/default/pods",
        &seed_pod("pending", &["main"]),
    )
    .await;
    assert_eq!(c.delete(&pod_path("pending")).await.status, StatusCode::OK);
    assert_eq!(
        c.get(&pod_path("pending")).await.status,
        StatusCode::NOT_FOUND
    );

    let mut bound = seed_pod("bound", &["main"]);
    bound["spec"]["nodeName"] = json!("gone-node");
    c.post("/api/v1/namespaces/default/pods", &bound).await;
    let first = c.delete(&pod_path("bound")).await.json();
    assert_eq!(first["metadata"]["deletionGracePeriodSeconds"], 30);
    let first_deadline: jiff::Timestamp = first["metadata"]["deletionTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Only a shorter grace period changes anything; it moves the deletionTimestamp earlier.
    let longer = c
        .delete(&format!("{}?gracePeriodSeconds=60", pod_path("bound")))
        .await
        .json();
    assert_eq!(longer["metadata"], first["metadata"]);
    let shorter = c
        .send(
            Method::DELETE,
            &pod_path("bound"),
            Some("application/json"),
            Some(br#"{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":10}"#.to_vec()),
        )
        .await
        .json();
    assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 10);
    let shorter_deadline: jiff::Timestamp = shorter["metadata"]["deletionTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        first_deadline.duration_since(shorter_deadline),
        jiff::SignedDuration::from_secs(20)
    );
    // Updates during the grace period do not delete it.
    let reply = c
        .patch(
            &pod_path("bound"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(c.get(&pod_path("bound")).await.status, StatusCode::OK);
    // Grace period 0 forces it.
    c.delete(&format!("{}?gracePeriodSeconds=0", pod_path("bound")))
        .await;
    assert_eq!(
        c.get(&pod_path("bound")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_terminating_namespace_goes_once_its_pods_are_gone() {
    let (_server, c) = server(Some(Duration::from_millis(20))).await;
    c.post(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    )
    .await;
    c.post("/api/v1/namespaces/team/pods", &seed_pod("p", &["main"]))
        .await;
    for _ in 0..500 {
        let pod = c.get("/api/v1/namespaces/team/pods/p").await.json();
        if pod["status"]["phase"] == "Running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        c.delete("/api/v1/namespaces/team").await.status,
        StatusCode::OK
    );
    for _ in 0..500 {
        if c.get("/api/v1/namespaces/team").await.status == StatusCode::NOT_FOUND {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the namespace stayed");
}
