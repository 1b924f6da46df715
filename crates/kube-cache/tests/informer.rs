//! Shared informers and the factory against kube-testserver over HTTP: the reflector, the
//! queue, the store and the handlers together. With `KUBE_TOOLKIT_TEST_KUBECONFIG` set, the
//! tests that need no kube-testserver feature run against that cluster (see `cluster/mod.rs`).

use kube_test_support::cluster;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube_apimachinery::Object;
use kube_cache::informer::{
    HandlerFuncs, InformerEvent, InformerScope, ResourceEventHandler, SharedInformerFactory,
    wait_for_cache_sync,
};
use kube_cache::{NAMESPACE_INDEX, ObjectOrTombstone};
use kube_rest::{Api, DeleteParams, PostParams};
use kube_testserver::TestServer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

use cluster::{TestEnv, skip_on_cluster};

/// A kube-testserver (or the cluster) with the test's namespaces `a` and `b`.
async fn server(test: &str) -> TestEnv {
    TestEnv::start(test, TestServer::builder(), &["a", "b"]).await
}

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    cm.data = Some([("k".to_string(), "v1".to_string())].into());
    cm
}

/// Records events as `add:ns/name[:initial]`, `update:ns/name`, `delete:ns/name`.
#[derive(Default)]
struct Recorder(watch::Sender<Vec<String>>);

impl Recorder {
    fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }
    fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
    async fn wait_for(&self, what: &str, cond: impl Fn(&[String]) -> bool) -> Vec<String> {
        let mut rx = self.0.subscribe();
        let ok = tokio::time::timeout(WAIT, rx.wait_for(|v| cond(v)))
            .await
            .is_ok();
        let events = self.events();
        assert!(ok, "timed out waiting for {what}: {events:?}");
        events
    }
}

fn key(obj: &ConfigMap) -> String {
    format!("{}/{}", obj.namespace().unwrap_or(""), obj.name())
}

impl ResourceEventHandler<ConfigMap> for Recorder {
    fn on_add(&self, obj: &Arc<ConfigMap>, initial: bool) {
        let suffix = if initial { ":initial" } else { "" };
        self.0
            .send_modify(|v| v.push(format!("add:{}{suffix}", key(obj))));
    }
    fn on_update(&self, _old: &Arc<ConfigMap>, new: &Arc<ConfigMap>) {
        self.0
            .send_modify(|v| v.push(format!("update:{}", key(new))));
    }
    fn on_delete(&self, obj: &ObjectOrTombstone<ConfigMap>) {
        let name = match obj {
            ObjectOrTombstone::Object(o) => key(o),
            ObjectOrTombstone::Tombstone(t) => format!("tombstone:{}", t.key),
        };
        self.0.send_modify(|v| v.push(format!("delete:{name}")));
    }
}

fn has(events: &[String], event: &str) -> bool {
    events.iter().any(|e| e == event)
}

