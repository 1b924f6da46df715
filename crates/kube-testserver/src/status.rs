//! `metav1.Status` errors with the exact codes, reasons, messages and details of kube-apiserver.

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

/// One entry of `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    pub reason: &'static str,
    /// The full message (`Invalid value: "x": ...`, `Required value`).
    pub message: String,
    /// The field path (`metadata.name`).
    pub field: String,
}

impl Cause {
    /// `Invalid value: "<value>": <detail>`.
    pub fn invalid(field: &str, value: &str, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {}: {detail}", go_quote(value)),
            field: field.to_string(),
        }
    }

    /// `Required value` (with an optional detail).
    pub fn required(field: &str, detail: &str) -> Cause {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Cause {
            reason: "FieldValueRequired",
            message,
            field: field.to_string(),
        }
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: &str, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {detail}"),
            field: field.to_string(),
        }
    }
}

/// Quotes a string the way Go's `%q` does for printable text.
pub fn go_quote(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}

/// An error answered as a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code (also `code` in the body).
    pub code: u16,
    /// `reason` (empty for none, as internal errors have).
    pub reason: &'static str,
    /// `message`.
    pub message: String,
    /// `details`, if any.
    pub details: Option<Value>,
}

fn details(resource: &ResourceType, name: &str) -> Value {
    let mut map = Map::new();
    if !name.is_empty() {
        map.insert("name".into(), Value::String(name.to_string()));
    }
    if !resource.group.is_empty() {
        map.insert("group".into(), Value::String(resource.group.clone()));
    }
    map.insert("kind".into(), Value::String(resource.plural.clone()));
    Value::Object(map)
}

