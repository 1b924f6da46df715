//! The error type of every fallible operation in this crate.

use std::path::PathBuf;

use thiserror::Error;

pub use kube_apimachinery::{Status, StatusCause, StatusDetails};

/// Everything that can go wrong in kube-rest.
///
/// Configuration, transport, TLS, decoding and API errors are distinct variants; the
/// `is_*` helpers classify API errors the way client-go's `apierrors` package does.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The API server answered with an error `Status`.
    #[error("{} ({}): {}", .0.reason, .0.code, .0.message)]
    Api(Box<Status>),
    /// The configuration could not be loaded or is inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TLS material could not be loaded or the TLS configuration is invalid.
    #[error("TLS: {0}")]
    Tls(String),
    /// The credentials could not be obtained (token file, exec plugin...).
    #[error("authentication: {0}")]
    Auth(String),
    /// The request could not be sent or the response could not be read.
    #[error("transport: {0}")]
    Transport(String),
    /// The request did not complete within the configured timeout.
    #[error("request timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// A request could not be built (bad name, path or header value).
    #[error("invalid request: {0}")]
    Request(String),
    /// The response body could not be decoded.
    #[error("decoding the response: {0}")]
    Decode(String),
    /// A connection upgrade (WebSocket) failed: the server did not switch protocols, the
    /// handshake was invalid, or no offered subprotocol was chosen.
    #[error("upgrade: {0}")]
    Upgrade(String),
    /// A watch stream was cut: its connection failed, or it ended in the middle of an event.
    /// The events before it were complete: re-watch from the last resourceVersion seen (no
    /// relist needed).
    #[error("watch stream truncated ({leftover_bytes} bytes of an incomplete event dropped)")]
    WatchTruncated {
        /// The bytes of the incomplete event that were dropped.
        leftover_bytes: usize,
        /// Why the stream stopped, when it failed rather than ended.
        #[source]
        source: Option<Box<Error>>,
    },
    /// A watch event was larger than the limit (16 MiB by default, apimachinery's): the watch
    /// was ended.
    #[error("watch event larger than the {limit}-byte limit")]
    WatchFrameTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The client-side throttle refused the request.
    #[error("client-side throttle: {0}")]
    Throttle(#[from] kube_flowcontrol::throttle::ThrottleError),
}

/// Why a configuration could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A kubeconfig file could not be read.
    #[error("reading kubeconfig {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A kubeconfig file is not valid YAML or does not have the kubeconfig shape.
    #[error("parsing kubeconfig {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// No kubeconfig was found and the process does not run in a cluster.
    #[error(
        "no configuration found: no kubeconfig at {tried} and not running in a cluster \
         (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set)"
    )]
    NotFound {
        /// The places looked at, for the message.
        tried: String,
    },
    /// The kubeconfig has no current context and none was given.
    #[error("no current context in {sources} (set current-context or pass a context override)")]
    NoCurrentContext {
        /// The files merged.
        sources: String,
    },
    /// A context, cluster or user named somewhere does not exist.
    #[error("{kind} {name:?} not found in {sources}")]
    Missing {
        /// `"context"`, `"cluster"` or `"user"`.
        kind: &'static str,
        /// The name looked up.
        name: String,
        /// The files merged.
        sources: String,
    },
    /// The cluster has no server URL.
    #[error("cluster {cluster:?} has no server in {sources}")]
    NoServer {
        /// The cluster name.
        cluster: String,
        /// The files merged.
        sources: String,
    },
    /// A value is present but wrong (bad URL, bad base64, conflicting fields...).
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The in-cluster configuration could not be read.
    #[error("in-cluster configuration: {0}")]
    InCluster(String),
}

impl Error {
    /// The API `Status`, when the server answered with an error.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Api(status) => Some(status),
            _ => None,
        }
    }

    fn status_is(&self, test: fn(&Status) -> bool) -> bool {
        self.status().is_some_and(test)
    }

    /// `404 NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.status_is(Status::is_not_found)
    }

    /// `409 Conflict` (a stale resourceVersion or a failed precondition).
    pub fn is_conflict(&self) -> bool {
        self.status_is(Status::is_conflict)
    }

    /// `409 AlreadyExists` (a create of a name in use).
    pub fn is_already_exists(&self) -> bool {
        self.status_is(Status::is_already_exists)
    }

    /// `410 Gone` / `Expired` (a resourceVersion or continue token too old).
    pub fn is_gone(&self) -> bool {
        self.status_is(Status::is_gone)
    }

    /// `429 TooManyRequests`.
    pub fn is_too_many_requests(&self) -> bool {
        self.status_is(Status::is_too_many_requests)
    }

    /// `422 Invalid`.
    pub fn is_invalid(&self) -> bool {
        self.status_is(Status::is_invalid)
    }

    /// `401 Unauthorized`.
    pub fn is_unauthorized(&self) -> bool {
        self.status_is(Status::is_unauthorized)
    }

    /// `403 Forbidden`.
    pub fn is_forbidden(&self) -> bool {
        self.status_is(Status::is_forbidden)
    }

    /// `400 BadRequest`.
    pub fn is_bad_request(&self) -> bool {
        self.status_is(Status::is_bad_request)
    }

    /// A server-side timeout (`504`, reason `Timeout`) or a client-side [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_)) || self.status_is(Status::is_timeout)
    }

    /// A 5xx answer (`InternalError`, `ServiceUnavailable`...).
    pub fn is_server_error(&self) -> bool {
        self.status_is(Status::is_server_error)
    }

    /// A watch that was cut or truncated ([`Error::WatchTruncated`]): re-watch from the last
    /// resourceVersion seen.
    pub fn is_watch_truncated(&self) -> bool {
        matches!(self, Error::WatchTruncated { .. })
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
