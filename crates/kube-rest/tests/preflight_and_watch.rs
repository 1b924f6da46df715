//! Namespace preflight checks, `list_all`'s resourceVersion, the watch event size cap over
//! HTTP, and a truncated watch resumed from its last resourceVersion.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestEnv;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_rest::{
    Api, Client, Config, DeleteParams, Error, ListParams, Object, PostParams, WatchEvent,
    WatchParams,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PROMPTLY: Duration = Duration::from_secs(10);

fn configmap(name: &str, value: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.data = Some(BTreeMap::from([("key".to_string(), value.to_string())]));
    cm
}

fn is_request_error(result: Result<impl std::fmt::Debug, Error>, wanted: &str) {
    match result {
        Err(Error::Request(message)) => assert!(message.contains(wanted), "{message}"),
        other => panic!("expected a request error containing {wanted:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_namespace_is_refused_never_widened() {
    let env = TestEnv::start("an_empty_namespace_is_refused_never_widened").await;
    let client = env.client.clone();
    let everywhere: Api<ConfigMap> = Api::all_namespaces(client.clone());
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), &env.namespace);
    other
        .create(&PostParams::default(), &configmap("keep-me", "1"))
        .await
        .unwrap();

    let empty: Api<ConfigMap> = Api::namespaced(client.clone(), "");
    is_request_error(
        empty
            .create(&PostParams::default(), &configmap("x", "1"))
            .await,
        "an empty namespace may not be set during creation",
    );
    is_request_error(
        empty.get("keep-me").await,
        "an empty namespace may not be set when a resource name is provided",
    );
    is_request_error(
        empty.list(&ListParams::default()).await,
        "an empty namespace may not be set",
    );
    is_request_error(
        empty
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await,
        "an empty namespace may not be set",
    );
    is_request_error(
        empty.watch(&WatchParams::default(), "").await,
        "an empty namespace may not be set",
    );
    // delete_collection on an all-namespaces Api is refused like create.
    is_request_error(
        everywhere
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await,
        "needs an Api bound to a namespace",
    );
    // Nothing was deleted.
    assert!(other.get_opt("keep-me").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_all_keeps_the_resource_version_to_watch_from() {
    let env = TestEnv::start("list_all_keeps_the_resource_version_to_watch_from").await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    for i in 0..7 {
        cms.create(&PostParams::default(), &configmap(&format!("cm-{i}"), "1"))
            .await
            .unwrap();
    }
    let all = cms.list_all(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(all.items.len(), 7);
    let rv = all
        .resource_version()
        .expect("the list's resourceVersion")
        .to_string();
    // A change after the list is seen by a watch from the list's version, and nothing before.
    cms.create(&PostParams::default(), &configmap("after", "1"))
        .await
        .unwrap();
    let mut events = cms.watch(&WatchParams::default(), &rv).await.unwrap();
    let first = tokio::time::timeout(PROMPTLY, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first {
        WatchEvent::Added(cm) => assert_eq!(cm.name(), "after"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_cap_ends_the_watch_with_an_error() {
    let env = TestEnv::start("an_event_over_the_cap_ends_the_watch_with_an_error").await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let events = cms
        .watch(&WatchParams::default(), "")
        .await
        .unwrap()
        .max_event_bytes(2048);
    cms.create(&PostParams::default(), &configmap("small", "1"))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("big", &"x".repeat(8192)))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("later", "1"))
        .await
        .unwrap();
    let events: Vec<_> = tokio::time::timeout(PROMPTLY, events.collect())
        .await
        .expect("the watch ends at the oversized event");
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(&events[0], Ok(WatchEvent::Added(cm)) if cm.name() == "small"));
    assert!(
        matches!(events[1], Err(Error::WatchFrameTooLarge { limit: 2048 })),
        "{:?}",
        events[1]
    );
}

fn event(kind: &str, name: &str, rv: u32) -> String {
    format!(
        "{}\n",
        serde_json::json!({"type": kind, "object": {"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": rv.to_string()}}})
    )
}

fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

/// Reads one request head and returns its request line.
async fn request_line(socket: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

const WATCH_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_watch_resumes_from_its_last_resource_version() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        // First watch: two events, then half of a third, then the connection is cut.
        let (mut socket, _) = listener.accept().await.unwrap();
        let first = request_line(&mut socket).await;
        let third = event("ADDED", "c", 8);
        let body = format!(
            "{WATCH_HEAD}{}{}{}",
            chunk(&event("ADDED", "a", 6)),
            chunk(&event("MODIFIED", "a", 7)),
            chunk(&third[..third.len() / 2])
        );
        socket.write_all(body.as_bytes()).await.unwrap();
        socket.flush().await.unwrap();
        drop(socket);
        // Second watch: must start from the last complete event's version.
        let (mut socket, _) = listener.accept().await.unwrap();
        let second = request_line(&mut socket).await;
        let body = format!("{WATCH_HEAD}{}0\r\n\r\n", chunk(&event("ADDED", "c", 8)));
        socket.write_all(body.as_bytes()).await.unwrap();
        socket.flush().await.unwrap();
        (first, second)
    });
    let client =
        Client::try_from_config(Config::new(url.parse().unwrap()).without_throttle()).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");

    let mut last_rv = "5".to_string();
    let mut names = Vec::new();
    let mut truncations = 0;
    for _ in 0..2 {
        let mut events = cms.watch(&WatchParams::default(), &last_rv).await.unwrap();
        while let Some(event) = tokio::time::timeout(PROMPTLY, events.next()).await.unwrap() {
            match event {
                Ok(WatchEvent::Added(cm) | WatchEvent::Modified(cm)) => {
                    last_rv = cm.resource_version().unwrap().to_string();
                    names.push(format!("{}@{last_rv}", cm.name()));
                }
                Err(e) if e.is_watch_truncated() => truncations += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let (first, second) = server.await.unwrap();
    assert!(first.contains("resourceVersion=5"), "{first}");
    assert!(second.contains("resourceVersion=7"), "{second}");
    assert_eq!(truncations, 1);
    assert_eq!(names, ["a@6", "a@7", "c@8"]);
}
