//! pods/portforward over WebSocket (the kubelet's v4 channel protocol), over real TLS, with a
//! raw tokio-tungstenite client.

mod portforward_common;

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use http::{Method, StatusCode, header};
use kube_testserver::TestServer;
use portforward_common::{LIMIT, delete_pod, eventually, pod, request, running_pod, server, tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

type Ws = WebSocketStream<TlsStream<TcpStream>>;

async fn connect(
    server: &TestServer,
    pod: &str,
    query: &str,
    protocols: &[&str],
) -> Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error> {
    let stream = tls(server).await;
    let mut request = format!(
        "wss://{}/api/v1/namespaces/default/pods/{pod}/portforward?{query}",
        server.address()
    )
    .into_client_request()
    .expect("request");
    let headers = request.headers_mut();
    headers.insert(
        header::AUTHORIZATION,
        format!("Bearer {}", server.token())
            .parse()
            .expect("header"),
    );
    if !protocols.is_empty() {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            protocols.join(", ").parse().expect("header"),
        );
    }
    client_async(request, stream).await
}

/// A session's messages, decoded for `base64` or binary framing.
struct Session {
    ws: Ws,
    base64: bool,
}

impl Session {
    async fn open(server: &TestServer, pod: &str, query: &str, protocol: &str) -> Session {
        let protocols: &[&str] = if protocol.is_empty() {
            &[]
        } else {
            &[protocol]
        };
        let (ws, response) = connect(server, pod, query, protocols)
            .await
            .expect("upgrade");
        let negotiated = response
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert_eq!(negotiated, protocol);
        Session {
            ws,
            base64: protocol.contains("base64"),
        }
    }

    /// The next data message: (channel, payload); `None` once the server closed.
    async fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            let message = tokio::time::timeout(LIMIT, self.ws.next())
                .await
                .expect("message in time")?
                .ok()?;
            match message {
                Message::Binary(bytes) => {
                    let (channel, data) = bytes.split_first().expect("channel byte");
                    return Some((*channel, data.to_vec()));
                }
                Message::Text(text) => {
                    let (channel, data) = text.as_str().split_at(1);
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .expect("base64");
                    return Some((channel.as_bytes()[0] - b'0', data));
                }
                Message::Close(frame) => {
                    let code = frame.map(|f| u16::from(f.code));
                    assert_eq!(code, Some(1000), "normal close");
                    return None;
                }
                _ => continue,
            }
        }
    }

    async fn send(&mut self, channel: u8, data: &[u8]) {
        let message = if self.base64 {
            let mut text = String::from(char::from(b'0' + channel));
            base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
            Message::text(text)
        } else {
            let mut bytes = vec![channel];
            bytes.extend_from_slice(data);
            Message::Binary(bytes.into())
        };
        self.ws.send(message).await.expect("send");
    }

    /// Reads the opening port numbers of `ports` (data then error channel, port by port).
    async fn expect_port_prefixes(&mut self, ports: &[u16]) {
        for (index, port) in ports.iter().enumerate() {
            for channel in [index * 2, index * 2 + 1] {
                assert_eq!(
                    self.next().await,
                    Some((channel as u8, port.to_le_bytes().to_vec())),
                    "port prefix on channel {channel}"
                );
            }
        }
    }

    /// Reads data on `channel` until `done` says the collected bytes are complete.
    async fn read_until(&mut self, channel: u8, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut collected = Vec::new();
        while !done(&collected) {
            let (got, data) = self.next().await.expect("more data");
            assert_eq!(
                got,
                channel,
                "data on an unexpected channel: {:?}",
                String::from_utf8_lossy(&data)
            );
            collected.extend_from_slice(&data);
        }
        collected
    }
}

/// Whether `bytes` hold `count` complete nginx responses (Content-Length bodies).
fn responses_complete(bytes: &[u8], count: usize) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let mut rest: &str = &text;
    for _ in 0..count {
        let Some(head_end) = rest.find("\r\n\r\n") else {
            return false;
        };
        let length: usize = rest[..head_end]
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let end = head_end + 4 + length;
        if rest.len() < end {
            return false;
        }
        rest = &rest[end..];
    }
    true
}

