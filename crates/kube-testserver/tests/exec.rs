//! pods/exec and pods/attach over WebSocket, with a plain tokio-tungstenite client.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{TestClient, pod};
use futures_util::{SinkExt, StreamExt};
use http::{StatusCode, header};
use kube_testserver::TestServer;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

type Ws = WebSocketStream<TcpStream>;

const LIMIT: Duration = Duration::from_secs(10);

async fn server() -> TestServer {
    TestServer::builder()
        .plain_http()
        .simulated_kubelet(Some(Duration::from_millis(20)))
        .start()
        .await
        .expect("server")
}

/// Creates `body` and waits until the simulated kubelet reports it Running.
async fn running_pod(server: &TestServer, body: Value) {
    let name = body["metadata"]["name"].as_str().unwrap().to_string();
    let client = TestClient::new(server);
    let reply = client.post("/api/v1/namespaces/default/pods", &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
    // The pod's status, polled through the API until the kubelet (20 ms) has started it.
    tokio::time::timeout(LIMIT, async {
        loop {
            let pod = client
                .get(&format!("/api/v1/namespaces/default/pods/{name}"))
                .await
                .json();
            if pod["status"]["phase"] == "Running" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("pod running");
}

async fn connect(
    server: &TestServer,
    path: &str,
    protocols: &[&str],
) -> Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error> {
    let stream = TcpStream::connect(server.address()).await.unwrap();
    let mut request = format!("ws://{}{}", server.address(), path)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert(
        header::AUTHORIZATION,
        format!("Bearer {}", server.token()).parse().unwrap(),
    );
    if !protocols.is_empty() {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            protocols.join(", ").parse().unwrap(),
        );
    }
    client_async(request, stream).await
}

fn exec_path(pod: &str, query: &str) -> String {
    format!("/api/v1/namespaces/default/pods/{pod}/exec?{query}")
}

/// What a session delivered, per channel.
#[derive(Default, Debug)]
struct Received {
    first: Option<(u8, Vec<u8>)>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    error: Vec<u8>,
    closed_normally: bool,
}

impl Received {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn status(&self) -> Value {
        serde_json::from_slice(&self.error).unwrap_or(Value::Null)
    }
}

fn decode(message: &Message) -> Option<(u8, Vec<u8>)> {
    use base64::Engine as _;
    match message {
        Message::Binary(bytes) => bytes.split_first().map(|(c, d)| (*c, d.to_vec())),
        Message::Text(text) => {
            let (channel, data) = text.as_str().split_at(1);
            Some((
                channel.as_bytes()[0] - b'0',
                base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap(),
            ))
        }
        _ => None,
    }
}

/// Reads one message into `received`; `false` at the end.
async fn read_one(ws: &mut Ws, received: &mut Received) -> bool {
    match ws.next().await {
        Some(Ok(Message::Close(frame))) => {
            received.closed_normally = frame.is_some_and(|f| u16::from(f.code) == 1000);
            true
        }
        Some(Ok(message)) => {
            if let Some((channel, data)) = decode(&message) {
                if received.first.is_none() {
                    received.first = Some((channel, data.clone()));
                }
                match channel {
                    1 => received.stdout.extend(data),
                    2 => received.stderr.extend(data),
                    3 => received.error.extend(data),
                    other => panic!("unexpected channel {other}"),
                }
            }
            true
        }
        Some(Err(_)) | None => false,
    }
}

/// Reads everything until the server closes.
async fn read_all(ws: &mut Ws) -> Received {
    let mut received = Received::default();
    tokio::time::timeout(LIMIT, async { while read_one(ws, &mut received).await {} })
        .await
        .expect("session ended");
    received
}

/// Reads until stdout contains `needle`.
async fn read_until(ws: &mut Ws, received: &mut Received, needle: &str) {
    tokio::time::timeout(LIMIT, async {
        while !received.stdout().contains(needle) {
            assert!(read_one(ws, received).await, "closed before {needle:?}");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", received.stdout()));
}

async fn exec(server: &TestServer, query: &str, protocol: &str) -> Received {
    let protocols: Vec<&str> = if protocol.is_empty() {
        vec![]
    } else {
        vec![protocol]
    };
    let (mut ws, response) = connect(server, &exec_path("p", query), &protocols)
        .await
        .expect("upgrade");
    assert_eq!(
        response
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .map(|v| v.to_str().unwrap().to_string()),
        (!protocol.is_empty()).then(|| protocol.to_string())
    );
    read_all(&mut ws).await
}

async fn wait_sessions_end(server: &TestServer) {
    tokio::time::timeout(LIMIT, async {
        while server.exec_sessions() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("sessions ended");
}

#[tokio::test]
async fn exec_v5_echo_and_exit_codes() {
    let server = server().await;
    running_pod(&server, pod("p", json!({}))).await;
    let received = exec(
        &server,
        "command=echo&command=hello&stdout=true&stderr=true",
        "v5.channel.k8s.io",
    )
    .await;
    assert_eq!(
        received.first,
        Some((1, vec![])),
        "first an empty stdout frame"
    );
    assert_eq!(received.stdout(), "hello\n");
    assert_eq!(
        received.status(),
        json!({"metadata": {}, "status": "Success"})
    );
    assert!(received.closed_normally);

    let received = exec(
        &server,
        "command=sh&command=-c&command=echo%20oops%3B%20exit%203&stdout=true&stderr=true",
        "v5.channel.k8s.io",
    )
    .await;
    let status = received.status();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "ExitCode", "message": "3"}])
    );
    assert_eq!(
        status["message"],
        "command terminated with non-zero exit code: error executing command [sh -c echo oops; exit 3], exit code 3"
    );

    let received = exec(
        &server,
        "command=sh&command=-c&command=nosuch%3B%20exit%203&stdout=true&stderr=true",
        "v4.channel.k8s.io",
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&received.stderr),
        "sh: nosuch: not found\n"
    );
    assert_eq!(received.status()["details"]["causes"][0]["message"], "3");

    // A missing executable fails like containerd does.
    let received = exec(
        &server,
        "command=nosuch&stdout=true&stderr=true",
        "v5.channel.k8s.io",
    )
    .await;
    let status = received.status();
    assert_eq!(status["reason"], "InternalError");
    assert_eq!(status["code"], 500);
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with("Internal error occurred: error executing command in container: failed to exec in container: failed to start exec \"")
            && message.ends_with(": OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown"),
        "{message}"
    );
    wait_sessions_end(&server).await;
}

#[tokio::test]
async fn stdin_echo_and_v5_close() {
    let server = server().await;
    running_pod(&server, pod("p", json!({}))).await;
    let (mut ws, _) = connect(
        &server,
        &exec_path("p", "command=cat&stdin=true&stdout=true&stderr=true"),
        &["v5.channel.k8s.io", "v4.channel.k8s.io"],
    )
    .await
    .unwrap();
    let mut received = Received::default();
    ws.send(Message::Binary(Bytes::from_static(b"\x00abc\n")))
        .await
        .unwrap();
    read_until(&mut ws, &mut received, "abc\n").await;
    ws.send(Message::Binary(Bytes::from_static(b"\x00def")))
        .await
        .unwrap();
    // Unknown channels are ignored.
    ws.send(Message::Binary(Bytes::from_static(b"\x09zzz")))
        .await
        .unwrap();
    ws.send(Message::Binary(Bytes::from_static(&[255, 0])))
        .await
        .unwrap();
    let rest = read_all(&mut ws).await;
    assert_eq!(
        format!("{}{}", received.stdout(), rest.stdout()),
        "abc\ndef"
    );
    assert_eq!(rest.status()["status"], "Success");
}

#[tokio::test]
async fn older_protocols() {
    let server = server().await;
    running_pod(&server, pod("p", json!({}))).await;
    let received = exec(&server, "command=hostname&stdout=true", "v4.channel.k8s.io").await;
    assert_eq!(received.stdout(), "p\n");
    assert_eq!(received.status()["status"], "Success");

    let received = exec(
        &server,
        "command=echo&command=hi&stdout=true&stderr=true",
        "v4.base64.channel.k8s.io",
    )
    .await;
    assert_eq!(received.first, Some((1, vec![])));
    assert_eq!(received.stdout(), "hi\n");
    assert_eq!(received.status()["status"], "Success");

    // Before v4: the error channel carries plain text, and nothing on success.
    let received = exec(&server, "command=false&stdout=true", "channel.k8s.io").await;
    assert_eq!(
        String::from_utf8_lossy(&received.error),
        "command terminated with non-zero exit code: error executing command [false], exit code 1"
    );
    let received = exec(&server, "command=true&stderr=true", "base64.channel.k8s.io").await;
    assert_eq!(
        received.first,
        Some((2, vec![])),
        "stderr is the lowest writable channel"
    );
    assert!(received.error.is_empty());
    let received = exec(&server, "command=true&stdout=true", "").await;
    assert!(received.error.is_empty());
    assert!(received.closed_normally);
}

#[tokio::test]
async fn tty_resize_and_interactive_shell() {
    let server = server().await;
    running_pod(&server, pod("p", json!({}))).await;
    let (mut ws, _) = connect(
        &server,
        &exec_path(
            "p",
            "command=sh&stdin=true&stdout=true&stderr=true&tty=true",
        ),
        &["v5.channel.k8s.io"],
    )
    .await
    .unwrap();
    let mut received = Received::default();
    read_until(&mut ws, &mut received, "/ # ").await;
    ws.send(Message::Binary(Bytes::from_static(
        b"\x04{\"Width\":100,\"Height\":30}",
    )))
    .await
    .unwrap();
    ws.send(Message::Binary(Bytes::from_static(b"\x00stty size\r")))
        .await
        .unwrap();
    read_until(&mut ws, &mut received, "30 100\r\n").await;
    // stderr goes to stdout with a TTY.
    ws.send(Message::Binary(Bytes::from_static(b"\x00nosuch\r")))
        .await
        .unwrap();
    read_until(&mut ws, &mut received, "sh: nosuch: not found\r\n").await;
    ws.send(Message::Binary(Bytes::from_static(b"\x00exit 4\r")))
        .await
        .unwrap();
    let rest = read_all(&mut ws).await;
    assert!(received.stderr.is_empty() && rest.stderr.is_empty());
    assert_eq!(rest.status()["details"]["causes"][0]["message"], "4");
}

#[tokio::test]
async fn client_disconnect_and_shutdown_stop_the_command() {
    let server = server().await;
    running_pod(&server, pod("p", json!({}))).await;
    let (mut ws, _) = connect(
        &server,
        &exec_path("p", "command=sleep&command=100&stdout=true"),
        &["v5.channel.k8s.io"],
    )
    .await
    .unwrap();
    let mut received = Received::default();
    assert!(read_one(&mut ws, &mut received).await);
    assert_eq!(server.exec_sessions(), 1);
    drop(ws);
    wait_sessions_end(&server).await;

    let (mut ws, _) = connect(
        &server,
        &exec_path("p", "command=sleep&command=100&stdout=true"),
        &["v5.channel.k8s.io"],
    )
    .await
    .unwrap();
    assert!(read_one(&mut ws, &mut Received::default()).await);
    server.shutdown().await;
    // The server closes the WebSocket: the client sees the end, not a hang.
    tokio::time::timeout(LIMIT, async {
        while read_one(&mut ws, &mut Received::default()).await {}
    })
    .await
    .expect("closed");
}

#[tokio::test]
async fn attach_streams_the_main_process() {
    let server = server().await;
    running_pod(&server, pod("p", json!({}))).await;
    let (mut ws, _) = connect(
        &server,
        "/api/v1/namespaces/default/pods/p/attach?stdout=true&stderr=true&stdin=true",
        &["v5.channel.k8s.io"],
    )
    .await
    .unwrap();
    let mut received = Received::default();
    read_until(&mut ws, &mut received, "\n").await;
    let seconds: i64 = received.stdout().trim().parse().unwrap();
    assert!(seconds > 1_700_000_000);
    // Stdin is read and dropped.
    ws.send(Message::Binary(Bytes::from_static(b"\x00ignored\n")))
        .await
        .unwrap();
    // Deleting the pod ends the attach with Success.
    let reply = TestClient::new(&server)
        .delete("/api/v1/namespaces/default/pods/p")
        .await;
    assert!(reply.status.is_success());
    let rest = read_all(&mut ws).await;
    assert_eq!(rest.status()["status"], "Success");
    assert!(!rest.stdout().contains("ignored"));
    wait_sessions_end(&server).await;
}

#[tokio::test]
async fn negotiation_errors() {
    let server = server().await;
    running_pod(&server, pod("p", json!({}))).await;
    let error = connect(
        &server,
        &exec_path("p", "command=true&stdout=true"),
        &["v9.channel.k8s.io", "bogus"],
    )
    .await
    .unwrap_err();
    // A browser client's token offer authenticates and is not a protocol choice.
    let stream = TcpStream::connect(server.address()).await.unwrap();
    let mut request = format!(
        "ws://{}{}",
        server.address(),
        exec_path("p", "command=true&stdout=1")
    )
    .into_client_request()
    .unwrap();
    let offer = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(server.token())
    };
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        format!("base64url.bearer.authorization.k8s.io.{offer}, v5.channel.k8s.io")
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = client_async(request, stream)
        .await
        .expect("token in a subprotocol");
    assert_eq!(read_all(&mut ws).await.status()["status"], "Success");

    // A SPDY client (kubectl's fallback) is told that only WebSocket is spoken.
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n",
        exec_path("p", "command=true&stdout=1"),
        server.token()
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::io::AsyncReadExt::read(&mut stream, &mut answer)
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("does not support SPDY"), "{answer}");

    let tungstenite::Error::Http(response) = error else {
        panic!("{error}");
    };
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let status: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("requested protocol(s) are not supported: [v9.channel.k8s.io bogus]; supports [v5.channel.k8s.io"),
        "{status}"
    );
}

