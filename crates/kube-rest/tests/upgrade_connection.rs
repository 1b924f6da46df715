//! Connections opened ahead of a WebSocket upgrade (`Client::open_upgrade_connection`,
//! `RequestBuilder::connect_websocket_on`), against kube-testserver over TLS behind a TCP
//! relay that counts the connections made to the server.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use kube_rest::{Api, Client, Config, Kubeconfig, PostParams, UpgradeConnection};
use kube_testserver::TestServer;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Generous bound on anything that should happen promptly: a hang fails instead of blocking.
const PROMPTLY: Duration = Duration::from_secs(10);

/// A TCP relay to the API server: counts connections, and can cut them.
struct Relay {
    address: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

async fn relay(to: std::net::SocketAddr) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(Mutex::new(Vec::new()));
    let (count, handles) = (accepted.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let task = tokio::spawn(async move {
                let mut outbound = TcpStream::connect(to).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
            handles.lock().push(task.abort_handle());
        }
    });
    Relay {
        address,
        accepted,
        connections,
    }
}

fn client_via(server: &TestServer, relay: &Relay) -> Client {
    let kubeconfig = Kubeconfig::parse(&server.kubeconfig_yaml(), Path::new("/k")).unwrap();
    let mut config = Config::from_kubeconfig(&kubeconfig)
        .unwrap()
        .without_throttle();
    // The server's certificate names 127.0.0.1; the port does not matter to TLS.
    config.cluster_url = format!("https://{}", relay.address).parse().unwrap();
    Client::try_from_config(config).unwrap()
}

async fn running_pod(client: &Client) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = Pod {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some("busybox".into()),
                ports: Some(vec![ContainerPort {
                    container_port: 9000,
                    ..ContainerPort::default()
                }]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    pods.create(&PostParams::default(), &pod).await.unwrap();
    tokio::time::timeout(PROMPTLY, async {
        loop {
            let pod = pods.get("web").await.unwrap();
            if pod.status.and_then(|s| s.phase).as_deref() == Some("Running") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the simulated kubelet runs the pod");
}

async fn forward_on(client: &Client, connection: UpgradeConnection) -> String {
    client
        .request(http::Method::GET)
        .namespace(Some("default"))
        .resource("pods")
        .name("web")
        .subresource("portforward")
        .param("ports", "9000")
        .connect_websocket_on(connection, &["v4.channel.k8s.io"])
        .await
        .unwrap()
        .protocol
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_rides_on_the_connection_opened_ahead() {
    let server = TestServer::builder()
        .simulated_kubelet(Some(Duration::from_millis(10)))
        .start()
        .await
        .unwrap();
    let relay = relay(server.address()).await;
    let client = client_via(&server, &relay);
    running_pod(&client).await;
    let before = relay.accepted.load(Ordering::SeqCst);

    // Opened ahead: one connection, then the upgrade on it and no other.
    let connection = client.open_upgrade_connection().await.unwrap();
    assert!(!connection.is_closed());
    assert_eq!(relay.accepted.load(Ordering::SeqCst), before + 1);
    assert_eq!(forward_on(&client, connection).await, "v4.channel.k8s.io");
    assert_eq!(relay.accepted.load(Ordering::SeqCst), before + 1);

    // Another client's connection is not used: the upgrade goes on a new one.
    let other = client_via(&server, &relay);
    let foreign = other.open_upgrade_connection().await.unwrap();
    assert_eq!(forward_on(&client, foreign).await, "v4.channel.k8s.io");
    assert_eq!(relay.accepted.load(Ordering::SeqCst), before + 3);

    // A connection closed while it waited: the upgrade goes on a new one.
    let connection = client.open_upgrade_connection().await.unwrap();
    assert_eq!(relay.accepted.load(Ordering::SeqCst), before + 4);
    let last = relay.connections.lock().last().cloned().unwrap();
    last.abort();
    tokio::time::timeout(PROMPTLY, async {
        while !connection.is_closed() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the cut connection is seen closed");
    assert_eq!(forward_on(&client, connection).await, "v4.channel.k8s.io");
    assert_eq!(relay.accepted.load(Ordering::SeqCst), before + 5);
}
