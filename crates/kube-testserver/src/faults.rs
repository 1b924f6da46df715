//! Fault injection: failing requests on purpose, adding latency, stalling responses and
//! cutting watches, for testing how clients cope with a misbehaving API server. Timed, seeded
//! schedules of these faults are in [`crate::schedule`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Method;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::status::ApiError;

/// How an armed stall ends a response it paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallEnd {
    /// The rest of the body follows the pause (a slow network).
    Resume,
    /// The body ends after the pause, cut in the middle (a load balancer dropping the
    /// connection): the client reads a truncated document or watch event.
    Truncate,
}

#[derive(Debug, Clone)]
struct StallRule {
    method: Option<Method>,
    path_prefix: String,
    pause: Duration,
    end: StallEnd,
    remaining: usize,
}

#[derive(Debug, Clone)]
struct FailureRule {
    method: Option<Method>,
    path_prefix: String,
    status: u16,
    remaining: usize,
}

/// The faults currently armed on a server.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FailureRule>>,
    stalls: Mutex<Vec<StallRule>>,
    latency: Mutex<Option<Duration>>,
    watches: WatchRegistry,
    failed: AtomicU64,
    stalled: AtomicU64,
}

/// The open watch streams, each with its own token so that some of them can be cut.
#[derive(Debug, Default)]
struct WatchRegistry {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, CancellationToken>>,
}

/// An open watch's registration: cancelled when the watch is cut, removed when dropped.
pub(crate) struct WatchHandle<'a> {
    id: u64,
    token: CancellationToken,
    registry: &'a Faults,
}

impl WatchHandle<'_> {
    /// Cancelled when a fault cuts this watch.
    pub(crate) fn cut(&self) -> &CancellationToken {
        &self.token
    }
}

impl Drop for WatchHandle<'_> {
    fn drop(&mut self) {
        self.registry.watches.open.lock().remove(&self.id);
    }
}

impl Faults {
    /// Makes the next `count` requests whose method is `method` (any, if `None`) and whose path
    /// starts with `path_prefix` fail with `status` (500, 503 and 429 get a `Retry-After: 1`).
    pub fn fail_next(&self, method: Option<Method>, path_prefix: &str, status: u16, count: usize) {
        self.rules.lock().push(FailureRule {
            method,
            path_prefix: path_prefix.to_string(),
            status,
            remaining: count,
        });
    }

    /// Delays every request by `latency` (`None` removes the delay).
    pub fn set_latency(&self, latency: Option<Duration>) {
        *self.latency.lock() = latency;
    }

    /// The configured latency.
    pub fn latency(&self) -> Option<Duration> {
        *self.latency.lock()
    }

    /// Removes every armed failure, stall and the latency.
    pub fn clear(&self) {
        self.rules.lock().clear();
        self.stalls.lock().clear();
        *self.latency.lock() = None;
    }

    /// Makes the next `count` responses to requests whose method is `method` (any, if `None`)
    /// and whose path starts with `path_prefix` pause for `pause` in the middle of their body
    /// (after half of a full body, or after the first chunk of a watch), and then go on or end
    /// there, as `end` says.
    pub fn stall_next(
        &self,
        method: Option<Method>,
        path_prefix: &str,
        pause: Duration,
        end: StallEnd,
        count: usize,
    ) {
        self.stalls.lock().push(StallRule {
            method,
            path_prefix: path_prefix.to_string(),
            pause,
            end,
            remaining: count,
        });
    }