#[tokio::test]
async fn informer_delivers_adds_updates_and_deletes() {
    let env = server("informer-delivers").await;
    let (client, a) = (env.client.clone(), env.ns("a"));
    let cms = Api::<ConfigMap>::namespaced(client.clone(), a);
    cms.create(&PostParams::default(), &cm("one", &[]))
        .await
        .unwrap();

    // The test's namespace only: a cluster has ConfigMaps of its own elsewhere.
    let factory = SharedInformerFactory::builder(client.clone()).build();
    let informer = factory.informer_in::<ConfigMap>(&InformerScope::namespaced(a));
    let recorder = Recorder::new();
    let reg = informer.add_event_handler(Arc::clone(&recorder)).unwrap();
    let cancel = CancellationToken::new();
    assert_eq!(factory.start(&cancel).unwrap(), 1);
    assert!(wait_for_cache_sync(&[&informer, &reg], &cancel).await);
    recorder
        .wait_for("the initial list", |e| {
            has(e, &format!("add:{a}/one:initial"))
        })
        .await;
    assert!(!informer.last_sync_resource_version().is_empty());

    cms.create(&PostParams::default(), &cm("two", &[]))
        .await
        .unwrap();
    let mut one = cms.get("one").await.unwrap();
    one.data = Some([("k".to_string(), "v2".to_string())].into());
    cms.replace("one", &PostParams::default(), &one)
        .await
        .unwrap();
    cms.delete("two", &DeleteParams::default()).await.unwrap();
    let events = recorder
        .wait_for("add, update, delete", |e| {
            has(e, &format!("delete:{a}/two"))
        })
        .await;
    // In order per object (the queue may hand out two's deltas before one's update).
    let of = |key: &str| -> Vec<String> {
        let key = format!("{a}/{key}");
        events
            .iter()
            .filter(|e| e.contains(&key))
            .cloned()
            .collect()
    };
    assert_eq!(
        of("one"),
        [format!("add:{a}/one:initial"), format!("update:{a}/one")]
    );
    assert_eq!(
        of("two"),
        [format!("add:{a}/two"), format!("delete:{a}/two")]
    );
    let cached = informer.lister().get(a, "one").unwrap();
    assert_eq!(cached.data.as_ref().unwrap()["k"], "v2");
    assert_eq!(
        informer
            .indexer()
            .by_index(NAMESPACE_INDEX, a)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(reg.stats().delivered, 4);

    cancel.cancel();
    factory.shutdown().await;
    assert!(informer.is_stopped());
}

#[tokio::test]
async fn late_handler_and_stream_get_the_cache_first() {
    let env = server("late-handler").await;
    let (client, a) = (env.client.clone(), env.ns("a"));
    let cms = Api::<ConfigMap>::namespaced(client.clone(), a);
    for name in ["x", "y"] {
        cms.create(&PostParams::default(), &cm(name, &[]))
            .await
            .unwrap();
    }
    let factory = SharedInformerFactory::builder(client.clone()).build();
    let informer = factory.informer_in::<ConfigMap>(&InformerScope::namespaced(a));
    let cancel = CancellationToken::new();
    factory.start(&cancel).unwrap();
    let synced = factory.wait_for_cache_sync(&cancel).await;
    assert_eq!(synced.len(), 1);
    assert!(synced.values().all(|s| *s));

    let late = Recorder::new();
    let reg = informer.add_event_handler(Arc::clone(&late)).unwrap();
    tokio::time::timeout(WAIT, reg.wait_for_sync())
        .await
        .unwrap();
    let mut events = late.events();
    events.sort();
    assert_eq!(
        events,
        [format!("add:{a}/x:initial"), format!("add:{a}/y:initial")]
    );

    let mut stream = informer.stream().unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        let next = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
        });
        match tokio::time::timeout(WAIT, next).await.unwrap() {
            Some(InformerEvent::Added {
                object,
                is_in_initial_list: true,
            }) => names.push(object.name().to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }
    names.sort();
    assert_eq!(names, ["x", "y"]);
    assert!(stream.registration().has_synced());
    cms.delete("x", &DeleteParams::default()).await.unwrap();
    late.wait_for("the delete", |e| has(e, &format!("delete:{a}/x")))
        .await;
    cancel.cancel();
    factory.shutdown().await;
}

#[tokio::test]
async fn factory_start_wait_and_shutdown() {
    let env = server("factory-start").await;
    let client = env.client.clone();
    let factory = SharedInformerFactory::builder(client.clone()).build();
    let cms = factory.informer::<ConfigMap>();
    let secrets = factory.informer::<Secret>();
    // The same type and scope: the same informer.
    let again = factory.informer::<ConfigMap>();
    let seen = Recorder::new();
    again.add_event_handler(Arc::clone(&seen)).unwrap();
    assert_eq!(cms.handler_count(), 1);
    assert_eq!(factory.keys().len(), 2);

    let cancel = CancellationToken::new();
    assert_eq!(factory.start(&cancel).unwrap(), 2);
    assert_eq!(factory.start(&cancel).unwrap(), 0, "started once only");
    let synced = factory.wait_for_cache_sync(&cancel).await;
    assert_eq!(synced.len(), 2);
    assert!(synced.values().all(|s| *s), "{synced:?}");
    let names: Vec<String> = synced.keys().map(|k| k.to_string()).collect();
    assert!(names.contains(&"ConfigMap".to_string()), "{names:?}");
    assert!(names.contains(&"Secret".to_string()), "{names:?}");
    assert!(cms.has_synced() && secrets.has_synced());

    // An informer requested after start waits for the next start.
    let in_b = factory.informer_in::<ConfigMap>(&InformerScope::namespaced(env.ns("b")));
    assert!(!in_b.has_started());
    assert_eq!(factory.start(&cancel).unwrap(), 1);
    tokio::time::timeout(WAIT, in_b.wait_for_sync())
        .await
        .unwrap();

    // Shutdown waits for every informer task.
    tokio::time::timeout(WAIT, factory.shutdown())
        .await
        .unwrap();
    assert!(cms.is_stopped() && secrets.is_stopped() && in_b.is_stopped());
    assert_eq!(
        factory.start(&cancel).unwrap(),
        0,
        "no start after shutdown"
    );
    assert!(cms.add_event_handler(HandlerFuncs::new()).is_err());
}

