//! The reconcile logic against kube-testserver: convergence from any starting set of pods, no
//! duplicate creations under several workers, and a cache that is behind the server (a create
//! that already exists, a delete that is already gone).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube_cache::informer::SharedInformerFactory;
use kube_cache::{Indexer, Lister};
use kube_record::{EventBroadcaster, MemorySink};
use kube_rest::{
    Api, Client, Config, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams,
};
use kube_testserver::TestServer;
use podset_controller::podset::{API_VERSION, KIND, NAME_LABEL, install_crd};
use podset_controller::reconcile::{OWNER_INDEX, ReconcileError, owner_index, podset_owner};
use podset_controller::{Controller, ControllerOptions, PodSet, Reconciler};
use tokio_util::sync::CancellationToken;

const NS: &str = "default";

/// A server without a kubelet (pods stay Pending; deleting an unbound pod removes it at once),
/// a client, and the CRD installed.
async fn server() -> (TestServer, Client) {
    let server = TestServer::builder()
        .simulated_kubelet(None)
        .start()
        .await
        .unwrap();
    let kubeconfig =
        kube_rest::Kubeconfig::parse(&server.kubeconfig_yaml(), Path::new("test")).unwrap();
    let client = Client::try_from_config(
        Config::from_kubeconfig(&kubeconfig)
            .unwrap()
            .without_throttle(),
    )
    .unwrap();
    install_crd(&client, Duration::from_secs(10)).await.unwrap();
    (server, client)
}

fn template() -> PodTemplateSpec {
    serde_json::from_value(serde_json::json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }))
    .unwrap()
}

async fn create_podset(client: &Client, name: &str, replicas: i32) -> PodSet {
    Api::<PodSet>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &PodSet::new(name, replicas, template()),
        )
        .await
        .unwrap()
}

