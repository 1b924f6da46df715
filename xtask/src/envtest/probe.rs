//! One-shot HTTP/1.1 GETs for the readiness probes: plain for etcd's `/health`, TLS with the
//! admin's client certificate for kube-apiserver's `/readyz`. Blocking and bounded by timeouts;
//! nothing here needs a full HTTP client.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// How long one probe may take to connect, and then to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A response: the status code and the body (as sent, chunked or not: the probes only look for
/// a word in it).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

fn connect(port: u16) -> Result<TcpStream, String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("cannot set timeouts: {e}"))?;
    Ok(stream)
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\nConnection: close\r\n\r\n")
}

/// Reads until the peer closes; a TLS peer that closes without `close_notify` (Go's server
/// after `Connection: close`) is an end, not an error, once something was read.
fn read_all(stream: &mut impl Read) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    match stream.read_to_end(&mut bytes) {
        Ok(_) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !bytes.is_empty() => Ok(bytes),
        Err(e) => Err(format!("cannot read the response: {e}")),
    }
}

fn parse(bytes: &[u8]) -> Result<Response, String> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {head:?}"))?;
    Ok(Response {
        status,
        body: body.to_string(),
    })
}

/// `GET http://127.0.0.1:{port}{path}`.
pub fn http_get(port: u16, path: &str) -> Result<Response, String> {
    let mut stream = connect(port)?;
    stream
        .write_all(request(path).as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    parse(&read_all(&mut stream)?)
}

/// `GET https://127.0.0.1:{port}{path}` with the given TLS configuration (which checks the
/// server's certificate against the envtest CA and presents the admin's).
pub fn https_get(
    port: u16,
    path: &str,
    config: &Arc<rustls::ClientConfig>,
) -> Result<Response, String> {
    let tcp = connect(port)?;
    let connection = rustls::ClientConnection::new(Arc::clone(config), super::pki::loopback_name())
        .map_err(|e| format!("cannot start TLS: {e}"))?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    stream
        .write_all(request(path).as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    parse(&read_all(&mut stream)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_status_and_body() {
        let response = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!((response.status, response.body.as_str()), (200, "ok"));
        let response = parse(b"HTTP/1.1 500 Internal Server Error\r\n\r\n").unwrap();
        assert_eq!(response.status, 500);
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn http_get_sends_the_path_and_reads_until_close() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 256];
            while !seen.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\n\r\n{\"health\":\"true\"}")
                .unwrap();
            String::from_utf8(seen).unwrap()
        });
        let response = http_get(port, "/health").unwrap();
        assert_eq!(response.status, 200);
        assert!(response.body.contains("\"health\":\"true\""));
        assert!(
            server
                .join()
                .unwrap()
                .starts_with("GET /health HTTP/1.1\r\n")
        );
    }
}