#[tokio::test]
async fn the_callers_token_stops_the_informers_too() {
    let env = server("callers-token").await;
    let client = env.client.clone();
    let factory = SharedInformerFactory::builder(client.clone()).build();
    let cms = factory.informer::<ConfigMap>();
    let cancel = CancellationToken::new();
    factory.start(&cancel).unwrap();
    tokio::time::timeout(WAIT, cms.wait_for_sync())
        .await
        .unwrap();
    cancel.cancel();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cms.is_stopped() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the informer did not stop"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    factory.shutdown().await;
}

#[tokio::test]
async fn factory_scopes_by_namespace_and_selector() {
    let env = server("factory-scopes").await;
    let (client, ns_a, ns_b) = (env.client.clone(), env.ns("a"), env.ns("b"));
    // Unique on a cluster, where earlier runs' objects may remain.
    let (web, db) = (env.unique("web"), env.unique("db"));
    let a = Api::<ConfigMap>::namespaced(client.clone(), ns_a);
    let b = Api::<ConfigMap>::namespaced(client.clone(), ns_b);
    a.create(&PostParams::default(), &cm("web", &[("app", &web)]))
        .await
        .unwrap();
    a.create(&PostParams::default(), &cm("db", &[("app", &db)]))
        .await
        .unwrap();
    b.create(&PostParams::default(), &cm("web", &[("app", &web)]))
        .await
        .unwrap();

    let web_selector = format!("app={web}");
    let factory = SharedInformerFactory::builder(client.clone())
        .tweak_list_options({
            let web_selector = web_selector.clone();
            move |o| o.label_selector = Some(web_selector.clone())
        })
        .build();
    let web_everywhere = factory.informer::<ConfigMap>();
    let all_in_a = factory.informer_in::<ConfigMap>(&InformerScope::namespaced(ns_a));
    let web_in_b =
        factory.informer_in::<ConfigMap>(&InformerScope::namespaced(ns_b).labels(&web_selector));
    assert_eq!(factory.keys().len(), 3);
    let cancel = CancellationToken::new();
    factory.start(&cancel).unwrap();
    let synced = factory.wait_for_cache_sync(&cancel).await;
    assert!(synced.values().all(|s| *s));

    let mut keys = web_everywhere.indexer().list_keys();
    keys.sort();
    assert_eq!(keys, [format!("{ns_a}/web"), format!("{ns_b}/web")]);
    // (A real cluster may add its own objects to a namespace: kube-root-ca.crt.)
    let mut keys = all_in_a.indexer().list_keys();
    keys.retain(|k| !k.ends_with("/kube-root-ca.crt"));
    keys.sort();
    assert_eq!(keys, [format!("{ns_a}/db"), format!("{ns_a}/web")]);
    assert_eq!(web_in_b.indexer().list_keys(), [format!("{ns_b}/web")]);
    factory.shutdown().await;
}

#[tokio::test]
async fn handler_removed_over_http_gets_nothing_more() {
    let env = server("handler-removed").await;
    let (client, a) = (env.client.clone(), env.ns("a"));
    let cms = Api::<ConfigMap>::namespaced(client.clone(), a);
    let factory = SharedInformerFactory::builder(client.clone()).build();
    let informer = factory.informer_in::<ConfigMap>(&InformerScope::namespaced(a));
    let removed = Recorder::new();
    let kept = Recorder::new();
    let reg = informer.add_event_handler(Arc::clone(&removed)).unwrap();
    informer.add_event_handler(Arc::clone(&kept)).unwrap();
    let cancel = CancellationToken::new();
    factory.start(&cancel).unwrap();
    tokio::time::timeout(WAIT, informer.wait_for_sync())
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("first", &[]))
        .await
        .unwrap();
    removed
        .wait_for("first", |e| has(e, &format!("add:{a}/first")))
        .await;
    assert!(informer.remove_event_handler(&reg));
    cms.create(&PostParams::default(), &cm("second", &[]))
        .await
        .unwrap();
    kept.wait_for("second", |e| has(e, &format!("add:{a}/second")))
        .await;
    let mut removed_events = removed.events();
    removed_events.retain(|e| !e.ends_with("/kube-root-ca.crt:initial"));
    assert_eq!(removed_events, [format!("add:{a}/first")]);
    assert!(!reg.is_active());
    factory.shutdown().await;
}

