//! The forwarder on kube-rs's client (`kube::PodDialer`, feature `kube`) against
//! kube-testserver over TLS: the welcome page and an echo through the forward, a port the pod
//! lacks failing that connection only, a deleted pod ending the forward, a missing pod
//! refused with kube-rs's 404.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_portforward::kube::PodDialer;
use kube_portforward::{DialError, Error, LostCause, PortForwarder};
use kube_testserver::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(20);
const ECHO: u16 = 9000;

async fn server() -> (TestServer, kube::Client) {
    let server = TestServer::builder()
        .simulated_kubelet(Some(Duration::from_millis(20)))
        .start()
        .await
        .unwrap();
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    (server, kube::Client::try_from(config).unwrap())
}

async fn nginx(client: &kube::Client, name: &str) -> Api<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let port = |p: i32| ContainerPort {
        container_port: p,
        ..ContainerPort::default()
    };
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "nginx".into(),
                image: Some("nginx:1.27".into()),
                ports: Some(vec![port(80), port(ECHO.into())]),
                ..Container::default()
            }],
            termination_grace_period_seconds: Some(0),
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    pods.create(&PostParams::default(), &pod).await.unwrap();
    tokio::time::timeout(LIMIT, async {
        loop {
            let pod = pods.get(name).await.unwrap();
            if pod.status.and_then(|s| s.phase).as_deref() == Some("Running") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("pod running");
    pods
}

fn builder(client: &kube::Client, pod: &str) -> kube_portforward::PortForwarderBuilder {
    PortForwarder::builder(PodDialer::new(client.clone(), "default", pod)).addresses(["127.0.0.1"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_an_echo_through_kube_rs() {
    let (_server, client) = server().await;
    nginx(&client, "web").await;
    let forwarding = builder(&client, "web")
        .ports([":80", &format!(":{ECHO}"), ":81"])
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap();
    let ports = forwarding.ports().to_vec();
    let mut conn = TcpStream::connect(("127.0.0.1", ports[0].local))
        .await
        .unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    tokio::time::timeout(LIMIT, conn.read_to_string(&mut page))
        .await
        .unwrap()
        .unwrap();
    assert!(page.contains("Welcome to nginx!"), "{page}");
    // A mebibyte each way through the echo port.
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let mut conn = TcpStream::connect(("127.0.0.1", ports[1].local))
        .await
        .unwrap();
    let (mut reader, mut writer) = conn.split();
    let mut back = vec![0; data.len()];
    let (sent, received) = tokio::time::timeout(LIMIT, async {
        tokio::join!(writer.write_all(&data), reader.read_exact(&mut back))
    })
    .await
    .unwrap();
    sent.unwrap();
    received.unwrap();
    assert_eq!(back, data);
    // Port 81 is not declared: that connection fails, the forwarder goes on.
    let mut conn = TcpStream::connect(("127.0.0.1", ports[2].local))
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(LIMIT, conn.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty());
    // connect() without a listener, through kube-rs's client too.
    let forwarder = builder(&client, "web")
        .port(format!(":{ECHO}"))
        .build()
        .unwrap();
    let mut stream = forwarder.connect(ECHO).await.unwrap();
    stream.write_all(b"direct").await.unwrap();
    let mut got = [0; 6];
    stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"direct");
    forwarding.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_ends_the_forward_and_a_missing_one_is_refused() {
    let (_server, client) = server().await;
    let pods = nginx(&client, "doomed").await;
    let forwarding = builder(&client, "doomed")
        .port(format!(":{ECHO}"))
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap();
    pods.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let error = tokio::time::timeout(LIMIT, forwarding.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::LostConnection(LostCause::Target(DialError::Gone { .. }))
        ),
        "{error:?}"
    );
    let error = builder(&client, "doomed")
        .port("80")
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap_err();
    let Error::Dial(DialError::Kube(kube::Error::Api(status))) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(status.code, 404);
}
