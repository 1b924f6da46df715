//! GETs sent again after a lost connection (client-go retries a GET after a connection reset
//! or an unexpected EOF), against a hand-written HTTP/1.1 server that drops connections on
//! purpose. Other verbs are not sent again.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use kube_flowcontrol::clock::{Clock, FakeClock};
use kube_rest::{Client, Config, Error};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conduct {
    /// Reads the request and resets the connection (`SO_LINGER` 0: an RST).
    Reset,
    /// Reads the request and closes the connection without answering (an unexpected EOF).
    Close,
    /// Answers `200` with a `/version` body.
    Answer,
}

/// A server that handles its n-th connection by the n-th conduct (the last one repeats) and
/// records the request line of each.
struct DroppingServer {
    address: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl DroppingServer {
    async fn start(conducts: Vec<Conduct>) -> DroppingServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((stream, _)) = listener.accept().await {
                let conduct = conducts[n.min(conducts.len() - 1)];
                n += 1;
                let seen = Arc::clone(&seen);
                tokio::spawn(serve(stream, conduct, seen));
            }
        });
        DroppingServer { address, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().clone()
    }

    fn client(&self, fake: &FakeClock, max_retries: u32) -> Client {
        let config = Config::new(format!("http://{}", self.address).parse().unwrap())
            .without_throttle()
            .with_max_retries(max_retries);
        Client::builder(config)
            .clock(fake.shared())
            .build()
            .unwrap()
    }
}

async fn serve(mut stream: TcpStream, conduct: Conduct, seen: Arc<Mutex<Vec<String>>>) {
    // Keep-alive: answer requests on this connection until it closes.
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())
                    .flatten()
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        seen.lock()
            .push(head.lines().next().unwrap_or_default().to_string());
        match conduct {
            Conduct::Reset => {
                stream.set_zero_linger().unwrap();
                return;
            }
            Conduct::Close => return,
            Conduct::Answer => {
                let body =
                    r#"{"major":"1","minor":"35","gitVersion":"v1.35.0","platform":"linux/amd64"}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Runs `task` to completion, moving the fake clock to each deadline it sleeps on.
async fn drive<T: Send + 'static>(fake: &FakeClock, task: tokio::task::JoinHandle<T>) -> T {
    while !task.is_finished() {
        if fake.step_to_next_deadline().is_none() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    task.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_is_retried_after_a_connection_reset() {
    let server = DroppingServer::start(vec![Conduct::Reset, Conduct::Answer]).await;
    let fake = FakeClock::new();
    let client = server.client(&fake, 10);
    let start = fake.now();
    let task = tokio::spawn({
        let client = client.clone();
        async move { client.server_version().await }
    });
    let version = drive(&fake, task).await.unwrap();
    assert_eq!(version.git_version, "v1.35.0");
    assert_eq!(server.requests(), ["GET /version HTTP/1.1"; 2]);
    // client-go's artificial `Retry-After: 1`, on the client's clock.
    assert_eq!(fake.now() - start, Duration::from_secs(1));
    assert_eq!(client.retry_stats().retries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_is_retried_after_an_unexpected_eof() {
    let server = DroppingServer::start(vec![Conduct::Close, Conduct::Close, Conduct::Answer]).await;
    let fake = FakeClock::new();
    let client = server.client(&fake, 10);
    let task = tokio::spawn({
        let client = client.clone();
        async move { client.server_version().await }
    });
    drive(&fake, task).await.unwrap();
    assert_eq!(server.requests().len(), 3);
    assert_eq!(client.retry_stats().retries, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_verbs_are_not_sent_again_after_a_lost_connection() {
    for verb in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let server = DroppingServer::start(vec![Conduct::Reset, Conduct::Answer]).await;
        let fake = FakeClock::new();
        let client = server.client(&fake, 10);
        let err = client
            .request(verb.clone())
            .abs_path("/version")
            .body("{}", "application/json")
            .send()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{verb}: {err:?}");
        assert_eq!(server.requests().len(), 1, "{verb}");
        assert_eq!(client.retry_stats().retries, 0, "{verb}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_lost_connections_run_out_and_are_counted() {
    let server = DroppingServer::start(vec![Conduct::Reset]).await;
    let fake = FakeClock::new();
    let client = server.client(&fake, 3);
    let task = tokio::spawn({
        let client = client.clone();
        async move { client.server_version().await }
    });
    let err = drive(&fake, task).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    // The first try and three retries.
    assert_eq!(server.requests().len(), 4);
    assert_eq!(client.retry_stats().retries, 3);
    assert_eq!(client.retry_stats().exhausted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_not_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let fake = FakeClock::new();
    let config = Config::new(format!("http://{address}").parse().unwrap()).without_throttle();
    let client = Client::builder(config)
        .clock(fake.shared())
        .build()
        .unwrap();
    let err = client.server_version().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(client.retry_stats().retries, 0);
}

/// An HTTP/2 server over TLS that answers its first connection's first request with a
/// `GOAWAY` (last stream 0: the request was not processed) and answers `/version` on the
/// connections after it.
async fn goaway_server() -> (Config, Arc<Mutex<usize>>) {
    use kube_rest::certs::CertificateAuthority;
    use kube_rest::tls::{parse_certificates, parse_private_key};

    let ca = CertificateAuthority::generate("goaway-ca").unwrap();
    let leaf = ca.issue("localhost", &["127.0.0.1", "localhost"]).unwrap();
    let chain = parse_certificates(leaf.certificate_pem.as_bytes(), "leaf").unwrap();
    let key = parse_private_key(leaf.private_key_pem.as_bytes(), "key").unwrap();
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(Mutex::new(0usize));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let first = {
                let mut n = counted.lock();
                *n += 1;
                *n == 1
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut connection) = h2::server::handshake(stream).await else {
                    return;
                };
                if first {
                    // Refuse everything: GOAWAY before processing any stream.
                    connection.abrupt_shutdown(h2::Reason::NO_ERROR);
                    let _ = std::future::poll_fn(|cx| connection.poll_closed(cx)).await;
                    return;
                }
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    let body = r#"{"major":"1","minor":"35","gitVersion":"v1.35.0"}"#;
                    let response = http::Response::builder()
                        .header("content-type", "application/json")
                        .body(())
                        .unwrap();
                    if let Ok(mut send) = respond.send_response(response, false) {
                        let _ = send.send_data(bytes::Bytes::from_static(body.as_bytes()), true);
                    }
                }
            });
        }
    });
    let config = Config::new(
        format!("https://127.0.0.1:{}", address.port())
            .parse()
            .unwrap(),
    )
    .with_root_ca(kube_rest::Source::Data(
        ca.certified_key().certificate_pem.clone().into_bytes(),
    ))
    .without_throttle();
    (config, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_is_retried_after_an_http2_goaway() {
    let (config, connections) = goaway_server().await;
    let fake = FakeClock::new();
    let client = Client::builder(config)
        .clock(fake.shared())
        .build()
        .unwrap();
    let task = tokio::spawn({
        let client = client.clone();
        async move { client.server_version().await }
    });
    let version = drive(&fake, task).await;
    assert_eq!(version.unwrap().git_version, "v1.35.0");
    assert_eq!(*connections.lock(), 2);
    assert_eq!(client.retry_stats().retries, 1);
}
