//! Port forwarding on kube-rs's client (feature `kube`): our forwarder (kubectl's port rules,
//! one stream pair per connection, per-connection errors) dialing through `kube::Client`.
//! Creates an nginx pod, forwards a random local port to its port 80, fetches the page
//! through the forward, and stops cleanly.
//!
//! The client is `kube::Client::try_default()` when the current kubeconfig's cluster answers;
//! otherwise the example starts an embedded kube-testserver (with its simulated kubelet),
//! writes its kubeconfig to a file and reads that file with kube-rs's own kubeconfig loader.
//!
//! ```sh
//! cargo run -p kube-portforward --features kube --example kube_port_forward
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube_portforward::PortForwarder;
use kube_portforward::kube::PodDialer;
use kube_testserver::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

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
    let server = TestServer::builder()
        .simulated_kubelet(Some(Duration::from_millis(50)))
        .start()
        .await?;
    let path = std::env::temp_dir().join(format!("kube-pf-kube-{}.yaml", std::process::id()));
    server.write_kubeconfig(&path)?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let _ = std::fs::remove_file(&path);
    Ok((kube::Client::try_from(config)?, Some(server)))
}

async fn wait_running(pods: &Api<Pod>, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pod = pods.get(name).await?;
        if pod.status.and_then(|s| s.phase).as_deref() == Some("Running") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("pod {name} did not run within 120 s").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run() -> Result<()> {
    let (client, _server) = connect().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let name = format!("kube-pf-demo-{}", std::process::id());
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "nginx".into(),
                image: Some("nginx:1.27".into()),
                ports: Some(vec![ContainerPort {
                    container_port: 80,
                    ..ContainerPort::default()
                }]),
                ..Container::default()
            }],
            termination_grace_period_seconds: Some(0),
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    pods.create(&PostParams::default(), &pod).await?;
    let result = forward(&client, &pods, &name).await;
    pods.delete(&name, &DeleteParams::default()).await?;
    result?;
    println!("kube-rs port-forward demo passed");
    Ok(())
}

async fn forward(client: &kube::Client, pods: &Api<Pod>, name: &str) -> Result<()> {
    wait_running(pods, name).await?;
    let forwarding = PortForwarder::builder(PodDialer::new(client.clone(), "default", name))
        .addresses(["127.0.0.1"])
        .port(":80")
        .build()?
        .forward()
        .await?;
    let local = forwarding.ports()[0].local;
    println!("Forwarding from 127.0.0.1:{local} -> 80 (through kube-rs's client)");
    let mut conn = TcpStream::connect(("127.0.0.1", local)).await?;
    conn.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut page = String::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_string(&mut page)).await??;
    let status = page.lines().next().unwrap_or_default().to_string();
    println!("GET / -> {status}, {} bytes", page.len());
    if !page.contains("Welcome to nginx!") {
        return Err("the nginx page did not come through the forward".into());
    }
    let stats = forwarding.stats();
    println!(
        "connections: {} accepted, {} failed",
        stats.accepted, stats.failed
    );
    forwarding.stop();
    forwarding.wait().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube_port_forward: {e}");
            ExitCode::FAILURE
        }
    }
}
