//! The forwarder against a fake kubelet over in-memory pipes (`tokio::io::duplex`): the
//! server side speaks the kubelet's WebSocket port forwarding (port prefix on both channels,
//! an error message on the error channel for a port nothing listens on).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use kube_apimachinery::channel::{Decoded, Frame};
use kube_portforward::{
    BoxFuture, CancellationToken, ChannelProtocol, ConnectionError, DialError, Dialer, Error,
    Event, LostCause, PortForwarder, Upgraded,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

#[derive(Clone, Copy, Debug)]
enum Behavior {
    /// Echo data back; a v5 close of the data channel ends the connection.
    Echo,
    /// Nothing listens: an error message, then the socket closes.
    Refused,
    /// Open the channels for another port.
    WrongPort,
    /// Answer the first request with a page and close.
    Page,
}

#[derive(Default)]
struct FakeKubelet {
    ports: HashMap<u16, Behavior>,
    /// Protocols the server accepts, best first (default v4 and v4.base64).
    accepts: Vec<ChannelProtocol>,
    dials: AtomicUsize,
    gone: AtomicBool,
    lost: Notify,
    check_fails: bool,
}

impl FakeKubelet {
    fn new(ports: &[(u16, Behavior)]) -> FakeKubelet {
        FakeKubelet {
            ports: ports.iter().copied().collect(),
            accepts: vec![ChannelProtocol::V4, ChannelProtocol::V4Base64],
            ..FakeKubelet::default()
        }
    }
}

impl Dialer for FakeKubelet {
    fn dial<'a>(
        &'a self,
        port: u16,
        protocols: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
        Box::pin(async move {
            self.dials.fetch_add(1, Ordering::SeqCst);
            if self.gone.load(Ordering::SeqCst) {
                return Err(DialError::Gone {
                    name: "fake".into(),
                });
            }
            let protocol = protocols
                .iter()
                .filter_map(|p| ChannelProtocol::from_name(p))
                .find(|p| self.accepts.contains(p))
                .unwrap_or(ChannelProtocol::V1);
            let behavior = self.ports.get(&port).copied();
            let (client, server) = tokio::io::duplex(256 * 1024);
            tokio::spawn(serve(server, protocol, port, behavior));
            Ok(Upgraded {
                io: Box::new(client),
                protocol: if protocol == ChannelProtocol::V1 {
                    String::new()
                } else {
                    protocol.name().to_string()
                },
            })
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), DialError>> {
        let fails = self.check_fails;
        Box::pin(async move {
            if fails {
                Err(DialError::NotRunning {
                    phase: "Pending".into(),
                })
            } else {
                Ok(())
            }
        })
    }

    fn lost(&self) -> BoxFuture<'_, DialError> {
        Box::pin(async move {
            self.lost.notified().await;
            DialError::Gone {
                name: "fake".into(),
            }
        })
    }
}

fn message(protocol: ChannelProtocol, channel: u8, data: &[u8]) -> Message {
    match protocol.encode(channel, data).unwrap() {
        Frame::Binary(bytes) => Message::Binary(bytes),
        Frame::Text(text) => Message::text(text),
    }
}

/// The kubelet's side of one WebSocket (`handleWebSocketStreams` for one port).
async fn serve(
    io: tokio::io::DuplexStream,
    protocol: ChannelProtocol,
    port: u16,
    behavior: Option<Behavior>,
) {
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let prefix_port = match behavior {
        Some(Behavior::WrongPort) => port + 1,
        _ => port,
    };
    let prefix = prefix_port.to_le_bytes();
    let _ = ws.send(message(protocol, 0, &prefix)).await;
    let _ = ws.send(message(protocol, 1, &prefix)).await;
    match behavior {
        None | Some(Behavior::Refused) => {
            let text = format!(
                "error forwarding port {port} to pod fake, uid : dial tcp4 127.0.0.1:{port}: connect: connection refused"
            );
            let _ = ws.send(message(protocol, 1, text.as_bytes())).await;
        }
        Some(Behavior::WrongPort) => {
            // Keep the socket open: the client must notice on its own.
            while let Some(Ok(_)) = ws.next().await {}
        }
        Some(Behavior::Echo) => {
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_close() {
                    break;
                }
                let decoded = match msg {
                    Message::Binary(b) => protocol.decode_binary(b),
                    Message::Text(t) => protocol.decode_text(t.as_str()),
                    _ => continue,
                };
                match decoded.unwrap() {
                    Some(Decoded::Data { channel: 0, data })
                        if ws.send(message(protocol, 0, &data)).await.is_err() =>
                    {
                        break;
                    }
                    Some(Decoded::Close { channel: 0 }) => break,
                    _ => {}
                }
            }
        }
        Some(Behavior::Page) => {
            let mut request = Vec::new();
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Binary(b) = msg
                    && let Some(Decoded::Data { channel: 0, data }) =
                        protocol.decode_binary(b).unwrap()
                {
                    request.extend_from_slice(&data);
                }
                if request.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let page = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
            let _ = ws.send(message(protocol, 0, page)).await;
        }
    }
    let _ = ws.close(None).await;
    // Drain until the client answers the close.
    while let Some(Ok(_)) = ws.next().await {}
}

