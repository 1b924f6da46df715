//! The reflector on kube-rs's client (feature `kube`) against kube-testserver: the same
//! semantics as on kube-rest: paged and streaming initial syncs, `410 Gone` relists, `429`
//! backoffs, closed and cut watches resumed without a relist, refused connections retried,
//! API errors keeping their `Status`.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use kube_apimachinery::{ListParams, Object};
use kube_cache::kube::{Error, KubeListerWatcher};
use kube_cache::{Indexer, ListWatchError, ListerWatcher, Reflector, ReflectorHandle};
use kube_testserver::{TestServer, TestServerBuilder};
use tokio_util::sync::CancellationToken;

const NS: &str = "kube-rs";

/// A kube-rs client for `server`; `retries`: kube-rs's own retries of 429/503/504 answers
/// (on by default in kube-rs).
async fn client_for(server: &TestServer, retries: bool) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml()).expect("a kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("it resolves");
    config.default_retry = retries;
    Client::try_from(config).expect("a client")
}

async fn start(builder: TestServerBuilder) -> (TestServer, Client) {
    start_with(builder, true).await
}

async fn start_with(builder: TestServerBuilder, retries: bool) -> (TestServer, Client) {
    let server = builder.start().await.expect("kube-testserver starts");
    let client = client_for(&server, retries).await;
    let mut ns = Namespace::default();
    ns.metadata.name = Some(NS.into());
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("the namespace");
    (server, client)
}

