//! Fault injection: failing requests on purpose and adding latency, for testing how clients
//! cope with a misbehaving API server.

use std::time::Duration;

use http::Method;
use parking_lot::Mutex;

use crate::status::ApiError;

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
    latency: Mutex<Option<Duration>>,
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

    /// Removes every armed failure and the latency.
    pub fn clear(&self) {
        self.rules.lock().clear();
        *self.latency.lock() = None;
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
    }
}