#[tokio::test]
async fn nginx_serves_its_welcome_page_to_sequential_requests() {
    let server = server().await;
    running_pod(&server, pod("web", "nginx:1.27", &[80])).await;
    let mut session = Session::open(&server, "web", "ports=80", "v4.channel.k8s.io").await;
    session.expect_port_prefixes(&[80]).await;
    for round in 0..3 {
        session
            .send(
                0,
                b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n",
            )
            .await;
        let response = session.read_until(0, |b| responses_complete(b, 1)).await;
        let text = String::from_utf8(response).expect("utf-8");
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\n"),
            "round {round}: {text}"
        );
        assert!(text.contains("Server: nginx/"));
        assert!(text.contains("Connection: keep-alive"));
        assert!(text.contains("<title>Welcome to nginx!</title>"));
    }
    // Two pipelined requests, the second closing the connection.
    session
        .send(0, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let both = session.read_until(0, |b| responses_complete(b, 2)).await;
    let text = String::from_utf8(both).expect("utf-8");
    assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
    assert!(text.contains("HTTP/1.1 200 OK\r\n"));
    // nginx closed: the only port is done, so the server closes the WebSocket normally.
    assert_eq!(session.next().await, None);
    eventually("the session to end", || server.port_forward_sessions() == 0).await;
}

#[tokio::test]
async fn a_declared_port_echoes_in_binary_and_base64_framing() {
    let server = server().await;
    running_pod(&server, pod("echo", "busybox", &[7000])).await;
    for protocol in ["", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"] {
        let mut session = Session::open(&server, "echo", "ports=7000", protocol).await;
        session.expect_port_prefixes(&[7000]).await;
        for message in [
            &b"hello"[..],
            &[0u8, 255, 1, 2][..],
            &vec![b'x'; 100_000][..],
        ] {
            session.send(0, message).await;
            let echoed = session.read_until(0, |b| b.len() >= message.len()).await;
            assert_eq!(echoed, message, "{protocol}");
        }
        session.ws.close(None).await.expect("close");
    }
    eventually("the sessions to end", || {
        server.port_forward_sessions() == 0
    })
    .await;
}

