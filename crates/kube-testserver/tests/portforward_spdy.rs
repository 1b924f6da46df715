//! pods/portforward over SPDY/3.1, plain (`Upgrade: SPDY/3.1`) and tunneled through a
//! WebSocket (`SPDY/3.1+portforward.k8s.io`), over real TLS, with a small SPDY client written
//! here (frames and zlib header blocks with the spec's dictionary), driven as kubectl drives
//! its streams: an error stream (half-closed at once) and a data stream per connection.

mod portforward_common;

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use futures_util::{SinkExt, StreamExt};
use http::header;
use kube_testserver::TestServer;
use portforward_common::{LIMIT, delete_pod, eventually, pod, running_pod, server, tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{WebSocketStream, client_async};

/// The SPDY/3 dictionary, built here independently of the server's copy.
fn dictionary() -> Vec<u8> {
    let words = "options head post put delete trace accept accept-charset accept-encoding \
        accept-language accept-ranges age allow authorization cache-control connection \
        content-base content-encoding content-language content-length content-location \
        content-md5 content-range content-type date etag expect expires from host if-match \
        if-modified-since if-none-match if-range if-unmodified-since last-modified location \
        max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after \
        server te trailer transfer-encoding upgrade user-agent vary via warning \
        www-authenticate method get status 200_OK version HTTP/1.1 url public set-cookie \
        keep-alive origin";
    let mut bytes = Vec::new();
    for word in words.split_whitespace() {
        let word = word.replace('_', " ");
        bytes.extend_from_slice(&(word.len() as u32).to_be_bytes());
        bytes.extend_from_slice(word.as_bytes());
    }
    bytes.extend_from_slice(
        b"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505\
203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request\
401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented\
503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 \
Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,\
application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=\
gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
    );
    assert_eq!(bytes.len(), 1423);
    bytes
}

/// The byte transport under SPDY.
enum Transport {
    Raw(Box<TlsStream<TcpStream>>),
    Tunnel(Box<WebSocketStream<TlsStream<TcpStream>>>),
}

/// A frame as the test sees it.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Reply(u32),
    Data {
        stream: u32,
        fin: bool,
        data: Vec<u8>,
    },
    Reset {
        stream: u32,
        status: u32,
    },
    Ping(u32),
    GoAway,
    Other(u16),
}

struct Client {
    transport: Transport,
    zlib: Compress,
    buffer: BytesMut,
    next_id: u32,
    next_request: u32,
    /// The DICTID of the server's first header block, once seen.
    server_dictionary_id: Option<[u8; 4]>,
    /// Data received per stream, and whether it ended (FIN).
    streams: std::collections::HashMap<u32, (Vec<u8>, bool)>,
    /// Pings the server answered.
    pongs: Vec<u32>,
}

impl Client {
    fn new(transport: Transport, leftover: &[u8]) -> Client {
        let mut zlib = Compress::new(Compression::best(), true);
        zlib.set_dictionary(&dictionary()).expect("dictionary");
        Client {
            transport,
            zlib,
            buffer: BytesMut::from(leftover),
            next_id: 1,
            next_request: 0,
            server_dictionary_id: None,
            streams: Default::default(),
            pongs: Vec::new(),
        }
    }