fn forwarder(kubelet: Arc<FakeKubelet>, ports: &[&str]) -> PortForwarder {
    PortForwarder::builder(kubelet)
        .addresses(["127.0.0.1"])
        .ports(ports.iter().copied())
        .build()
        .unwrap()
}

async fn echo_through(local: u16, data: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", local)).await.unwrap();
    conn.write_all(data).await.unwrap();
    let mut back = vec![0; data.len()];
    conn.read_exact(&mut back).await.unwrap();
    back
}

#[tokio::test]
async fn connect_echoes_and_strips_the_port_prefix() {
    let kubelet = Arc::new(FakeKubelet::new(&[(7, Behavior::Echo)]));
    let pf = PortForwarder::builder(kubelet).build().unwrap();
    let mut stream = pf.connect(7).await.unwrap();
    assert_eq!(stream.protocol(), ChannelProtocol::V4);
    assert_eq!(stream.remote_port(), 7);
    assert!(!stream.can_half_close());
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (mut reader, mut writer) = tokio::io::split(&mut stream);
    let send = async {
        writer.write_all(&data).await.unwrap();
    };
    let mut back = vec![0; data.len()];
    let receive = reader.read_exact(&mut back);
    let (_, received) = tokio::join!(send, receive);
    received.unwrap();
    assert!(back == data, "echoed bytes differ");
}

#[tokio::test]
async fn base64_and_unnamed_protocols_work_too() {
    for accepts in [vec![ChannelProtocol::V4Base64], vec![]] {
        let mut kubelet = FakeKubelet::new(&[(7, Behavior::Echo)]);
        kubelet.accepts = accepts.clone();
        let pf = PortForwarder::builder(Arc::new(kubelet)).build().unwrap();
        let mut stream = pf.connect(7).await.unwrap();
        let expected = accepts.first().copied().unwrap_or(ChannelProtocol::V1);
        assert_eq!(stream.protocol(), expected);
        stream.write_all(b"ping").await.unwrap();
        let mut back = [0; 4];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ping");
    }
}

