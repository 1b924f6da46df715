//! The error type of every fallible operation in this crate.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A `metav1.Status` returned by the API server for a failed request (or an `ERROR` watch event).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `"Success"` or `"Failure"`.
    #[serde(default)]
    pub status: String,
    /// A human-readable description of the failure.
    #[serde(default)]
    pub message: String,
    /// A machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    #[serde(default)]
    pub reason: String,
    /// Extended data about the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// The HTTP status code (0 when unset).
    #[serde(default)]
    pub code: u16,
}

/// The `details` of a [`Status`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// The name of the object concerned.
    #[serde(default)]
    pub name: String,
    /// The API group of the object concerned.
    #[serde(default)]
    pub group: String,
    /// The kind of the object concerned.
    #[serde(default)]
    pub kind: String,
    /// The UID of the object concerned.
    #[serde(default)]
    pub uid: String,
    /// The individual failures (for `Invalid`, one per field).
    #[serde(default)]
    pub causes: Vec<StatusCause>,
    /// Seconds the client should wait before retrying, when the server says so.
    #[serde(default)]
    pub retry_after_seconds: u32,
}

/// One cause of a failure in [`StatusDetails`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCause {
    /// A machine-readable cause (`FieldValueRequired`, ...).
    #[serde(default)]
    pub reason: String,
    /// A human-readable description of the cause.
    #[serde(default)]
    pub message: String,
    /// The field concerned (`spec.containers[0].image`).
    #[serde(default)]
    pub field: String,
}

impl Status {
    /// A `Status` made up by the client for a response whose body was not a `Status`
    /// (client-go's "the server could not find the requested resource" family).
    pub fn from_code(code: u16, body: &[u8]) -> Status {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            406 => "NotAcceptable",
            409 => "Conflict",
            410 => "Gone",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Unknown",
        };
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            format!(
                "the server responded with the status code {code} but did not return more information"
            )
        } else {
            let mut message: String = text.chars().take(512).collect();
            if message.len() < text.len() {
                message.push_str("...");
            }
            message
        };
        Status {
            status: "Failure".into(),
            message,
            reason: reason.into(),
            details: None,
            code,
        }
    }
}

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

    fn api_reason_or_code(&self, reason: &str, code: u16) -> bool {
        match self.status() {
            Some(status) if !status.reason.is_empty() && status.reason != "Unknown" => {
                status.reason == reason
            }
            Some(status) => status.code == code,
            None => false,
        }
    }

    /// `404 NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.api_reason_or_code("NotFound", 404)
    }

    /// `409 Conflict` (a stale resourceVersion or a failed precondition).
    pub fn is_conflict(&self) -> bool {
        self.api_reason_or_code("Conflict", 409)
    }

    /// `409 AlreadyExists` (a create of a name in use).
    pub fn is_already_exists(&self) -> bool {
        matches!(self.status(), Some(status) if status.reason == "AlreadyExists")
    }

    /// `410 Gone` / `Expired` (a resourceVersion or continue token too old).
    pub fn is_gone(&self) -> bool {
        match self.status() {
            Some(status) => {
                status.reason == "Gone" || status.reason == "Expired" || status.code == 410
            }
            None => false,
        }
    }

    /// `429 TooManyRequests`.
    pub fn is_too_many_requests(&self) -> bool {
        self.api_reason_or_code("TooManyRequests", 429)
    }

    /// `422 Invalid`.
    pub fn is_invalid(&self) -> bool {
        self.api_reason_or_code("Invalid", 422)
    }

    /// `401 Unauthorized`.
    pub fn is_unauthorized(&self) -> bool {
        self.api_reason_or_code("Unauthorized", 401)
    }

    /// `403 Forbidden`.
    pub fn is_forbidden(&self) -> bool {
        self.api_reason_or_code("Forbidden", 403)
    }

    /// `400 BadRequest`.
    pub fn is_bad_request(&self) -> bool {
        self.api_reason_or_code("BadRequest", 400)
    }

    /// A server-side timeout (`504`, reason `Timeout`) or a client-side [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_)) || self.api_reason_or_code("Timeout", 504)
    }

    /// A 5xx answer (`InternalError`, `ServiceUnavailable`...).
    pub fn is_server_error(&self) -> bool {
        matches!(self.status(), Some(status) if status.code >= 500)
    }
}

/// [`kube_flowcontrol::retry::retry_on_conflict`] retries an [`Api`](crate::Api) call while
/// it fails with [`Error::is_conflict`] (a `409 Conflict`, never `AlreadyExists`).
impl kube_flowcontrol::retry::IsConflict for Error {
    fn is_conflict(&self) -> bool {
        Error::is_conflict(self)
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