impl ApiError {
    /// 404 NotFound: `pods "x" not found`.
    pub fn not_found(resource: &ResourceType, name: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!(
                "{} {} not found",
                resource.qualified_plural(),
                go_quote(name)
            ),
            details: Some(details(resource, name)),
        }
    }

    /// 404 for a URL that names nothing served.
    pub fn path_not_found() -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".to_string(),
            details: Some(json!({})),
        }
    }

    /// 409 AlreadyExists.
    pub fn already_exists(resource: &ResourceType, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!(
                "{} {} already exists",
                resource.qualified_plural(),
                go_quote(name)
            ),
            details: Some(details(resource, name)),
        }
    }

    /// 409 Conflict for a stale resourceVersion.
    pub fn conflict(resource: &ResourceType, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} {}: the object has been modified; please apply your changes to the latest version and try again",
                resource.qualified_plural(),
                go_quote(name)
            ),
            details: Some(details(resource, name)),
        }
    }

    /// 409 Conflict for a failed delete precondition (`what` is `UID` or `ResourceVersion`).
    pub fn precondition_failed(
        resource: &ResourceType,
        name: &str,
        what: &str,
        wanted: &str,
        actual: &str,
    ) -> ApiError {
        let tail = if what == "UID" {
            "The object might have been deleted and then recreated"
        } else {
            "The object might have been modified"
        };
        let mut map = Map::new();
        map.insert("name".into(), Value::String(name.to_string()));
        if !resource.group.is_empty() {
            map.insert("group".into(), Value::String(resource.group.clone()));
        }
        map.insert("kind".into(), Value::String(resource.kind.clone()));
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} {}: the {what} in the precondition ({wanted}) does not match the {what} in record ({actual}). {tail}",
                resource.kind,
                go_quote(name)
            ),
            details: Some(Value::Object(map)),
        }
    }

    /// 422 Invalid with causes, for an object of `kind` (and `group`) named `name`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let rendered: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let summary = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let mut map = Map::new();
        map.insert(
            "causes".into(),
            Value::Array(
                causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect(),
            ),
        );
        if !group.is_empty() {
            map.insert("group".into(), Value::String(group.to_string()));
        }
        map.insert("kind".into(), Value::String(kind.to_string()));
        if !name.is_empty() {
            map.insert("name".into(), Value::String(name.to_string()));
        }
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{qualified_kind} {} is invalid: {summary}", go_quote(name)),
            details: Some(Value::Object(map)),
        }
    }

    /// 422 with the generic message (what a failed JSON patch gets).
    pub fn unprocessable() -> ApiError {
        ApiError {
            code: 422,
            reason: "Invalid",
            message: "the server rejected our request due to an error in our request".to_string(),
            details: Some(json!({})),
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> ApiError {
        ApiError {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".to_string(),
            details: None,
        }
    }

    /// 403 Forbidden for `user` doing `verb` on `resource` (in `namespace`, if any).
    pub fn forbidden(
        user: &str,
        verb: &str,
        resource: &str,
        group: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiError {
        let scope = match namespace {
            Some(ns) => format!("in the namespace {}", go_quote(ns)),
            None => "at the cluster scope".to_string(),
        };
        let mut map = Map::new();
        if !name.is_empty() {
            map.insert("name".into(), Value::String(name.to_string()));
        }
        if !group.is_empty() {
            map.insert("group".into(), Value::String(group.to_string()));
        }
        map.insert("kind".into(), Value::String(resource.to_string()));
        let subject = if name.is_empty() {
            resource.to_string()
        } else {
            format!("{resource} {}", go_quote(name))
        };
        ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{subject} is forbidden: User {} cannot {verb} resource {} in API group {} {scope}",
                go_quote(user),
                go_quote(resource),
                go_quote(group)
            ),
            details: Some(Value::Object(map)),
        }
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> ApiError {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource".to_string(),
            details: Some(json!({})),
        }
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type() -> ApiError {
        ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: "415: Unsupported Media Type".to_string(),
            details: Some(json!({})),
        }
    }

    /// 410 Expired: a watch or list from a resourceVersion older than the history.
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 410,
            reason: "Expired",
            message: message.into(),
            details: None,
        }
    }

    /// 500 without a reason, as the server answers unparsable resourceVersions.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 500,
            reason: "",
            message: message.into(),
            details: None,
        }
    }

    /// An injected failure (fault injection) with any code.
    pub fn injected(code: u16) -> ApiError {
        let (reason, message) = match code {
            429 => (
                "TooManyRequests",
                "Too many requests, please try again later.",
            ),
            503 => (
                "ServiceUnavailable",
                "The server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "The server was unable to return a response in the time allotted, but may still be processing the request",
            ),
            _ => (
                "InternalError",
                "an error on the server (\"injected failure\") has prevented the request from succeeding",
            ),
        };
        ApiError {
            code,
            reason,
            message: message.to_string(),
            details: Some(json!({})),
        }
    }

    /// The HTTP status code.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut map = Map::new();
        map.insert("kind".into(), json!("Status"));
        map.insert("apiVersion".into(), json!("v1"));
        map.insert("metadata".into(), json!({}));
        map.insert("status".into(), json!("Failure"));
        map.insert("message".into(), Value::String(self.message.clone()));
        if !self.reason.is_empty() {
            map.insert("reason".into(), json!(self.reason));
        }
        if let Some(details) = &self.details {
            map.insert("details".into(), details.clone());
        }
        map.insert("code".into(), json!(self.code));
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn messages_match_the_real_server() {
        let registry = Registry::with_builtins();
        let pods = registry.get("", "v1", "pods").unwrap();
        assert_eq!(
            ApiError::already_exists(&pods, "p1").message,
            "pods \"p1\" already exists"
        );
        let leases = registry.get("coordination.k8s.io", "v1", "leases").unwrap();
        let conflict = ApiError::conflict(&leases, "leader").to_status();
        assert_eq!(
            conflict["details"],
            json!({"group": "coordination.k8s.io", "kind": "leases", "name": "leader"})
        );
        let forbidden = ApiError::forbidden("system:anonymous", "list", "namespaces", "", None, "");
        assert_eq!(
            forbidden.message,
            "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        );
        let invalid = ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![Cause::required(
                "fieldManager",
                "is required for apply patch",
            )],
        );
        assert_eq!(
            invalid.message,
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
    }
}