    /// How many requests were answered with an injected failure so far.
    pub fn failures_injected(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// How many responses were stalled so far.
    pub fn stalls_injected(&self) -> u64 {
        self.stalled.load(Ordering::Relaxed)
    }

    /// How many watch streams are open.
    pub fn open_watches(&self) -> usize {
        self.watches.open.lock().len()
    }

    /// Ends the open watch streams that `pick` chooses (it sees them oldest first, by
    /// their opening order) and returns how many it ended.
    pub fn cut_watches(&self, mut pick: impl FnMut() -> bool) -> usize {
        let open = self.watches.open.lock();
        let mut cut = 0;
        for token in open.values() {
            if pick() {
                token.cancel();
                cut += 1;
            }
        }
        cut
    }

    /// Registers an open watch stream.
    pub(crate) fn register_watch(&self) -> WatchHandle<'_> {
        let id = self.watches.next.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        self.watches.open.lock().insert(id, token.clone());
        WatchHandle {
            id,
            token,
            registry: self,
        }
    }

    /// The stall to apply to this request's response, if one is armed (and consumes it).
    pub(crate) fn take_stall(&self, method: &Method, path: &str) -> Option<(Duration, StallEnd)> {
        let mut rules = self.stalls.lock();
        let index = rules.iter().position(|rule| {
            rule.remaining > 0
                && rule.method.as_ref().is_none_or(|m| m == method)
                && path.starts_with(&rule.path_prefix)
        })?;
        let rule = &mut rules[index];
        rule.remaining -= 1;
        let stall = (rule.pause, rule.end);
        if rule.remaining == 0 {
            rules.remove(index);
        }
        self.stalled.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%method, path, pause = ?stall.0, end = ?stall.1, "injected stall");
        Some(stall)
    }

    /// The failure to answer this request with, if one is armed (and consumes it).
    pub(crate) fn take_failure(&self, method: &Method, path: &str) -> Option<ApiError> {
        let mut rules = self.rules.lock();
        let index = rules.iter().position(|rule| {
            rule.remaining > 0
                && rule.method.as_ref().is_none_or(|m| m == method)
                && path.starts_with(&rule.path_prefix)
        })?;
        let rule = &mut rules[index];
        rule.remaining -= 1;
        let status = rule.status;
        if rule.remaining == 0 {
            rules.remove(index);
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%method, path, status, "injected failure");
        Some(ApiError::injected(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_consumed_in_order() {
        let faults = Faults::default();
        faults.fail_next(Some(Method::GET), "/api/v1/pods", 503, 2);
        assert!(faults.take_failure(&Method::POST, "/api/v1/pods").is_none());
        assert_eq!(
            faults
                .take_failure(&Method::GET, "/api/v1/pods")
                .unwrap()
                .code,
            503
        );
        assert_eq!(
            faults
                .take_failure(&Method::GET, "/api/v1/pods/x")
                .unwrap()
                .code,
            503
        );
        assert!(faults.take_failure(&Method::GET, "/api/v1/pods").is_none());
        assert_eq!(faults.failures_injected(), 2);
    }

    #[test]
    fn stalls_are_consumed_and_counted() {
        let faults = Faults::default();
        let pause = Duration::from_millis(5);
        faults.stall_next(None, "/api/v1/configmaps", pause, StallEnd::Truncate, 1);
        assert!(faults.take_stall(&Method::GET, "/api/v1/pods").is_none());
        assert_eq!(
            faults.take_stall(&Method::GET, "/api/v1/configmaps"),
            Some((pause, StallEnd::Truncate))
        );
        assert!(
            faults
                .take_stall(&Method::GET, "/api/v1/configmaps")
                .is_none()
        );
        assert_eq!(faults.stalls_injected(), 1);
    }

    #[test]
    fn some_watches_can_be_cut() {
        let faults = Faults::default();
        let handles: Vec<_> = (0..4).map(|_| faults.register_watch()).collect();
        assert_eq!(faults.open_watches(), 4);
        let mut toggle = false;
        let cut = faults.cut_watches(|| {
            toggle = !toggle;
            toggle
        });
        assert_eq!(cut, 2);
        let cancelled: Vec<bool> = handles.iter().map(|h| h.cut().is_cancelled()).collect();
        assert_eq!(cancelled, [true, false, true, false]);
        drop(handles);
        assert_eq!(faults.open_watches(), 0);
    }
}
