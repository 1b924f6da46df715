//! `metav1.Status`: what the API server answers for a failed request or an `ERROR` watch
//! event, with apimachinery's `errors.IsNotFound` family of classifiers.

use serde::{Deserialize, Serialize};

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
    /// A failure `Status` with this code, reason and message.
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Status {
        Status {
            status: "Failure".into(),
            message: message.into(),
            reason: reason.into(),
            details: None,
            code,
        }
    }

    /// A `Status` made up by the client for a response whose body was not a `Status`
    /// (client-go's "the server could not find the requested resource" family): the reason
    /// follows the code as apimachinery's `NewGenericServerResponse` does, the message is the
    /// body's text (cut at 512 characters) or client-go's generic sentence.
    pub fn from_code(code: u16, body: &[u8]) -> Status {
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
        Status::failure(code, reason_for_code(code), message)
    }

    fn reason_or_code(&self, reason: &str, code: u16) -> bool {
        if !self.reason.is_empty() && self.reason != "Unknown" {
            self.reason == reason
        } else {
            self.code == code
        }
    }

    /// `404 NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.reason_or_code("NotFound", 404)
    }

    /// `409 Conflict` (a stale resourceVersion or a failed precondition).
    pub fn is_conflict(&self) -> bool {
        self.reason_or_code("Conflict", 409)
    }

    /// `409 AlreadyExists` (a create of a name in use).
    pub fn is_already_exists(&self) -> bool {
        self.reason == "AlreadyExists"
    }

    /// `410 Gone` / `Expired`: a resourceVersion or continue token too old (relist).
    pub fn is_gone(&self) -> bool {
        self.reason == "Gone" || self.reason == "Expired" || self.code == 410
    }

    /// `429 TooManyRequests`.
    pub fn is_too_many_requests(&self) -> bool {
        self.reason_or_code("TooManyRequests", 429)
    }

    /// `422 Invalid`.
    pub fn is_invalid(&self) -> bool {
        self.reason_or_code("Invalid", 422)
    }

    /// `401 Unauthorized`.
    pub fn is_unauthorized(&self) -> bool {
        self.reason_or_code("Unauthorized", 401)
    }

    /// `403 Forbidden`.
    pub fn is_forbidden(&self) -> bool {
        self.reason_or_code("Forbidden", 403)
    }

    /// `400 BadRequest`.
    pub fn is_bad_request(&self) -> bool {
        self.reason_or_code("BadRequest", 400)
    }

    /// A server-side timeout (`504`, reason `Timeout`).
    pub fn is_timeout(&self) -> bool {
        self.reason_or_code("Timeout", 504)
    }

    /// A 5xx answer (`InternalError`, `ServiceUnavailable`...).
    pub fn is_server_error(&self) -> bool {
        self.code >= 500
    }

    /// The server's `retryAfterSeconds`, when it gave one.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        self.details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|s| *s > 0)
    }
}

/// The `StatusReason` apimachinery gives an HTTP code when the body says nothing
/// (`NewGenericServerResponse`).
pub fn reason_for_code(code: u16) -> &'static str {
    match code {
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
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_reason_then_code() {
        let s = Status::failure(404, "NotFound", "pods \"x\" not found");
        assert!(s.is_not_found() && !s.is_conflict());
        // An unknown reason falls back to the code, as apimachinery's ReasonForError does.
        assert!(Status::failure(409, "", "x").is_conflict());
        assert!(Status::failure(409, "Unknown", "x").is_conflict());
        // A known reason wins over the code.
        assert!(!Status::failure(409, "AlreadyExists", "x").is_conflict());
        assert!(Status::failure(409, "AlreadyExists", "x").is_already_exists());
        assert!(Status::failure(410, "Expired", "too old").is_gone());
        assert!(Status::failure(503, "ServiceUnavailable", "x").is_server_error());
        assert_eq!(
            Status::failure(500, "InternalError", "boom").to_string(),
            "InternalError (500): boom"
        );
    }

    #[test]
    fn from_code_makes_up_a_status() {
        let s = Status::from_code(429, b"");
        assert_eq!(s.reason, "TooManyRequests");
        assert!(s.message.contains("status code 429"));
        let long = "x".repeat(600);
        let s = Status::from_code(502, long.as_bytes());
        assert_eq!(s.reason, "Unknown");
        assert_eq!(s.message.len(), 515);
    }

    #[test]
    fn decodes_the_wire_form() {
        let s: Status = serde_json::from_str(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too many","reason":"TooManyRequests","details":{"retryAfterSeconds":2},"code":429}"#,
        )
        .unwrap();
        assert_eq!(s.retry_after_seconds(), Some(2));
        assert!(s.is_too_many_requests());
    }
}
