//! A serde `Deserializer` over Kubernetes protobuf messages that presents them as the JSON the
//! Go types would write: JSON names, `omitempty` zero scalars left out, inlined structs
//! flattened, maps as objects, and the special types (Time, IntOrString, Quantity,
//! RawExtension...) in their JSON forms. Any `Deserialize` type reads it as it reads JSON:
//! k8s-openapi's, `Compact`, `serde_json::Value`. Strings are borrowed from the body.

use base64::Engine as _;
use serde::de::{self, Deserializer as _, Visitor};

mod access;

use access::{Entries, Fields, Items};

use super::ProtobufError;
use super::format::{format_duration, format_micro_time, format_time};
use super::schema::{Field, MANAGED_FIELDS_NUMBER, Schema, Special, Ty};
use super::wire::{self, FIXED32, FIXED64, LEN, Reader, VARINT};

/// How deep messages (and objects embedded in them) may nest.
const MAX_DEPTH: u32 = 100;

/// What every deserializer of one decoding shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub schema: &'static Schema,
    /// Leave `metadata.managedFields` out without reading it.
    pub skip_managed_fields: bool,
}

impl Ctx {
    fn skips(&self, msg: u32, number: u32) -> bool {
        self.skip_managed_fields
            && number == MANAGED_FIELDS_NUMBER
            && self.schema.object_meta == Some(msg)
    }
}

/// One scalar value.
#[derive(Debug, Clone, Copy)]
enum Scalar<'de> {
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(&'de str),
    Bytes(&'de [u8]),
}

impl Scalar<'_> {
    fn is_zero(&self) -> bool {
        match *self {
            Scalar::Bool(b) => !b,
            Scalar::I64(v) => v == 0,
            Scalar::U64(v) => v == 0,
            Scalar::F64(v) => v == 0.0,
            Scalar::Str(s) => s.is_empty(),
            Scalar::Bytes(b) => b.is_empty(),
        }
    }
}

