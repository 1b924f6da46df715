//! The seed's client-pod.go in Rust: create a pod, wait through a watch until it is Ready, get
//! it, update its image, list by label selector, and delete it on exit.
//!
//! Runs against the cluster of the current kubeconfig when one answers, otherwise against an
//! embedded kube-testserver (whose simulated kubelet runs the pod and marks it Ready).
//! Exits non-zero when a step gives a wrong result.
//!
//! ```sh
//! cargo run -p kube-rest --example pod_lifecycle
//! ```

use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube_rest::{
    Api, Client, Config, DeleteParams, ListParams, PostParams, Selector, WatchEvent, WatchParams,
};
use kube_testserver::TestServer;

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const LABEL: &str = "app";
const APP: &str = "kube-rest-demo";

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Connects to the current kubeconfig's cluster if it answers, else starts a kube-testserver.
async fn connect() -> Result<(Client, Option<TestServer>)> {
    let reason = match Config::infer() {
        Ok(config) => {
            let server = config.cluster_url.to_string();
            let client = Client::try_from_config(config)?;
            match tokio::time::timeout(Duration::from_secs(5), client.server_version()).await {
                Ok(Ok(version)) => {
                    println!(
                        "target: the cluster of the current kubeconfig ({server}, {})",
                        version.git_version
                    );
                    return Ok((client, None));
                }
                Ok(Err(e)) => format!("{server} answered {e}"),
                Err(_) => format!("{server} did not answer within 5 s"),
            }
        }
        Err(e) => e.to_string(),
    };
    println!("target: an embedded kube-testserver ({reason})");
    // Its simulated kubelet runs the pod (Pending -> Running and Ready half a second later).
    let server = TestServer::builder()
        .simulated_kubelet(Some(Duration::from_millis(500)))
        .start()
        .await?;
    let kubeconfig =
        kube_rest::Kubeconfig::parse(&server.kubeconfig_yaml(), std::path::Path::new("embedded"))?;
    let client = Client::try_from_config(Config::from_kubeconfig(&kubeconfig)?)?;
    Ok((client, Some(server)))
}

async fn run(pods: &Api<Pod>, name: &str) -> Result<()> {
    // Create.
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {LABEL: APP}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}
    }))?;
    let created = pods.create(&PostParams::default(), &pod).await?;
    let rv = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    println!("created pod {name} (resourceVersion {rv})");

    // Wait through a watch until Ready.
    let watch = WatchParams::default()
        .fields(format!("metadata.name={name}"))
        .timeout(120);
    let mut events = std::pin::pin!(pods.watch(&watch, &rv).await?);
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(event) = events.next().await {
            match event? {
                WatchEvent::Modified(pod) if is_ready(&pod) => return Ok(pod),
                WatchEvent::Deleted(_) => return Err("the pod was deleted while waiting".into()),
                WatchEvent::Error(status) => {
                    return Err(format!("watch error: {}", status.message).into());
                }
                _ => {}
            }
        }
        Err::<Pod, Box<dyn std::error::Error + Send + Sync>>(
            "the watch ended before the pod was Ready".into(),
        )
    })
    .await
    .map_err(|_| "the pod was not Ready within 120 s")??;
    println!(
        "pod {name} is Ready (phase {:?})",
        ready.status.as_ref().and_then(|s| s.phase.as_deref())
    );

    // Get.
    let got = pods.get(name).await?;
    let image = got
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone());
    if image.as_deref() != Some("nginx:1.26") {
        return Err(format!("got image {image:?}, expected nginx:1.26").into());
    }
    println!("got pod {name}: image {}", image.unwrap_or_default());

    // Update the image, retrying on conflicts (another writer, like the kubelet, may win).
    let mut attempts = 0;
    let updated = loop {
        attempts += 1;
        let mut current = pods.get(name).await?;
        if let Some(container) = current.spec.as_mut().and_then(|s| s.containers.first_mut()) {
            container.image = Some("nginx:1.27".into());
        }
        match pods.replace(name, &PostParams::default(), &current).await {
            Ok(pod) => break pod,
            Err(e) if e.is_conflict() && attempts < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let image = updated
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone());
    if image.as_deref() != Some("nginx:1.27") {
        return Err(format!("updated image is {image:?}, expected nginx:1.27").into());
    }
    println!("updated pod {name}: image nginx:1.27 ({attempts} attempt(s))");

    // List by label selector.
    let selector = Selector::new().eq(LABEL, APP)?;
    let listed = pods
        .list_all(&ListParams::default().labels(&selector))
        .await?;
    if !listed
        .iter()
        .any(|p| p.metadata.name.as_deref() == Some(name))
    {
        return Err(format!("pod {name} is missing from the list for {selector}").into());
    }
    println!("listed {} pod(s) with {selector}", listed.len());
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let (client, _server) = match connect().await {
        Ok(connected) => connected,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pods: Api<Pod> = Api::default_namespaced(client);
    let name = format!("{APP}-{}", std::process::id());
    let result = run(&pods, &name).await;

    // Delete on exit, whatever happened.
    let deleted = match pods
        .delete(&name, &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => {
            println!("deleted pod {name}");
            true
        }
        Err(e) if e.is_not_found() => true,
        Err(e) => {
            eprintln!("error: deleting pod {name}: {e}");
            false
        }
    };
    match result {
        Ok(()) if deleted => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
