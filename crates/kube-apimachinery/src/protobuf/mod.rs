//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) read into any serde type
//! (feature `protobuf`): what client-go asks built-in kinds in by default, and what the API
//! server encodes several times faster than JSON.
//!
//! [`Decoder`] presents a message as the JSON the Go types would write, so every
//! `Deserialize` type that reads Kubernetes JSON reads protobuf unchanged: k8s-openapi's
//! types, [`Compact`](crate::Compact), `serde_json::Value`, [`ObjectList`](crate::ObjectList). It follows the
//! Go types' JSON rules (JSON names, `omitempty` zero values left out, pointers written when
//! set, inlined structs flattened, named slice types as arrays) and the JSON forms of the
//! special types: Time and MicroTime as RFC 3339 (`null` when zero), Duration as Go prints
//! it, IntOrString as a number or a string, Quantity as its string, bytes in base64,
//! RawExtension and FieldsV1 as the object they embed. Strings are borrowed from the body.
//! The schema is the descriptor set of Kubernetes' `generated.proto` files, embedded in the
//! crate (`proto/README.md`) and loaded once; field numbers never change between releases,
//! so one schema reads every release's messages.
//!
//! The wire format (k8s.io/apimachinery/pkg/runtime/serializer/protobuf): a body is the magic
//! `k8s\0` and a `runtime.Unknown` envelope whose `typeMeta` names the `apiVersion` and
//! `kind` and whose `raw` holds the object's message. A list's metadata comes before its
//! items, so [`ListScanner`] hands the continue token over before the items are in.
//!
//! ```
//! use kube_apimachinery::protobuf::Decoder;
//!
//! // k8s\0 + Unknown{typeMeta{apiVersion: "v1", kind: "ConfigMap"},
//! //                 raw: ConfigMap{metadata{name: "cm"}, data{"a": "b"}}}
//! let body = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\
//!     \x12\x0e\x0a\x04\x0a\x02cm\x12\x06\x0a\x01a\x12\x01b";
//! let cm: serde_json::Value = Decoder::new().object(body)?;
//! assert_eq!(
//!     cm,
//!     serde_json::json!({"kind": "ConfigMap", "apiVersion": "v1",
//!                        "metadata": {"name": "cm"}, "data": {"a": "b"}})
//! );
//! # Ok::<(), kube_apimachinery::protobuf::ProtobufError>(())
//! ```

mod de;
mod format;
mod list;
pub mod schema;
mod wire;

use serde::Deserialize;

pub use format::{format_duration, format_micro_time, format_time};
pub use list::ListScanner;

use de::{Ctx, MessageDe};
use wire::{LEN, Reader};

/// The media type of Kubernetes protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";
/// The four bytes every protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// Why a protobuf body cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtobufError {
    /// The body does not start with the `k8s\0` magic.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NoMagic,
    /// The envelope names no kind or no version.
    #[error("Object 'Kind' is missing in '{type_meta}'")]
    MissingKind {
        /// The envelope's type meta, as `apiVersion/kind`.
        type_meta: String,
    },
    /// The kind has no protobuf message (custom resources, kinds of a newer release).
    #[error("no protobuf message for kind {kind:?} of {api_version:?}")]
    UnknownKind {
        /// The envelope's `apiVersion`.
        api_version: String,
        /// The envelope's `kind`.
        kind: String,
    },
    /// A list was expected and the body holds another kind.
    #[error("{kind:?} is not a list kind")]
    NotAList {
        /// The body's kind.
        kind: String,
    },
    /// The bytes are not valid protobuf, or a value does not fit its field.
    #[error("malformed protobuf: {0}")]
    Malformed(String),
    /// The body ended before the object did.
    #[error("the protobuf body ends early ({0})")]
    Truncated(String),
    /// Messages (and objects embedded in them) nest too deeply.
    #[error("protobuf messages nested too deeply")]
    TooDeep,
    /// The embedded schema is unusable (a packaging error).
    #[error("the embedded Kubernetes protobuf schema is unusable: {0}")]
    Schema(String),
    /// The type being deserialized refused a value.
    #[error("{0}")]
    Custom(String),
}

impl serde::de::Error for ProtobufError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ProtobufError::Custom(msg.to_string())
    }
}

fn schema() -> Result<&'static schema::Schema, ProtobufError> {
    schema::schema().map_err(ProtobufError::Schema)
}

/// Whether objects of `api_version` and `kind` have a protobuf form (Kubernetes' built-in
/// kinds do; custom resources do not).
pub fn has_protobuf(api_version: &str, kind: &str) -> bool {
    schema().is_ok_and(|s| s.kind(api_version, kind).is_some())
}

/// Reads protobuf bodies into serde types (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, Default)]
pub struct Decoder {
    skip_managed_fields: bool,
}

impl Decoder {
    /// A decoder that reads every field.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Leaves `metadata.managedFields` out of every object without reading it (the biggest
    /// part of a typical object, rarely wanted in a cache).
    pub fn skip_managed_fields(mut self, on: bool) -> Self {
        self.skip_managed_fields = on;
        self
    }

    fn ctx(&self) -> Result<Ctx, ProtobufError> {
        Ok(Ctx {
            schema: schema()?,
            skip_managed_fields: self.skip_managed_fields,
        })
    }