#[tokio::test]
async fn relist_after_compaction_keeps_the_cache_right() {
    if skip_on_cluster(
        "relist_after_compaction",
        "it compacts the server and closes watches",
    ) {
        return;
    }
    let env = server("relist-after-compaction").await;
    let (client, server) = (env.client.clone(), env.server().expect("kube-testserver"));
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "a");
    cms.create(&PostParams::default(), &cm("stay", &[]))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("go", &[]))
        .await
        .unwrap();
    let factory = SharedInformerFactory::builder(client.clone()).build();
    let informer = factory.informer::<ConfigMap>();
    let recorder = Recorder::new();
    informer.add_event_handler(Arc::clone(&recorder)).unwrap();
    let cancel = CancellationToken::new();
    factory.start(&cancel).unwrap();
    recorder
        .wait_for("the initial list", |e| e.len() == 2)
        .await;
    // Changes, then the watch is cut and the history compacted: the reflector relists.
    cms.delete("go", &DeleteParams::default()).await.unwrap();
    cms.create(&PostParams::default(), &cm("new", &[]))
        .await
        .unwrap();
    recorder
        .wait_for("the watch events", |e| has(e, "add:a/new"))
        .await;
    server.compact();
    server.close_all_watches();
    cms.create(&PostParams::default(), &cm("after", &[]))
        .await
        .unwrap();
    recorder
        .wait_for("the event after the relist", |e| has(e, "add:a/after"))
        .await;
    let mut keys = informer.indexer().list_keys();
    keys.sort();
    assert_eq!(keys, ["a/after", "a/new", "a/stay"]);
    assert!(has(&recorder.events(), "delete:a/go"));
    factory.shutdown().await;
}

#[tokio::test]
async fn dynamic_informers_are_one_per_resource_and_scope() {
    let env = server("dynamic-informers").await;
    let (client, a, b) = (env.client.clone(), env.ns("a"), env.ns("b"));
    let cms = Api::<ConfigMap>::namespaced(client.clone(), a);
    cms.create(&PostParams::default(), &cm("one", &[]))
        .await
        .unwrap();
    let mut secret = Secret::default();
    secret.metadata.name = Some("s".into());
    Api::<Secret>::namespaced(client.clone(), b)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let factory = SharedInformerFactory::builder(client.clone()).build();
    let configmaps = kube_rest::ResourceInfo::of::<ConfigMap>();
    let secrets = kube_rest::ResourceInfo::of::<Secret>();
    let dynamic_cms = factory.for_resource(&configmaps);
    let dynamic_secrets = factory.for_resource(&secrets);
    let again = factory.for_resource(&configmaps);
    let in_a = factory.for_resource_in(&configmaps, &InformerScope::namespaced(a));
    // The same type (DynamicObject), three resources or scopes: three informers.
    assert_eq!(factory.keys().len(), 3);
    let names: Vec<String> = factory.keys().iter().map(|k| k.to_string()).collect();
    assert!(names.contains(&"v1/configmaps".to_string()), "{names:?}");
    assert!(
        names.contains(&format!("v1/configmaps in {a}")),
        "{names:?}"
    );
    assert!(names.contains(&"v1/secrets".to_string()), "{names:?}");
    let (added, mut adds) = tokio::sync::mpsc::unbounded_channel();
    again
        .add_event_handler(HandlerFuncs::new().on_add(
            move |obj: &Arc<kube_rest::DynamicObject>, _| {
                let _ = added.send(obj.metadata.name.clone().unwrap_or_default());
            },
        ))
        .unwrap();
    assert_eq!(dynamic_cms.handler_count(), 1, "the same informer");

    let cancel = CancellationToken::new();
    assert_eq!(factory.start(&cancel).unwrap(), 3);
    let synced = factory.wait_for_cache_sync(&cancel).await;
    assert!(synced.values().all(|s| *s), "{synced:?}");
    // The keys in namespace `a` (a real cluster has ConfigMaps of its own elsewhere, and may
    // add kube-root-ca.crt to every namespace).
    let keys = |informer: &kube_cache::informer::SharedIndexInformer<kube_rest::DynamicObject>| {
        let mut keys = informer.indexer().list_keys();
        keys.retain(|k| k.starts_with(&format!("{a}/")) && !k.ends_with("/kube-root-ca.crt"));
        keys.sort();
        keys
    };
    assert_eq!(keys(&dynamic_cms), [format!("{a}/one")]);
    assert_eq!(keys(&in_a), [format!("{a}/one")]);
    let secret_keys = dynamic_secrets.indexer().list_keys();
    assert!(secret_keys.contains(&format!("{b}/s")), "{secret_keys:?}");
    let stored = dynamic_cms
        .indexer()
        .get_by_key(&format!("{a}/one"))
        .unwrap();
    assert_eq!(stored.data["data"]["k"], "v1");

    // Later writes reach the dynamic informer and its handlers.
    cms.create(&PostParams::default(), &cm("two", &[]))
        .await
        .unwrap();
    let mut names = Vec::new();
    while !names.contains(&"two".to_string()) {
        let name = tokio::time::timeout(WAIT, adds.recv())
            .await
            .unwrap()
            .unwrap();
        names.push(name);
    }
    assert!(names.contains(&"one".to_string()), "{names:?}");
    factory.shutdown().await;
}
