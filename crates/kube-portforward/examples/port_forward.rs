//! The seed's port-forward.go in Rust: forward `0.0.0.0:8080` to port 80 of an nginx pod,
//! fetch the page once through the forwarded port to show it works, then forward until
//! Ctrl-C.
//!
//! Runs against the cluster of the current kubeconfig when one answers, otherwise against an
//! embedded kube-testserver (whose simulated kubelet serves nginx's welcome page on port 80 of
//! an `nginx` image). It creates the pod (and deletes it on exit) unless `--pod` names an
//! existing one.
//!
//! ```sh
//! cargo run -p kube-portforward --features rest --example port_forward
//! curl http://127.0.0.1:8080/           # in another terminal
//! # CI: a random local port, fetch once, exit
//! cargo run -p kube-portforward --features rest --example port_forward -- --once --ports :80
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_portforward::rest::PodDialer;
use kube_portforward::{CancellationToken, Event, PortForwarder};
use kube_rest::{Api, Client, Config, DeleteParams, PostParams, WatchEvent, WatchParams};
use kube_testserver::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const DEMO_POD: &str = "nginx-port-forward-demo";

struct Options {
    once: bool,
    addresses: Vec<String>,
    ports: Vec<String>,
    namespace: Option<String>,
    pod: Option<String>,
}

fn options() -> Result<Options> {
    let mut options = Options {
        once: false,
        addresses: Vec::new(),
        ports: Vec::new(),
        namespace: None,
        pod: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--once" => options.once = true,
            "--address" => options.addresses.push(value("--address")?),
            "--ports" => options.ports.push(value("--ports")?),
            "--namespace" | "-n" => options.namespace = Some(value("--namespace")?),
            "--pod" => options.pod = Some(value("--pod")?),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: port_forward [--once] [--address IP]... \
                     [--ports [LOCAL]:REMOTE]... [--namespace NS] [--pod NAME])"
                )
                .into());
            }
        }
    }
    if options.addresses.is_empty() {
        options.addresses.push("0.0.0.0".into()); // the seed's address
    }
    if options.ports.is_empty() {
        options.ports.push("8080:80".into()); // the seed's ports
    }
    Ok(options)
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
    let server = TestServer::builder()
        .simulated_kubelet(Some(Duration::from_millis(200)))
        .start()
        .await?;
    let kubeconfig =
        kube_rest::Kubeconfig::parse(&server.kubeconfig_yaml(), std::path::Path::new("embedded"))?;
    let client = Client::try_from_config(Config::from_kubeconfig(&kubeconfig)?)?;
    Ok((client, Some(server)))
}

/// Creates the demo nginx pod and waits until it runs (at most two minutes: a real cluster
/// may pull the image first).
async fn create_nginx(pods: &Api<Pod>) -> Result<()> {
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(DEMO_POD.into()),
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
    let created = pods.create(&PostParams::default(), &pod).await?;
    println!("created pod {DEMO_POD}");
    let rv = created.metadata.resource_version.unwrap_or_default();
    let params = WatchParams::default()
        .fields(format!("metadata.name={DEMO_POD}"))
        .timeout(125);
    let mut events = std::pin::pin!(pods.watch(&params, &rv).await?);
    tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(event) = events.next().await {
            if let WatchEvent::Added(pod) | WatchEvent::Modified(pod) = event?
                && pod.status.and_then(|s| s.phase).as_deref() == Some("Running")
            {
                return Ok(());
            }
        }
        Err("the watch ended before the pod ran".into())
    })
    .await
    .map_err(|_| "the pod did not run within 120 s")?
}

/// Fetches `/` through the forwarded port and returns the status line and the page title.
async fn fetch(address: SocketAddr) -> Result<(String, String)> {
    let mut conn = tokio::net::TcpStream::connect(address).await?;
    conn.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut page = String::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_string(&mut page)).await??;
    let status = page.lines().next().unwrap_or("").to_string();
    let title = page
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(title, _)| title.to_string())
        .unwrap_or_default();
    Ok((status, title))
}

/// Where to connect to reach a listener (a wildcard address is reached on loopback).
fn reachable(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, address.port())
}

async fn run(options: &Options, client: Client) -> Result<()> {
    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let pod = options.pod.clone().unwrap_or_else(|| DEMO_POD.to_string());
    let stop = CancellationToken::new();
    let forwarder = PortForwarder::builder(PodDialer::new(client, namespace, pod))
        .addresses(options.addresses.iter().cloned())
        .ports(options.ports.iter().cloned())
        .cancellation_token(stop.clone())
        .build()?;
    let mut forwarding = forwarder.forward().await?;
    for (address, port) in forwarding.listeners() {
        println!("Forwarding from {address} -> {}", port.remote);
    }
    for failure in forwarding.listen_failures() {
        eprintln!("{failure}");
    }
    // client-go's out and errOut: one line per connection, errors on stderr.
    let mut events = Box::pin(forwarding.events());
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                Event::Accepted { port, .. } => println!("Handling connection for {}", port.local),
                Event::Closed {
                    error: Some(error), ..
                } => eprintln!("error: {error}"),
                _ => {}
            }
        }
    });
    let (address, _) = forwarding.listeners()[0];
    let (status, title) = fetch(reachable(address)).await?;
    println!(
        "fetched http://{}/ through the forward: {status} ({title})",
        reachable(address)
    );
    if !status.contains("200") {
        return Err(format!("unexpected answer {status:?}").into());
    }
    if options.once {
        forwarding.stop();
    } else {
        println!("forwarding until Ctrl-C");
        let ctrl_c_stop = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            ctrl_c_stop.cancel();
        });
    }
    forwarding.finished().await?;
    let stats = forwarding.stats();
    println!(
        "stopped: {} connections, {} failed",
        stats.accepted, stats.failed
    );
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
    let (client, _server) = match connect().await {
        Ok(connected) => connected,
        Err(e) => {
            eprintln!("cannot connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let created = options.pod.is_none();
    if created && let Err(e) = create_nginx(&pods).await {
        eprintln!("cannot start the nginx pod: {e}");
        let _ = pods.delete(DEMO_POD, &DeleteParams::default()).await;
        return ExitCode::FAILURE;
    }
    let result = run(&options, client).await;
    if created {
        match pods.delete(DEMO_POD, &DeleteParams::default()).await {
            Ok(_) => println!("deleted pod {DEMO_POD}"),
            Err(e) => eprintln!("deleting pod {DEMO_POD}: {e}"),
        }
    }
    match result {
        Ok(()) => {
            println!("port-forward demo passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("port-forward failed: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
