//! What kube-apiserver refuses before it looks at a request's meaning: bodies over its size
//! limit, paths it cannot route once decoded, and bodies of another kind than the endpoint's.

use bytes::{Bytes, BytesMut};
use http::Method;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::registry::{Registry, ResourceType};
use crate::status::ApiError;

/// kube-apiserver's `MaxRequestBodyBytes`: 3 MiB.
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How much of a refused or ignored body is read and thrown away, so that the client, still
/// sending, gets the answer rather than a reset connection; past it the connection closes.
const MAX_DISCARDED_BYTES: usize = 64 * 1024 * 1024;

/// Reads a request body as kube-apiserver's handlers do: up to the limit for the verbs that
/// read one (413 past it, the rest read and discarded), and not at all for the others (GET,
/// HEAD, OPTIONS: the body is discarded).
pub async fn read_body<B>(mut body: B, method: &Method) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let keep = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let mut kept = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ApiError::bad_request(format!("cannot read the request body: {error}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        if keep && seen <= MAX_REQUEST_BODY_BYTES {
            kept.extend_from_slice(&data);
        }
        if seen > MAX_DISCARDED_BYTES {
            break;
        }
    }
    if keep && seen > MAX_REQUEST_BODY_BYTES {
        tracing::debug!(bytes = seen, "request body over the limit: 413");
        return Err(too_large());
    }
    Ok(kept.freeze())
}

/// 413 for a body over the limit (`limitedReadBody`'s `NewRequestEntityTooLargeError`).
pub fn too_large() -> ApiError {
    ApiError {
        code: 413,
        reason: "RequestEntityTooLarge",
        message: format!("Request entity too large: limit is {MAX_REQUEST_BODY_BYTES}"),
        details: None,
    }
}

/// The API server's `summarizeData(body, 30)` in decode errors: a body starting with `{` as
/// text, anything else in hex, cut after 30 bytes.
pub fn summarize(body: &[u8]) -> String {
    const MAX: usize = 30;
    let cut = &body[..body.len().min(MAX)];
    let mut text = match body.first() {
        None => return "<empty>".to_string(),
        Some(b'{') => String::from_utf8_lossy(cut).into_owned(),
        Some(_) => cut.iter().map(|b| format!("{b:02x}")).collect(),
    };
    if body.len() > MAX {
        text.push_str(" ...");
    }
    text
}

/// The path as Go's `URL.Path` has it: percent-escapes decoded (so `%2F` separates segments,
/// and `namespaces/..%2F..%2Fetc/configmaps` routes nowhere). `None` for a malformed escape,
/// which Go's HTTP server refuses with 400 before any handler runs.
pub fn decode_path(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_string());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The name of a type's Go package: the version for versioned types (`v1.Pod`), the group's
/// first label for the internal ones (`core.ConfigMap`, `apps.Deployment`).
fn internal_package(group: &str) -> &str {
    match group {
        // events.k8s.io's Event is core's internal Event.
        "" | "events.k8s.io" => "core",
        other => other.split('.').next().unwrap_or(other),
    }
}

/// 400 when a create or update body is of another kind than the endpoint's, as the API
/// server's decoder answers (`transformDecodeError`): `Pod in version "v1" cannot be handled
/// as a ConfigMap: converting (v1.Pod) to (core.ConfigMap): unknown conversion`. An absent
/// `kind` or `apiVersion` takes the endpoint's.
pub fn check_body_kind(
    registry: &Registry,
    resource: &ResourceType,
    object: &Value,
) -> Result<(), ApiError> {
    if resource.custom {
        return Ok(());
    }
    let text = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let kind = text("kind").unwrap_or(&resource.kind);
    let api_version = text("apiVersion")
        .map(str::to_string)
        .unwrap_or_else(|| resource.api_version());
    if kind == resource.kind {
        return Ok(());
    }
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version.as_str()),
    };
    let known = registry
        .all()
        .into_iter()
        .any(|r| !r.custom && r.group == group && r.version == version && r.kind == kind);
    let cause = if known {
        format!(
            "converting ({version}.{kind}) to ({}.{}): unknown conversion",
            internal_package(&resource.group),
            resource.kind
        )
    } else {
        format!(
            "no kind {} is registered for version {} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
            crate::status::go_quote(kind),
            crate::status::go_quote(&api_version)
        )
    };
    Err(ApiError::bad_request(format!(
        "{kind} in version {} cannot be handled as a {}: {cause}",
        crate::status::go_quote(version),
        resource.kind
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_decode_like_go() {
        assert_eq!(
            decode_path("/api/v1/namespaces/..%2F..%2Fetc/configmaps").as_deref(),
            Some("/api/v1/namespaces/../../etc/configmaps")
        );
        assert_eq!(decode_path("/api/v1/pods").as_deref(), Some("/api/v1/pods"));
        assert_eq!(decode_path("/api/%zz"), None);
        assert_eq!(decode_path("/api/%4"), None);
    }

    #[test]
    fn bodies_of_another_kind_are_refused() {
        let registry = Registry::with_builtins();
        let configmaps = registry.get("", "v1", "configmaps").unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert_eq!(
            check_body_kind(&registry, &configmaps, &pod)
                .unwrap_err()
                .message,
            "Pod in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Pod) to (core.ConfigMap): unknown conversion"
        );
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        assert_eq!(
            check_body_kind(&registry, &configmaps, &deployment)
                .unwrap_err()
                .message,
            "Deployment in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Deployment) to (core.ConfigMap): unknown conversion"
        );
        let unknown = json!({"apiVersion": "v1", "kind": "Nope"});
        assert_eq!(
            check_body_kind(&registry, &configmaps, &unknown)
                .unwrap_err()
                .message,
            "Nope in version \"v1\" cannot be handled as a ConfigMap: no kind \"Nope\" is registered for version \"v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        );
        assert!(check_body_kind(&registry, &configmaps, &json!({"kind": "ConfigMap"})).is_ok());
        assert!(check_body_kind(&registry, &configmaps, &json!({"metadata": {}})).is_ok());
        let deployments = registry.get("apps", "v1", "deployments").unwrap();
        assert!(
            check_body_kind(&registry, &deployments, &pod)
                .unwrap_err()
                .message
                .ends_with("converting (v1.Pod) to (apps.Deployment): unknown conversion")
        );
        assert_eq!(summarize(b"{not json"), "{not json");
        assert_eq!(summarize(b""), "<empty>");
        assert_eq!(summarize(&[b'['; 40]), format!("{} ...", "5b".repeat(30)));
        assert_eq!(
            too_large().to_status()["message"],
            "Request entity too large: limit is 3145728"
        );
    }
}