    fn compress(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut block = (headers.len() as u32).to_be_bytes().to_vec();
        for (name, value) in headers {
            block.extend_from_slice(&(name.len() as u32).to_be_bytes());
            block.extend_from_slice(name.as_bytes());
            block.extend_from_slice(&(value.len() as u32).to_be_bytes());
            block.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(block.len() + 1024);
        self.zlib
            .compress_vec(&block, &mut out, FlushCompress::Sync)
            .expect("compress");
        assert!(out.len() < out.capacity());
        out
    }

    async fn write(&mut self, bytes: Vec<u8>) {
        match &mut self.transport {
            Transport::Raw(stream) => stream.write_all(&bytes).await.expect("write"),
            Transport::Tunnel(ws) => ws.send(Message::Binary(bytes.into())).await.expect("send"),
        }
    }

    async fn syn_stream(&mut self, headers: &[(&str, &str)], fin: bool) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        let block = self.compress(headers);
        let mut frame = vec![0x80, 3, 0, 1, u8::from(fin)];
        frame.extend_from_slice(&((10 + block.len()) as u32).to_be_bytes()[1..]);
        frame.extend_from_slice(&id.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        frame.extend_from_slice(&block);
        self.write(frame).await;
        id
    }

    async fn data(&mut self, stream: u32, data: &[u8], fin: bool) {
        let mut frame = stream.to_be_bytes().to_vec();
        frame.push(u8::from(fin));
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        frame.extend_from_slice(data);
        self.write(frame).await;
    }

    async fn ping(&mut self, id: u32) {
        let mut frame = vec![0x80, 3, 0, 6, 0, 0, 0, 4];
        frame.extend_from_slice(&id.to_be_bytes());
        self.write(frame).await;
    }

    /// Opens an error stream (closed at once, as kubectl does) and a data stream for `port`.
    async fn open_pair(&mut self, port: u16) -> (u32, u32) {
        let request = self.next_request.to_string();
        self.next_request += 1;
        let port = port.to_string();
        let error = self
            .syn_stream(
                &[
                    ("streamtype", "error"),
                    ("port", &port),
                    ("requestid", &request),
                ],
                false,
            )
            .await;
        self.data(error, b"", true).await;
        let data = self
            .syn_stream(
                &[
                    ("streamtype", "data"),
                    ("port", &port),
                    ("requestid", &request),
                ],
                false,
            )
            .await;
        (error, data)
    }

    async fn fill(&mut self) -> bool {
        match &mut self.transport {
            Transport::Raw(stream) => {
                matches!(stream.read_buf(&mut self.buffer).await, Ok(n) if n > 0)
            }
            Transport::Tunnel(ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => {
                        self.buffer.extend_from_slice(&bytes);
                        return true;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return false,
                    Some(Ok(_)) => continue,
                }
            },
        }
    }

    /// The next frame, `None` at the end of the connection.
    async fn next(&mut self) -> Option<Seen> {
        tokio::time::timeout(LIMIT, async {
            loop {
                if self.buffer.len() >= 8 {
                    let length =
                        u32::from_be_bytes([0, self.buffer[5], self.buffer[6], self.buffer[7]])
                            as usize;
                    if self.buffer.len() >= 8 + length {
                        let head = self.buffer.split_to(8);
                        let mut payload = self.buffer.split_to(length).freeze();
                        return Some(parse(&head, &mut payload, &mut self.server_dictionary_id));
                    }
                }
                if !self.fill().await {
                    return None;
                }
            }
        })
        .await
        .expect("frame in time")
    }

    /// Reads one frame, recording stream data and pongs; other frames are returned.
    async fn pump(&mut self) -> Option<Seen> {
        match self.next().await.expect("connection open") {
            Seen::Data { stream, fin, data } => {
                let entry = self.streams.entry(stream).or_default();
                entry.0.extend_from_slice(&data);
                entry.1 |= fin;
                None
            }
            Seen::Ping(id) => {
                self.pongs.push(id);
                None
            }
            Seen::Reply(_) => None,
            other => Some(other),
        }
    }

    /// The data of `stream` up to its FIN.
    async fn read_stream(&mut self, stream: u32) -> Vec<u8> {
        while !self.streams.get(&stream).is_some_and(|s| s.1) {
            if let Some(other) = self.pump().await {
                panic!("unexpected frame {other:?}");
            }
        }
        self.streams
            .remove(&stream)
            .map(|s| s.0)
            .unwrap_or_default()
    }

    /// Waits until `stream` has received at least `len` unread bytes, and takes them all.
    async fn take_at_least(&mut self, stream: u32, len: usize) -> Vec<u8> {
        while self.streams.get(&stream).map_or(0, |s| s.0.len()) < len {
            if let Some(other) = self.pump().await {
                panic!("unexpected frame {other:?}");
            }
        }
        self.streams
            .get_mut(&stream)
            .map(|s| std::mem::take(&mut s.0))
            .unwrap_or_default()
    }
}

fn parse(head: &[u8], payload: &mut Bytes, dictionary_id: &mut Option<[u8; 4]>) -> Seen {
    if head[0] & 0x80 == 0 {
        let stream = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        return Seen::Data {
            stream,
            fin: head[4] & 1 == 1,
            data: payload.to_vec(),
        };
    }
    assert_eq!(&head[..2], &[0x80, 3], "SPDY/3 control frame");
    match u16::from_be_bytes([head[2], head[3]]) {
        2 => {
            let stream = payload.get_u32();
            if dictionary_id.is_none() {
                // The first compressed block starts the server's zlib stream: CMF, FLG with
                // FDICT, then the dictionary's Adler-32.
                assert_ne!(payload[1] & 0x20, 0, "FDICT");
                *dictionary_id = Some([payload[2], payload[3], payload[4], payload[5]]);
            }
            Seen::Reply(stream)
        }
        3 => Seen::Reset {
            stream: payload.get_u32(),
            status: payload.get_u32(),
        },
        6 => Seen::Ping(payload.get_u32()),
        7 => Seen::GoAway,
        other => Seen::Other(other),
    }
}

/// A plain `Upgrade: SPDY/3.1` connection to pod `name`.
async fn spdy(server: &TestServer, name: &str) -> Client {
    let mut stream = tls(server).await;
    let request = format!(
        "POST /api/v1/namespaces/default/pods/{name}/portforward HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n",
        server.address(),
        server.token()
    );
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("utf-8").to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(head.contains("upgrade: spdy/3.1\r\n"), "{head}");
    assert!(
        head.contains("x-stream-protocol-version: portforward.k8s.io\r\n"),
        "{head}"
    );
    Client::new(Transport::Raw(Box::new(stream)), &[])
}

/// SPDY tunneled through a WebSocket to pod `name`.
async fn tunneled(server: &TestServer, name: &str) -> Client {
    let stream = tls(server).await;
    let mut request = format!(
        "wss://{}/api/v1/namespaces/default/pods/{name}/portforward",
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
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        "SPDY/3.1+portforward.k8s.io".parse().expect("header"),
    );
    let (ws, response) = client_async(request, stream).await.expect("upgrade");
    assert_eq!(
        response.headers()[header::SEC_WEBSOCKET_PROTOCOL],
        "SPDY/3.1+portforward.k8s.io"
    );
    Client::new(Transport::Tunnel(Box::new(ws)), &[])
}

async fn nginx_then_refused_port(mut client: Client) {
    // One connection to nginx: both streams accepted, the page, then FIN on both.
    let (error, data) = client.open_pair(80).await;
    client
        .data(
            data,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            false,
        )
        .await;
    let page = String::from_utf8(client.read_stream(data).await).expect("utf-8");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("<title>Welcome to nginx!</title>"));
    assert_eq!(client.read_stream(error).await, b"", "no error");
    // The server's header blocks use the SPDY/3 dictionary (its Adler-32 is e3c6a7c2).
    assert_eq!(client.server_dictionary_id, Some([0xe3, 0xc6, 0xa7, 0xc2]));
    // Pings are echoed.
    client.ping(7).await;
    while !client.pongs.contains(&7) {
        assert_eq!(client.pump().await, None);
    }
    // A second connection on the same session, to a port nothing listens on.
    let (error, data) = client.open_pair(81).await;
    let message = String::from_utf8(client.read_stream(error).await).expect("utf-8");
    assert!(
        message.starts_with("error forwarding port 81 to pod "),
        "{message}"
    );
    assert!(message.contains("failed to connect to localhost:81 inside namespace"));
    assert_eq!(client.read_stream(data).await, b"");
}