#[tokio::test]
async fn validation_errors() {
    let server = server().await;
    let c = TestClient::new(&server);
    let mut two = pod("two", json!({}));
    two["spec"]["containers"] =
        json!([{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]);
    running_pod(&server, two).await;
    running_pod(&server, pod("p", json!({}))).await;
    let cases = [
        (
            "missing/exec?command=true&stdout=1",
            404,
            "pods \"missing\" not found",
        ),
        (
            "p/exec?command=true",
            400,
            "you must specify at least 1 of stdin, stdout, stderr",
        ),
        (
            "p/exec?stdout=1",
            400,
            "you must specify at least one command for the container",
        ),
        (
            "two/exec?command=true&stdout=1",
            400,
            "a container name must be specified for pod two, choose one of: [a b]",
        ),
        (
            "p/exec?command=true&stdout=1&container=x",
            400,
            "container x is not valid for pod p",
        ),
        (
            "p/exec?command=true&stdout=1",
            400,
            "Upgrade request required",
        ),
        ("p/attach?stdout=1", 400, "Upgrade request required"),
    ];
    for (path, code, message) in cases {
        let reply = c
            .get(&format!("/api/v1/namespaces/default/pods/{path}"))
            .await;
        assert_eq!(reply.status.as_u16(), code, "{path}");
        let status = reply.json();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["message"], message, "{path}");
    }
    // Without a kubelet: no host, then a container that is not running, then a completed pod.
    let bare = TestServer::builder().plain_http().start().await.unwrap();
    let c = TestClient::new(&bare);
    c.post("/api/v1/namespaces/default/pods", &pod("p", json!({})))
        .await;
    let exec = "/api/v1/namespaces/default/pods/p/exec?command=true&stdout=1";
    assert_eq!(
        c.get(exec).await.json()["message"],
        "pod p does not have a host assigned"
    );
    let reply = c
        .patch(
            "/api/v1/namespaces/default/pods/p",
            "application/merge-patch+json",
            &json!({"spec": {"nodeName": "n1"}}),
        )
        .await;
    assert!(reply.status.is_success(), "{:?}", reply.json());
    assert_eq!(
        c.get(exec).await.json()["message"],
        "container not found (\"main\")"
    );
    let reply = c
        .patch(
            "/api/v1/namespaces/default/pods/p/status",
            "application/merge-patch+json",
            &json!({"status": {"phase": "Succeeded"}}),
        )
        .await;
    assert!(reply.status.is_success(), "{:?}", reply.json());
    assert_eq!(
        c.get(exec).await.json()["message"],
        "container not found (\"main\")"
    );
}
