//! Connections opened ahead of a WebSocket upgrade: the TCP connection and the TLS handshake
//! now, the upgrade request later ([`Client::open_upgrade_connection`],
//! [`RequestBuilder::connect_websocket_on`](crate::RequestBuilder::connect_websocket_on)).

use std::sync::{Arc, Weak};

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use tower_service::Service as _;

use super::{Client, Inner};
use crate::error::Error;

/// A connection to the API server on which no request was sent yet: the TCP connection, the
/// proxy tunnel (if any) and the TLS handshake are done, so a WebSocket upgrade sent on it
/// ([`RequestBuilder::connect_websocket_on`](crate::RequestBuilder::connect_websocket_on))
/// costs one round trip instead of three or four.
///
/// The server sees an open connection and nothing else (no request, no pod touched). Servers
/// close such connections after a while (kube-apiserver after 32 s without a request
/// header): a connection found closed when used is replaced by a new one, so holding one too
/// long costs the time saved, nothing more. Dropping it closes it.
pub struct UpgradeConnection {
    sender: http1::SendRequest<Full<Bytes>>,
    /// The client that opened it: another client's requests never ride on it.
    client: Weak<Inner>,
}

impl std::fmt::Debug for UpgradeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeConnection")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// What became of a request offered to an [`UpgradeConnection`].
pub(super) enum Sent {
    /// The server answered.
    Answered(Response<Incoming>),
    /// The connection was closed (or belongs to another client) before the request went
    /// out: it can be sent on a new connection as it is.
    Unsent(Request<Full<Bytes>>),
    /// The request went out, then the connection failed.
    Failed(hyper::Error),
}

impl UpgradeConnection {
    /// Whether the connection was closed (by the server, the network, or a proxy) since it
    /// was opened.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends `request` (absolute-form URI, as the pooled client takes it) in origin form
    /// with a `Host` header, as the pooled client would.
    pub(super) async fn send(mut self, inner: &Arc<Inner>, request: Request<Full<Bytes>>) -> Sent {
        if !std::ptr::eq(self.client.as_ptr(), Arc::as_ptr(inner)) || self.is_closed() {
            return Sent::Unsent(request);
        }
        if self.sender.ready().await.is_err() {
            return Sent::Unsent(request);
        }
        let absolute = request.uri().clone();
        let (mut parts, body) = request.into_parts();
        if let Some(host) = host_header(&absolute) {
            parts.headers.entry(HOST).or_insert(host);
        }
        if let Some(path) = absolute.path_and_query() {
            parts.uri = http::Uri::from(path.clone());
        }
        match self
            .sender
            .try_send_request(Request::from_parts(parts, body))
            .await
        {
            Ok(response) => Sent::Answered(response),
            Err(mut error) => match error.take_message() {
                Some(request) => {
                    let (mut parts, body) = request.into_parts();
                    parts.uri = absolute;
                    parts.headers.remove(HOST);
                    Sent::Unsent(Request::from_parts(parts, body))
                }
                None => Sent::Failed(error.into_error()),
            },
        }
    }
}

/// The `Host` header hyper-util's pooled client sends: the host, and the port unless it is
/// the scheme's default.
fn host_header(uri: &http::Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    let value = match uri.port_u16() {
        Some(port) if Some(port) != default => format!("{host}:{port}"),
        _ => host.to_string(),
    };
    HeaderValue::try_from(value).ok()
}

impl Client {
    /// Opens a connection to the API server for a later WebSocket upgrade: TCP (through the
    /// configured proxy) and TLS with HTTP/1.1, and nothing sent. See [`UpgradeConnection`].
    /// The client's timeout covers it.
    pub async fn open_upgrade_connection(&self) -> Result<UpgradeConnection, Error> {
        let inner = &self.inner;
        let uri = http::Uri::builder()
            .scheme(inner.scheme.clone())
            .authority(inner.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| Error::Request(format!("server URL: {e}")))?;
        let context = || format!("connecting to {}://{}", inner.scheme, inner.authority);
        let open = async {
            let mut connector = inner.upgrade_connector.clone();
            let io = async {
                std::future::poll_fn(|cx| connector.poll_ready(cx)).await?;
                connector.call(uri).await
            }
            .await
            // The connector's boxed error, in an `io::Error` so that it is an `Error` source.
            .map_err(|e| super::connect_error(context(), std::io::Error::other(e)))?;
            let (sender, connection) = http1::handshake(io)
                .await
                .map_err(|e| Error::transport(context(), e))?;
            tokio::spawn(async move {
                if let Err(error) = connection.with_upgrades().await {
                    tracing::debug!(%error, "upgrade connection ended with an error");
                }
            });
            Ok(UpgradeConnection {
                sender,
                client: Arc::downgrade(inner),
            })
        };
        match inner.timeout {
            Some(t) => tokio::time::timeout(t, open)
                .await
                .map_err(|_| Error::Timeout(t))?,
            None => open.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_leaves_out_default_ports() {
        let host = |uri: &str| host_header(&uri.parse().unwrap()).unwrap();
        assert_eq!(host("https://h:443/x"), "h");
        assert_eq!(host("https://h:6443/x"), "h:6443");
        assert_eq!(host("http://h:80/x"), "h");
        assert_eq!(host("http://[::1]:8080/x"), "[::1]:8080");
        assert_eq!(host("https://h/x"), "h");
    }
}
