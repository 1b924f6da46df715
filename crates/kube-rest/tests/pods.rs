//! Pod logs, exec and attach against kube-testserver (TLS, the simulated kubelet), and against
//! hand-written servers that break the stream.

mod common;

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube_rest::channel::ChannelProtocol;
use kube_rest::exec::{AttachParams, TerminalSize};
use kube_rest::logs::LogParams;
use kube_rest::{Api, Client, Config, Error, Kubeconfig, PostParams};
use kube_testserver::TestServer;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

const LOG_INTERVAL: Duration = Duration::from_millis(40);
/// Generous bound on anything that should happen promptly: a hang fails instead of blocking.
const PROMPTLY: Duration = Duration::from_secs(10);

async fn start() -> (TestServer, Api<Pod>) {
    let server = TestServer::builder()
        .simulated_kubelet(Some(Duration::from_millis(10)))
        .log_interval(LOG_INTERVAL)
        .start()
        .await
        .unwrap();
    let kubeconfig = Kubeconfig::parse(
        &server.kubeconfig_yaml(),
        Path::new("/testserver/kubeconfig"),
    )
    .unwrap();
    let config = Config::from_kubeconfig(&kubeconfig)
        .unwrap()
        .without_throttle();
    let pods = Api::default_namespaced(Client::try_from_config(config).unwrap());
    (server, pods)
}

fn pod(name: &str, containers: &[&str]) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.into());
    pod.spec = Some(PodSpec {
        containers: containers
            .iter()
            .map(|c| Container {
                name: c.to_string(),
                image: Some("busybox".into()),
                command: Some(vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "while :; do date +%s; sleep 1; done".into(),
                ]),
                ..Container::default()
            })
            .collect(),
        ..PodSpec::default()
    });
    pod
}

