//! The seed's informer sample (`tools/cache/informer_sample/informer.go`) in Rust: a pod
//! informer with a resync of one minute whose handler prints every add, update and delete
//! with the informer's last synced resourceVersion, plus how many pods the cache holds in
//! the pod's namespace (read through the namespace index).
//!
//! By default it starts an embedded kube-testserver and, once the cache has synced, creates
//! three pods, updates one and deletes another, so there is something to see. With
//! `--kubeconfig` (or `KUBE_CACHE_INFORMER_KUBECONFIG=1`) it watches the cluster of the
//! current kubeconfig instead and changes nothing. It runs until Ctrl-C, or with `--once`
//! until the demo's changes have all been seen (for `cargo xtask e2e`).
//!
//! ```sh
//! cargo run -p kube-cache --features rest --example informer
//! cargo run -p kube-cache --features rest --example informer -- --kubeconfig
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ServiceAccount};
use kube_apimachinery::Object;
use kube_cache::NAMESPACE_INDEX;
use kube_cache::informer::{HandlerFuncs, SharedIndexInformer, SharedInformerFactory};
use kube_rest::{Api, Client, Config, DeleteParams, PostParams};
use kube_testserver::TestServer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const NAMESPACE: &str = "default";

struct Options {
    kubeconfig: bool,
    once: bool,
}

fn options() -> Result<Options> {
    let mut options = Options {
        kubeconfig: std::env::var_os("KUBE_CACHE_INFORMER_KUBECONFIG").is_some_and(|v| v == "1"),
        once: false,
    };
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--kubeconfig" => options.kubeconfig = true,
            "--once" => options.once = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: informer [--kubeconfig] [--once])"
                )
                .into());
            }
        }
    }
    Ok(options)
}

/// What the handler has seen, for `--once`.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    added: usize,
    updated: usize,
    deleted: usize,
}

fn line(verb: &str, pod: &Pod, informer: &SharedIndexInformer<Pod>) -> String {
    let namespace = pod.namespace().unwrap_or("");
    let in_namespace = informer
        .lister()
        .by_index(NAMESPACE_INDEX, namespace)
        .map(|pods| pods.len())
        .unwrap_or(0);
    format!(
        "object {verb} : {}/{}, {} (namespace {namespace} holds {in_namespace} pods)",
        namespace,
        pod.name(),
        informer.last_sync_resource_version(),
    )
}

async fn connect(options: &Options) -> Result<(Client, Option<TestServer>)> {
    if options.kubeconfig {
        let config = Config::infer()?;
        println!(
            "target: the cluster of the current kubeconfig ({})",
            config.cluster_url
        );
        return Ok((Client::try_from_config(config)?, None));
    }
    let server = TestServer::builder().start().await?;
    let kubeconfig =
        kube_rest::Kubeconfig::parse(&server.kubeconfig_yaml(), std::path::Path::new("embedded"))?;
    let client = Client::try_from_config(Config::from_kubeconfig(&kubeconfig)?)?;
    println!("target: an embedded kube-testserver ({})", server.url());
    // No kube-controller-manager: the `default` service account pods need is ours to make.
    let mut account = ServiceAccount::default();
    account.metadata.name = Some("default".into());
    Api::<ServiceAccount>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &account)
        .await?;
    Ok((client, Some(server)))
}

fn pod(name: &str) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.into());
    pod.metadata.labels = Some([("app".to_string(), "informer-demo".to_string())].into());
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

/// Creates three pods, relabels one, deletes another.
async fn demo(client: Client) -> Result<()> {
    let pods = Api::<Pod>::namespaced(client, NAMESPACE);
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
    Ok(())
}

async fn run(options: Options) -> Result<()> {
    let (client, server) = connect(&options).await?;
    let factory = SharedInformerFactory::builder(client.clone())
        .default_resync(Duration::from_secs(60))
        .build();
    let informer = factory.informer::<Pod>();
    let (seen_tx, mut seen_rx) = watch::channel(Seen::default());
    let seen_tx = Arc::new(seen_tx);
    let handler = {
        let (a, u, d) = (informer.clone(), informer.clone(), informer.clone());
        let (sa, su, sd) = (
            Arc::clone(&seen_tx),
            Arc::clone(&seen_tx),
            Arc::clone(&seen_tx),
        );
        HandlerFuncs::new()
            .on_add(move |pod: &Arc<Pod>, _initial| {
                println!("{}", line("added", pod, &a));
                sa.send_modify(|s| s.added += 1);
            })
            .on_update(move |_old: &Arc<Pod>, new: &Arc<Pod>| {
                println!("{}", line("updated", new, &u));
                su.send_modify(|s| s.updated += 1);
            })
            .on_delete(move |obj| {
                if let Some(pod) = obj.object() {
                    println!("{}", line("deleted", pod, &d));
                }
                sd.send_modify(|s| s.deleted += 1);
            })
    };
    informer.add_event_handler(handler)?;

    let cancel = CancellationToken::new();
    factory.start(&cancel)?;
    println!("informer began");
    for (key, synced) in factory.wait_for_cache_sync(&cancel).await {
        println!("cache of {key} synced: {synced}");
    }
    if server.is_some() {
        demo(client).await?;
    }
    if options.once {
        let all_seen = seen_rx.wait_for(|s| s.added >= 3 && s.updated >= 1 && s.deleted >= 1);
        let seen = tokio::time::timeout(Duration::from_secs(30), all_seen)
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false);
        if !seen {
            let so_far = *seen_tx.borrow();
            return Err(format!("the demo's events were not all seen: {so_far:?}").into());
        }
        let pods = informer
            .lister()
            .namespaced(NAMESPACE)
            .list(&Default::default());
        let mut names: Vec<&str> = pods.iter().map(|p| p.name()).collect();
        names.sort();
        println!("cached pods in {NAMESPACE}: {names:?}");
        if names != ["db-0", "web-0"] {
            return Err("the cache does not hold db-0 and web-0 only".into());
        }
        println!("informer demo passed");
    } else {
        println!("watching pods; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    cancel.cancel();
    factory.shutdown().await;
    println!("informer stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("informer: {e}");
            ExitCode::FAILURE
        }
    }
}
