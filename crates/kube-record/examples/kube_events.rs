//! Event recording on kube-rs's client (feature `kube`): our broadcaster, correlator and
//! retrying writer behind a `KubeSink`, as a kube-rs controller would add them. Records 20
//! identical events (counted into one Event) and 12 similar ones (aggregated after the
//! tenth), then reads the Events back through `kube::Api<Event>` and checks them.
//!
//! The client is `kube::Client::try_default()` when the current kubeconfig's cluster answers;
//! otherwise the example starts an embedded kube-testserver, writes its kubeconfig to a file
//! and reads that file with kube-rs's own kubeconfig loader.
//!
//! ```sh
//! cargo run -p kube-record --features kube --example kube_events
//! ```

use std::process::ExitCode;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Event, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams};
use kube_record::{EventBroadcaster, EventType, KubeSink};
use kube_testserver::TestServer;

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
    let path = std::env::temp_dir().join(format!("kube-record-kube-{}.yaml", std::process::id()));
    server.write_kubeconfig(&path)?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let _ = std::fs::remove_file(&path);
    Ok((kube::Client::try_from(config)?, Some(server)))
}

async fn run() -> Result<()> {
    let (client, _server) = connect().await?;
    let namespace = "default";
    // A pod to report about (created, so the events point at something real).
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let name = format!("kube-events-demo-{}", std::process::id());
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    let pod = pods.create(&PostParams::default(), &pod).await?;
    let broadcaster = EventBroadcaster::new();
    broadcaster.start_recording_to_sink(KubeSink::new(client.clone()))?;
    let recorder = broadcaster.new_recorder("kube-events-demo");
    for _ in 0..20 {
        recorder.event(
            &pod,
            EventType::Warning,
            "BackOff",
            "Back-off restarting failed container",
        )?;
    }
    for i in 0..12 {
        recorder.eventf(
            &pod,
            EventType::Normal,
            "Probe",
            format_args!("probe {i} answered"),
        )?;
    }
    let shutdown = broadcaster.shutdown().await;
    let counters = broadcaster.counters();
    println!(
        "recorded {}, written {}, dropped {}",
        counters.recorded,
        counters.written,
        counters.dropped()
    );
    if !shutdown.flushed {
        return Err("the broadcaster did not flush".into());
    }
    let events: Vec<Event> = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await?
        .items;
    for event in &events {
        println!(
            "event {}: {} x{} {:?}",
            event.metadata.name.as_deref().unwrap_or(""),
            event.reason.as_deref().unwrap_or(""),
            event.count.unwrap_or(0),
            event.message.as_deref().unwrap_or("")
        );
    }
    let count_of = |reason: &str, message_prefix: &str| -> i32 {
        events
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter(|e| {
                e.message
                    .as_deref()
                    .is_some_and(|m| m.starts_with(message_prefix))
            })
            .map(|e| e.count.unwrap_or(0))
            .sum()
    };
    // 20 identical events: one Event counted 20 times.
    if count_of("BackOff", "Back-off") != 20 {
        return Err("the identical events were not counted into one Event".into());
    }
    // 12 similar events: 9 on their own, then the aggregate (from the tenth on) counted 3 times.
    let single = count_of("Probe", "probe ");
    let combined = count_of("Probe", "(combined from similar events)");
    println!("similar events: {single} on their own, {combined} combined");
    if single + combined != 12 || combined == 0 {
        return Err("the similar events were not aggregated".into());
    }
    pods.delete(&name, &Default::default()).await?;
    println!("kube-rs events demo passed");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube_events: {e}");
            ExitCode::FAILURE
        }
    }
}
