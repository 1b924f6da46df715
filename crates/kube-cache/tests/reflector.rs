//! The reflector against kube-testserver over HTTP: initial sync, paging, expired continue
//! tokens, 410 relists with tombstones, cut watches resumed without a relist, streaming
//! lists and their fallback on a server without watch-list. With `KUBE_TOOLKIT_TEST_KUBECONFIG`
//! set, the tests that need no kube-testserver feature run against that cluster (see
//! `cluster/mod.rs`).

use kube_test_support::cluster;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube_apimachinery::{ListParams, Object};
use kube_cache::rest::ApiListerWatcher;
use kube_cache::{
    DeltaFifo, DeltaType, Indexer, ListPage, ListerWatcher, ProcessError, Reflector,
    ReflectorHandle,
};
use kube_rest::{Api, DeleteParams, PostParams};
use kube_testserver::{TestServer, TestServerBuilder};
use tokio_util::sync::CancellationToken;

use cluster::{TestEnv, skip_on_cluster};

/// The test's server (or cluster), and its namespace on kube-testserver.
const NS: &str = "reflector";

/// The test's environment and the ConfigMaps of its namespace.
async fn start(test: &str, builder: TestServerBuilder) -> (TestEnv, Api<ConfigMap>) {
    let env = TestEnv::start(test, builder, &[NS]).await;
    let api = Api::<ConfigMap>::namespaced(env.client.clone(), env.ns(NS));
    (env, api)
}

/// The kube-testserver of a test that skips itself on a cluster.
fn server(env: &TestEnv) -> &TestServer {
    env.server()
        .expect("this test runs on kube-testserver only")
}

/// `namespace/name` in the api's namespace.
fn key(api: &Api<ConfigMap>, name: &str) -> String {
    format!("{}/{name}", api.namespace().unwrap_or_default())
}

fn cm(name: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.meta_mut().name = Some(name.into());
    cm.meta_mut().managed_fields = Some(vec![ManagedFieldsEntry {
        manager: Some("test".into()),
        operation: Some("Update".into()),
        ..Default::default()
    }]);
    cm.data = Some([("k".to_string(), name.to_string())].into());
    cm
}

async fn create(api: &Api<ConfigMap>, names: impl IntoIterator<Item = String>) {
    for name in names {
        api.create(&PostParams::default(), &cm(&name))
            .await
            .unwrap();
    }
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    // Generous: the machine running the tests may be busy, and backoffs are real time here.
    for _ in 0..3000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn server_names(api: &Api<ConfigMap>) -> BTreeSet<String> {
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name().to_string())
        .collect()
}

fn store_names(store: &Indexer<ConfigMap>) -> BTreeSet<String> {
    store.list().iter().map(|c| c.name().to_string()).collect()
}

