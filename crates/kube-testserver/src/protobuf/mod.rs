//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`), as kube-apiserver
//! reads and writes them for built-in kinds.
//!
//! kubectl and client-go's typed clients send built-in objects in protobuf and ask for
//! protobuf first (`Accept: application/vnd.kubernetes.protobuf, application/json`). The
//! server stores JSON, so this module converts: a request body is decoded into the JSON the
//! Go types would write, and a response is encoded from the stored JSON into the message the
//! Go types would marshal. Messages are read through the descriptor set of Kubernetes'
//! `generated.proto` files, embedded in kube-apimachinery (its `proto/README.md`), with
//! [`prost_reflect`]: every built-in kind of every group version is covered at once, with no
//! Kubernetes version chosen at build time.
//!
//! The wire format (k8s.io/apimachinery/pkg/runtime/serializer/protobuf):
//! * a body is the magic `k8s\0` followed by a `runtime.Unknown` envelope whose `typeMeta`
//!   names the `apiVersion` and `kind`, and whose `raw` holds the object's own message;
//! * a watch is a stream of frames, each a 4-byte big-endian length and a `meta/v1` WatchEvent
//!   message (no magic, no envelope) whose `object.raw` holds the object as a body above.
//!
//! Custom resources have no protobuf form: their bodies are refused (415) and their responses
//! are JSON, or 406 when the client accepts nothing else, as kube-apiserver does.
//!
//! ```
//! use serde_json::json;
//!
//! let config_map = json!({
//!     "apiVersion": "v1",
//!     "kind": "ConfigMap",
//!     "metadata": {"name": "cm", "namespace": "default"},
//!     "data": {"a": "b"},
//! });
//! let body = kube_testserver::protobuf::encode(&config_map)?;
//! assert!(body.starts_with(b"k8s\0"));
//! assert_eq!(kube_testserver::protobuf::decode(&body)?, config_map);
//! # Ok::<(), kube_testserver::protobuf::ProtobufError>(())
//! ```

mod from_json;
pub(crate) mod negotiate;
mod schema;
mod special;
mod to_json;

use prost::Message as _;
use prost_reflect::{DynamicMessage, Value as PValue};
use serde_json::Value;

use schema::{META_V1, Schema, UNKNOWN, schema};

/// The media type of Kubernetes protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";
/// The four bytes every protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";
/// How deep messages (and objects embedded in them) may nest.
const MAX_DEPTH: usize = 100;

/// Why a body cannot be converted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtobufError {
    /// The body does not start with the `k8s\0` magic.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NoMagic,
    /// The body is only the magic.
    #[error("empty body")]
    Empty,
    /// The `runtime.Unknown` envelope or the object's message is not valid protobuf.
    #[error("cannot decode {what}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// The decoder's error.
        #[source]
        source: prost::DecodeError,
    },
    /// The envelope names no kind or no version.
    #[error("Object 'Kind' is missing in '{type_meta}'")]
    MissingKind {
        /// The envelope's type meta, as `apiVersion/kind`.
        type_meta: String,
    },
    /// The kind has no protobuf message (custom resources, unknown kinds).
    #[error("no kind {kind:?} is registered for version {api_version:?}")]
    UnknownKind {
        /// The envelope's or object's `apiVersion`.
        api_version: String,
        /// The envelope's or object's `kind`.
        kind: String,
    },
    /// A value does not fit the message's field.
    #[error("{path}: {message}")]
    Convert {
        /// Where in the object (`spec.replicas`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The object nests deeper than the server follows.
    #[error("{path}: nested too deeply")]
    TooDeep {
        /// Where the limit was reached.
        path: String,
    },
    /// The embedded schema did not load (a packaging error).
    #[error("the embedded Kubernetes protobuf schema is unusable: {0}")]
    Schema(String),
}

/// Whether objects of `api_version` and `kind` have a protobuf form (built-in kinds do).
pub fn has_protobuf(api_version: &str, kind: &str) -> bool {
    schema().is_ok_and(|s| s.kind(api_version, kind).is_some())
}

/// Decodes a protobuf body (`k8s\0` + `runtime.Unknown`) into the JSON object the Go type
/// would write, with its `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    decode_object_at(schema()?, body, "", 0)
}

/// Encodes a JSON object (which names its `apiVersion` and `kind`) as a protobuf body.
pub fn encode(object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let schema = schema()?;
    let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let desc = schema
        .kind(api_version, kind)
        .ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.into(),
            kind: kind.into(),
        })?;
    let message = from_json::message(schema, &desc, object, "", 0)?;
    envelope(schema, api_version, kind, message.encode_to_vec())
}

/// Encodes one watch event as a frame of a protobuf watch stream: the 4-byte big-endian
/// length and the `WatchEvent` message, whose object is a protobuf body.
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let schema = schema()?;
    let raw = encode(object)?;
    let event_desc = meta(schema, "WatchEvent")?;
    let raw_desc = schema
        .message("k8s.io.apimachinery.pkg.runtime.RawExtension")
        .ok_or_else(|| ProtobufError::Schema("no RawExtension".into()))?;
    let mut extension = DynamicMessage::new(raw_desc);
    set(&mut extension, "raw", PValue::Bytes(raw.into()))?;
    let mut event = DynamicMessage::new(event_desc);
    set(&mut event, "type", PValue::String(event_type.into()))?;
    set(&mut event, "object", PValue::Message(extension))?;
    let payload = event.encode_to_vec();
    let length = u32::try_from(payload.len()).map_err(|_| ProtobufError::Convert {
        path: String::new(),
        message: "a watch event larger than 4 GiB".into(),
    })?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Decodes one frame of a protobuf watch stream (without its 4-byte length) into the event
