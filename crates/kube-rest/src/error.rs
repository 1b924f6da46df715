//! The error type of every fallible operation in this crate.

use std::path::PathBuf;

use thiserror::Error;

pub use kube_apimachinery::{Status, StatusCause, StatusDetails};

/// Everything that can go wrong in kube-rest.
///
/// Configuration, transport, TLS, decoding and API errors are distinct variants; the
/// `is_*` helpers classify API errors the way client-go's `apierrors` package does.
///
/// # Causes
///
/// Transport, TLS, authentication and decoding errors say what was being done (`context`) and
/// keep the error that made it fail (an I/O, hyper, rustls or serde_json error) as their
/// [`source()`](std::error::Error::source), wrapped in a [`Cause`] so that those crates' types
/// are not part of kube-rest's API (a semver bump of theirs does not break ours). Some of these
/// errors have no underlying error (an exec plugin that printed the wrong kind): their
/// `source` is `None`.
///
/// Like Go's `%w` wrapping, the message (`Display`) of these variants already ends with the
/// messages of their causes (`transport: GET https://...: client error (Connect): tcp connect
/// error: Connection refused`), so printing an error with `{}` loses nothing; a reporter that
/// also walks `source()` (anyhow's `{:?}`) repeats them.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The API server answered with an error `Status`.
    #[error("{} ({}): {}", .0.reason, .0.code, .0.message)]
    Api(Box<Status>),
    /// The configuration could not be loaded or is inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TLS material could not be loaded or the TLS configuration is invalid, or a TLS handshake
    /// failed.
    #[error("TLS: {context}{}", Causes(.source))]
    Tls {
        /// What was being done.
        context: String,
        /// The underlying error (a rustls, PEM or I/O error), when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The credentials could not be obtained (token file, exec plugin...).
    #[error("authentication: {context}{}", Causes(.source))]
    Auth {
        /// What was being done.
        context: String,
        /// The underlying error (an I/O or JSON error), when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The request could not be sent or the response could not be read.
    #[error("transport: {context}{}", Causes(.source))]
    Transport {
        /// What was being done (the verb and URL of a request).
        context: String,
        /// The underlying error (hyper's, an I/O error, a WebSocket error), when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The request did not complete within the configured timeout.
    #[error("request timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// A request could not be built (bad name, path or header value).
    #[error("invalid request: {0}")]
    Request(String),
    /// The response body could not be decoded.
    #[error("decoding the response: {context}{}", Causes(.source))]
    Decode {
        /// What was being decoded.
        context: String,
        /// The underlying error (serde_json's), when there is one.
        #[source]
        source: Option<Cause>,
    },
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
    /// The client-side throttle refused the request (kube-flowcontrol's `ThrottleError` is the
    /// cause: a wait that can never be satisfied, or a limiter that accepts nothing).
    #[error("client-side throttle: {source}")]
    Throttle {
        /// Why the throttle refused.
        #[source]
        source: Cause,
    },
}

/// The underlying error of an [`Error`](enum@Error): an I/O, hyper, rustls, serde_json or kube-flowcontrol
/// error, kept as the [`source()`](std::error::Error::source) without making its type part of
/// kube-rest's API.
///
/// `Display` is the underlying error's message and `source()` is the underlying error itself,
/// so walking the `source()` chain of an [`Error`](enum@Error) meets the underlying error and its own
/// causes, and `downcast_ref` works on each as usual (a chain-printing reporter shows the
/// underlying message twice, once for this wrapper). [`Cause::downcast_ref`] and
/// [`Cause::has`] are shortcuts. Which types appear in the chain may change with the versions
/// of kube-rest's dependencies, except [`std::io::Error`] for file and socket errors.
pub struct Cause(Box<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// Wraps an error.
    pub fn new<E: std::error::Error + Send + Sync + 'static>(error: E) -> Cause {
        Cause(Box::new(error))
    }

    /// The underlying error.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The underlying error if it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }

    /// Whether a `T` is the underlying error or one of its causes (looking inside
    /// [`std::io::Error`]s, whose `source()` skips the error they wrap).
    pub fn has<T: std::error::Error + 'static>(&self) -> bool {
        chain_has::<T>(self.get_ref())
    }
}

fn chain_has<T: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<T>() {
        return true;
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
        && chain_has::<T>(inner)
    {
        return true;
    }
    error.source().is_some_and(chain_has::<T>)
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.get_ref())
    }
}