    /// Reads a body (`k8s\0` + envelope) as `T`, with its `kind` and `apiVersion`.
    pub fn object<'de, T: Deserialize<'de>>(&self, body: &'de [u8]) -> Result<T, ProtobufError> {
        T::deserialize(object_de(self.ctx()?, body, 0)?)
    }

    /// Reads the message of an object of `api_version` and `kind` (without magic or
    /// envelope, as list items and watch events embed them) as `T`, without `kind` and
    /// `apiVersion`.
    pub fn message<'de, T: Deserialize<'de>>(
        &self,
        api_version: &str,
        kind: &str,
        message: &'de [u8],
    ) -> Result<T, ProtobufError> {
        let ctx = self.ctx()?;
        let msg = kind_message(ctx, api_version, kind)?;
        T::deserialize(MessageDe {
            ctx,
            depth: 0,
            msg,
            data: message,
            type_meta: None,
        })
    }

    /// Reads a whole list body into its metadata and items.
    pub fn list<T: serde::de::DeserializeOwned>(
        &self,
        body: &[u8],
    ) -> Result<crate::ObjectList<T>, ProtobufError> {
        let mut scanner = self.list_scanner();
        scanner.feed(body)?;
        scanner.finish()
    }

    /// Reads one frame of a protobuf watch stream (the bytes after its 4-byte big-endian
    /// length): a meta/v1 `WatchEvent` whose object is a body (`k8s\0` + envelope). Objects of
    /// `ADDED`, `MODIFIED` and `DELETED` events are read as `T`, a `BOOKMARK`'s metadata into a
    /// [`Bookmark`](crate::Bookmark), an `ERROR`'s object as a [`Status`](crate::Status).
    pub fn watch_event<T: serde::de::DeserializeOwned>(
        &self,
        frame: &[u8],
    ) -> Result<crate::WatchEvent<T>, ProtobufError> {
        use crate::WatchEvent;
        let event_type = std::str::from_utf8(wire::bytes_field(frame, 1)?)
            .map_err(|e| ProtobufError::Malformed(format!("a watch event's type: {e}")))?;
        let object = wire::bytes_field(wire::bytes_field(frame, 2)?, 1)?;
        Ok(match event_type {
            "ADDED" => WatchEvent::Added(self.object(object)?),
            "MODIFIED" => WatchEvent::Modified(self.object(object)?),
            "DELETED" => WatchEvent::Deleted(self.object(object)?),
            "BOOKMARK" => {
                #[derive(Deserialize, Default)]
                #[serde(rename_all = "camelCase")]
                struct Meta {
                    #[serde(default)]
                    resource_version: String,
                    #[serde(default)]
                    annotations: std::collections::BTreeMap<String, String>,
                }
                #[derive(Deserialize)]
                struct Object {
                    #[serde(default)]
                    metadata: Meta,
                }
                let object: Object = self.object(object)?;
                WatchEvent::Bookmark(crate::Bookmark {
                    resource_version: object.metadata.resource_version,
                    annotations: object.metadata.annotations,
                })
            }
            "ERROR" => WatchEvent::Error(self.object(object)?),
            other => {
                return Err(ProtobufError::Malformed(format!(
                    "unknown watch event type {other:?}"
                )));
            }
        })
    }

    /// A reader of a list body that arrives in pieces (see [`ListScanner`]).
    pub fn list_scanner<T: serde::de::DeserializeOwned>(&self) -> ListScanner<T> {
        ListScanner::new(*self)
    }
}

/// The `apiVersion`, `kind` and `raw` message of a body's envelope.
fn envelope(body: &[u8]) -> Result<(&str, &str, &[u8]), ProtobufError> {
    let data = body.strip_prefix(&MAGIC).ok_or(ProtobufError::NoMagic)?;
    let (mut api_version, mut kind, mut raw): (&str, &str, &[u8]) = ("", "", &[]);
    let mut reader = Reader::new(data);
    while !reader.at_end() {
        let (number, wire) = reader.tag()?;
        match (number, wire) {
            (1, LEN) => (api_version, kind) = type_meta(reader.len_delimited()?)?,
            (2, LEN) => raw = reader.len_delimited()?,
            _ => reader.skip(wire)?,
        }
    }
    Ok((api_version, kind, raw))
}

/// The `apiVersion` and `kind` of a `runtime.TypeMeta` message.
fn type_meta(data: &[u8]) -> Result<(&str, &str), ProtobufError> {
    let text = |number| {
        wire::bytes_field(data, number).and_then(|b| {
            std::str::from_utf8(b).map_err(|e| ProtobufError::Malformed(format!("typeMeta: {e}")))
        })
    };
    Ok((text(1)?, text(2)?))
}

/// The message of a kind, or why there is none.
fn kind_message(ctx: Ctx, api_version: &str, kind: &str) -> Result<u32, ProtobufError> {
    ctx.schema
        .kind(api_version, kind)
        .ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.into(),
            kind: kind.into(),
        })
}

/// The deserializer of a body's object.
fn object_de(ctx: Ctx, body: &[u8], depth: u32) -> Result<MessageDe<'_>, ProtobufError> {
    let (api_version, kind, raw) = envelope(body)?;
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::MissingKind {
            type_meta: format!("{api_version}/{kind}"),
        });
    }
    let msg = kind_message(ctx, api_version, kind)?;
    Ok(MessageDe {
        ctx,
        depth,
        msg,
        data: raw,
        type_meta: Some((kind, api_version)),
    })
}
