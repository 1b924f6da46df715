//! WebSocket upgrades on API paths (`pods/exec`, `pods/attach`, `pods/portforward`): the
//! handshake request, its verification, and the upgraded stream.
//!
//! The connection is opened by [`RequestBuilder::connect_websocket`](crate::RequestBuilder::connect_websocket)
//! with the client's authentication, TLS and proxy; this module only knows RFC 6455.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL};
use http::header::{SEC_WEBSOCKET_VERSION, UPGRADE};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::error::Error;

/// A WebSocket over an upgraded API server connection.
///
/// The WebSocket type is tokio-tungstenite's (0.28) on purpose: it is the maintained tokio
/// WebSocket and [`ChannelStreams`](crate::channel::ChannelStreams) accepts any of its
/// streams. The connection under it is our [`UpgradedIo`], so hyper's types stay private.
pub type WebSocket = WebSocketStream<UpgradedIo>;

/// The byte stream of an upgraded connection (TLS included, when the server is HTTPS).
pub struct UpgradedIo(TokioIo<Upgraded>);

impl std::fmt::Debug for UpgradedIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradedIo").finish_non_exhaustive()
    }
}

impl AsyncRead for UpgradedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for UpgradedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// An open WebSocket and the subprotocol the server selected.
#[derive(Debug)]
pub struct WebSocketConnection {
    /// The WebSocket, ready for messages.
    pub socket: WebSocket,
    /// The subprotocol the server chose (`""` when it named none).
    pub protocol: String,
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64.
pub(crate) fn new_key() -> String {
    let bytes: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The handshake `GET` for `uri`, offering `protocols` (comma-separated, in order).
pub(crate) fn handshake_request(
    uri: &http::Uri,
    key: &str,
    protocols: &[&str],
) -> Result<http::request::Builder, Error> {
    if let Some(bad) = protocols
        .iter()
        .find(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_graphic() && c != ','))
    {
        return Err(Error::Request(format!(
            "WebSocket subprotocol {bad:?} is not a valid token"
        )));
    }
    let mut request = http::Request::builder()
        .method(http::Method::GET)
        .uri(uri.clone())
        .header(CONNECTION, "Upgrade")
        .header(UPGRADE, "websocket")
        .header(SEC_WEBSOCKET_VERSION, "13")
        .header(SEC_WEBSOCKET_KEY, key);
    if !protocols.is_empty() {
        request = request.header(SEC_WEBSOCKET_PROTOCOL, protocols.join(", "));
    }
    Ok(request)
}

/// Checks a `101` answer and takes over its connection as a WebSocket.
pub(crate) async fn finish(
    response: http::Response<Incoming>,
    key: &str,
    protocols: &[&str],
) -> Result<WebSocketConnection, Error> {
    let header = |name: &http::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if !header(&UPGRADE).is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(Error::Upgrade(format!(
            "the server switched to {:?}, not to websocket",
            header(&UPGRADE).unwrap_or("")
        )));
    }
    let expected = derive_accept_key(key.as_bytes());
    if header(&SEC_WEBSOCKET_ACCEPT) != Some(expected.as_str()) {
        return Err(Error::Upgrade(
            "the server's Sec-WebSocket-Accept does not match the key sent".into(),
        ));
    }
    let protocol = header(&SEC_WEBSOCKET_PROTOCOL).unwrap_or("").to_string();
    check_protocol(&protocol, protocols)?;
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| Error::Upgrade(format!("taking over the upgraded connection: {e}")))?;
    let io = UpgradedIo(TokioIo::new(upgraded));
    let socket = WebSocketStream::from_raw_socket(io, Role::Client, None).await;
    Ok(WebSocketConnection { socket, protocol })
}

/// The selected protocol must be one that was offered (or none, when none was offered).
fn check_protocol(selected: &str, offered: &[&str]) -> Result<(), Error> {
    if selected.is_empty() {
        if offered.is_empty() {
            return Ok(());
        }
        return Err(Error::Upgrade(format!(
            "the server selected no subprotocol; offered {}",
            offered.join(", ")
        )));
    }
    if offered.contains(&selected) {
        Ok(())
    } else {
        Err(Error::Upgrade(format!(
            "the server selected the subprotocol {selected:?}, which was not offered ({})",
            offered.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_16_random_bytes() {
        let key = new_key();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&key)
            .unwrap();
        assert_eq!(bytes.len(), 16);
        assert_ne!(key, new_key());
    }

    #[test]
    fn handshake_offers_protocols_in_order() {
        let uri: http::Uri = "https://h/api/v1/namespaces/d/pods/p/exec".parse().unwrap();
        let request = handshake_request(&uri, "k", &["v5.channel.k8s.io", "v4.channel.k8s.io"])
            .unwrap()
            .body(())
            .unwrap();
        assert_eq!(
            request.headers()[SEC_WEBSOCKET_PROTOCOL],
            "v5.channel.k8s.io, v4.channel.k8s.io"
        );
        assert_eq!(request.headers()[UPGRADE], "websocket");
        assert_eq!(request.method(), http::Method::GET);
        assert!(handshake_request(&uri, "k", &["a b"]).is_err());
        assert!(handshake_request(&uri, "k", &["a,b"]).is_err());
    }

    #[test]
    fn only_offered_protocols_are_accepted() {
        check_protocol(
            "v4.channel.k8s.io",
            &["v5.channel.k8s.io", "v4.channel.k8s.io"],
        )
        .unwrap();
        check_protocol("", &[]).unwrap();
        let error = check_protocol("v9", &["v5.channel.k8s.io"]).unwrap_err();
        assert!(error.to_string().contains("not offered"), "{error}");
        assert!(check_protocol("", &["v5.channel.k8s.io"]).is_err());
    }
}