#[tokio::test]
async fn a_port_the_pod_does_not_listen_on_gets_the_kubelets_error() {
    let server = server().await;
    running_pod(&server, pod("quiet", "busybox", &[])).await;
    let mut session = Session::open(&server, "quiet", "ports=81", "v4.channel.k8s.io").await;
    session.expect_port_prefixes(&[81]).await;
    let (channel, data) = session.next().await.expect("error message");
    assert_eq!(channel, 1);
    let text = String::from_utf8(data).expect("utf-8");
    assert!(
        text.starts_with("error forwarding port 81 to pod "),
        "{text}"
    );
    assert!(
        text.contains(
            ", uid : failed to execute portforward in network namespace \"/var/run/netns/cni-"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("IPv4: dial tcp4 127.0.0.1:81: connect: connection refused IPv6 dial tcp6 [::1]:81: connect: connection refused "),
        "{text}"
    );
    assert_eq!(
        session.next().await,
        None,
        "the server closes after the last port"
    );
}

#[tokio::test]
async fn several_ports_share_one_websocket() {
    let server = server().await;
    let mut body = pod("multi", "nginx", &[80, 9000]);
    body["spec"]["containers"][0]["ports"][1]["name"] = "echo".into();
    running_pod(&server, body).await;
    let mut session = Session::open(
        &server,
        "multi",
        "ports=80&ports=9000,81",
        "v4.channel.k8s.io",
    )
    .await;
    session.expect_port_prefixes(&[80, 9000, 81]).await;
    // Port 81 fails on channel 5 at once; the other two keep working.
    let (channel, data) = session.next().await.expect("error on channel 5");
    assert_eq!(channel, 5, "{}", String::from_utf8_lossy(&data));
    session.send(2, b"ping").await;
    assert_eq!(session.read_until(2, |b| b.len() >= 4).await, b"ping");
    session.send(0, b"HEAD / HTTP/1.0\r\n\r\n").await;
    let head = session.read_until(0, |b| b.ends_with(b"\r\n\r\n")).await;
    assert!(String::from_utf8_lossy(&head).contains("Connection: close"));
    session.send(2, b"pong").await;
    assert_eq!(session.read_until(2, |b| b.len() >= 4).await, b"pong");
}

#[tokio::test]
async fn deleting_the_pod_ends_the_streams() {
    let server = server().await;
    running_pod(&server, pod("doomed", "busybox", &[7000])).await;
    let mut session = Session::open(&server, "doomed", "ports=7000", "v4.channel.k8s.io").await;
    session.expect_port_prefixes(&[7000]).await;
    session.send(0, b"still here").await;
    assert_eq!(
        session.read_until(0, |b| b.len() >= 10).await,
        b"still here"
    );
    assert_eq!(server.port_forward_sessions(), 1);
    delete_pod(&server, "doomed").await;
    // The containers stop: the connection ends without an error, and the WebSocket closes.
    assert_eq!(session.next().await, None);
    eventually("the session to end", || server.port_forward_sessions() == 0).await;
}

#[tokio::test]
async fn a_routed_port_reaches_a_local_listener() {
    let server = server().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let accepted = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        stream
            .write_all(b"hello from the test\n")
            .await
            .expect("write");
        let mut line = [0u8; 5];
        stream.read_exact(&mut line).await.expect("read");
        stream
            .write_all(&line.to_ascii_uppercase())
            .await
            .expect("write");
        // Closing ends the forwarded connection.
    });
    // Routed ports need not be declared, and override what the image serves.
    running_pod(&server, pod("routed", "nginx", &[])).await;
    server.route_pod_port("default", "routed", 80, address);
    let mut session = Session::open(&server, "routed", "ports=80", "v4.channel.k8s.io").await;
    session.expect_port_prefixes(&[80]).await;
    assert_eq!(
        session.read_until(0, |b| b.ends_with(b"\n")).await,
        b"hello from the test\n"
    );
    session.send(0, b"quiet").await;
    assert_eq!(session.read_until(0, |b| b.len() >= 5).await, b"QUIET");
    accepted.await.expect("listener task");
    assert_eq!(session.next().await, None);

    // A route to an address nobody listens on fails like a refused port.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("address")
    };
    server.route_pod_port("default", "routed", 8080, closed);
    let mut session = Session::open(&server, "routed", "ports=8080", "v4.channel.k8s.io").await;
    session.expect_port_prefixes(&[8080]).await;
    let (channel, data) = session.next().await.expect("error");
    assert_eq!(channel, 1);
    let text = String::from_utf8(data).expect("utf-8");
    assert!(
        text.contains(&format!(
            "IPv4: dial tcp4 {closed}: connect: connection refused"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn requests_are_checked_like_kube_apiserver_and_the_kubelet() {
    let server = TestServer::builder()
        .simulated_kubelet(Some(Duration::from_millis(20)))
        .start()
        .await
        .expect("server");
    let upgrade = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let path = |pod: &str, query: &str| {
        format!("/api/v1/namespaces/default/pods/{pod}/portforward?{query}")
    };
    // No such pod: kube-apiserver's 404 Status.
    let reply = request(
        &server,
        Method::GET,
        &path("ghost", "ports=80"),
        &upgrade,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["message"], "pods \"ghost\" not found");

    running_pod(&server, pod("web", "nginx", &[80])).await;
    // Not an upgrade.
    let reply = request(&server, Method::GET, &path("web", "ports=80"), &[], None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["message"], "Upgrade request required");
    // Other methods.
    let reply = request(
        &server,
        Method::PUT,
        &path("web", "ports=80"),
        &upgrade,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    // The kubelet's option errors, in plain text.
    let reply = request(&server, Method::GET, &path("web", ""), &upgrade, None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.text(), "query parameter \"ports\" is required");
    let reply = request(
        &server,
        Method::GET,
        &path("web", "ports=x"),
        &upgrade,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.text(),
        "unable to parse \"x\" as a port: strconv.ParseUint: parsing \"x\": invalid syntax"
    );
    // A subprotocol the kubelet does not speak: wsstream's 403.
    let mut offer = upgrade.to_vec();
    offer.push(("sec-websocket-protocol", "portforward.k8s.io"));
    let reply = request(&server, Method::GET, &path("web", "ports=80"), &offer, None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply
            .text()
            .starts_with("requested protocol(s) are not supported: [portforward.k8s.io]")
    );
    // POST upgrades too (client-go's SPDY dialer posts; browsers get).
    let reply = request(
        &server,
        Method::POST,
        &path("web", "ports=80"),
        &upgrade,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::SWITCHING_PROTOCOLS);

    // A pod the kubelet has not started: no node yet, then not running.
    let slow = TestServer::builder()
        .simulated_kubelet(None)
        .start()
        .await
        .expect("server");
    let reply = request(
        &slow,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        &[],
        Some(&pod("pending", "nginx", &[80])),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let reply = request(
        &slow,
        Method::GET,
        &path("pending", "ports=80"),
        &upgrade,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json()["message"],
        "pod pending does not have a host assigned"
    );
    let mut bound = pod("bound", "nginx", &[80]);
    bound["spec"]["nodeName"] = kube_testserver::NODE_NAME.into();
    let reply = request(
        &slow,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        &[],
        Some(&bound),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let reply = request(
        &slow,
        Method::GET,
        &path("bound", "ports=80"),
        &upgrade,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.text(), "pod not found (\"bound_default\")");
}
