//! What an `nginx` container answers on port 80: a small HTTP/1.1 server with nginx's
//! default site (the welcome page at `/` and `/index.html`, nginx's 404 and 405 pages
//! elsewhere), its headers, keep-alive and pipelined requests, and its 65 s keep-alive
//! timeout.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The version the `Server` header and the error pages name.
pub(crate) const SERVER: &str = "nginx/1.27.3";

/// The default site's `index.html`, as the nginx image ships it (615 bytes).
pub(crate) const WELCOME_PAGE: &str = "<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href=\"http://nginx.org/\">nginx.org</a>.<br/>
Commercial support is available at
<a href=\"http://nginx.com/\">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
";

const LAST_MODIFIED: &str = "Tue, 26 Nov 2024 15:55:00 GMT";
const ETAG: &str = "\"6745ef54-267\"";
/// nginx's `keepalive_timeout`.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(65);
/// nginx's default `large_client_header_buffers` (4 × 8k): a longer head gets 400.
const MAX_HEAD: usize = 32 << 10;

/// One parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct RequestHead {
    method: String,
    target: String,
    /// HTTP/1.1 or later.
    http11: bool,
    content_length: usize,
    chunked: bool,
    /// `Connection: close` (1.1) or no `Connection: keep-alive` (1.0).
    close: bool,
}

/// Parses a request head (without the final empty line); `None` if it is malformed.
fn parse_head(head: &str) -> Option<RequestHead> {
    let mut lines = head
        .split("\r\n")
        .map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut parts = lines.next()?.split(' ').filter(|p| !p.is_empty());
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let version = parts.next()?;
    if parts.next().is_some() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return None,
    };
    let mut request = RequestHead {
        method,
        target,
        http11,
        content_length: 0,
        chunked: false,
        close: !http11,
    };
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => request.content_length = value.parse().ok()?,
            "transfer-encoding" => request.chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        request.close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                        request.close = false;
                    }
                }
            }
            _ => {}
        }
    }
    Some(request)
}

/// nginx's page for an error status.
fn error_page(status: &str) -> String {
    format!(
        "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n<hr><center>{SERVER}</center>\r\n</body>\r\n</html>\r\n"
    )
}

fn http_date() -> String {
    jiff::Timestamp::now()
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// The response to `request` (status line, headers and body) and whether the connection
/// stays open.
fn respond(request: &RequestHead) -> (Vec<u8>, bool) {
    let path = request.target.split(['?', '#']).next().unwrap_or("");
    let head_only = request.method == "HEAD";
    let (status, body, found) = match request.method.as_str() {
        "GET" | "HEAD" if path == "/" || path == "/index.html" => {
            ("200 OK", WELCOME_PAGE.to_string(), true)
        }
        "GET" | "HEAD" => ("404 Not Found", error_page("404 Not Found"), false),
        _ => ("405 Not Allowed", error_page("405 Not Allowed"), false),
    };
    // A request body nginx does not read (chunked) ends the connection after the answer.
    let keep_alive = !request.close && !request.chunked;
    let mut response = format!(
        "HTTP/1.1 {status}\r\nServer: {SERVER}\r\nDate: {}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n",
        http_date(),
        body.len()
    );
    if found {
        response.push_str(&format!("Last-Modified: {LAST_MODIFIED}\r\n"));
    }
    response.push_str(if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
    if found {
        response.push_str(&format!("ETag: {ETAG}\r\nAccept-Ranges: bytes\r\n"));
    }
    response.push_str("\r\n");
    let mut bytes = response.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body.as_bytes());
    }
    (bytes, keep_alive)
}

fn bad_request() -> Vec<u8> {
    let body = error_page("400 Bad Request");
    format!(
        "HTTP/1.1 400 Bad Request\r\nServer: {SERVER}\r\nDate: {}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        http_date(),
        body.len()
    )
    .into_bytes()
}

/// Serves one connection until the client closes it, sends `Connection: close`, sends a
/// malformed request or stays idle for the keep-alive timeout.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buffer: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        // Read until a whole head is buffered.
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            if buffer.len() > MAX_HEAD {
                let _ = stream.write_all(&bad_request()).await;
                return;
            }
            match tokio::time::timeout(KEEPALIVE_TIMEOUT, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(read)) => buffer.extend_from_slice(&chunk[..read]),
            }
        };
        let parsed = std::str::from_utf8(&buffer[..head_end])
            .ok()
            .and_then(parse_head);
        let Some(request) = parsed else {
            let _ = stream.write_all(&bad_request()).await;
            return;
        };
        buffer.drain(..head_end + 4);
        // Discard the body nginx's static handler does not use.
        let mut remaining = request.content_length;
        while remaining > 0 {
            if buffer.is_empty() {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => buffer.extend_from_slice(&chunk[..read]),
                }
            }
            let taken = remaining.min(buffer.len());
            buffer.drain(..taken);
            remaining -= taken;
        }
        let (response, keep_alive) = respond(&request);
        if stream.write_all(&response).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        if !keep_alive {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_welcome_page_has_the_size_nginx_serves() {
        assert_eq!(WELCOME_PAGE.len(), 615);
    }

    #[test]
    fn request_heads_parse_like_nginx() {
        let head =
            parse_head("GET /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 3").expect("valid");
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/index.html");
        assert!(head.http11 && !head.close);
        assert_eq!(head.content_length, 3);
        assert!(parse_head("GET / HTTP/1.0").is_some_and(|h| h.close));
        assert!(parse_head("GET / HTTP/1.0\r\nConnection: keep-alive").is_some_and(|h| !h.close));
        assert!(parse_head("GET / HTTP/1.1\r\nConnection: close").is_some_and(|h| h.close));
        assert_eq!(parse_head("GET /"), None);
        assert_eq!(parse_head("get / HTTP/1.1"), None);
        assert_eq!(parse_head("GET / HTTP/2.0"), None);
        assert_eq!(parse_head("GET / HTTP/1.1\r\nbroken header"), None);
    }

    #[tokio::test]
    async fn serves_several_requests_on_one_connection() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let task = tokio::spawn(serve(server));
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD /missing HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
            .await
            .unwrap();
        let mut all = String::new();
        client.read_to_string(&mut all).await.unwrap();
        task.await.unwrap();
        let statuses: Vec<&str> = all.lines().filter(|l| l.starts_with("HTTP/1.1 ")).collect();
        assert_eq!(
            statuses,
            [
                "HTTP/1.1 200 OK",
                "HTTP/1.1 404 Not Found",
                "HTTP/1.1 405 Not Allowed"
            ]
        );
        assert!(all.contains("<title>Welcome to nginx!</title>"));
        assert!(all.contains("Content-Length: 615\r\n"));
        // HEAD: headers only, so the next response follows the 404's head at once.
        assert!(all.contains("Connection: keep-alive\r\n\r\nHTTP/1.1 405"));
        assert!(all.ends_with(&error_page("405 Not Allowed")));
    }

    #[tokio::test]
    async fn a_malformed_request_gets_400_and_the_connection_closes() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let task = tokio::spawn(serve(server));
        client.write_all(b"HELLO\r\n\r\n").await.unwrap();
        let mut all = String::new();
        client.read_to_string(&mut all).await.unwrap();
        task.await.unwrap();
        assert!(all.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{all}");
        assert!(all.contains("Connection: close"));
    }
}