#[tokio::test]
async fn plain_spdy_serves_nginx_and_reports_refused_ports() {
    let server = server().await;
    running_pod(&server, pod("web", "nginx", &[])).await;
    nginx_then_refused_port(spdy(&server, "web").await).await;
}

#[tokio::test]
async fn spdy_tunneled_through_a_websocket_serves_nginx_and_reports_refused_ports() {
    let server = server().await;
    running_pod(&server, pod("web", "nginx", &[])).await;
    nginx_then_refused_port(tunneled(&server, "web").await).await;
}

#[tokio::test]
async fn bad_streams_are_reset_and_large_transfers_need_no_window_updates() {
    let server = server().await;
    running_pod(&server, pod("echo", "busybox", &[7000])).await;
    let mut client = spdy(&server, "echo").await;
    // No port header: RST_STREAM CANCEL, as the kubelet rejects it.
    let bad = client.syn_stream(&[("streamtype", "data")], false).await;
    assert_eq!(
        client.next().await,
        Some(Seen::Reset {
            stream: bad,
            status: 5
        })
    );
    // 1 MiB through the echo port without a single WINDOW_UPDATE (spdystream sends none).
    let (error, data) = client.open_pair(7000).await;
    let payload: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let mut echoed = Vec::new();
    for chunk in payload.chunks(32 << 10) {
        client.data(data, chunk, false).await;
        echoed.extend(client.take_at_least(data, chunk.len()).await);
    }
    client.data(data, b"", true).await;
    assert!(echoed == payload, "the echo differs");
    // The client finished sending: the server ends the connection within its grace second.
    assert_eq!(client.read_stream(data).await, b"");
    assert_eq!(client.read_stream(error).await, b"");
}

#[tokio::test]
async fn deleting_the_pod_ends_spdy_streams() {
    let server = server().await;
    running_pod(&server, pod("doomed", "busybox", &[7000])).await;
    let mut client = tunneled(&server, "doomed").await;
    let (error, data) = client.open_pair(7000).await;
    client.data(data, b"hello", false).await;
    let got = client.take_at_least(data, 5).await;
    assert_eq!(got, b"hello");
    delete_pod(&server, "doomed").await;
    assert_eq!(client.read_stream(data).await, b"", "FIN without more data");
    assert_eq!(
        client.read_stream(error).await,
        b"",
        "no error: the connection just ended"
    );
    drop(client);
    eventually("the session to end", || server.port_forward_sessions() == 0).await;
}
