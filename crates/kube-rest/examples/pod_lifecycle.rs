//! The seed's client-pod.go in Rust: create a busybox pod printing `date +%s` every second,
//! wait through a watch until it is Ready, get it, update its image and wait for the restart,
//! list by label selector, stream 5 seconds of its log, exec a command in it, and delete it on
//! exit.
//!
//! Runs against the cluster of the current kubeconfig when one answers, otherwise against an
//! embedded kube-testserver (whose simulated kubelet runs the pod, writes its log and runs a
//! tiny shell for exec). Every step after the creation runs even when an earlier one failed,
//! printing the server's error for it; the pod is always deleted, and the exit code is non-zero
//! when any step failed. Nothing waits without a bound.
//!
//! ```sh
//! cargo run -p kube-rest --example pod_lifecycle
//! # the failure path: an embedded server without a kubelet, so the pod never runs
//! cargo run -p kube-rest --example pod_lifecycle -- --without-kubelet --ready-timeout 2
//! ```

use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube_flowcontrol::clock::RealClock;
use kube_flowcontrol::retry;
use kube_rest::exec::AttachParams;
use kube_rest::logs::LogParams;
use kube_rest::{
    Api, Client, Config, DeleteParams, ListParams, PostParams, Selector, WatchEvent, WatchParams,
};
use kube_testserver::TestServer;

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const LABEL: &str = "app";
const APP: &str = "kube-rest-demo";
const IMAGE: &str = "busybox";
const NEW_IMAGE: &str = "busybox:1.35.0";

/// Command-line options.
struct Options {
    /// Start the embedded server without its kubelet (to see the failure path).
    without_kubelet: bool,
    /// How long to wait for the pod to be Ready.
    ready_timeout: Duration,
}

fn options() -> Result<Options> {
    let mut options = Options {
        without_kubelet: false,
        ready_timeout: Duration::from_secs(120),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--without-kubelet" => options.without_kubelet = true,
            "--ready-timeout" => {
                let seconds = args.next().ok_or("--ready-timeout needs seconds")?;
                options.ready_timeout = Duration::from_secs(seconds.parse()?);
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: pod_lifecycle [--without-kubelet] [--ready-timeout SECONDS])"
                )
                .into());
            }
        }
    }
    Ok(options)
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Connects to the current kubeconfig's cluster if it answers, else starts a kube-testserver.
async fn connect(options: &Options) -> Result<(Client, Option<TestServer>)> {
    let reason = match Config::infer() {
        Ok(_) if options.without_kubelet => "--without-kubelet asks for it".to_string(),
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
    let kubelet = (!options.without_kubelet).then_some(Duration::from_millis(500));
    let server = TestServer::builder()
        .simulated_kubelet(kubelet)
        .start()
        .await?;
    let kubeconfig =
        kube_rest::Kubeconfig::parse(&server.kubeconfig_yaml(), std::path::Path::new("embedded"))?;
    let client = Client::try_from_config(Config::from_kubeconfig(&kubeconfig)?)?;
    Ok((client, Some(server)))
}

fn image_of(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
}

/// The running container's image and restart count, as the kubelet reports them.
fn running_image(pod: &Pod) -> Option<(String, i32)> {
    let status = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
    status.state.as_ref()?.running.as_ref()?;
    Some((status.image.clone(), status.restart_count))
}

/// Watches the pod from `rv` until `done` holds for it, for at most `timeout`.
async fn wait_for(
    pods: &Api<Pod>,
    name: &str,
    rv: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Pod) -> bool,
) -> Result<Pod> {
    let watch = WatchParams::default()
        .fields(format!("metadata.name={name}"))
        .timeout(timeout.as_secs() as u32 + 5); // our own deadline comes first
    let mut events = std::pin::pin!(pods.watch(&watch, rv).await?);
    tokio::time::timeout(timeout, async {
        while let Some(event) = events.next().await {
            match event? {
                WatchEvent::Added(pod) | WatchEvent::Modified(pod) if done(&pod) => return Ok(pod),
                WatchEvent::Deleted(_) => return Err("the pod was deleted while waiting".into()),
                WatchEvent::Error(status) => {
                    return Err(format!("watch error: {}", status.message).into());
                }
                _ => {}
            }
        }
        Err::<Pod, Box<dyn std::error::Error + Send + Sync>>(
            format!("the watch ended before the pod was {what}").into(),
        )
    })
    .await
    .map_err(|_| format!("the pod was not {what} within {} s", timeout.as_secs()))?
}

fn resource_version(pod: &Pod) -> String {
    pod.metadata.resource_version.clone().unwrap_or_default()
}

/// Creates the pod and waits until it is Ready.
async fn create_and_wait(pods: &Api<Pod>, name: &str, options: &Options) -> Result<String> {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {LABEL: APP}},
        "spec": {
            "containers": [{
                "name": "busybox",
                "image": IMAGE,
                "command": ["/bin/sh", "-c", "while :; do date +%s ; sleep 1 ; done"],
            }],
            "terminationGracePeriodSeconds": 0,
        }
    }))?;
    let created = pods.create(&PostParams::default(), &pod).await?;
    let rv = resource_version(&created);
    println!("created pod {name} (resourceVersion {rv})");
    let ready = wait_for(pods, name, &rv, options.ready_timeout, "Ready", is_ready).await?;
    println!(
        "pod {name} is Ready (phase {:?})",
        ready.status.as_ref().and_then(|s| s.phase.as_deref())
    );
    Ok(resource_version(&ready))
}

