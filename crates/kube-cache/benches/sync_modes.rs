//! The reflector's initial sync of 10,000 realistic pods (the shared fixture, managedFields
//! included on the wire) from a kube-testserver in the same process, in three list modes:
//! paged and pipelined (the next page asked for as soon as this one's continue token is read),
//! paged one request at a time, and a streaming list. Prints each mode's time to `has_synced`,
//! twice, interleaved.
//!
//! `cargo bench -p kube-cache --features rest --bench sync_modes` (`KUBE_TOOLKIT_TEST_KUBECONFIG`
//! names another cluster to run it against). Client and server share the machine here; the
//! separate-process figures with CPU time and RSS come from `cargo xtask bench informer-sync`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::Object;
use kube_cache::rest::ApiListerWatcher;
use kube_cache::{Indexer, Reflector};
use kube_rest::{Api, PostParams};
use kube_test_support::cluster::TestEnv;
use kube_testserver::TestServer;
use tokio_util::sync::CancellationToken;

const PODS: usize = 10_000;

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/pod-realistic.json"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("sync_modes: no fixture at {path}; nothing measured");
        return;
    };
    let template: Pod = serde_json::from_str(&text).expect("the fixture is a pod");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(run(template));
}

async fn run(template: Pod) {
    let env = TestEnv::start("sync-modes", TestServer::builder(), &["bench"]).await;
    let api = Api::<Pod>::namespaced(env.client.clone(), env.ns("bench"));
    load(&api, &template).await;
    for (mode, pipeline, streaming) in [
        ("paged, pipelined", true, false),
        ("paged, sequential", false, false),
        ("streaming", true, true),
    ]
    .repeat(2)
    {
        let store = Indexer::<Pod>::new();
        let lister_watcher = ApiListerWatcher::new(api.clone()).pipeline(pipeline);
        let reflector = Reflector::builder(lister_watcher, store.clone())
            .streaming_list(streaming)
            .build();
        let handle = reflector.handle();
        let cancel = CancellationToken::new();
        let started = Instant::now();
        tokio::spawn(reflector.run(cancel.clone()));
        while !handle.has_synced() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        assert_eq!(store.len(), PODS, "the store holds every pod at sync");
        println!("sync of {PODS} realistic pods, {mode}: {elapsed:?}");
        cancel.cancel();
    }
}

/// Creates the pods, 20 writers at once.
async fn load(api: &Api<Pod>, template: &Pod) {
    let mut tasks = tokio::task::JoinSet::new();
    let per_writer = PODS / 20;
    for writer in 0..20 {
        let api = api.clone();
        let template = template.clone();
        tasks.spawn(async move {
            for i in writer * per_writer..(writer + 1) * per_writer {
                let mut pod = template.clone();
                pod.meta_mut().name = Some(format!("web-{i:05}"));
                pod.meta_mut().namespace = None;
                pod.meta_mut().resource_version = None;
                pod.meta_mut().uid = None;
                api.create(&PostParams::default(), &pod)
                    .await
                    .expect("creating a pod");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a writer task");
    }
}
