//! The typed API against kube-testserver over TLS (or the cluster of
//! `KUBE_TOOLKIT_TEST_KUBECONFIG`, see `common`): CRUD, errors, paging, status, watch.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestEnv;
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube_rest::{
    Api, DeleteParams, Error, ListParams, Patch, PatchParams, PostParams, VersionMatch, WatchEvent,
    WatchParams,
};
use kube_testserver::TestServer;

fn configmap(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    if !labels.is_empty() {
        cm.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
    cm.data = Some(BTreeMap::from([("key".to_string(), "one".to_string())]));
    cm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_and_typed_errors() {
    let env = TestEnv::start("crud_and_typed_errors").await;
    let client = env.client.clone();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    assert_eq!(cms.namespace(), Some(env.namespace.as_str()));

    let created = cms
        .create(&PostParams::default(), &configmap("one", &[("app", "web")]))
        .await
        .unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("one"));
    assert!(created.metadata.uid.is_some());

    let err = cms
        .create(&PostParams::default(), &configmap("one", &[]))
        .await
        .unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    assert!(!err.is_conflict() || err.status().unwrap().code == 409);
    assert_eq!(err.status().unwrap().code, 409);

    let err = cms.get("missing").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(
        err.status().unwrap().details.as_ref().unwrap().name,
        "missing"
    );
    assert!(cms.get_opt("missing").await.unwrap().is_none());

    // Replace, then a stale replace conflicts.
    let mut fresh = cms.get("one").await.unwrap();
    fresh.data = Some(BTreeMap::from([("key".to_string(), "two".to_string())]));
    let replaced = cms
        .replace("one", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    let err = cms
        .replace("one", &PostParams::default(), &fresh)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");

    // Patches of every kind.
    let merged = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"merge": "yes"}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.data.as_ref().unwrap()["merge"], "yes");
    let strategic = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Strategic(serde_json::json!({"metadata": {"labels": {"s": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(strategic.metadata.labels.as_ref().unwrap()["s"], "1");
    let json = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::json!([{"op": "replace", "path": "/data/key", "value": "three"}]),
            ),
        )
        .await
        .unwrap();
    assert_eq!(json.data.as_ref().unwrap()["key"], "three");
    let applied = cms
        .patch(
            "applied",
            &PatchParams::apply("kube-rest-test").force(),
            &Patch::Apply(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "b"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.as_ref().unwrap()["a"], "b");
    // Apply without a field manager is refused before sending.
    let err = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Apply(serde_json::json!({})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Request(_)), "{err}");

    // Invalid names are 422 Invalid from the server.
    let err = cms
        .create(&PostParams::default(), &configmap("Not_A_Name", &[]))
        .await
        .unwrap_err();
    assert!(err.is_invalid(), "{err}");

    // Delete with a failing precondition, then for real.
    let err = cms
        .delete("one", &DeleteParams::default().with_uid("not-the-uid"))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    cms.delete("one", &DeleteParams::background())
        .await
        .unwrap();
    assert!(cms.get_opt("one").await.unwrap().is_none());
    let err = cms
        .delete("one", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    // Cluster-scoped kinds.
    let namespaces: Api<Namespace> = Api::cluster(client);
    let team = format!("{}-team", env.namespace);
    let mut ns = Namespace::default();
    ns.metadata.name = Some(team.clone());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert!(
        namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(team.as_str()))
    );
    namespaces
        .delete(&team, &DeleteParams::background())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_selectors_and_delete_collection() {
    let env = TestEnv::start("paging_selectors_and_delete_collection").await;
    let client = env.client.clone();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &env.namespace);
    for i in 0..23 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        cms.create(
            &PostParams::default(),
            &configmap(&format!("cm-{i:02}"), &[("tier", tier)]),
        )
        .await
        .unwrap();
    }
    let page = cms.list(&ListParams::default().limit(10)).await.unwrap();
    assert_eq!(page.items.len(), 10);
    let token = page
        .metadata
        .continue_token
        .clone()
        .expect("a continue token");
    let second = cms
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.items[0].metadata.name.as_deref(), Some("cm-10"));

    let all = cms.list_all(&ListParams::default().limit(4)).await.unwrap();
    let names: Vec<_> = all
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names.len(), 23);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");

    let even = cms
        .list_all(&ListParams::default().labels("tier in (even)"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 12);
    let by_field = cms
        .list(&ListParams::default().fields("metadata.name=cm-03"))
        .await
        .unwrap();
    assert_eq!(by_field.items.len(), 1);

    // A list at an exact, compacted version and an expired continue token are 410 Gone.
    let rv = page.metadata.resource_version.clone().unwrap();
    assert_eq!(
        cms.list(&ListParams::default().at(&rv, VersionMatch::NotOlderThan))
            .await
            .unwrap()
            .items
            .len(),
        23
    );
    cms.create(&PostParams::default(), &configmap("after", &[]))
        .await
        .unwrap();
    if let Some(server) = env.testserver_part("paging", "an expired continue token (compaction)") {
        server.compact();
        let err = cms
            .list(&ListParams::default().limit(10).continue_token(&token))
            .await
            .unwrap_err();
        assert!(err.is_gone(), "{err}");
    }

    // All namespaces.
    let everywhere: Api<ConfigMap> = Api::all_namespaces(client);
    assert!(
        everywhere
            .list_all(&ListParams::default())
            .await
            .unwrap()
            .items
            .len()
            >= 24
    );

    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier=odd"),
    )
    .await
    .unwrap();
    assert_eq!(
        cms.list_all(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        13
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource() {
    let env = TestEnv::start("status_subresource").await;
    let client = env.client.clone();
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let patched = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running")
    );
    let mut current = pods.get_status("p").await.unwrap();
    current.status.as_mut().unwrap().phase = Some("Succeeded".into());
    let replaced = pods
        .replace_status("p", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(replaced.status.unwrap().phase.as_deref(), Some("Succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_resume_and_gone() {
    let env = TestEnv::start("watch_events_resume_and_gone").await;
    let client = env.client.clone();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    cms.create(&PostParams::default(), &configmap("before", &[]))
        .await
        .unwrap();
    let list = cms.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();

    // From "": the existing object first.
    let mut initial = std::pin::pin!(
        cms.watch(&WatchParams::default().timeout(5), "")
            .await
            .unwrap()
    );
    match initial.next().await {
        Some(Ok(WatchEvent::Added(cm))) => assert_eq!(cm.metadata.name.as_deref(), Some("before")),
        other => panic!("expected ADDED before, got {other:?}"),
    }

    let mut events = std::pin::pin!(
        cms.watch(&WatchParams::default().bookmarks(true), &rv)
            .await
            .unwrap()
    );
    cms.create(&PostParams::default(), &configmap("w", &[]))
        .await
        .unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"x": "y"}})),
    )
    .await
    .unwrap();
    cms.delete("w", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
        {
            Some(Ok(WatchEvent::Added(cm))) => seen.push(("ADDED", cm.metadata.name.unwrap())),
            Some(Ok(WatchEvent::Modified(cm))) => {
                seen.push(("MODIFIED", cm.metadata.name.unwrap()))
            }
            Some(Ok(WatchEvent::Deleted(cm))) => seen.push(("DELETED", cm.metadata.name.unwrap())),
            Some(Ok(WatchEvent::Bookmark(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("ADDED", "w".to_string()),
            ("MODIFIED", "w".to_string()),
            ("DELETED", "w".to_string())
        ]
    );

    let Some(server) = env.testserver_part(
        "watch_events_resume_and_gone",
        "closing watches and compaction on demand",
    ) else {
        return;
    };
    // The server closing the watch ends the stream cleanly.
    server.close_all_watches();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await {
                None => break,
                Some(Ok(WatchEvent::Bookmark(_))) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    end.await.unwrap();

    // Resuming from a compacted version: an ERROR event with a 410 Status.
    cms.create(&PostParams::default(), &configmap("after", &[]))
        .await
        .unwrap();
    server.compact();
    let mut stale = std::pin::pin!(cms.watch(&WatchParams::default(), &rv).await.unwrap());
    match tokio::time::timeout(Duration::from_secs(5), stale.next())
        .await
        .unwrap()
    {
        Some(Ok(WatchEvent::Error(status))) => assert_eq!(status.code, 410, "{status:?}"),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_list_initial_events_and_bookmarks() {
    let env = TestEnv::start_with(
        "watch_list_initial_events_and_bookmarks",
        TestServer::builder().bookmark_interval(Duration::from_millis(20)),
    )
    .await;
    let cms: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    for name in ["a", "b"] {
        cms.create(&PostParams::default(), &configmap(name, &[("app", "x")]))
            .await
            .unwrap();
    }
    cms.create(&PostParams::default(), &configmap("other", &[]))
        .await
        .unwrap();
    let params = WatchParams::default()
        .labels("app=x")
        .send_initial_events(true);
    let mut events = std::pin::pin!(cms.watch(&params, "").await.unwrap());
    let mut added = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
        {
            Some(Ok(WatchEvent::Added(cm))) => added.push(cm.metadata.name.unwrap()),
            Some(Ok(WatchEvent::Bookmark(bookmark))) if bookmark.is_initial_events_end() => {
                assert!(!bookmark.resource_version.is_empty());
                break;
            }
            Some(Ok(WatchEvent::Bookmark(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    added.sort();
    assert_eq!(added, ["a", "b"]);
    if env
        .testserver_part("watch_list", "periodic bookmarks every 20 ms")
        .is_none()
    {
        return;
    }
    // Periodic bookmarks follow.
    match tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
    {
        Some(Ok(WatchEvent::Bookmark(bookmark))) => assert!(!bookmark.is_initial_events_end()),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

/// client-go's `retry.RetryOnConflict` with an `Api`: two writers read the same ConfigMap, both
/// write (one of them conflicts), the loser reads again and retries: both increments land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_on_conflict_with_two_writers() {
    use kube_flowcontrol::clock::RealClock;
    use kube_flowcontrol::retry;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let env = TestEnv::start("retry_on_conflict_with_two_writers").await;
    let cms: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let mut counter = configmap("counter", &[]);
    counter.data = Some(BTreeMap::from([("n".to_string(), "0".to_string())]));
    cms.create(&PostParams::default(), &counter).await.unwrap();

    // Both writers hold the same resourceVersion before either writes.
    let both_read = Arc::new(tokio::sync::Barrier::new(2));
    let attempts = Arc::new(AtomicUsize::new(0));
    let writer = |cms: Api<ConfigMap>| {
        let both_read = Arc::clone(&both_read);
        let attempts = Arc::clone(&attempts);
        async move {
            let mut first = true;
            retry::retry_on_conflict(&RealClock, retry::DEFAULT_RETRY, || {
                let wait = std::mem::take(&mut first);
                attempts.fetch_add(1, Ordering::SeqCst);
                let both_read = Arc::clone(&both_read);
                let cms = cms.clone();
                async move {
                    let mut current = cms.get("counter").await?;
                    if wait {
                        both_read.wait().await;
                    }
                    let data = current.data.get_or_insert_with(BTreeMap::new);
                    let n: u32 = data["n"].parse().unwrap_or(0);
                    data.insert("n".into(), (n + 1).to_string());
                    cms.replace("counter", &PostParams::default(), &current)
                        .await
                }
            })
            .await
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(writer(cms.clone())),
        tokio::spawn(writer(cms.clone()))
    );
    a.unwrap().unwrap();
    b.unwrap().unwrap();
    let counter = cms.get("counter").await.unwrap();
    assert_eq!(counter.data.unwrap()["n"], "2");
    // One writer conflicted once and retried.
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}