#[tokio::test]
async fn a_protocol_not_offered_is_refused() {
    struct Rogue;
    impl Dialer for Rogue {
        fn dial<'a>(
            &'a self,
            _port: u16,
            _protocols: &'a [&'a str],
        ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
            Box::pin(async {
                let (client, _server) = tokio::io::duplex(64);
                Ok(Upgraded {
                    io: Box::new(client),
                    protocol: "portforward.k8s.io".into(),
                })
            })
        }
    }
    let pf = PortForwarder::builder(Rogue).build().unwrap();
    let error = pf.connect(80).await.unwrap_err();
    assert!(
        matches!(&error, Error::Dial(DialError::Protocol { selected, .. }) if selected == "portforward.k8s.io"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_remote_error_fails_the_read_and_is_kept_typed() {
    let kubelet = Arc::new(FakeKubelet::new(&[]));
    let pf = PortForwarder::builder(kubelet).build().unwrap();
    let mut stream = pf.connect(81).await.unwrap();
    let outcome = stream.outcome();
    let mut buf = Vec::new();
    let error = stream.read_to_end(&mut buf).await.unwrap_err();
    assert!(error.to_string().contains("connection refused"), "{error}");
    let mut outcome = outcome;
    let error = outcome.wait().await.unwrap_err();
    match &*error {
        ConnectionError::Remote {
            local,
            remote,
            message,
        } => {
            assert_eq!((*local, *remote), (0, 81));
            assert!(message.starts_with("error forwarding port 81"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_stream_for_another_port_is_a_protocol_error() {
    let kubelet = Arc::new(FakeKubelet::new(&[(90, Behavior::WrongPort)]));
    let pf = PortForwarder::builder(kubelet).build().unwrap();
    let mut stream = pf.connect(90).await.unwrap();
    let mut buf = Vec::new();
    assert!(stream.read_to_end(&mut buf).await.is_err());
    let error = stream.outcome().wait().await.unwrap_err();
    assert!(
        matches!(&*error, ConnectionError::Protocol { remote: 90, reason } if reason.contains("port 91")),
        "{error:?}"
    );
}

#[tokio::test]
async fn half_close_reaches_a_v5_server_and_is_a_no_op_on_v4() {
    let mut kubelet = FakeKubelet::new(&[(7, Behavior::Echo)]);
    kubelet.accepts = vec![ChannelProtocol::V5, ChannelProtocol::V4];
    let kubelet = Arc::new(kubelet);
    // v5 offered: the server sees EOF, finishes, and the client reads everything to EOF.
    let pf = PortForwarder::builder(kubelet.clone())
        .protocols([ChannelProtocol::V5, ChannelProtocol::V4])
        .build()
        .unwrap();
    let mut stream = pf.connect(7).await.unwrap();
    assert!(stream.can_half_close());
    stream.write_all(b"last words").await.unwrap();
    stream.shutdown().await.unwrap();
    assert!(
        stream.write_all(b"more").await.is_err(),
        "write after shutdown"
    );
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut back))
        .await
        .expect("EOF after the half-close")
        .unwrap();
    assert_eq!(back, b"last words");
    // v4 (the default offer): the shutdown sends nothing, the stream stays open both ways
    // for reading.
    let pf = PortForwarder::builder(kubelet).build().unwrap();
    let mut stream = pf.connect(7).await.unwrap();
    assert!(!stream.can_half_close());
    stream.write_all(b"abc").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = [0; 3];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"abc");
    let more = tokio::time::timeout(Duration::from_millis(200), stream.read_u8()).await;
    assert!(more.is_err(), "no EOF: v4 cannot tell the server");
}

#[tokio::test]
async fn forward_reports_dynamic_ports_and_forwards_each_connection() {
    let kubelet = Arc::new(FakeKubelet::new(&[
        (7, Behavior::Echo),
        (80, Behavior::Page),
    ]));
    let pf = forwarder(kubelet.clone(), &[":7", "0:80"]);
    let forwarding = pf.forward().await.unwrap();
    let ports = forwarding.ports().to_vec();
    assert_eq!(ports.len(), 2);
    assert!(ports.iter().all(|p| p.local != 0), "{ports:?}");
    assert_eq!((ports[0].remote, ports[1].remote), (7, 80));
    assert_eq!(forwarding.listeners().len(), 2);
    let mut events = Box::pin(forwarding.events());
    // Several connections at once, each its own stream.
    let echoes = (0..8).map(|i| {
        echo_through(
            ports[0].local,
            format!("hello {i}").as_bytes().to_vec().leak(),
        )
    });
    let results = futures_util::future::join_all(echoes).await;
    for (i, back) in results.into_iter().enumerate() {
        assert_eq!(back, format!("hello {i}").as_bytes());
    }
    let mut conn = TcpStream::connect(("127.0.0.1", ports[1].local))
        .await
        .unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    conn.read_to_string(&mut page).await.unwrap();
    assert!(page.ends_with("hello"), "{page}");
    assert_eq!(kubelet.dials.load(Ordering::SeqCst), 9);
    // 9 connections: 9 accepted events and 9 closed ones (the echo connections close when
    // dropped).
    let mut accepted = 0;
    let mut closed = 0;
    while closed < 9 {
        match tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
        {
            Event::Accepted { .. } => accepted += 1,
            Event::Closed { error, .. } => {
                assert!(error.is_none(), "{error:?}");
                closed += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(accepted, 9);
    let stats = forwarding.stats();
    assert_eq!((stats.accepted, stats.failed, stats.active), (9, 0, 0));
    forwarding.stop();
    forwarding.wait().await.unwrap();
}

/// Waits (polling, 5 s at most) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn warm_streams_are_dialed_ahead_and_a_closed_spare_is_not_used() {
    let kubelet = Arc::new(FakeKubelet::new(&[(7, Behavior::Echo)]));
    let forwarding = PortForwarder::builder(kubelet.clone())
        .addresses(["127.0.0.1"])
        .ports([":7", ":81"])
        .warm_streams(true)
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap();
    let ports = forwarding.ports().to_vec();
    let mut events = Box::pin(forwarding.events());
    // One spare per port before any connection.
    eventually("two spares dialed", || {
        kubelet.dials.load(Ordering::SeqCst) == 2
    })
    .await;
    // A connection takes the spare (no dial of its own) and a new spare is dialed behind it.
    assert_eq!(echo_through(ports[0].local, b"warm").await, b"warm");
    eventually("a new spare", || kubelet.dials.load(Ordering::SeqCst) == 3).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        kubelet.dials.load(Ordering::SeqCst),
        3,
        "one spare per port, no more"
    );
    // Port 81 is refused: its spare got the error and was closed while waiting, so the
    // connection dials its own, and the error is reported for that connection.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut conn = TcpStream::connect(("127.0.0.1", ports[1].local))
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest).await;
    assert!(rest.is_empty());
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
        {
            Event::Closed { port, error, .. } if port.remote == 81 => break error,
            _ => {}
        }
    };
    assert!(
        matches!(error.as_deref(), Some(ConnectionError::Remote { .. })),
        "{error:?}"
    );
    // Its own dial and the new spare.
    eventually("the refused port dialed twice more", || {
        kubelet.dials.load(Ordering::SeqCst) == 5
    })
    .await;
    let stats = forwarding.stats();
    assert_eq!((stats.accepted, stats.failed), (2, 1));
    forwarding.stop();
    forwarding.wait().await.unwrap();
}

#[tokio::test]
async fn a_remote_error_is_reported_and_the_listener_goes_on() {
    let kubelet = Arc::new(FakeKubelet::new(&[(7, Behavior::Echo)]));
    let pf = forwarder(kubelet, &[":7", ":81"]);
    let forwarding = pf.forward().await.unwrap();
    let mut events = Box::pin(forwarding.events());
    let ports = forwarding.ports().to_vec();
    let mut conn = TcpStream::connect(("127.0.0.1", ports[1].local))
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The local connection is closed (nothing to read).
    let _ = conn.read_to_end(&mut buf).await;
    assert!(buf.is_empty());
    let error = loop {
        match events.next().await.unwrap() {
            Event::Closed {
                error: Some(error),
                port,
                ..
            } => {
                assert_eq!(port, ports[1]);
                break error;
            }
            Event::Closed { error: None, .. } => panic!("no error reported"),
            _ => {}
        }
    };
    assert!(
        matches!(&*error, ConnectionError::Remote { remote: 81, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&format!(
            "an error occurred forwarding {} -> 81",
            ports[1].local
        )),
        "{error}"
    );
    // Both listeners still work.
    assert_eq!(
        echo_through(ports[0].local, b"still here").await,
        b"still here"
    );
    let mut again = TcpStream::connect(("127.0.0.1", ports[1].local))
        .await
        .unwrap();
    let _ = again.read_to_end(&mut buf).await;
    assert_eq!(forwarding.stats().failed, 2);
    drop(forwarding);
}

#[tokio::test]
async fn stop_on_remote_error_ends_the_forwarder_like_client_go() {
    let kubelet = Arc::new(FakeKubelet::new(&[(81, Behavior::Refused)]));
    let pf = PortForwarder::builder(kubelet)
        .addresses(["127.0.0.1"])
        .port(":81")
        .stop_on_remote_error(true)
        .build()
        .unwrap();
    let forwarding = pf.forward().await.unwrap();
    let local = forwarding.ports()[0].local;
    let mut conn = TcpStream::connect(("127.0.0.1", local)).await.unwrap();
    let _ = conn.read_to_end(&mut Vec::new()).await;
    let error = tokio::time::timeout(Duration::from_secs(5), forwarding.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(error.to_string(), "lost connection to pod");
    assert!(
        matches!(error, Error::LostConnection(LostCause::Connection(_))),
        "{error:?}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", local)).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn a_gone_pod_ends_the_forwarder() {
    // Through a failed dial...
    let kubelet = Arc::new(FakeKubelet::new(&[(7, Behavior::Echo)]));
    let forwarding = forwarder(kubelet.clone(), &[":7"]).forward().await.unwrap();
    let local = forwarding.ports()[0].local;
    assert_eq!(echo_through(local, b"x").await, b"x");
    kubelet.gone.store(true, Ordering::SeqCst);
    let _conn = TcpStream::connect(("127.0.0.1", local)).await.unwrap();
    let error = tokio::time::timeout(Duration::from_secs(5), forwarding.wait())
        .await
        .unwrap()
        .unwrap_err();
    let Error::LostConnection(LostCause::Connection(cause)) = &error else {
        panic!("{error:?}")
    };
    assert!(
        matches!(
            &**cause,
            ConnectionError::Dial {
                source: DialError::Gone { .. },
                ..
            }
        ),
        "{cause:?}"
    );
    // ...and through the dialer's watch, with a connection open: it is closed too.
    let kubelet = Arc::new(FakeKubelet::new(&[(7, Behavior::Echo)]));
    let forwarding = forwarder(kubelet.clone(), &[":7"]).forward().await.unwrap();
    let local = forwarding.ports()[0].local;
    let mut open = TcpStream::connect(("127.0.0.1", local)).await.unwrap();
    open.write_all(b"y").await.unwrap();
    assert_eq!(open.read_u8().await.unwrap(), b'y');
    kubelet.lost.notify_one();
    let error = tokio::time::timeout(Duration::from_secs(5), forwarding.wait())
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
    let mut rest = Vec::new();
    let _ = open.read_to_end(&mut rest).await; // EOF or reset: closed either way
    assert!(rest.is_empty());
}

#[tokio::test]
async fn cancellation_closes_every_listener_and_stream() {
    let kubelet = Arc::new(FakeKubelet::new(&[
        (7, Behavior::Echo),
        (8, Behavior::Echo),
    ]));
    let token = CancellationToken::new();
    let pf = PortForwarder::builder(kubelet)
        .addresses(["localhost"])
        .ports([":7", ":8"])
        .cancellation_token(token.clone())
        .build()
        .unwrap();
    let forwarding = pf.forward().await.unwrap();
    let listeners = forwarding.listeners().to_vec();
    let mut open = Vec::new();
    for (address, _) in &listeners {
        let mut conn = TcpStream::connect(address).await.unwrap();
        conn.write_all(b"z").await.unwrap();
        assert_eq!(conn.read_u8().await.unwrap(), b'z');
        open.push(conn);
    }
    assert_eq!(forwarding.stats().active, listeners.len() as u64);
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), forwarding.wait())
        .await
        .unwrap()
        .unwrap();
    for (address, _) in &listeners {
        assert!(
            TcpStream::connect(address).await.is_err(),
            "{address} still listens"
        );
    }
    for mut conn in open {
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
    }
    // The forwarder's token is cancelled: nothing new starts.
    assert!(matches!(pf.connect(7).await, Err(Error::Stopped)));
    assert!(matches!(pf.forward().await, Err(Error::Stopped)));
}

#[tokio::test]
async fn start_up_errors() {
    let kubelet = Arc::new(FakeKubelet::new(&[]));
    let error = PortForwarder::builder(kubelet.clone())
        .build()
        .unwrap()
        .forward()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NoPorts), "{error:?}");
    assert!(matches!(
        PortForwarder::builder(kubelet.clone())
            .addresses(Vec::<String>::new())
            .build(),
        Err(Error::NoAddresses)
    ));
    assert!(matches!(
        PortForwarder::builder(kubelet.clone())
            .port("5000:a")
            .build(),
        Err(Error::InvalidPort { .. })
    ));
    assert!(matches!(
        PortForwarder::builder(kubelet.clone())
            .addresses(["domain.invalid"])
            .build(),
        Err(Error::InvalidAddress { .. })
    ));
    // The pod does not run: no listener is opened.
    let mut pending = FakeKubelet::new(&[]);
    pending.check_fails = true;
    let error = forwarder(Arc::new(pending), &["80"])
        .forward()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Dial(DialError::NotRunning { .. })),
        "{error:?}"
    );
    // Every port taken: a clear error naming them.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let error = forwarder(kubelet.clone(), &[&format!("{port}:80")])
        .forward()
        .await
        .unwrap_err();
    let Error::NoListener { failures } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(failures.len(), 1);
    assert!(
        error
            .to_string()
            .starts_with("unable to listen on any of the requested ports"),
        "{error}"
    );
    // One port taken, another free: forwarding starts, the failure is listed.
    let forwarding = forwarder(kubelet, &[&format!("{port}:80"), ":81"])
        .forward()
        .await
        .unwrap();
    assert_eq!(forwarding.ports().len(), 1);
    assert_eq!(forwarding.listen_failures().len(), 1);
    assert_eq!(forwarding.listen_failures()[0].port.local, port);
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_is_given_up() {
    struct Silent(std::sync::Mutex<Vec<tokio::io::DuplexStream>>);
    impl Dialer for Silent {
        fn dial<'a>(
            &'a self,
            _port: u16,
            _protocols: &'a [&'a str],
        ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
            Box::pin(async {
                let (client, server) = tokio::io::duplex(1 << 20);
                // Kept open, never read nor written: pings go unanswered.
                self.0.lock().unwrap().push(server);
                Ok(Upgraded {
                    io: Box::new(client),
                    protocol: "v4.channel.k8s.io".into(),
                })
            })
        }
    }
    let pf = PortForwarder::builder(Silent(Default::default()))
        .build()
        .unwrap();
    let stream = pf.connect(80).await.unwrap();
    let error = stream.outcome().wait().await.unwrap_err();
    assert!(error.is_lost_connection());
    assert!(
        error
            .to_string()
            .contains("nothing from the server for 61 s"),
        "{error}"
    );
}