/// A pod named `name`, owned by `owner` when given, with the PodSet's label, and finalizers
/// when given (so a deletion leaves it Terminating).
fn pod(name: &str, owner: Option<&PodSet>, finalizer: bool) -> Pod {
    let mut pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }))
    .unwrap();
    if let Some(owner) = owner {
        let podset = owner.metadata.name.clone().unwrap();
        pod.metadata.labels = Some(BTreeMap::from([(NAME_LABEL.to_string(), podset.clone())]));
        pod.metadata.owner_references = Some(vec![OwnerReference {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            name: podset,
            uid: owner.metadata.uid.clone().unwrap(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
    }
    if finalizer {
        pod.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    }
    pod
}

/// The pods the PodSet controls on the server: (active names, terminating names).
async fn owned(client: &Client, podset: &PodSet) -> (Vec<String>, Vec<String>) {
    let pods = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap();
    let uid = podset.metadata.uid.as_deref();
    let (mut active, mut terminating) = (Vec::new(), Vec::new());
    for p in pods.items {
        if podset_owner(&p).map(|o| o.uid.as_str()) != uid {
            continue;
        }
        let name = p.metadata.name.clone().unwrap();
        if p.metadata.deletion_timestamp.is_some() {
            terminating.push(name);
        } else {
            active.push(name);
        }
    }
    active.sort();
    terminating.sort();
    (active, terminating)
}

struct Running {
    controller: Controller,
    factory: SharedInformerFactory<Client>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<bool>,
}

async fn run_controller(client: &Client, workers: usize) -> Running {
    let factory = SharedInformerFactory::builder(client.clone())
        .namespace(NS)
        .build();
    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(MemorySink::new())
        .unwrap();
    let options = ControllerOptions {
        workers,
        ..ControllerOptions::default()
    };
    let controller = Controller::new(
        client.clone(),
        &factory,
        broadcaster.new_recorder("test"),
        None,
        options,
        None,
    )
    .unwrap();
    let cancel = CancellationToken::new();
    factory.start(&cancel).unwrap();
    let task = tokio::spawn({
        let (controller, cancel) = (controller.clone(), cancel.clone());
        async move { controller.run(cancel).await }
    });
    Running {
        controller,
        factory,
        cancel,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.cancel.cancel();
        assert!(self.task.await.unwrap(), "the caches never synced");
        self.factory.shutdown().await;
    }
}

/// Waits until the PodSet has `replicas` active pods and a status saying so.
async fn wait_converged(client: &Client, name: &str, replicas: usize) -> PodSet {
    let api = Api::<PodSet>::namespaced(client.clone(), NS);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let podset = api.get(name).await.unwrap();
        let (active, _) = owned(client, &podset).await;
        let status = podset.status.clone().unwrap_or_default();
        if active.len() == replicas
            && status.replicas == replicas as i32
            && status.observed_generation == podset.metadata.generation.unwrap_or(0)
        {
            return podset;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not converge to {replicas}: {active:?}, status {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_from_any_starting_set_of_pods() {
    let (_server, client) = server().await;
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    // (name, replicas, owned pods at the start, owned pods held Terminating by a finalizer)
    let cases: &[(&str, i32, &[&str], &[&str])] = &[
        ("empty", 3, &[], &[]),
        (
            "excess",
            2,
            &["excess-0", "excess-1", "excess-2", "excess-3", "excess-9"],
            &[],
        ),
        ("gaps", 4, &["gaps-1", "gaps-3"], &[]),
        ("foreign-names", 2, &["hand-made", "another"], &[]),
        ("terminating", 2, &["terminating-1"], &["terminating-0"]),
        ("to-zero", 0, &["to-zero-0", "to-zero-1"], &[]),
    ];
    for (name, replicas, start, held) in cases {
        let podset = create_podset(&client, name, *replicas).await;
        for pod_name in start.iter().chain(held.iter()) {
            let finalizer = held.contains(pod_name);
            pods.create(
                &PostParams::default(),
                &pod(pod_name, Some(&podset), finalizer),
            )
            .await
            .unwrap();
        }
        for pod_name in held.iter() {
            pods.delete(pod_name, &DeleteParams::default())
                .await
                .unwrap();
        }
    }
    // A pod with the label but no ownerReference is not the PodSet's: it stays alone.
    let mut stray = pod("empty-0", None, false);
    stray.metadata.labels = Some(BTreeMap::from([(
        NAME_LABEL.to_string(),
        "empty".to_string(),
    )]));
    pods.create(&PostParams::default(), &stray).await.unwrap();

    let running = run_controller(&client, 3).await;
    for (name, replicas, _, held) in cases {
        let podset = wait_converged(&client, name, *replicas as usize).await;
        let (active, terminating) = owned(&client, &podset).await;
        assert_eq!(
            terminating,
            held.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        );
        // A terminating pod keeps its name: its replacement takes another.
        for name in held.iter() {
            assert!(!active.iter().any(|a| a == name));
        }
    }
    // The stray pod was neither adopted nor deleted: its name was refused once, then avoided.
    assert!(pods.get_opt("empty-0").await.unwrap().is_some());
    let empty = Api::<PodSet>::namespaced(client.clone(), NS)
        .get("empty")
        .await
        .unwrap();
    assert_eq!(
        owned(&client, &empty).await.0,
        ["empty-1", "empty-2", "empty-3"]
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_never_create_a_pod_twice() {
    let (_server, client) = server().await;
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    // Every pod creation the server sees, from the start.
    let watch = pods.watch(&WatchParams::default(), "0").await.unwrap();
    let creations = tokio::spawn(async move {
        let mut per_podset: HashMap<String, Vec<String>> = HashMap::new();
        let mut events = std::pin::pin!(watch);
        while let Some(Ok(event)) = events.next().await {
            if let WatchEvent::Added(pod) = event
                && let Some(owner) = podset_owner(&pod)
            {
                per_podset
                    .entry(owner.name.clone())
                    .or_default()
                    .push(pod.metadata.name.clone().unwrap());
            }
        }
        per_podset
    });
    let running = run_controller(&client, 4).await;
    let names: Vec<String> = (0..40).map(|i| format!("set-{i}")).collect();
    for name in &names {
        create_podset(&client, name, 3).await;
    }
    for name in &names {
        wait_converged(&client, name, 3).await;
    }
    // Every PodSet changes again (a new generation): reconciles run while pod events are
    // still arriving, and none may create a fourth pod.
    let api = Api::<PodSet>::namespaced(client.clone(), NS);
    for name in &names {
        let patch = kube_rest::Patch::Merge(
            serde_json::json!({"metadata": {"labels": {"touched": "yes"}}, "spec": {"replicas": 3}}),
        );
        api.patch(name, &kube_rest::PatchParams::default(), &patch)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for name in &names {
        wait_converged(&client, name, 3).await;
    }
    let reconciler = Arc::clone(running.controller.reconciler());
    running.stop().await;
    drop(_server); // ends the watch
    let per_podset = creations.await.unwrap();
    for name in &names {
        let mut made = per_podset.get(name).cloned().unwrap_or_default();
        made.sort();
        assert_eq!(
            made,
            [
                format!("{name}-0"),
                format!("{name}-1"),
                format!("{name}-2")
            ],
            "{name} was given other pods than 3"
        );
    }
    let (ok, _) = reconciler.metrics().reconcile_counts();
    assert!(ok >= names.len() as u64);
}

/// A reconciler over caches filled by hand (an informer that is behind the server).
struct Stale {
    reconciler: Reconciler,
    podsets: Indexer<PodSet>,
    pods: Indexer<Pod>,
    broadcaster: EventBroadcaster,
    sink: MemorySink,
}

fn stale(client: &Client) -> Stale {
    let podsets = Indexer::new();
    let pods = Indexer::builder()
        .index(OWNER_INDEX, owner_index)
        .build()
        .unwrap();
    let broadcaster = EventBroadcaster::new();
    let sink = MemorySink::new();
    broadcaster.start_recording_to_sink(sink.clone()).unwrap();
    let reconciler = Reconciler::new(
        client.clone(),
        Lister::new(podsets.clone()),
        pods.clone(),
        broadcaster.new_recorder("test"),
    );
    Stale {
        reconciler,
        podsets,
        pods,
        broadcaster,
        sink,
    }
}

impl Stale {
    async fn events(self) -> Vec<(String, String)> {
        self.broadcaster.shutdown().await;
        self.sink
            .events()
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect()
    }
}

#[tokio::test]
async fn a_create_that_already_exists_counts_when_the_pod_is_ours() {
    let (_server, client) = server().await;
    let podset = create_podset(&client, "web", 2).await;
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    // The server has web-0 (ours); the cache has not seen it.
    pods.create(&PostParams::default(), &pod("web-0", Some(&podset), false))
        .await
        .unwrap();
    let stale = stale(&client);
    stale.podsets.add(podset.clone());
    let done = stale.reconciler.reconcile("default/web").await.unwrap();
    assert_eq!(done.created, 2, "web-1 created, web-0 found ours");
    assert_eq!(owned(&client, &podset).await.0, ["web-0", "web-1"]);
    // Still behind: the pending creations count, nothing more is created.
    let again = stale.reconciler.reconcile("default/web").await.unwrap();
    assert_eq!(again.created, 0);
    assert_eq!(again.status.unwrap().replicas, 2);
    assert_eq!(owned(&client, &podset).await.0, ["web-0", "web-1"]);
    // The cache catches up: the expectations are met and forgotten.
    for name in ["web-0", "web-1"] {
        stale.pods.add(pods.get(name).await.unwrap());
    }
    stale.reconciler.reconcile("default/web").await.unwrap();
    assert!(stale.reconciler.expectations().is_empty());
    let events = stale.events().await;
    assert_eq!(
        events,
        [(
            "SuccessfulCreate".to_string(),
            "Created pod: web-1".to_string()
        )]
    );
}

#[tokio::test]
async fn a_create_on_a_name_someone_else_holds_fails_with_a_warning() {
    let (_server, client) = server().await;
    let podset = create_podset(&client, "web", 1).await;
    Api::<Pod>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &pod("web-0", None, false))
        .await
        .unwrap();
    let stale = stale(&client);
    stale.podsets.add(podset.clone());
    let error = stale.reconciler.reconcile("default/web").await.unwrap_err();
    assert!(
        matches!(error, ReconcileError::NameTaken(ref name) if name == "web-0"),
        "{error}"
    );
    // The retry avoids the name.
    let done = stale.reconciler.reconcile("default/web").await.unwrap();
    assert_eq!(done.created, 1);
    assert_eq!(owned(&client, &podset).await.0, ["web-1"]);
    let events = stale.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].0, "FailedCreate");
    assert!(
        events[0]
            .1
            .contains("web-0 exists and is not controlled by this PodSet")
    );
    assert_eq!(events[1].1, "Created pod: web-1");
}

#[tokio::test]
async fn a_delete_that_is_already_gone_succeeds() {
    let (_server, client) = server().await;
    let podset = create_podset(&client, "web", 1).await;
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    let stale = stale(&client);
    stale.podsets.add(podset.clone());
    for name in ["web-0", "web-1"] {
        let created = pods
            .create(&PostParams::default(), &pod(name, Some(&podset), false))
            .await
            .unwrap();
        stale.pods.add(created);
    }
    // Someone deleted web-1; the cache still shows it.
    pods.delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    let done = stale.reconciler.reconcile("default/web").await.unwrap();
    assert_eq!(done.deleted, 1);
    assert_eq!(owned(&client, &podset).await.0, ["web-0"]);
    // While the cache shows web-1, it is pending deletion and not counted: no new pod, and
    // the status (computed before the writes, as a ReplicaSet's) now says 1.
    let again = stale.reconciler.reconcile("default/web").await.unwrap();
    assert_eq!((again.created, again.deleted), (0, 0));
    assert_eq!(owned(&client, &podset).await.0, ["web-0"]);
    let status = Api::<PodSet>::namespaced(client.clone(), NS)
        .get("web")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.replicas, 1);
    // No event for a pod somebody else deleted.
    assert!(stale.events().await.is_empty());
}

#[tokio::test]
async fn a_delete_never_removes_a_newer_pod_of_the_same_name() {
    let (_server, client) = server().await;
    let podset = create_podset(&client, "web", 0).await;
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    let stale = stale(&client);
    stale.podsets.add(podset.clone());
    let old = pods
        .create(&PostParams::default(), &pod("web-0", Some(&podset), false))
        .await
        .unwrap();
    stale.pods.add(old);
    // The pod was replaced by another of the same name the cache has not seen.
    pods.delete("web-0", &DeleteParams::default())
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("web-0", Some(&podset), false))
        .await
        .unwrap();
    let error = stale.reconciler.reconcile("default/web").await.unwrap_err();
    assert!(matches!(error, ReconcileError::Delete { .. }), "{error}");
    assert_eq!(
        owned(&client, &podset).await.0,
        ["web-0"],
        "the newer pod stays"
    );
    let events = stale.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "FailedDelete");
}