/// type and the object.
pub fn decode_watch_event(payload: &[u8]) -> Result<(String, Value), ProtobufError> {
    let schema = schema()?;
    let event = DynamicMessage::decode(meta(schema, "WatchEvent")?, payload).map_err(|source| {
        ProtobufError::Decode {
            what: "a WatchEvent".into(),
            source,
        }
    })?;
    let event_type = match event.get_field_by_name("type").as_deref() {
        Some(PValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let raw = match event.get_field_by_name("object").as_deref() {
        Some(PValue::Message(extension)) => match extension.get_field_by_name("raw").as_deref() {
            Some(PValue::Bytes(raw)) => raw.clone(),
            _ => bytes::Bytes::new(),
        },
        _ => bytes::Bytes::new(),
    };
    Ok((event_type, decode_object_at(schema, &raw, "object", 1)?))
}

fn meta(schema: &Schema, kind: &str) -> Result<prost_reflect::MessageDescriptor, ProtobufError> {
    schema
        .message(&format!("{META_V1}.{kind}"))
        .ok_or_else(|| ProtobufError::Schema(format!("no meta/v1 {kind}")))
}

fn set(message: &mut DynamicMessage, field: &str, value: PValue) -> Result<(), ProtobufError> {
    message
        .try_set_field_by_name(field, value)
        .map_err(|e| ProtobufError::Schema(format!("{field}: {e}")))
}

/// `k8s\0` + `runtime.Unknown{typeMeta, raw, contentEncoding: "", contentType: ""}`, the two
/// empty strings written as Go writes them.
fn envelope(
    schema: &Schema,
    api_version: &str,
    kind: &str,
    raw: Vec<u8>,
) -> Result<Vec<u8>, ProtobufError> {
    let unknown = schema
        .message(UNKNOWN)
        .ok_or_else(|| ProtobufError::Schema("no runtime.Unknown".into()))?;
    let type_meta_desc = schema
        .message("k8s.io.apimachinery.pkg.runtime.TypeMeta")
        .ok_or_else(|| ProtobufError::Schema("no runtime.TypeMeta".into()))?;
    let mut type_meta = DynamicMessage::new(type_meta_desc);
    set(
        &mut type_meta,
        "apiVersion",
        PValue::String(api_version.into()),
    )?;
    set(&mut type_meta, "kind", PValue::String(kind.into()))?;
    let mut message = DynamicMessage::new(unknown);
    set(&mut message, "typeMeta", PValue::Message(type_meta))?;
    set(&mut message, "raw", PValue::Bytes(raw.into()))?;
    set(
        &mut message,
        "contentEncoding",
        PValue::String(String::new()),
    )?;
    set(&mut message, "contentType", PValue::String(String::new()))?;
    let mut body = Vec::with_capacity(4 + message.encoded_len());
    body.extend_from_slice(&MAGIC);
    message
        .encode(&mut body)
        .map_err(|e| ProtobufError::Schema(e.to_string()))?;
    Ok(body)
}

pub(crate) fn decode_object_at(
    schema: &Schema,
    body: &[u8],
    path: &str,
    depth: usize,
) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep { path: path.into() });
    }
    let data = body.strip_prefix(&MAGIC).ok_or(ProtobufError::NoMagic)?;
    if data.is_empty() {
        return Err(ProtobufError::Empty);
    }
    let unknown = schema
        .message(UNKNOWN)
        .ok_or_else(|| ProtobufError::Schema("no runtime.Unknown".into()))?;
    let envelope =
        DynamicMessage::decode(unknown, data).map_err(|source| ProtobufError::Decode {
            what: "the runtime.Unknown envelope".into(),
            source,
        })?;
    let type_meta = match envelope.get_field_by_name("typeMeta").as_deref() {
        Some(PValue::Message(m)) => m.clone(),
        _ => DynamicMessage::new(
            schema
                .message("k8s.io.apimachinery.pkg.runtime.TypeMeta")
                .ok_or_else(|| ProtobufError::Schema("no runtime.TypeMeta".into()))?,
        ),
    };
    let text =
        |message: &DynamicMessage, name: &str| match message.get_field_by_name(name).as_deref() {
            Some(PValue::String(s)) => s.clone(),
            _ => String::new(),
        };
    let (api_version, kind) = (text(&type_meta, "apiVersion"), text(&type_meta, "kind"));
    if kind.is_empty() || api_version.is_empty() {
        return Err(ProtobufError::MissingKind {
            type_meta: format!("{api_version}/{kind}"),
        });
    }
    let desc = schema
        .kind(&api_version, &kind)
        .ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let raw = match envelope.get_field_by_name("raw").as_deref() {
        Some(PValue::Bytes(raw)) => raw.clone(),
        _ => bytes::Bytes::new(),
    };
    let message = DynamicMessage::decode(desc, raw).map_err(|source| ProtobufError::Decode {
        what: format!("{api_version} {kind}"),
        source,
    })?;
    let mut object = match to_json::message(schema, &message, path, depth)? {
        Value::Object(object) => object,
        _ => serde_json::Map::new(),
    };
    // apiVersion and kind first, as Go writes TypeMeta first.
    let mut out = serde_json::Map::new();
    out.insert("kind".into(), Value::String(kind));
    out.insert("apiVersion".into(), Value::String(api_version));
    out.append(&mut object);
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests;