/// Writes `: cause: its cause: ...` for an optional cause, skipping a message already
/// contained in the one before it (wrappers that repeat their source's text).
struct Causes<'a>(&'a Option<Cause>);

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(cause) = self.0 else {
            return Ok(());
        };
        let mut previous = String::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(cause.get_ref());
        while let Some(error) = next {
            let text = error.to_string();
            if !text.is_empty() && !previous.contains(&text) {
                write!(f, ": {text}")?;
            }
            previous = text;
            next = error.source();
        }
        Ok(())
    }
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
    /// A [`Error::Transport`] caused by `source`.
    pub(crate) fn transport(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Transport {
            context: context.into(),
            source: Some(Cause::new(source)),
        }
    }

    /// A [`Error::Transport`] without an underlying error.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))] // only exec and channel use it
    pub(crate) fn transport_msg(context: impl Into<String>) -> Error {
        Error::Transport {
            context: context.into(),
            source: None,
        }
    }

    /// A [`Error::Tls`] caused by `source`.
    pub(crate) fn tls(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Tls {
            context: context.into(),
            source: Some(Cause::new(source)),
        }
    }

    /// A [`Error::Tls`] without an underlying error.
    pub(crate) fn tls_msg(context: impl Into<String>) -> Error {
        Error::Tls {
            context: context.into(),
            source: None,
        }
    }

    /// A [`Error::Auth`] caused by `source`.
    pub(crate) fn auth(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Auth {
            context: context.into(),
            source: Some(Cause::new(source)),
        }
    }

    /// A [`Error::Auth`] without an underlying error.
    pub(crate) fn auth_msg(context: impl Into<String>) -> Error {
        Error::Auth {
            context: context.into(),
            source: None,
        }
    }

    /// A [`Error::Decode`] caused by `source`.
    pub(crate) fn decode(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Decode {
            context: context.into(),
            source: Some(Cause::new(source)),
        }
    }

    /// A [`Error::Decode`] without an underlying error.
    pub(crate) fn decode_msg(context: impl Into<String>) -> Error {
        Error::Decode {
            context: context.into(),
            source: None,
        }
    }

    /// The client-side throttle refused.
    pub(crate) fn throttle(source: kube_flowcontrol::throttle::ThrottleError) -> Error {
        Error::Throttle {
            source: Cause::new(source),
        }
    }

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

/// [`kube_flowcontrol::retry::retry_on_conflict`] retries an [`Api`](crate::Api) call while
/// it fails with [`Error::is_conflict`] (a `409 Conflict`, never `AlreadyExists`).
impl kube_flowcontrol::retry::IsConflict for Error {
    fn is_conflict(&self) -> bool {
        Error::is_conflict(self)
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[derive(Debug, Error)]
    #[error("outer wrapper: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn causes_are_kept_and_printed_once() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let error = Error::transport("GET https://h/api", Repeats(reset));
        // The cause's own message repeats its source's: printed once.
        assert_eq!(
            error.to_string(),
            "transport: GET https://h/api: outer wrapper: reset by peer"
        );
        // The chain: Cause, then the underlying error itself, then its source.
        let cause = error.source().expect("a cause");
        let wrapper = cause.source().expect("the wrapped error");
        assert!(wrapper.is::<Repeats>());
        let io = wrapper
            .source()
            .and_then(|e| e.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionReset)
        );
        let Error::Transport {
            source: Some(cause),
            ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert!(cause.downcast_ref::<Repeats>().is_some());
        assert!(cause.has::<std::io::Error>());
        assert!(!cause.has::<std::fmt::Error>());

        // Without an underlying error: no source, the context alone.
        let plain = Error::auth_msg("token file /t is empty");
        assert!(plain.source().is_none());
        assert_eq!(plain.to_string(), "authentication: token file /t is empty");
    }

    #[test]
    fn throttle_refusals_hide_the_flowcontrol_type() {
        let error = Error::throttle(kube_flowcontrol::throttle::ThrottleError::NeverAccepts);
        assert_eq!(
            error.to_string(),
            "client-side throttle: can not be accepted"
        );
        assert!(matches!(&error, Error::Throttle { source } if source
            .downcast_ref::<kube_flowcontrol::throttle::ThrottleError>()
            .is_some()));
    }

    #[test]
    fn conflicts_drive_retry_on_conflict() {
        use kube_flowcontrol::retry::IsConflict;
        let conflict = Error::Api(Box::new(Status {
            reason: "Conflict".into(),
            code: 409,
            ..Status::default()
        }));
        let exists = Error::Api(Box::new(Status {
            reason: "AlreadyExists".into(),
            code: 409,
            ..Status::default()
        }));
        assert!(IsConflict::is_conflict(&conflict));
        assert!(!IsConflict::is_conflict(&exists));
        assert!(!IsConflict::is_conflict(&Error::transport_msg("reset")));
    }
}