impl<'de> Scalar<'de> {
    fn visit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProtobufError> {
        match self {
            Scalar::Bool(b) => visitor.visit_bool(b),
            Scalar::I64(v) => visitor.visit_i64(v),
            Scalar::U64(v) => visitor.visit_u64(v),
            Scalar::F64(v) => visitor.visit_f64(v),
            Scalar::Str(s) => visitor.visit_borrowed_str(s),
            Scalar::Bytes(b) => {
                visitor.visit_string(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, ProtobufError> {
    std::str::from_utf8(bytes)
        .map_err(|e| ProtobufError::Malformed(format!("a string is not UTF-8: {e}")))
}

/// Reads one scalar of type `ty` sent with wire type `wire`.
fn read_scalar<'de>(
    reader: &mut Reader<'de>,
    ty: Ty,
    number: u32,
    wire: u8,
) -> Result<Scalar<'de>, ProtobufError> {
    let expected = match ty {
        Ty::Bool | Ty::Int | Ty::UInt | Ty::SInt => VARINT,
        Ty::Fixed32 | Ty::SFixed32 | Ty::Float => FIXED32,
        Ty::Fixed64 | Ty::SFixed64 | Ty::Double => FIXED64,
        Ty::String | Ty::Bytes | Ty::Message(_) => LEN,
    };
    if wire != expected {
        return Err(wire::wire_mismatch(number, wire));
    }
    Ok(match ty {
        Ty::Bool => Scalar::Bool(reader.varint()? != 0),
        // Two's complement: negative int32 and int64 are sent as 64-bit varints.
        Ty::Int => Scalar::I64(reader.varint()? as i64),
        Ty::UInt => Scalar::U64(reader.varint()?),
        Ty::SInt => {
            let v = reader.varint()?;
            Scalar::I64((v >> 1) as i64 ^ -((v & 1) as i64))
        }
        Ty::Fixed32 => Scalar::U64(u64::from(u32::from_le_bytes(reader.fixed()?))),
        Ty::SFixed32 => Scalar::I64(i64::from(i32::from_le_bytes(reader.fixed()?))),
        Ty::Float => Scalar::F64(f64::from(f32::from_le_bytes(reader.fixed()?))),
        Ty::Fixed64 => Scalar::U64(u64::from_le_bytes(reader.fixed()?)),
        Ty::SFixed64 => Scalar::I64(i64::from_le_bytes(reader.fixed()?)),
        Ty::Double => Scalar::F64(f64::from_le_bytes(reader.fixed()?)),
        Ty::String => Scalar::Str(utf8(reader.len_delimited()?)?),
        Ty::Bytes | Ty::Message(_) => Scalar::Bytes(reader.len_delimited()?),
    })
}

/// A value about to be handed to a visitor.
#[derive(Debug, Clone, Copy)]
enum Value<'de> {
    Scalar(Scalar<'de>),
    /// A message's bytes.
    Message(u32, &'de [u8]),
    /// The consecutive entries of a repeated field (tags included), or of a map.
    Repeated(&'static Field, &'de [u8]),
    /// Nothing (a zero Time, an absent embedded object).
    Null,
}

/// Deserializes one value.
pub(crate) struct ValueDe<'de> {
    ctx: Ctx,
    depth: u32,
    value: Value<'de>,
}

/// Deserializes one message, optionally with `kind` and `apiVersion` first (the top-level
/// object of a body: its message has no TypeMeta, the envelope carries it).
pub(crate) struct MessageDe<'de> {
    pub ctx: Ctx,
    pub depth: u32,
    pub msg: u32,
    pub data: &'de [u8],
    pub type_meta: Option<(&'de str, &'de str)>,
}

impl<'de> MessageDe<'de> {
    fn value(&self, value: Value<'de>) -> ValueDe<'de> {
        ValueDe {
            ctx: self.ctx,
            depth: self.depth,
            value,
        }
    }

    fn nested(&self, msg: u32, data: &'de [u8]) -> MessageDe<'de> {
        MessageDe {
            ctx: self.ctx,
            depth: self.depth + 1,
            msg,
            data,
            type_meta: None,
        }
    }

    /// Whether this message is a Time or MicroTime at zero (written `null` by Go).
    fn is_zero_time(schema: &Schema, msg: u32, data: &[u8]) -> bool {
        matches!(
            schema.message(msg).special,
            Some(Special::Time | Special::MicroTime)
        ) && (data.is_empty()
            || wire::varint_field(data, 1).is_ok_and(|s| s == 0)
                && wire::varint_field(data, 2).is_ok_and(|n| n == 0))
    }

    fn special<V: Visitor<'de>>(
        self,
        special: Special,
        visitor: V,
    ) -> Result<V::Value, ProtobufError> {
        let data = self.data;
        let out_of_range = || ProtobufError::Malformed("a time out of range".into());
        match special {
            Special::Time | Special::MicroTime => {
                let seconds = wire::varint_field(data, 1)? as i64;
                let nanos = wire::varint_field(data, 2)? as i64 as i32;
                if seconds == 0 && nanos == 0 {
                    return visitor.visit_unit();
                }
                let text = if special == Special::Time {
                    format_time(seconds)
                } else {
                    format_micro_time(seconds, nanos)
                };
                visitor.visit_string(text.ok_or_else(out_of_range)?)
            }
            Special::Duration => {
                visitor.visit_string(format_duration(wire::varint_field(data, 1)? as i64))
            }
            Special::IntOrString => {
                if wire::varint_field(data, 1)? == 1 {
                    visitor.visit_borrowed_str(utf8(wire::bytes_field(data, 3)?)?)
                } else {
                    visitor.visit_i64(i64::from(wire::varint_field(data, 2)? as i64 as i32))
                }
            }
            Special::Quantity => visitor.visit_borrowed_str(utf8(wire::bytes_field(data, 1)?)?),
            Special::RawJson => {
                let number = self.ctx.schema.message(self.msg).raw_number;
                let raw = wire::bytes_field(data, number)?;
                embedded(self.ctx, raw, self.depth + 1, visitor)
            }
            Special::PropsOrArray | Special::PropsOrBool | Special::PropsOrStringArray => {
                self.schema_or(special, visitor)
            }
        }
    }

    /// apiextensions' JSONSchemaPropsOr*: a schema, or an array, or a boolean.
    fn schema_or<V: Visitor<'de>>(
        self,
        special: Special,
        visitor: V,
    ) -> Result<V::Value, ProtobufError> {
        let message = self.ctx.schema.message(self.msg);
        let by_name = |name: &str| message.fields.iter().find(|f| &*f.json == name);
        let (schema_field, list_field) = match special {
            Special::PropsOrArray => (by_name("schema"), by_name("jSONSchemas")),
            Special::PropsOrStringArray => (by_name("schema"), by_name("property")),
            _ => (by_name("schema"), None),
        };
        if let Some(list) = list_field {
            let entries = consecutive(self.data, list.number)?;
            if !entries.is_empty() {
                return self
                    .value(Value::Repeated(list, entries))
                    .deserialize_any(visitor);
            }
        }
        if let Some(field) = schema_field
            && let Ty::Message(msg) = field.ty
            && let Some((LEN, mut reader)) = wire::find(self.data, field.number)?
        {
            return self
                .nested(msg, reader.len_delimited()?)
                .deserialize_any(visitor);
        }
        match by_name("allows") {
            Some(allows) => visitor.visit_bool(wire::varint_field(self.data, allows.number)? != 0),
            None => visitor.visit_unit(),
        }
    }
}

/// The entries of field `number` from its first occurrence to the last consecutive one.
fn consecutive(data: &[u8], number: u32) -> Result<&[u8], ProtobufError> {
    let mut reader = Reader::new(data);
    while !reader.at_end() {
        let start = reader.pos;
        let (n, wire) = reader.tag()?;
        if n == number {
            reader.skip(wire)?;
            return Ok(&data[start..group_end(&mut reader, number)?]);
        }
        reader.skip(wire)?;
    }
    Ok(&[])
}

/// Advances past the entries of field `number` that follow directly (the reader stands after
/// one), returning where they end.
fn group_end(reader: &mut Reader<'_>, number: u32) -> Result<usize, ProtobufError> {
    loop {
        let end = reader.pos;
        if reader.at_end() {
            return Ok(end);
        }
        let (n, wire) = reader.tag()?;
        if n != number {
            reader.pos = end;
            return Ok(end);
        }
        reader.skip(wire)?;
    }
}

/// An embedded object: JSON as is, or a protobuf body (magic prefix), or nothing.
fn embedded<'de, V: Visitor<'de>>(
    ctx: Ctx,
    raw: &'de [u8],
    depth: u32,
    visitor: V,
) -> Result<V::Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    if raw.is_empty() {
        return visitor.visit_unit();
    }
    if raw.starts_with(&super::MAGIC) {
        return super::object_de(ctx, raw, depth)?.deserialize_any(visitor);
    }
    let mut json = serde_json::Deserializer::from_slice(raw);
    de::Deserializer::deserialize_any(&mut json, visitor)
        .map_err(|e| ProtobufError::Malformed(format!("an embedded JSON object: {e}")))
}

/// What both deserializers do alike: newtypes are their content, ignored values are skipped
/// (their bytes are already delimited), every other type is read as `deserialize_any` reads it.
macro_rules! deserializer_common {
    () => {
        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, ProtobufError> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_ignored_any<V: Visitor<'de>>(
            self,
            visitor: V,
        ) -> Result<V::Value, ProtobufError> {
            visitor.visit_unit()
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf unit unit_struct seq tuple
            tuple_struct map struct enum identifier
        }
    };
}

