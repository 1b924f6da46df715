//! The forwarder against kube-testserver over TLS: an nginx pod (the welcome page on 80, an
//! echo on its other declared ports, an error for undeclared ones), through kube-rest's client
//! and the API server's `pods/{name}/portforward`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_portforward::rest::PodDialer;
use kube_portforward::{
    CancellationToken, ConnectionError, DialError, Error, Event, LostCause, PortForwarder,
};
use kube_rest::{
    Api, Client, Config, DeleteParams, Kubeconfig, PostParams, WatchEvent, WatchParams,
};
use kube_testserver::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The longest a test waits for anything.
const LIMIT: Duration = Duration::from_secs(20);
const ECHO: u16 = 9000;
const ECHO2: u16 = 9001;

async fn server() -> (TestServer, Client) {
    let server = TestServer::builder()
        .simulated_kubelet(Some(Duration::from_millis(20)))
        .start()
        .await
        .unwrap();
    let kubeconfig =
        Kubeconfig::parse(&server.kubeconfig_yaml(), std::path::Path::new("embedded")).unwrap();
    // Each forwarded connection is one upgrade request: without the client's rate limiter
    // (client-go's 5 QPS) the 50 connections start at once.
    let config = Config::from_kubeconfig(&kubeconfig)
        .unwrap()
        .without_throttle();
    let client = Client::try_from_config(config).unwrap();
    (server, client)
}

/// Creates an nginx pod declaring 80 and the echo ports, and waits until it runs.
async fn nginx(client: &Client, name: &str) -> Api<Pod> {
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
                ports: Some(vec![port(80), port(ECHO.into()), port(ECHO2.into())]),
                ..Container::default()
            }],
            termination_grace_period_seconds: Some(0),
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let params = WatchParams::default().fields(format!("metadata.name={name}"));
    let mut events = pods.watch(&params, &rv).await.unwrap();
    tokio::time::timeout(LIMIT, async {
        while let Some(event) = events.next().await {
            if let Ok(WatchEvent::Modified(pod)) = event
                && pod.status.and_then(|s| s.phase).as_deref() == Some("Running")
            {
                return;
            }
        }
        panic!("watch ended before the pod ran");
    })
    .await
    .expect("pod running");
    pods
}

fn builder(client: &Client, pod: &str) -> kube_portforward::PortForwarderBuilder {
    PortForwarder::builder(PodDialer::new(client.clone(), "default", pod)).addresses(["127.0.0.1"])
}

async fn get_page(local: u16) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", local)).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    tokio::time::timeout(LIMIT, conn.read_to_string(&mut page))
        .await
        .unwrap()
        .unwrap();
    page
}

