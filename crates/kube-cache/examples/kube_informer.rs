//! Our shared informer on kube-rs's client (feature `kube`): a pod informer whose reflector
//! lists and watches through `kube::Api<Pod>` (`KubeListerWatcher`), with event handlers and
//! an indexed, lister-readable cache, as a kube-rs controller would add it. Creates three pods
//! through kube-rs, relabels one and deletes another, and checks that the handlers saw every
//! change and that the cache ends with the pods left.
//!
//! The client is `kube::Client::try_default()` when the current kubeconfig's cluster answers
//! (the demo's pods are then made in a namespace of their own, deleted at the end); otherwise
//! the example starts an embedded kube-testserver, writes its kubeconfig to a file and reads
//! that file with kube-rs's own kubeconfig loader.
//!
//! ```sh
//! cargo run -p kube-cache --features kube --example kube_informer
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Namespace, Pod, PodSpec, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use kube_apimachinery::Object;
use kube_cache::NAMESPACE_INDEX;
use kube_cache::informer::{HandlerFuncs, SharedIndexInformer};
use kube_cache::kube::KubeListerWatcher;
use kube_testserver::TestServer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// The current kubeconfig's cluster if it answers, else an embedded kube-testserver.
async fn connect() -> Result<(kube::Client, Option<TestServer>)> {
    let reason = match kube::Client::try_default().await {
        Ok(client) => {
            match tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await {
                Ok(Ok(version)) => {
                    println!(
                        "target: the cluster of the current kubeconfig ({})",
                        version.git_version
                    );
                    return Ok((client, None));
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer within 5 s".to_string(),
            }
        }
        Err(e) => e.to_string(),
    };
    println!("target: an embedded kube-testserver ({reason})");
    let server = TestServer::builder().start().await?;
    let path = std::env::temp_dir().join(format!("kube-cache-kube-{}.yaml", std::process::id()));
    server.write_kubeconfig(&path)?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let _ = std::fs::remove_file(&path);
    Ok((kube::Client::try_from(config)?, Some(server)))
}

fn pod(name: &str) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.into());
    pod.metadata.labels = Some([("app".to_string(), "kube-informer-demo".to_string())].into());
    pod.spec = Some(PodSpec {
        containers: vec![Container {
            name: "main".into(),
            image: Some("busybox".into()),
            ..Container::default()
        }],
        ..PodSpec::default()
    });
    pod
}

/// What the handlers have seen.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    added: usize,
    updated: usize,
    deleted: usize,
}

async fn run() -> Result<()> {
    let (client, server) = connect().await?;
    let namespace = format!("kube-informer-demo-{}", std::process::id());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.clone());
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    if server.is_some() {
        // No kube-controller-manager: the `default` service account pods need is ours to make.
        let mut account = ServiceAccount::default();
        account.metadata.name = Some("default".into());
        Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
            .create(&PostParams::default(), &account)
            .await?;
    }
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace);
    let result = demo(&pods, &namespace).await;
    let _ = Api::<Namespace>::all(client)
        .delete(&namespace, &DeleteParams::default())
        .await;
    result
}

async fn demo(pods: &Api<Pod>, namespace: &str) -> Result<()> {
    let informer = SharedIndexInformer::builder(KubeListerWatcher::new(pods.clone()))
        .name("pods")
        .resync_period(Duration::from_secs(60))
        .build();
    let (seen_tx, mut seen_rx) = watch::channel(Seen::default());
    let seen_tx = Arc::new(seen_tx);
    let (sa, su, sd) = (
        Arc::clone(&seen_tx),
        Arc::clone(&seen_tx),
        Arc::clone(&seen_tx),
    );
    let cached = informer.clone();
    informer.add_event_handler(
        HandlerFuncs::new()
            .on_add(move |pod: &Arc<Pod>, _initial| {
                let in_namespace = cached
                    .lister()
                    .by_index(NAMESPACE_INDEX, pod.namespace().unwrap_or(""))
                    .map(|p| p.len())
                    .unwrap_or(0);
                println!(
                    "added {} ({in_namespace} pods cached in its namespace)",
                    pod.name()
                );
                sa.send_modify(|s| s.added += 1);
            })
            .on_update(move |_old: &Arc<Pod>, new: &Arc<Pod>| {
                println!("updated {}", new.name());
                su.send_modify(|s| s.updated += 1);
            })
            .on_delete(move |obj| {
                if let Some(pod) = obj.object() {
                    println!("deleted {}", pod.name());
                }
                sd.send_modify(|s| s.deleted += 1);
            }),
    )?;
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (informer, cancel) = (informer.clone(), cancel.clone());
        async move { informer.run(cancel).await }
    });
    informer.wait_for_sync().await;
    println!(
        "cache synced at resourceVersion {}",
        informer.last_sync_resource_version()
    );
    for name in ["web-0", "web-1", "db-0"] {
        pods.create(&PostParams::default(), &pod(name)).await?;
    }
    let mut web0 = pods.get("web-0").await?;
    web0.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("tier".into(), "frontend".into());
    pods.replace("web-0", &PostParams::default(), &web0).await?;
    pods.delete("web-1", &DeleteParams::default().grace_period(0))
        .await?;
    let all_seen = seen_rx.wait_for(|s| s.added >= 3 && s.updated >= 1 && s.deleted >= 1);
    let seen = tokio::time::timeout(Duration::from_secs(60), all_seen)
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    if !seen {
        let so_far = *seen_tx.borrow();
        return Err(format!("the demo's events were not all seen: {so_far:?}").into());
    }
    // A deletion with a grace period lingers until the kubelet confirms: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let names = loop {
        let cached = informer
            .lister()
            .namespaced(namespace)
            .list(&Default::default());
        let mut names: Vec<String> = cached.iter().map(|p| p.name().to_string()).collect();
        names.sort();
        if names == ["db-0", "web-0"] || std::time::Instant::now() > deadline {
            break names;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("cached pods: {names:?}");
    if names != ["db-0", "web-0"] {
        return Err("the cache does not hold db-0 and web-0 only".into());
    }
    let web0 = informer
        .lister()
        .namespaced(namespace)
        .get("web-0")
        .ok_or("web-0 is not cached")?;
    if web0.labels().get("tier").map(String::as_str) != Some("frontend") {
        return Err("the cached web-0 lacks its new label".into());
    }
    if web0.meta().managed_fields.is_some() {
        return Err("managedFields were not dropped".into());
    }
    cancel.cancel();
    let _ = run.await;
    println!("kube-rs informer demo passed");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube_informer: {e}");
            ExitCode::FAILURE
        }
    }
}