impl<'de> de::Deserializer<'de> for MessageDe<'de> {
    type Error = ProtobufError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProtobufError> {
        if self.depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep);
        }
        let message = self.ctx.schema.message(self.msg);
        if let Some(special) = message.special {
            return self.special(special, visitor);
        }
        if message.slice {
            let entries = match message.field(1) {
                Some(items) => (items, consecutive(self.data, 1)?),
                None => {
                    return visitor
                        .visit_seq(de::value::SeqDeserializer::new(std::iter::empty::<()>()));
                }
            };
            return self
                .value(Value::Repeated(entries.0, entries.1))
                .deserialize_any(visitor);
        }
        visitor.visit_map(Fields::new(
            self.ctx,
            self.depth,
            self.msg,
            self.data,
            self.type_meta,
        ))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProtobufError> {
        if Self::is_zero_time(self.ctx.schema, self.msg, self.data) {
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    deserializer_common!();
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = ProtobufError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProtobufError> {
        match self.value {
            Value::Scalar(scalar) => scalar.visit(visitor),
            Value::Null => visitor.visit_unit(),
            Value::Message(msg, data) => MessageDe {
                ctx: self.ctx,
                depth: self.depth + 1,
                msg,
                data,
                type_meta: None,
            }
            .deserialize_any(visitor),
            Value::Repeated(field, data) => {
                if field.map {
                    visitor.visit_map(Entries::new(self.ctx, self.depth + 1, field, data))
                } else {
                    visitor.visit_seq(Items::new(self.ctx, self.depth + 1, field, data))
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProtobufError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            Value::Message(msg, data) if MessageDe::is_zero_time(self.ctx.schema, msg, data) => {
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    deserializer_common!();
}