/// Sends `data` and reads as much back, concurrently.
async fn echo(conn: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    let (mut reader, mut writer) = conn.split();
    let send = async {
        writer.write_all(data).await.unwrap();
    };
    let mut back = vec![0; data.len()];
    let receive = reader.read_exact(&mut back);
    let ((), received) = tokio::time::timeout(LIMIT, async { tokio::join!(send, receive) })
        .await
        .unwrap();
    received.unwrap();
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_ports_at_once_with_a_random_local_port() {
    let (_server, client) = server().await;
    nginx(&client, "web").await;
    let pf = builder(&client, "web")
        .ports([":80", &format!(":{ECHO}"), &format!("0:{ECHO2}")])
        .build()
        .unwrap();
    let forwarding = pf.forward().await.unwrap();
    let ports = forwarding.ports().to_vec();
    assert_eq!(
        ports.iter().map(|p| p.remote).collect::<Vec<_>>(),
        [80, ECHO, ECHO2]
    );
    assert!(ports.iter().all(|p| p.local != 0), "{ports:?}");
    let page = get_page(ports[0].local).await;
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("<title>Welcome to nginx!</title>"), "{page}");
    for port in &ports[1..] {
        let mut conn = TcpStream::connect(("127.0.0.1", port.local)).await.unwrap();
        let text = format!("hello {}", port.remote);
        assert_eq!(echo(&mut conn, text.as_bytes()).await, text.as_bytes());
    }
    forwarding.stop();
    tokio::time::timeout(LIMIT, forwarding.wait())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_connections_move_a_mebibyte_each_way_intact() {
    let (server, client) = server().await;
    nginx(&client, "bulk").await;
    let forwarding = builder(&client, "bulk")
        .port(format!(":{ECHO}"))
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap();
    let local = forwarding.ports()[0].local;
    let tasks: Vec<_> = (0..50u32)
        .map(|i| {
            tokio::spawn(async move {
                // A different pattern per connection: crossed streams would show.
                let data: Vec<u8> = (0..1u32 << 20)
                    .map(|n| (n.wrapping_mul(31).wrapping_add(i * 7) % 251) as u8)
                    .collect();
                let mut conn = TcpStream::connect(("127.0.0.1", local)).await.unwrap();
                let back = echo(&mut conn, &data).await;
                assert!(back == data, "connection {i}: the echo differs");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stats = forwarding.stats();
    assert_eq!(stats.accepted, 50);
    assert_eq!(stats.failed, 0);
    forwarding.stop();
    tokio::time::timeout(LIMIT, forwarding.wait())
        .await
        .unwrap()
        .unwrap();
    // Every WebSocket was closed on the server too.
    tokio::time::timeout(LIMIT, async {
        while server.port_forward_sessions() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("sessions closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_the_pod_lacks_fails_that_connection_only() {
    let (_server, client) = server().await;
    nginx(&client, "lacking").await;
    let forwarding = builder(&client, "lacking")
        .ports([":81", &format!(":{ECHO}")])
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap();
    let mut events = Box::pin(forwarding.events());
    let ports = forwarding.ports().to_vec();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(("127.0.0.1", ports[0].local))
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(LIMIT, conn.read_to_end(&mut rest))
            .await
            .unwrap();
        assert!(rest.is_empty());
        let error = tokio::time::timeout(LIMIT, async {
            loop {
                if let Some(Event::Closed { error, .. }) = events.next().await {
                    break error.expect("the connection failed");
                }
            }
        })
        .await
        .unwrap();
        let ConnectionError::Remote {
            local,
            remote,
            message,
        } = &*error
        else {
            panic!("{error:?}")
        };
        assert_eq!((*local, *remote), (ports[0].local, 81));
        assert!(
            message.starts_with("error forwarding port 81 to pod"),
            "{message}"
        );
    }
    // The forwarder goes on.
    let mut conn = TcpStream::connect(("127.0.0.1", ports[1].local))
        .await
        .unwrap();
    assert_eq!(echo(&mut conn, b"still there").await, b"still there");
    assert_eq!(forwarding.stats().failed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_pod_ends_forwarding_with_lost_connection() {
    let (_server, client) = server().await;
    let pods = nginx(&client, "doomed").await;
    let forwarding = builder(&client, "doomed")
        .port(format!(":{ECHO}"))
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap();
    let local = forwarding.ports()[0].local;
    let mut conn = TcpStream::connect(("127.0.0.1", local)).await.unwrap();
    assert_eq!(echo(&mut conn, b"before").await, b"before");
    pods.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let error = tokio::time::timeout(LIMIT, forwarding.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(error.to_string(), "lost connection to pod");
    assert!(
        matches!(
            error,
            Error::LostConnection(LostCause::Target(DialError::Gone { .. }))
        ) || matches!(error, Error::LostConnection(LostCause::Connection(_))),
        "{error:?}"
    );
    // The open connection and the listener are closed.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(LIMIT, conn.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(TcpStream::connect(("127.0.0.1", local)).await.is_err());
    // A new forwarder refuses the missing pod at once.
    let error = builder(&client, "doomed")
        .port("80")
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap_err();
    let Error::Dial(DialError::Rest(cause)) = &error else {
        panic!("{error:?}")
    };
    assert!(cause.is_not_found(), "{cause}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_closes_every_listener_and_stream() {
    let (server, client) = server().await;
    nginx(&client, "cancelled").await;
    let token = CancellationToken::new();
    let forwarding = PortForwarder::builder(PodDialer::new(client.clone(), "default", "cancelled"))
        .addresses(["localhost"])
        .ports([&format!(":{ECHO}"), &format!(":{ECHO2}")])
        .cancellation_token(token.clone())
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap();
    let listeners = forwarding.listeners().to_vec();
    let mut open = Vec::new();
    for (address, _) in &listeners {
        let mut conn = TcpStream::connect(address).await.unwrap();
        assert_eq!(echo(&mut conn, b"x").await, b"x");
        open.push(conn);
    }
    assert_eq!(server.port_forward_sessions(), listeners.len());
    token.cancel();
    tokio::time::timeout(LIMIT, forwarding.wait())
        .await
        .unwrap()
        .unwrap();
    for (address, _) in &listeners {
        assert!(TcpStream::connect(address).await.is_err(), "{address}");
    }
    for mut conn in open {
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(LIMIT, conn.read_to_end(&mut rest))
            .await
            .unwrap();
        assert!(rest.is_empty());
    }
    tokio::time::timeout(LIMIT, async {
        while server.port_forward_sessions() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server saw every WebSocket close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_of_a_connection() {
    let (_server, client) = server().await;
    nginx(&client, "halfclose").await;
    // Through a listener: the local side sends, shuts its write side, and still gets the whole
    // answer; the connection then closes (the server speaks v4: no half-close on the wire, so
    // it closes after the linger).
    let forwarding = builder(&client, "halfclose")
        .ports([&format!(":{ECHO}"), ":80"])
        .half_close_linger(Duration::from_millis(200))
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap();
    let ports = forwarding.ports().to_vec();
    let data = vec![7u8; 256 * 1024];
    let mut conn = TcpStream::connect(("127.0.0.1", ports[0].local))
        .await
        .unwrap();
    conn.write_all(&data).await.unwrap();
    conn.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(LIMIT, conn.read_to_end(&mut back))
        .await
        .expect("closed after the answer")
        .unwrap();
    assert!(back == data, "{} bytes back", back.len());
    // HTTP/1.0 with a half-close: nginx answers and closes.
    let mut conn = TcpStream::connect(("127.0.0.1", ports[1].local))
        .await
        .unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut page = String::new();
    tokio::time::timeout(LIMIT, conn.read_to_string(&mut page))
        .await
        .unwrap()
        .unwrap();
    assert!(page.contains("Welcome to nginx!"), "{page}");
    // Without a listener: shutdown() stops the writes, the stream stays readable.
    let pf = builder(&client, "halfclose").build().unwrap();
    let mut stream = pf.connect(ECHO).await.unwrap();
    assert!(!stream.can_half_close());
    stream.write_all(b"tail").await.unwrap();
    stream.shutdown().await.unwrap();
    assert!(stream.write_all(b"more").await.is_err());
    let mut tail = [0; 4];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut tail))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&tail, b"tail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_talks_to_the_pod_directly() {
    let (_server, client) = server().await;
    nginx(&client, "direct").await;
    let pf = builder(&client, "direct").build().unwrap();
    let mut stream = pf.connect(80).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    tokio::time::timeout(LIMIT, stream.read_to_string(&mut page))
        .await
        .unwrap()
        .unwrap();
    assert!(page.contains("Welcome to nginx!"), "{page}");
    // An undeclared port: the read fails with the kubelet's error, typed in the outcome.
    let mut stream = pf.connect(81).await.unwrap();
    let mut outcome = stream.outcome();
    let error = tokio::time::timeout(LIMIT, stream.read_to_end(&mut Vec::new()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        error.to_string().contains("error forwarding port 81"),
        "{error}"
    );
    let error = outcome.wait().await.unwrap_err();
    assert!(
        matches!(*error, ConnectionError::Remote { remote: 81, .. }),
        "{error:?}"
    );
    let _ = Arc::clone(&error);
}