#[tokio::test]
async fn a_local_half_close_gets_the_answer_then_closes() {
    // v4: the pod's side cannot be told; its answer still arrives, and the connection closes
    // once the pod's side is quiet for the linger time.
    let kubelet = Arc::new(FakeKubelet::new(&[(7, Behavior::Echo)]));
    let pf = PortForwarder::builder(kubelet.clone())
        .addresses(["127.0.0.1"])
        .port(":7")
        .half_close_linger(Duration::from_millis(100))
        .build()
        .unwrap();
    let forwarding = pf.forward().await.unwrap();
    let mut conn = TcpStream::connect(("127.0.0.1", forwarding.ports()[0].local))
        .await
        .unwrap();
    conn.write_all(b"request").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer))
        .await
        .expect("closed after the linger")
        .unwrap();
    assert_eq!(answer, b"request");
    // v5: the EOF reaches the pod's side, which ends the connection itself.
    let mut v5 = FakeKubelet::new(&[(7, Behavior::Echo)]);
    v5.accepts = vec![ChannelProtocol::V5];
    let pf = PortForwarder::builder(Arc::new(v5))
        .addresses(["127.0.0.1"])
        .port(":7")
        .protocols([ChannelProtocol::V5, ChannelProtocol::V4])
        .half_close_linger(Duration::from_secs(3600))
        .build()
        .unwrap();
    let forwarding = pf.forward().await.unwrap();
    let mut conn = TcpStream::connect(("127.0.0.1", forwarding.ports()[0].local))
        .await
        .unwrap();
    conn.write_all(b"bye").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer))
        .await
        .expect("the pod's side closed")
        .unwrap();
    assert_eq!(answer, b"bye");
}