/// Gets the pod, updates its image (retrying on conflicts) and waits for the restart.
async fn update_and_wait(pods: &Api<Pod>, name: &str, options: &Options) -> Result<()> {
    let got = pods.get(name).await?;
    if image_of(&got).as_deref() != Some(IMAGE) {
        return Err(format!("got image {:?}, expected {IMAGE}", image_of(&got)).into());
    }
    println!("got pod {name}: image {IMAGE}");
    // Another writer (the kubelet) may win the race: retry on conflicts, as client-pod.go
    // does with client-go's retry.RetryOnConflict.
    let mut attempts = 0;
    let updated = retry::retry_on_conflict(&RealClock, retry::DEFAULT_RETRY, || {
        attempts += 1;
        async {
            let mut current = pods.get(name).await?;
            if let Some(container) = current.spec.as_mut().and_then(|s| s.containers.first_mut()) {
                container.image = Some(NEW_IMAGE.into());
            }
            pods.replace(name, &PostParams::default(), &current).await
        }
    })
    .await?;
    if image_of(&updated).as_deref() != Some(NEW_IMAGE) {
        return Err(format!(
            "updated image is {:?}, expected {NEW_IMAGE}",
            image_of(&updated)
        )
        .into());
    }
    println!("updated pod {name}: image {NEW_IMAGE} ({attempts} attempt(s))");
    let restarted = wait_for(
        pods,
        name,
        &resource_version(&updated),
        options.ready_timeout,
        "running the new image",
        |pod| {
            is_ready(pod) && running_image(pod).is_some_and(|(image, _)| image.ends_with(NEW_IMAGE))
        },
    )
    .await?;
    let restarts = running_image(&restarted).map_or(0, |(_, restarts)| restarts);
    println!("pod {name} runs {NEW_IMAGE} (restartCount {restarts})");
    Ok(())
}

/// Lists the pods with the demo's label.
async fn list(pods: &Api<Pod>, name: &str) -> Result<()> {
    let selector = Selector::new().eq(LABEL, APP)?;
    let listed = pods
        .list_all(&ListParams::default().labels(&selector))
        .await?;
    println!("pods count: {}", listed.items.len());
    for (index, pod) in listed.items.iter().enumerate() {
        println!(
            "pods[{index}].name is {}",
            pod.metadata.name.as_deref().unwrap_or("")
        );
    }
    if !listed
        .items
        .iter()
        .any(|p| p.metadata.name.as_deref() == Some(name))
    {
        return Err(format!("pod {name} is missing from the list for {selector}").into());
    }
    Ok(())
}

/// Follows the log for 5 seconds (the lines of the last 10 seconds first), then stops.
async fn stream_logs(pods: &Api<Pod>, name: &str) -> Result<()> {
    let params = LogParams::default().follow(true).since_seconds(10);
    let mut lines = Box::pin(pods.log_lines(name, &params).await?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut count = 0;
    let mut ended = false;
    loop {
        match tokio::time::timeout_at(deadline, lines.next()).await {
            Err(_) => break, // 5 seconds are up
            Ok(None) => {
                ended = true;
                break;
            }
            Ok(Some(line)) => {
                println!("log line: {}", line?);
                count += 1;
            }
        }
    }
    // Dropping the stream ends the HTTP request.
    drop(lines);
    if count == 0 && ended {
        return Err("the server returned an empty log (is the pod running on a node?)".into());
    }
    if count == 0 {
        return Err("no log line arrived within 5 s".into());
    }
    println!("streamed {count} log line(s) for 5 s");
    Ok(())
}

/// Runs a command in the pod and prints what it wrote.
async fn exec(pods: &Api<Pod>, name: &str) -> Result<()> {
    let command = ["sh", "-c", "echo hello from $HOSTNAME; date"];
    let run = async {
        let process = pods.exec(name, command, &AttachParams::default()).await?;
        let protocol = process.protocol();
        Ok::<_, kube_rest::Error>((protocol, process.output().await?))
    };
    let (protocol, output) = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| "exec did not finish within 30 s")??;
    print!(
        "exec ({protocol}): {}",
        String::from_utf8_lossy(&output.stdout)
    );
    if !output.stderr.is_empty() {
        eprint!("exec stderr: {}", String::from_utf8_lossy(&output.stderr));
    }
    if !output.status.success() {
        return Err(format!("the command failed: {}", output.status).into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (client, _server) = match connect(&options).await {
        Ok(connected) => connected,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pods: Api<Pod> = Api::default_namespaced(client);
    let name = format!("{APP}-{}", std::process::id());
    let mut failures = 0;
    let mut report = |step: &str, result: Result<()>| {
        if let Err(e) = result {
            eprintln!("error: {step}: {e}");
            failures += 1;
        }
    };

    match create_and_wait(&pods, &name, &options).await {
        Err(e) if pods.get_opt(&name).await.ok().flatten().is_none() => {
            eprintln!("error: create: {e}");
            return ExitCode::FAILURE;
        }
        result => report("create and wait for Ready", result.map(drop)),
    }
    report("update", update_and_wait(&pods, &name, &options).await);
    report("list", list(&pods, &name).await);
    report("logs", stream_logs(&pods, &name).await);
    report("exec", exec(&pods, &name).await);

    // Delete on exit, whatever happened.
    match pods
        .delete(&name, &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => println!("deleted pod {name}"),
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            eprintln!("error: deleting pod {name}: {e}");
            failures += 1;
        }
    }
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failures} step(s) failed");
        ExitCode::FAILURE
    }
}
