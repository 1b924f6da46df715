//! `/healthz` and `/metrics` over HTTP/1.1 (hyper 1), and the tiny client the demo reads them
//! with.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kube_leader::HealthzAdaptor;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::metrics::InformerMetrics;

/// What the endpoints read.
#[derive(Debug)]
pub struct Endpoints {
    /// Every metric of the replica.
    pub registry: Registry,
    /// The leader election's liveness check.
    pub healthz: HealthzAdaptor,
    /// The informers, for `/readyz`.
    pub informers: InformerMetrics,
}

/// The OpenMetrics text content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn handle(request: &Request<Incoming>, endpoints: &Endpoints) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    match request.uri().path() {
        // client-go's healthz: the leader election check (a leader whose renewals stalled is
        // unhealthy and should be restarted).
        "/healthz" | "/livez" => match endpoints.healthz.check() {
            Ok(()) => respond(StatusCode::OK, TEXT, "ok".into()),
            Err(e) => respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                format!(
                    "[-]{} failed: {e}\nhealthz check failed\n",
                    endpoints.healthz.name()
                ),
            ),
        },
        "/readyz" => {
            if endpoints.informers.all_synced() {
                respond(StatusCode::OK, TEXT, "ok".into())
            } else {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    "informers not synced\n".into(),
                )
            }
        }
        "/metrics" => {
            let mut text = String::new();
            match prometheus_client::encoding::text::encode(&mut text, &endpoints.registry) {
                Ok(()) => respond(StatusCode::OK, OPENMETRICS, text),
                Err(e) => respond(StatusCode::INTERNAL_SERVER_ERROR, TEXT, e.to_string()),
            }
        }
        _ => respond(StatusCode::NOT_FOUND, TEXT, "404 page not found\n".into()),
    }
}

/// Serves the endpoints on `listener` until `cancel` fires.
pub async fn serve(listener: TcpListener, endpoints: Arc<Endpoints>, cancel: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a metrics connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let endpoints = Arc::clone(&endpoints);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = handle(&request, &endpoints);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = cancel.cancelled() => {}
                result = connection => if let Err(e) = result {
                    tracing::debug!(error = %e, "metrics connection ended");
                },
            }
        });
    }
}

/// Why [`get`] failed.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    /// Connecting, writing or reading failed.
    #[error("GET {path} from {address}: {source}")]
    Io {
        /// The server.
        address: SocketAddr,
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The answer is not HTTP.
    #[error("GET {path} from {address}: not an HTTP answer")]
    NotHttp {
        /// The server.
        address: SocketAddr,
        /// The path.
        path: String,
    },
}

/// `GET path` from `address` (HTTP/1.1, `Connection: close`): the status code and the body.
pub async fn get(address: SocketAddr, path: &str) -> Result<(u16, String), GetError> {
    let io = |source| GetError::Io {
        address,
        path: path.to_string(),
        source,
    };
    let mut stream = TcpStream::connect(address).await.map_err(io)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(io)?;
    let text = String::from_utf8_lossy(&response);
    let not_http = || GetError::NotHttp {
        address,
        path: path.to_string(),
    };
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(not_http)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(not_http)?;
    Ok((status, body.to_string()))
}
