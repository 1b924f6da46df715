//! Content negotiation and the hooks the request handler calls: protobuf request bodies to
//! JSON, JSON responses (and watch streams) to protobuf when the client asks for it first.

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use super::{MEDIA_TYPE, WATCH_MEDIA_TYPE};
use crate::api::Body;
use crate::registry::ResourceType;
use crate::status::ApiError;

/// How a response body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (and everything the server already did by `Accept`: tables, ...).
    Json,
    /// Kubernetes protobuf.
    Protobuf,
}

/// One media range of an `Accept` header.
struct Clause<'a> {
    media: String,
    params: Vec<(String, &'a str)>,
    q: f32,
}

fn clauses(accept: &str) -> Vec<Clause<'_>> {
    let mut clauses: Vec<Clause<'_>> = accept
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            if media.is_empty() {
                return None;
            }
            let mut params = Vec::new();
            let mut q = 1.0;
            for param in parts {
                let (name, value) = param.split_once('=').unwrap_or((param, ""));
                let name = name.trim().to_ascii_lowercase();
                let value = value.trim();
                if name == "q" {
                    q = value.parse().unwrap_or(1.0);
                } else {
                    params.push((name, value));
                }
            }
            Some(Clause { media, params, q })
        })
        .collect();
    // Highest quality first; the order of equal ones is kept (goautoneg sorts stably).
    clauses.sort_by(|a, b| b.q.total_cmp(&a.q));
    clauses
}

/// Whether a `Content-Type` is Kubernetes protobuf.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(MEDIA_TYPE))
}

/// The response format for an `Accept` header, for a resource with or without a protobuf
/// form. A client that accepts only protobuf from a resource without one gets 406, as from
/// kube-apiserver; clauses the server does not produce in protobuf (tables: `as=Table`) are
/// served as before.
pub fn negotiate(accept: &str, has_protobuf: bool) -> Result<Format, ApiError> {
    let mut protobuf_refused = false;
    for clause in clauses(accept) {
        if clause.q <= 0.0 {
            continue;
        }
        if clause.media != MEDIA_TYPE {
            return Ok(Format::Json);
        }
        let plain = clause.params.iter().all(|(name, _)| name == "stream");
        match (plain, has_protobuf) {
            (true, true) => return Ok(Format::Protobuf),
            (true, false) => protobuf_refused = true,
            (false, _) => return Ok(Format::Json),
        }
    }
    if protobuf_refused {
        return Err(not_acceptable());
    }
    Ok(Format::Json)
}

fn not_acceptable() -> ApiError {
    ApiError {
        code: 406,
        reason: "NotAcceptable",
        message: "only the following media types are accepted: application/json, application/yaml"
            .into(),
        details: None,
    }
}

/// Whether `resource`'s objects have a protobuf form (built-in kinds; never custom resources).
pub fn resource_has_protobuf(resource: &ResourceType) -> bool {
    !resource.custom && super::has_protobuf(&resource.api_version(), &resource.kind)
}

/// A request body in protobuf, as the JSON the rest of the server reads; other bodies as
/// they are. Custom resources take no protobuf objects (415), only DeleteOptions.
pub fn request_body(
    resource: &ResourceType,
    verb: &str,
    content_type: &str,
    body: Bytes,
) -> Result<Bytes, ApiError> {
    if !is_protobuf(content_type) || body.is_empty() {
        return Ok(body);
    }
    // DeleteOptions are meta/v1 and read in protobuf for every resource, custom ones too.
    let options = matches!(verb, "delete" | "deletecollection");
    if !options && !resource_has_protobuf(resource) {
        return Err(ApiError::unsupported_media_type());
    }
    let object = super::decode(&body).map_err(|error| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): {}",
            resource.kind,
            error_chain(&error)
        ))
    })?;
    serde_json::to_vec(&object)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("cannot write the decoded object: {e}")))
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A handler's answer in the negotiated format: JSON answers (objects, lists, Status errors)
/// re-encoded as protobuf, a JSON watch stream re-framed as a protobuf one.
pub async fn respond(
    format: Format,
    result: Result<Response<Body>, ApiError>,
) -> Result<Response<Body>, ApiError> {
    if format == Format::Json {
        return result;
    }
    let response = result.unwrap_or_else(|error| crate::api::error_response(&error));
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Ok(response);
    }
    let streaming = response.headers().contains_key(header::TRANSFER_ENCODING);
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if streaming {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(WATCH_MEDIA_TYPE),
        );
        return Ok(Response::from_parts(parts, watch_body(body)));
    }
    let Ok(collected) = body.collect().await;
    let bytes = collected.to_bytes();
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| ProtoEncode::Json(e.to_string()))
        .and_then(|value| super::encode(&value).map_err(ProtoEncode::Proto));
    match encoded {
        Ok(body) => {
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
            Ok(Response::from_parts(
                parts,
                Full::new(Bytes::from(body)).boxed_unsync(),
            ))
        }
        Err(error) => {
            tracing::warn!(%error, "a response cannot be encoded as protobuf");
            let status =
                ApiError::internal(format!("the object cannot be encoded as protobuf: {error}"));
            let fallback = crate::api::error_response(&status);
            let (mut parts, body) = fallback.into_parts();
            let Ok(collected) = body.collect().await;
            match serde_json::from_slice::<Value>(&collected.to_bytes())
                .ok()
                .and_then(|v| super::encode(&v).ok())
            {
                Some(body) => {
                    parts
                        .headers
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
                    Ok(Response::from_parts(
                        parts,
                        Full::new(Bytes::from(body)).boxed_unsync(),
                    ))
                }
                None => Err(status),
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ProtoEncode {
    #[error("the handler's answer is not JSON: {0}")]
    Json(String),
    #[error(transparent)]
    Proto(super::ProtobufError),
}

/// Re-frames a JSON watch stream (one event per line) as protobuf frames.
fn watch_body(body: Body) -> Body {
    let mut pending = BytesMut::new();
    body.map_frame(move |frame| {
        let Ok(data) = frame.into_data() else {
            return hyper::body::Frame::data(Bytes::new());
        };
        pending.extend_from_slice(&data);
        let mut out = Vec::new();
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line = pending.split_to(end + 1);
            out.extend_from_slice(&watch_frame(&line[..end]));
        }
        hyper::body::Frame::data(Bytes::from(out))
    })
    .boxed_unsync()
}

fn watch_frame(line: &[u8]) -> Vec<u8> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Vec::new();
    }
    let event: Value = match serde_json::from_slice(line) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "a watch event is not JSON; sending an ERROR event instead");
            return error_event(&format!("a watch event is not JSON: {error}"));
        }
    };
    let event_type = event.get("type").and_then(Value::as_str).unwrap_or("");
    let object = event.get("object").cloned().unwrap_or(Value::Null);
    match super::encode_watch_event(event_type, &object) {
        Ok(frame) => frame,
        Err(error) => {
            tracing::warn!(%error, event_type, "a watch event cannot be encoded as protobuf; sending an ERROR event instead");
            error_event(&format!(
                "the object cannot be encoded as protobuf: {error}"
            ))
        }
    }
}

fn error_event(message: &str) -> Vec<u8> {
    let status = ApiError::internal(message).to_status();
    super::encode_watch_event("ERROR", &status).unwrap_or_default()
}