async fn running(pods: &Api<Pod>, name: &str, containers: &[&str]) {
    pods.create(&PostParams::default(), &pod(name, containers))
        .await
        .unwrap();
    tokio::time::timeout(PROMPTLY, async {
        loop {
            let pod = pods.get(name).await.unwrap();
            if pod.status.and_then(|s| s.phase).as_deref() == Some("Running") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the simulated kubelet runs the pod");
}

/// Waits until the container has written at least `lines` lines.
async fn wait_for_lines(pods: &Api<Pod>, name: &str, lines: usize) -> String {
    tokio::time::timeout(PROMPTLY, async {
        loop {
            let log = pods.logs(name, &LogParams::default()).await.unwrap();
            if log.lines().count() >= lines {
                return log;
            }
            tokio::time::sleep(LOG_INTERVAL).await;
        }
    })
    .await
    .expect("the container writes lines")
}

fn is_epoch_seconds(line: &str) -> bool {
    line.parse::<u64>().is_ok_and(|s| s > 1_600_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_since_timestamps_and_limit() {
    if common::skip_on_cluster(
        "logs_tail_since_timestamps_and_limit",
        "it needs the simulated kubelet",
    ) {
        return;
    }
    let (_server, pods) = start().await;
    running(&pods, "logger", &["main"]).await;
    let all = wait_for_lines(&pods, "logger", 5).await;
    assert!(all.lines().all(is_epoch_seconds), "{all}");

    let tail = pods
        .logs("logger", &LogParams::default().tail_lines(2))
        .await
        .unwrap();
    assert_eq!(tail.lines().count(), 2, "{tail}");

    let stamped = pods
        .logs(
            "logger",
            &LogParams::default().tail_lines(1).timestamps(true),
        )
        .await
        .unwrap();
    let (time, value) = stamped.trim_end().split_once(' ').unwrap();
    time.parse::<jiff::Timestamp>().unwrap();
    assert!(is_epoch_seconds(value), "{stamped}");

    // sinceTime in the future: nothing yet; sinceSeconds=1 is within the last second.
    let future = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
    let none = pods
        .logs("logger", &LogParams::default().since_time(future))
        .await
        .unwrap();
    assert_eq!(none, "");
    let asked = jiff::Timestamp::now();
    let recent = pods
        .logs(
            "logger",
            &LogParams::default().since_seconds(1).timestamps(true),
        )
        .await
        .unwrap();
    assert!(recent.lines().count() >= 1, "{recent}");
    for line in recent.lines() {
        let time: jiff::Timestamp = line.split_once(' ').unwrap().0.parse().unwrap();
        // Within the last second when asked (a little slack for the clock's rounding).
        assert!(
            time >= asked - jiff::SignedDuration::from_millis(1100),
            "{line} is older than 1 s before {asked}"
        );
    }

    let limited = pods
        .logs("logger", &LogParams::default().limit_bytes(4))
        .await
        .unwrap();
    assert_eq!(limited.len(), 4);

    let error = pods
        .logs("logger", &LogParams::default().since_seconds(0))
        .await
        .unwrap_err();
    assert!(error.is_invalid(), "{error}");
    let error = pods
        .logs("logger", &LogParams::default().container("nope"))
        .await
        .unwrap_err();
    assert!(error.is_bad_request(), "{error}");
    assert!(error.to_string().contains("not valid for pod"), "{error}");
    let error = pods
        .logs("logger", &LogParams::default().previous(true))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("previous terminated container"),
        "{error}"
    );
    let error = pods
        .logs("missing", &LogParams::default())
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_streams_new_lines_and_cancelling_ends_the_http_stream() {
    if common::skip_on_cluster(
        "follow_streams_new_lines_and_cancelling_ends_the_http_stream",
        "it needs the simulated kubelet",
    ) {
        return;
    }
    let (server, pods) = start().await;
    running(&pods, "follower", &["main"]).await;
    let mut lines = Box::pin(
        pods.log_lines("follower", &LogParams::default().follow(true))
            .await
            .unwrap(),
    );
    let mut seen = Vec::new();
    tokio::time::timeout(PROMPTLY, async {
        while seen.len() < 4 {
            let line = lines.next().await.expect("the stream goes on").unwrap();
            assert!(is_epoch_seconds(&line), "{line:?}");
            seen.push(line);
        }
    })
    .await
    .expect("followed lines arrive");
    assert_eq!(server.active_log_streams(), 1);
    // Cancelling: dropping the stream closes the response body, and the server notices.
    drop(lines);
    tokio::time::timeout(PROMPTLY, async {
        while server.active_log_streams() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server's log stream ends when the client cancels");

    // A followed log ends when its pod goes away.
    let mut reader = pods
        .log_stream("follower", &LogParams::default().follow(true).tail_lines(0))
        .await
        .unwrap();
    pods.delete("follower", &kube_rest::DeleteParams::default())
        .await
        .unwrap();
    let mut rest = String::new();
    tokio::time::timeout(PROMPTLY, reader.read_to_string(&mut rest))
        .await
        .expect("the log ends with its container")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_returns_output_and_exit_codes() {
    if common::skip_on_cluster(
        "exec_returns_output_and_exit_codes",
        "it needs the simulated kubelet",
    ) {
        return;
    }
    let (_server, pods) = start().await;
    running(&pods, "shell", &["main"]).await;

    let output = pods
        .exec("shell", ["echo", "hello"], &AttachParams::default())
        .await
        .unwrap()
        .output()
        .await
        .unwrap();
    assert_eq!(output.stdout, b"hello\n");
    assert!(output.status.success());

    let output = pods
        .exec(
            "shell",
            ["sh", "-c", "echo out; hostname; exit 3"],
            &AttachParams::default(),
        )
        .await
        .unwrap()
        .output()
        .await
        .unwrap();
    assert_eq!(output.stdout, b"out\nshell\n");
    assert_eq!(output.status.code(), 3);
    assert!(output.status.message().unwrap().contains("exit code 3"));

    let output = pods
        .exec("shell", ["sh", "-c", "nosuch"], &AttachParams::default())
        .await
        .unwrap()
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), 127);
    assert_eq!(output.stderr, b"sh: nosuch: not found\n");

    // Not a command exit: the runtime could not start it at all.
    let error = pods
        .exec("shell", ["nosuch"], &AttachParams::default())
        .await
        .unwrap()
        .join()
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("executable file not found"),
        "{error}"
    );

    // Errors before the upgrade are the server's Status.
    let error = pods
        .exec("missing", ["true"], &AttachParams::default())
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");
    let error = pods
        .exec(
            "shell",
            ["true"],
            &AttachParams::default().container("other"),
        )
        .await
        .unwrap_err();
    assert!(error.is_bad_request(), "{error}");
    let error = pods
        .exec("shell", Vec::<String>::new(), &AttachParams::default())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Request(_)), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_is_echoed_and_closed_on_v5() {
    if common::skip_on_cluster(
        "stdin_is_echoed_and_closed_on_v5",
        "it needs the simulated kubelet",
    ) {
        return;
    }
    let (_server, pods) = start().await;
    running(&pods, "cat", &["main"]).await;
    let mut process = pods
        .exec("cat", ["cat"], &AttachParams::default().stdin(true))
        .await
        .unwrap();
    assert_eq!(process.protocol(), ChannelProtocol::V5);
    let mut stdin = process.stdin().unwrap();
    let stdout = process.stdout().unwrap();
    let mut stdout = tokio::io::BufReader::new(stdout);
    stdin.write_all(b"first line\n").await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(PROMPTLY, stdout.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line, "first line\n");
    stdin.write_all(b"second").await.unwrap();
    // EOF on stdin ends cat, so the command exits on its own.
    stdin.shutdown().await.unwrap();
    let mut rest = String::new();
    tokio::time::timeout(PROMPTLY, stdout.read_to_string(&mut rest))
        .await
        .expect("stdout ends with cat")
        .unwrap();
    assert_eq!(rest, "second");
    let status = tokio::time::timeout(PROMPTLY, process.join())
        .await
        .expect("cat ends at stdin EOF")
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_closes_stdin_on_v5_and_refuses_without_it() {
    if common::skip_on_cluster(
        "output_closes_stdin_on_v5_and_refuses_without_it",
        "it needs the simulated kubelet",
    ) {
        return;
    }
    let (_server, pods) = start().await;
    running(&pods, "reader", &["main"]).await;
    let params = AttachParams::default().stdin(true);
    let output = tokio::time::timeout(PROMPTLY, async {
        pods.exec("reader", ["cat"], &params)
            .await
            .unwrap()
            .output()
            .await
    })
    .await
    .expect("output() closes stdin, so cat ends")
    .unwrap();
    assert!(output.status.success() && output.stdout.is_empty());

    let v4 = params.protocols(&[ChannelProtocol::V4]);
    let process = pods.exec("reader", ["cat"], &v4).await.unwrap();
    assert!(!process.can_close_stdin());
    let error = process.output().await.unwrap_err();
    assert!(error.to_string().contains("cannot close stdin"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_protocols_fall_back_cleanly() {
    if common::skip_on_cluster(
        "older_protocols_fall_back_cleanly",
        "it needs the simulated kubelet",
    ) {
        return;
    }
    let (_server, pods) = start().await;
    running(&pods, "old", &["main"]).await;
    for protocol in [
        ChannelProtocol::V4,
        ChannelProtocol::V4Base64,
        ChannelProtocol::V1,
        ChannelProtocol::V1Base64,
    ] {
        let params = AttachParams::default().protocols(&[protocol]);
        let process = pods
            .exec("old", ["sh", "-c", "echo hi; exit 5"], &params)
            .await
            .unwrap();
        assert_eq!(process.protocol(), protocol);
        let output = process.output().await.unwrap();
        assert_eq!(output.stdout, b"hi\n", "{protocol}");
        assert_eq!(output.status.code(), 5, "{protocol}");
        let ok = pods
            .exec("old", ["true"], &params)
            .await
            .unwrap()
            .join()
            .await
            .unwrap();
        assert!(ok.success(), "{protocol}");
    }
    // The server picks from the client's preferences.
    let process = pods
        .exec(
            "old",
            ["true"],
            &AttachParams::default().protocols(&[
                ChannelProtocol::V3,
                ChannelProtocol::V1,
                ChannelProtocol::V5,
            ]),
        )
        .await
        .unwrap();
    // v3 is a SPDY name: a kubelet (and kube-testserver) skips it over WebSocket.
    assert_eq!(process.protocol(), ChannelProtocol::V1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_gets_resize_frames() {
    if common::skip_on_cluster(
        "a_terminal_gets_resize_frames",
        "it needs the simulated kubelet",
    ) {
        return;
    }
    let (_server, pods) = start().await;
    running(&pods, "tty", &["main"]).await;
    let mut process = pods
        .exec("tty", ["sh"], &AttachParams::interactive_tty())
        .await
        .unwrap();
    let resizer = process.terminal_resizer().expect("v5 carries resizes");
    assert!(resizer.resize(TerminalSize {
        width: 132,
        height: 43
    }));
    let mut stdin = process.stdin().unwrap();
    let mut stdout = process.stdout().unwrap();
    stdin.write_all(b"stty size\rexit 4\r").await.unwrap();
    let mut screen = Vec::new();
    tokio::time::timeout(PROMPTLY, stdout.read_to_end(&mut screen))
        .await
        .expect("the shell exits")
        .unwrap();
    let screen = String::from_utf8_lossy(&screen);
    assert!(screen.contains("43 132\r\n"), "{screen:?}");
    assert_eq!(process.join().await.unwrap().code(), 4);
    // Without a terminal there is nothing to resize.
    let plain = pods
        .exec("tty", ["true"], &AttachParams::default())
        .await
        .unwrap();
    assert!(plain.terminal_resizer().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_streams_the_main_process() {
    if common::skip_on_cluster(
        "attach_streams_the_main_process",
        "it needs the simulated kubelet",
    ) {
        return;
    }
    let (server, pods) = start().await;
    running(&pods, "main", &["main"]).await;
    let mut process = pods
        .attach("main", &AttachParams::default().stderr(false))
        .await
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(process.stdout().unwrap());
    for _ in 0..2 {
        let mut line = String::new();
        tokio::time::timeout(PROMPTLY, stdout.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        assert!(is_epoch_seconds(line.trim_end()), "{line:?}");
    }
    // Dropping the process closes the session on the server.
    drop(stdout);
    drop(process);
    tokio::time::timeout(PROMPTLY, async {
        while server.exec_sessions() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server ends the session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_going_away_mid_command_is_a_clear_error() {
    if common::skip_on_cluster(
        "a_server_going_away_mid_command_is_a_clear_error",
        "it needs the simulated kubelet",
    ) {
        return;
    }
    let (server, pods) = start().await;
    running(&pods, "sleeper", &["main"]).await;
    let process = pods
        .exec("sleeper", ["sleep", "100"], &AttachParams::default())
        .await
        .unwrap();
    let join = tokio::spawn(process.join());
    tokio::time::timeout(PROMPTLY, async {
        while server.exec_sessions() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    server.shutdown().await;
    let error = tokio::time::timeout(PROMPTLY, join)
        .await
        .expect("no hang when the server goes away")
        .unwrap()
        .unwrap_err();
    // The server says goodbye with 1001 Going Away before any status.
    assert!(matches!(error, Error::Transport { .. }), "{error}");
    assert!(error.to_string().contains("code 1001"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_subprotocols_are_refused_clearly() {
    if common::skip_on_cluster(
        "unsupported_subprotocols_are_refused_clearly",
        "it needs the simulated kubelet",
    ) {
        return;
    }
    let (server, pods) = start().await;
    running(&pods, "picky", &["main"]).await;
    let client = Client::try_from_config(
        Config::from_kubeconfig(
            &Kubeconfig::parse(&server.kubeconfig_yaml(), Path::new("/k")).unwrap(),
        )
        .unwrap()
        .without_throttle(),
    )
    .unwrap();
    let error = client
        .request(http::Method::GET)
        .namespace(Some("default"))
        .resource("pods")
        .name("picky")
        .subresource("exec")
        .params([("command", "true"), ("stdout", "true")])
        .connect_websocket(&["v9.channel.k8s.io"])
        .await
        .unwrap_err();
    assert!(error.is_forbidden(), "{error}");
    assert!(
        error
            .to_string()
            .contains("requested protocol(s) are not supported"),
        "{error}"
    );
}

/// A server that accepts the WebSocket upgrade, sends the "stream established" frame and
/// `hello` on stdout, then drops the TCP connection without a close frame, or with `go_silent`
/// keeps it open and never reads or writes again (a dead peer whose TCP connection lives on).
async fn truncating_exec_server(go_silent: bool) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .unwrap()
            .trim()
            .to_string();
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\nsec-websocket-protocol: v5.channel.k8s.io\r\n\r\n"
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        // Unmasked binary frames (server to client): [1] then [1, "hello\n"].
        socket.write_all(&[0x82, 1, 1]).await.unwrap();
        socket
            .write_all(&[0x82, 7, 1, b'h', b'e', b'l', b'l', b'o', b'\n'])
            .await
            .unwrap();
        socket.flush().await.unwrap();
        if go_silent {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        drop(socket);
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_stream_is_a_transport_error() {
    let (url, server) = truncating_exec_server(false).await;
    let client =
        Client::try_from_config(Config::new(url.parse().unwrap()).without_throttle()).unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let process = pods
        .exec("p", ["echo", "hello"], &AttachParams::default())
        .await
        .unwrap();
    let result = tokio::time::timeout(PROMPTLY, process.output())
        .await
        .expect("no hang on a cut connection");
    let error = result.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error}");
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_mid_stream_ends_with_an_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = [0u8; 4096];
        let _ = socket.read(&mut buffer).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n6\r\nline1\n\r\n20\r\npartial")
            .await
            .unwrap();
        drop(socket);
    });
    let client =
        Client::try_from_config(Config::new(url.parse().unwrap()).without_throttle()).unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let lines = pods
        .log_lines("p", &LogParams::default().follow(true))
        .await
        .unwrap();
    let lines: Vec<_> = tokio::time::timeout(PROMPTLY, lines.collect())
        .await
        .expect("no hang on a cut stream");
    assert_eq!(lines[0].as_deref().unwrap(), "line1");
    let last = lines.last().unwrap();
    assert!(matches!(last, Err(Error::Transport { .. })), "{last:?}");
    server.await.unwrap();
}

/// A peer that stops answering (not even pongs) is given up after client-go's 61 s read
/// deadline; the paused clock makes that instant.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_silent_server_is_given_up_after_the_read_deadline() {
    let (url, server) = truncating_exec_server(true).await;
    let client =
        Client::try_from_config(Config::new(url.parse().unwrap()).without_throttle()).unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut process = pods
        .exec("p", ["sleep", "1000"], &AttachParams::default())
        .await
        .unwrap();
    let mut stdout = process.stdout().unwrap();
    let started = tokio::time::Instant::now();
    let mut hello = [0u8; 6];
    stdout.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello, b"hello\n");
    let error = process.join().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("nothing from the server for 61 s"),
        "{error}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(61) && waited <= Duration::from_secs(70),
        "{waited:?}"
    );
    server.abort();
}
