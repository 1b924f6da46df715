//! When a request is sent again (client-go's `rest.WithRetry` and the `isErrRetryableFunc` of
//! `Request.request`).
//!
//! * An answer `429` or `5xx` carrying `Retry-After` is retried after that many seconds, for
//!   every verb: our request bodies are byte buffers, always replayable (client-go retries
//!   any request whose body it can seek back, which is every request it builds from bytes).
//! * A `GET` that got no answer because the connection was reset, ended early (an unexpected
//!   EOF) or the HTTP/2 connection went away is retried after one second (client-go's
//!   artificial `Retry-After: 1`); other verbs are not, as the server may have acted on them.
//! * At most `max_retries` retries (10 by default, as client-go); running out is logged at
//!   `warn` level and counted in [`RetryStats::exhausted`].

use std::error::Error as StdError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

/// How many requests a [`Client`](crate::Client) (and its clones) sent again, and how many
/// times retrying ran out, since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryStats {
    /// Requests sent again after a `Retry-After` answer or a lost connection.
    pub retries: u64,
    /// Requests that failed after `max_retries` retries (each is also logged at `warn` level).
    pub exhausted: u64,
}

/// The counters behind [`RetryStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    retries: AtomicU64,
    exhausted: AtomicU64,
}

impl Counters {
    pub(super) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn exhausted(&self) {
        self.exhausted.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn stats(&self) -> RetryStats {
        RetryStats {
            retries: self.retries.load(Ordering::Relaxed),
            exhausted: self.exhausted.load(Ordering::Relaxed),
        }
    }
}

/// The wait a `429` or `5xx` answer asks for with `Retry-After` (client-go's `checkWait`);
/// `None` for other answers or without a readable header.
pub(super) fn wait_asked(
    status: StatusCode,
    headers: &HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
        return None;
    }
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// `Retry-After` as delay-seconds or as an HTTP date (a date in the past means at once).
/// client-go reads only delay-seconds (which is what the API server sends); the date form is
/// accepted too because proxies in front of it may send it.
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = jiff::fmt::rfc2822::parse(value).ok()?;
    let at = SystemTime::from(date.timestamp());
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Why a request got no answer, when the connection was lost in a way that makes a `GET`
/// worth sending again: apimachinery's `IsConnectionReset` and `IsProbableEOF` (a reset, an
/// unexpected EOF, a broken or closed connection, an HTTP/2 `GOAWAY`). A refused connection
/// or a TLS failure is not one.
pub(super) fn lost_connection(error: &(dyn StdError + 'static)) -> Option<&'static str> {
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        if let Some(reason) = lost_io(io) {
            return Some(reason);
        }
        if let Some(inner) = io.get_ref()
            && let Some(reason) = lost_connection(inner)
        {
            return Some(reason);
        }
    }
    if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
        if hyper.is_incomplete_message() {
            return Some("the connection closed before the answer (unexpected EOF)");
        }
        if hyper.is_canceled() {
            return Some("the connection closed before the request was answered");
        }
    }
    if let Some(h2) = error.downcast_ref::<h2::Error>() {
        if h2.is_go_away() && h2.is_remote() {
            return Some("the server sent an HTTP/2 GOAWAY");
        }
        if let Some(reason) = h2.get_io().and_then(lost_io) {
            return Some(reason);
        }
    }
    error.source().and_then(lost_connection)
}

fn lost_io(io: &std::io::Error) -> Option<&'static str> {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => Some("connection reset"),
        ErrorKind::UnexpectedEof => Some("unexpected EOF"),
        ErrorKind::BrokenPipe => Some("broken connection"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn retry_after_values() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let cases = [
            ("1", Some(1)),
            (" 120 ", Some(120)),
            ("0", Some(0)),
            ("Sun, 06 Nov 1994 08:50:07 GMT", Some(30)),
            ("Sun, 06 Nov 1994 08:49:00 GMT", Some(0)),
            ("-1", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse_retry_after(value, now),
                expected.map(Duration::from_secs),
                "{value:?}"
            );
        }
    }

    /// client-go's `checkWait`: only 429 and 5xx answers, and only with the header.
    #[test]
    fn which_answers_ask_to_wait() {
        let now = SystemTime::UNIX_EPOCH;
        let mut with = HeaderMap::new();
        with.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
        let without = HeaderMap::new();
        let cases = [
            (429, &with, Some(2)),
            (500, &with, Some(2)),
            (503, &with, Some(2)),
            (504, &with, Some(2)),
            (429, &without, None),
            (503, &without, None),
            (409, &with, None),
            (404, &with, None),
            (200, &with, None),
        ];
        for (code, headers, expected) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(
                wait_asked(status, headers, now),
                expected.map(Duration::from_secs),
                "{code}"
            );
        }
    }

    #[derive(Debug)]
    struct Wrapper(Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    /// apimachinery's `IsConnectionReset`/`IsProbableEOF`, as I/O error kinds, found anywhere
    /// in the chain (also inside an `io::Error` wrapping another error).
    #[test]
    fn lost_connections_are_recognized_in_the_chain() {
        let kinds = [
            (ErrorKind::ConnectionReset, true),
            (ErrorKind::ConnectionAborted, true),
            (ErrorKind::UnexpectedEof, true),
            (ErrorKind::BrokenPipe, true),
            (ErrorKind::ConnectionRefused, false),
            (ErrorKind::TimedOut, false),
            (ErrorKind::PermissionDenied, false),
            (ErrorKind::InvalidData, false),
        ];
        for (kind, lost) in kinds {
            let direct = Error::from(kind);
            assert_eq!(lost_connection(&direct).is_some(), lost, "{kind:?}");
            let chained = Wrapper(Error::from(kind));
            assert_eq!(
                lost_connection(&chained).is_some(),
                lost,
                "{kind:?} in a chain"
            );
            let inside = Error::other(Wrapper(Error::from(kind)));
            assert_eq!(
                lost_connection(&inside).is_some(),
                lost,
                "{kind:?} inside io::Error"
            );
        }
        // A stream reset by the server is not a lost connection (a GOAWAY is: see
        // tests/lost_connection.rs, which needs a real HTTP/2 peer to produce one).
        let h2_io = h2::Error::from(h2::Reason::CANCEL);
        assert!(lost_connection(&h2_io).is_none());
    }
}