fn spawn<L>(
    reflector: Reflector<ConfigMap, L, Indexer<ConfigMap>>,
) -> (ReflectorHandle, CancellationToken)
where
    L: ListerWatcher<ConfigMap>,
{
    let handle = reflector.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(reflector.run(cancel.clone()));
    (handle, cancel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_paged_sync_equals_the_server_then_follows_it() {
    let (env, api) = start("initial-paged-sync", TestServer::builder()).await;
    create(&api, (0..30).map(|i| format!("cm-{i:02}"))).await;
    let store = Indexer::<ConfigMap>::new();
    let reflector = Reflector::builder(FromEtcd(ApiListerWatcher::new(api.clone())), store.clone())
        .name("configmaps")
        .page_size(7)
        .streaming_list(false)
        .build();
    let (handle, cancel) = spawn(reflector);
    wait_for("the first sync", || handle.has_synced()).await;
    assert_eq!(store_names(&store), server_names(&api).await);
    // managedFields were skipped while decoding (the default drop).
    assert!(
        store
            .list()
            .iter()
            .all(|c| c.meta().managed_fields.is_none())
    );
    let stats = handle.stats();
    // The first list asks for resourceVersion 0, as client-go's does, and kube-apiserver's
    // watch cache ignores the limit there (v1.35: `limit=2&resourceVersion=0` answers every
    // item); `FromEtcd` asks for the latest state instead, which kube-testserver pages.
    assert_eq!(stats.lists, 1, "{stats:?}");
    if env.server().is_some() {
        assert_eq!(stats.list_pages, 5, "{stats:?}");
    }
    assert!(!handle.last_sync_resource_version().is_empty());

    // Then it follows the server.
    create(&api, ["late".to_string()]).await;
    api.delete("cm-00", &DeleteParams::default()).await.unwrap();
    // (A real cluster may add its own objects to the namespace: kube-root-ca.crt.)
    wait_for("the watch events", || {
        store.get_by_key(&key(&api, "cm-00")).is_none()
            && store.get_by_key(&key(&api, "late")).is_some()
    })
    .await;
    assert_eq!(store_names(&store), server_names(&api).await);
    cancel.cancel();
}

/// A server without a watch cache (`--watch-cache=false`) lists from etcd, which pages even
/// a list at resourceVersion 0: this asks for the latest state where the reflector asks for
/// "0", so that the pages of the reflector's first list are exercised.
struct FromEtcd(ApiListerWatcher<ConfigMap>);

fn from_etcd(params: &ListParams) -> ListParams {
    let mut params = params.clone();
    if params.resource_version.as_deref() == Some("0") {
        params.resource_version = None;
        params.resource_version_match = None;
    }
    params
}

impl ListerWatcher<ConfigMap> for FromEtcd {
    type Error = kube_rest::Error;
    type Watch = <ApiListerWatcher<ConfigMap> as ListerWatcher<ConfigMap>>::Watch;

    async fn list(&self, params: &ListParams) -> Result<ListPage<ConfigMap>, kube_rest::Error> {
        self.0.list(&from_etcd(params)).await
    }

    async fn watch(
        &self,
        params: &kube_apimachinery::WatchParams,
        resource_version: &str,
    ) -> Result<Self::Watch, kube_rest::Error> {
        self.0.watch(params, resource_version).await
    }

    fn set_skip_managed_fields(&mut self, skip: bool) {
        self.0.set_skip_managed_fields(skip);
    }
}

/// Pages one at a time (from etcd, as [`FromEtcd`]), compacting the server after the first
/// page: the continue token expires and the reflector lists everything at once.
struct CompactAfterFirstPage {
    inner: ApiListerWatcher<ConfigMap>,
    server: Arc<TestServer>,
    api: Api<ConfigMap>,
}

impl ListerWatcher<ConfigMap> for CompactAfterFirstPage {
    type Error = kube_rest::Error;
    type Watch = <ApiListerWatcher<ConfigMap> as ListerWatcher<ConfigMap>>::Watch;

    async fn list(&self, params: &ListParams) -> Result<ListPage<ConfigMap>, kube_rest::Error> {
        let page = self.inner.list(&from_etcd(params)).await?;
        if params.continue_token.is_none() && page.continue_token.is_some() {
            // A write, then the history is forgotten: the token's version is gone.
            self.api
                .create(&PostParams::default(), &cm("written-while-paging"))
                .await?;
            self.server.compact();
        }
        Ok(page)
    }

    async fn watch(
        &self,
        params: &kube_apimachinery::WatchParams,
        resource_version: &str,
    ) -> Result<Self::Watch, kube_rest::Error> {
        self.inner.watch(params, resource_version).await
    }

    fn set_skip_managed_fields(&mut self, skip: bool) {
        self.inner.set_skip_managed_fields(skip);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_continue_token_falls_back_to_a_full_list() {
    if skip_on_cluster(
        "an_expired_continue_token",
        "it compacts the server on demand",
    ) {
        return;
    }
    let (env, api) = start("expired-continue", TestServer::builder()).await;
    let server = env.shared_server().expect("kube-testserver");
    create(&api, (0..20).map(|i| format!("cm-{i:02}"))).await;
    let lw = CompactAfterFirstPage {
        inner: ApiListerWatcher::new(api.clone()).pipeline(false),
        server: Arc::clone(&server),
        api: api.clone(),
    };
    let store = Indexer::<ConfigMap>::new();
    let reflector = Reflector::builder(lw, store.clone())
        .page_size(5)
        .streaming_list(false)
        .build();
    let (handle, cancel) = spawn(reflector);
    wait_for("the first sync", || handle.has_synced()).await;
    let stats = handle.stats();
    assert_eq!(stats.expired_continue_fallbacks, 1, "{stats:?}");
    assert_eq!(
        stats.list_pages, 3,
        "first page, expired second page, full list"
    );
    assert_eq!(store.len(), 21);
    assert_eq!(store_names(&store), server_names(&api).await);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_watch_relists_and_deletions_surface_as_tombstones() {
    if skip_on_cluster("a_410_watch", "it injects a 410 and closes watches") {
        return;
    }
    let (env, api) = start("watch-410", TestServer::builder()).await;
    let server = server(&env);
    create(&api, (0..6).map(|i| format!("cm-{i}"))).await;
    let known = Indexer::<ConfigMap>::new();
    let fifo = DeltaFifo::builder()
        .known_objects(known.clone())
        .emit_delta_type_replaced(true)
        .build();
    let reflector = Reflector::builder(ApiListerWatcher::new(api.clone()), fifo.clone())
        .streaming_list(false)
        .build();
    let handle = reflector.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(reflector.run(cancel.clone()));
    // An informer's processing loop: apply the deltas to `known`, remember tombstones.
    let tombstones = Arc::new(parking_lot::Mutex::new(Vec::new()));
    tokio::spawn({
        let (fifo, known, tombstones) = (fifo.clone(), known.clone(), Arc::clone(&tombstones));
        async move {
            loop {
                let popped = fifo
                    .pop(|deltas, _| {
                        for d in deltas {
                            match d.kind {
                                DeltaType::Deleted => {
                                    if d.object.is_tombstone() {
                                        tombstones.lock().push(d.key().to_string());
                                    }
                                    known.delete_key(&d.key());
                                }
                                _ => {
                                    known.update(Arc::clone(d.object.object().unwrap()));
                                }
                            }
                        }
                        Ok::<(), ProcessError<()>>(())
                    })
                    .await;
                if popped.is_err() {
                    return;
                }
            }
        }
    });
    wait_for("the first sync", || known.len() == 6).await;
    // Let the watch live over a second (a shorter, empty one counts as an error).
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // The next watch request gets 410 Gone; close the open one.
    server.faults().fail_next(
        Some(http::Method::GET),
        &format!("/api/v1/namespaces/{NS}/configmaps"),
        410,
        1,
    );
    server.close_all_watches();
    wait_for("the refused watch", || handle.stats().watch_errors == 1).await;
    // While the reflector backs off (>= 800 ms), delete two objects: no watch sees it.
    api.delete("cm-1", &DeleteParams::default()).await.unwrap();
    api.delete("cm-4", &DeleteParams::default()).await.unwrap();
    wait_for("the relist", || handle.stats().relists == 1).await;
    wait_for("the tombstones", || tombstones.lock().len() == 2).await;
    let mut seen = tombstones.lock().clone();
    seen.sort();
    assert_eq!(seen, [key(&api, "cm-1"), key(&api, "cm-4")]);
    wait_for("the store", || known.len() == 4).await;
    assert_eq!(store_names(&known), server_names(&api).await);
    let stats = handle.stats();
    assert_eq!((stats.lists, stats.backoffs), (2, 1), "{stats:?}");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_or_cut_watch_resumes_without_a_relist() {
    if skip_on_cluster(
        "a_closed_or_cut_watch",
        "it closes watches and cuts the listener",
    ) {
        return;
    }
    let (env, api) = start("cut-watch", TestServer::builder()).await;
    let server = server(&env);
    create(&api, (0..3).map(|i| format!("cm-{i}"))).await;
    let store = Indexer::<ConfigMap>::new();
    let reflector = Reflector::builder(ApiListerWatcher::new(api.clone()), store.clone())
        .streaming_list(false)
        .build();
    let (handle, cancel) = spawn(reflector);
    wait_for("the first sync", || handle.has_synced()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // The server ends every watch: the reflector watches again from where it was.
    server.close_all_watches();
    wait_for("a second watch", || handle.stats().watches_started == 2).await;
    create(&api, ["after-close".to_string()]).await;
    wait_for("the event", || store.len() == 4).await;

    // The connection is cut: same, once the server is back.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.stop_listener().await;
    wait_for("the cut", || handle.stats().watch_cuts == 1).await;
    server.restart_listener().await.unwrap();
    wait_for("a watch after the cut", || server.watch_count() == 1).await;
    create(&api, ["after-cut".to_string()]).await;
    wait_for("the event", || store.len() == 5).await;
    assert_eq!(store_names(&store), server_names(&api).await);
    let stats = handle.stats();
    assert_eq!((stats.lists, stats.relists), (1, 0), "no relist: {stats:?}");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_fills_the_store() {
    let (_env, api) = start("streaming-list", TestServer::builder()).await;
    create(&api, (0..25).map(|i| format!("cm-{i:02}"))).await;
    let store = Indexer::<ConfigMap>::new();
    let reflector = Reflector::builder(ApiListerWatcher::new(api.clone()), store.clone()).build();
    let (handle, cancel) = spawn(reflector);
    wait_for("the first sync", || handle.has_synced()).await;
    assert_eq!(store_names(&store), server_names(&api).await);
    assert!(
        store
            .list()
            .iter()
            .all(|c| c.meta().managed_fields.is_none())
    );
    let stats = handle.stats();
    assert_eq!(
        (stats.streaming_lists, stats.lists, stats.watches_started),
        (1, 0, 1),
        "{stats:?}"
    );
    // The same watch goes on.
    create(&api, ["late".to_string()]).await;
    wait_for("the event", || {
        store.get_by_key(&key(&api, "late")).is_some()
    })
    .await;
    assert_eq!(handle.stats().watches_started, 1);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_falls_back_once_on_a_server_without_watch_list() {
    if skip_on_cluster(
        "streaming_list_falls_back",
        "it needs a server without watch-list",
    ) {
        return;
    }
    let (env, api) = start(
        "streaming-fallback",
        TestServer::builder().watch_list(false),
    )
    .await;
    let server = server(&env);
    create(&api, (0..4).map(|i| format!("cm-{i}"))).await;
    let store = Indexer::<ConfigMap>::new();
    let reflector = Reflector::builder(ApiListerWatcher::new(api.clone()), store.clone()).build();
    let (handle, cancel) = spawn(reflector);
    wait_for("the first sync", || handle.has_synced()).await;
    assert_eq!(store_names(&store), server_names(&api).await);
    let stats = handle.stats();
    assert_eq!(
        (
            stats.streaming_lists,
            stats.streaming_fallbacks,
            stats.lists
        ),
        (1, 1, 1)
    );
    // A relist later does not try streaming again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.faults().fail_next(
        Some(http::Method::GET),
        &format!("/api/v1/namespaces/{NS}/configmaps"),
        410,
        1,
    );
    server.close_all_watches();
    wait_for("the relist", || handle.stats().relists == 1).await;
    let stats = handle.stats();
    assert_eq!((stats.streaming_lists, stats.lists), (1, 2), "{stats:?}");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_api_and_dynamic_objects_work_too() {
    let (env, api) = start("plain-and-dynamic", TestServer::builder()).await;
    let client = env.client.clone();
    create(&api, (0..3).map(|i| format!("cm-{i}"))).await;
    // Api<K> itself, with paging.
    let store = Indexer::<ConfigMap>::new();
    let (handle, cancel) = spawn(
        Reflector::builder(api.clone(), store.clone())
            .streaming_list(false)
            .page_size(2)
            .build(),
    );
    wait_for("the first sync", || handle.has_synced()).await;
    assert_eq!(store_names(&store), server_names(&api).await);
    assert!(
        store
            .list()
            .iter()
            .all(|c| c.meta().managed_fields.is_none())
    );
    cancel.cancel();
    // Api<DynamicObject>, streaming.
    let info = kube_apimachinery::ResourceInfo::of::<ConfigMap>();
    let dynamic = Api::dynamic(client, &info, Some(env.ns(NS)));
    let store = Indexer::<kube_apimachinery::DynamicObject>::new();
    let reflector = Reflector::builder(ApiListerWatcher::new(dynamic), store.clone()).build();
    let handle = reflector.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(reflector.run(cancel.clone()));
    wait_for("the dynamic sync", || handle.has_synced()).await;
    assert_eq!(store.len(), server_names(&api).await.len());
    let one = store.get_by_key(&key(&api, "cm-1")).unwrap();
    assert_eq!(one.data["data"]["k"], "cm-1");
    assert!(one.metadata.managed_fields.is_none());
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_and_json_lists_agree() {
    let (_env, api) = start("protobuf-and-json", TestServer::builder()).await;
    create(&api, (0..9).map(|i| format!("cm-{i}"))).await;
    let protobuf = ApiListerWatcher::new(api.clone());
    // Built-in kinds are listed in protobuf by default, as client-go does.
    assert!(
        format!("{protobuf:?}").contains("protobuf: true"),
        "{protobuf:?}"
    );
    let json = ApiListerWatcher::new(api.clone()).protobuf(false);
    for lister in [
        protobuf.skip_managed_fields(true),
        json.skip_managed_fields(true),
    ] {
        let mut params = ListParams::default().limit(4);
        let mut items = Vec::new();
        loop {
            let page = lister.list(&params).await.unwrap();
            assert!(!page.resource_version.is_empty());
            items.extend(page.items);
            match page.continue_token {
                Some(token) => params.continue_token = Some(token),
                None => break,
            }
        }
        let mut expected = api.list(&ListParams::default()).await.unwrap().items;
        expected
            .iter_mut()
            .for_each(|c| c.metadata.managed_fields = None);
        assert_eq!(items, expected, "{lister:?}");
    }
}