fn cm(name: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.meta_mut().name = Some(name.into());
    cm.meta_mut().namespace = Some(NS.into());
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
    api.list(&Default::default())
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

fn spawn<L: ListerWatcher<ConfigMap>>(
    reflector: Reflector<ConfigMap, L, Indexer<ConfigMap>>,
) -> (ReflectorHandle, CancellationToken) {
    let handle = reflector.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(reflector.run(cancel.clone()));
    (handle, cancel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_sync_then_follows_the_server() {
    let (_server, client) = start(TestServer::builder()).await;
    let api = Api::<ConfigMap>::namespaced(client, NS);
    create(&api, (0..30).map(|i| format!("cm-{i:02}"))).await;
    let store = Indexer::<ConfigMap>::new();
    let reflector = Reflector::builder(KubeListerWatcher::new(api.clone()), store.clone())
        .page_size(7)
        .streaming_list(false)
        .build();
    let (handle, cancel) = spawn(reflector);
    wait_for("the first sync", || handle.has_synced()).await;
    assert_eq!(store_names(&store), server_names(&api).await);
    assert!(
        store
            .list()
            .iter()
            .all(|c| c.meta().managed_fields.is_none())
    );
    // The first list is at resourceVersion 0, which kube-testserver (like a real API server's
    // watch cache) answers in one page whatever the limit: page through the lister-watcher
    // directly (at the latest version) to check paging over kube-rs.
    assert_eq!(handle.stats().lists, 1);
    let lw = KubeListerWatcher::new(api.clone()).skip_managed_fields(true);
    let mut params = ListParams::default();
    params.limit = Some(7);
    let (mut pages, mut names) = (0, BTreeSet::new());
    loop {
        let page = lw.list(&params).await.unwrap();
        pages += 1;
        names.extend(page.items.iter().map(|c| c.name().to_string()));
        match page.continue_token {
            Some(token) => params.continue_token = Some(token),
            None => break,
        }
    }
    assert_eq!((pages, names.len()), (5, 30));

    create(&api, ["late".to_string()]).await;
    api.delete("cm-00", &DeleteParams::default()).await.unwrap();
    wait_for("the watch events", || {
        store.len() == 30 && store.get_by_key(&format!("{NS}/late")).is_some()
    })
    .await;
    assert_eq!(store_names(&store), server_names(&api).await);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_and_the_plain_api_decoding_every_field() {
    let (_server, client) = start(TestServer::builder()).await;
    let api = Api::<ConfigMap>::namespaced(client, NS);
    create(&api, (0..25).map(|i| format!("cm-{i:02}"))).await;
    let store = Indexer::<ConfigMap>::new();
    let (handle, cancel) =
        spawn(Reflector::builder(KubeListerWatcher::new(api.clone()), store.clone()).build());
    wait_for("the first sync", || handle.has_synced()).await;
    assert_eq!(store_names(&store), server_names(&api).await);
    let stats = handle.stats();
    assert_eq!(
        (stats.streaming_lists, stats.lists, stats.watches_started),
        (1, 0, 1),
        "{stats:?}"
    );
    assert!(!handle.last_sync_resource_version().is_empty());
    create(&api, ["late".to_string()]).await;
    wait_for("the event", || store.len() == 26).await;
    cancel.cancel();

    // kube::Api<K> itself decodes managedFields (the reflector still drops them by default;
    // here it keeps them).
    let page = ListerWatcher::list(&api, &ListParams::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 26);
    assert!(page.items.iter().all(|c| c.meta().managed_fields.is_some()));
    let kept = Indexer::<ConfigMap>::new();
    let (handle, cancel) = spawn(
        Reflector::builder(api.clone(), kept.clone())
            .drop_managed_fields(false)
            .page_size(10)
            .streaming_list(false)
            .build(),
    );
    wait_for("the plain sync", || handle.has_synced()).await;
    assert_eq!(kept.len(), 26);
    assert!(
        kept.list()
            .iter()
            .all(|c| c.meta().managed_fields.is_some())
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_watch_relists() {
    let (server, client) = start(TestServer::builder()).await;
    let api = Api::<ConfigMap>::namespaced(client, NS);
    create(&api, (0..6).map(|i| format!("cm-{i}"))).await;
    let store = Indexer::<ConfigMap>::new();
    let (handle, cancel) = spawn(
        Reflector::builder(KubeListerWatcher::new(api.clone()), store.clone())
            .streaming_list(false)
            .build(),
    );
    wait_for("the first sync", || store.len() == 6).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.faults().fail_next(
        Some(http::Method::GET),
        &format!("/api/v1/namespaces/{NS}/configmaps"),
        410,
        1,
    );
    server.close_all_watches();
    wait_for("the refused watch", || handle.stats().watch_errors == 1).await;
    api.delete("cm-1", &DeleteParams::default()).await.unwrap();
    wait_for("the relist", || handle.stats().relists == 1).await;
    wait_for("the store", || store.len() == 5).await;
    assert_eq!(store_names(&store), server_names(&api).await);
    let stats = handle.stats();
    assert_eq!((stats.lists, stats.backoffs), (2, 1), "{stats:?}");
    cancel.cancel();
}

/// A watch refused with `429`: kube-rs retries it itself by default (as client-go's REST
/// client does with `Retry-After`); without those retries the reflector backs off. Neither
/// relists.
async fn a_429_watch_without_a_relist(kube_rs_retries: bool) {
    let (server, client) = start_with(TestServer::builder(), kube_rs_retries).await;
    let api = Api::<ConfigMap>::namespaced(client, NS);
    create(&api, (0..3).map(|i| format!("cm-{i}"))).await;
    let store = Indexer::<ConfigMap>::new();
    let (handle, cancel) = spawn(
        Reflector::builder(KubeListerWatcher::new(api.clone()), store.clone())
            .streaming_list(false)
            .build(),
    );
    wait_for("the first sync", || handle.has_synced()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.faults().fail_next(
        Some(http::Method::GET),
        &format!("/api/v1/namespaces/{NS}/configmaps"),
        429,
        1,
    );
    server.close_all_watches();
    wait_for("a watch after the 429", || server.watch_count() == 1).await;
    create(&api, ["after".to_string()]).await;
    wait_for("the event", || store.len() == 4).await;
    let stats = handle.stats();
    assert_eq!((stats.lists, stats.relists), (1, 0), "no relist: {stats:?}");
    if kube_rs_retries {
        assert_eq!((stats.watch_errors, stats.backoffs), (0, 0), "{stats:?}");
    } else {
        assert_eq!((stats.watch_errors, stats.backoffs), (1, 1), "{stats:?}");
    }
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_watch_is_retried_by_kube_rs() {
    a_429_watch_without_a_relist(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_watch_backs_off_without_kube_rs_retries() {
    a_429_watch_without_a_relist(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_or_cut_watch_resumes_without_a_relist() {
    let (server, client) = start(TestServer::builder()).await;
    let api = Api::<ConfigMap>::namespaced(client, NS);
    create(&api, (0..3).map(|i| format!("cm-{i}"))).await;
    let store = Indexer::<ConfigMap>::new();
    let (handle, cancel) = spawn(
        Reflector::builder(KubeListerWatcher::new(api.clone()), store.clone())
            .streaming_list(false)
            .build(),
    );
    wait_for("the first sync", || handle.has_synced()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    server.close_all_watches();
    wait_for("a second watch", || handle.stats().watches_started == 2).await;
    create(&api, ["after-close".to_string()]).await;
    wait_for("the event", || store.len() == 4).await;

    // The connection is cut and the server refuses connections for a while: kube-rs ends
    // the stream (or reports the cut), the new watch is refused and retried after a
    // backoff, and no relist happens.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.stop_listener().await;
    wait_for("a refused watch", || handle.stats().watch_errors >= 1).await;
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
async fn errors_keep_the_status_and_the_refused_connection() {
    let (server, client) = start_with(TestServer::builder(), false).await;
    let api = Api::<ConfigMap>::namespaced(client, NS);
    let lw = KubeListerWatcher::new(api.clone());
    for code in [410, 500, 503] {
        server.faults().fail_next(
            Some(http::Method::GET),
            &format!("/api/v1/namespaces/{NS}/configmaps"),
            code,
            1,
        );
        let error = lw.list(&ListParams::default()).await.unwrap_err();
        assert_eq!(error.status().map(|s| s.code), Some(code), "{error:?}");
        assert!(!error.is_connection_refused() && !error.is_watch_cut());
    }
    // A continue token the server cannot read: 4xx with the server's reason.
    let mut params = ListParams::default();
    params.continue_token = Some("not-a-token".into());
    let error = lw.list(&params).await.unwrap_err();
    assert!(matches!(error, Error::Api { .. }), "{error:?}");
    assert!(
        error
            .status()
            .is_some_and(|s| s.code >= 400 && s.code < 500)
    );
    // Nobody listening: a refused connection, which the reflector retries in place.
    server.stop_listener().await;
    let error = lw.list(&ListParams::default()).await.unwrap_err();
    let mut chain = String::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = next {
        chain.push_str(&format!(" <- {e:?}"));
        next = e.source();
    }
    assert!(error.is_connection_refused(), "{chain}");
    assert!(error.status().is_none());
}
