//! The entries of messages, repeated fields and maps, as serde's `MapAccess` and
//! `SeqAccess`: how a message's wire fields become a JSON object's keys and values.

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess};

use super::{Ctx, MessageDe, Scalar, Value, ValueDe, group_end, read_scalar};
use crate::protobuf::ProtobufError;
use crate::protobuf::schema::{Field, Ty};
use crate::protobuf::wire::{self, FIXED32, FIXED64, LEN, Reader, VARINT};

/// How many inlined structs may nest in one object (Kubernetes has one level).
const MAX_INLINE: usize = 4;

/// A message being read: which one, its bytes and where the reading stands.
#[derive(Debug, Clone, Copy)]
struct Frame<'de> {
    msg: u32,
    reader: Reader<'de>,
    /// Which fields (by index, the first 128) were read.
    seen: u128,
    /// How many of the message's `always` fields were considered after its end.
    always_done: usize,
}

impl<'de> Frame<'de> {
    const EMPTY: Frame<'static> = Frame {
        msg: 0,
        reader: Reader { data: &[], pos: 0 },
        seen: 0,
        always_done: 0,
    };

    fn new(msg: u32, data: &'de [u8]) -> Self {
        Frame {
            msg,
            reader: Reader::new(data),
            seen: 0,
            always_done: 0,
        }
    }
}

/// The zero value Go writes for an absent field without `omitempty`.
fn zero_of(field: &Field) -> Value<'static> {
    match field.ty {
        Ty::Message(_) => Value::Null,
        Ty::String => Value::Scalar(Scalar::Str("")),
        Ty::Bytes => Value::Scalar(Scalar::Bytes(&[])),
        Ty::Bool => Value::Scalar(Scalar::Bool(false)),
        Ty::Float | Ty::Double => Value::Scalar(Scalar::F64(0.0)),
        Ty::UInt | Ty::Fixed32 | Ty::Fixed64 => Value::Scalar(Scalar::U64(0)),
        Ty::Int | Ty::SInt | Ty::SFixed32 | Ty::SFixed64 => Value::Scalar(Scalar::I64(0)),
    }
}

/// The fields of a message as a JSON object's entries.
pub(super) struct Fields<'de> {
    ctx: Ctx,
    depth: u32,
    /// The message, then the inlined structs being read inside it.
    frames: [Frame<'de>; MAX_INLINE],
    top: usize,
    type_meta: Option<(&'de str, &'de str)>,
    type_meta_stage: u8,
    pending: Value<'de>,
}

impl<'de> Fields<'de> {
    /// The fields of message `msg`, with `kind` and `apiVersion` first when given.
    pub(super) fn new(
        ctx: Ctx,
        depth: u32,
        msg: u32,
        data: &'de [u8],
        type_meta: Option<(&'de str, &'de str)>,
    ) -> Self {
        let mut frames = [Frame::EMPTY; MAX_INLINE];
        frames[0] = Frame::new(msg, data);
        Fields {
            ctx,
            depth,
            frames,
            top: 0,
            type_meta,
            type_meta_stage: 0,
            pending: Value::Null,
        }
    }
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = ProtobufError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProtobufError> {
        if let Some((kind, api_version)) = self.type_meta {
            let (key, value) = match self.type_meta_stage {
                0 => ("kind", kind),
                1 => ("apiVersion", api_version),
                _ => ("", ""),
            };
            if !key.is_empty() {
                self.type_meta_stage += 1;
                self.pending = Value::Scalar(Scalar::Str(value));
                return seed.deserialize(key.into_deserializer()).map(Some);
            }
        }
        let schema = self.ctx.schema;
        loop {
            let frame = &mut self.frames[self.top];
            if frame.reader.at_end() {
                // Go writes the fields without omitempty even when the message lacks them.
                let message = schema.message(frame.msg);
                while let Some(&index) = message.always.get(frame.always_done) {
                    frame.always_done += 1;
                    if index >= 128 || frame.seen & (1 << index) != 0 {
                        continue;
                    }
                    let field = &message.fields[usize::from(index)];
                    self.pending = zero_of(field);
                    return seed
                        .deserialize(field.json.as_ref().into_deserializer())
                        .map(Some);
                }
                if self.top == 0 {
                    return Ok(None);
                }
                self.top -= 1;
                continue;
            }
            let msg = frame.msg;
            let start = frame.reader.pos;
            let (number, wire) = frame.reader.tag()?;
            let message = schema.message(msg);
            let Some(field) = message.field(number) else {
                frame.reader.skip(wire)?; // a field of a newer release
                continue;
            };
            if let Some(index) = message.index_of(number).filter(|i| *i < 128) {
                frame.seen |= 1 << index;
            }
            if self.ctx.skips(msg, number) {
                frame.reader.skip(wire)?;
                group_end(&mut frame.reader, number)?;
                continue;
            }
            if field.repeated {
                frame.reader.skip(wire)?;
                let end = group_end(&mut frame.reader, number)?;
                self.pending = Value::Repeated(field, &frame.reader.data[start..end]);
            } else if let Ty::Message(child) = field.ty {
                if wire != LEN {
                    return Err(wire::wire_mismatch(number, wire));
                }
                let data = frame.reader.len_delimited()?;
                if field.inline {
                    if self.top + 1 >= MAX_INLINE {
                        return Err(ProtobufError::TooDeep);
                    }
                    self.top += 1;
                    self.frames[self.top] = Frame::new(child, data);
                    continue;
                }
                if !field.always && MessageDe::is_zero_time(schema, child, data) {
                    continue; // Go leaves a zero Time out (omitzero) or writes null
                }
                self.pending = Value::Message(child, data);
            } else {
                let scalar = read_scalar(&mut frame.reader, field.ty, number, wire)?;
                if !field.ptr && !field.always && scalar.is_zero() {
                    continue; // omitempty
                }
                self.pending = Value::Scalar(scalar);
            }
            return seed
                .deserialize(field.json.as_ref().into_deserializer())
                .map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProtobufError> {
        let value = std::mem::replace(&mut self.pending, Value::Null);
        seed.deserialize(ValueDe {
            ctx: self.ctx,
            depth: self.depth,
            value,
        })
    }
}

/// The elements of a repeated field.
pub(super) struct Items<'de> {
    ctx: Ctx,
    depth: u32,
    field: &'static Field,
    reader: Reader<'de>,
    /// Packed scalars being read.
    packed: Option<Reader<'de>>,
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = ProtobufError;

    fn size_hint(&self) -> Option<usize> {
        match self.packed {
            Some(_) => None,
            None => self.count(),
        }
    }

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ProtobufError> {
        let (ty, number) = (self.field.ty, self.field.number);
        if let Some(packed) = &mut self.packed {
            if !packed.at_end() {
                let wire = match ty {
                    Ty::Fixed32 | Ty::SFixed32 | Ty::Float => FIXED32,
                    Ty::Fixed64 | Ty::SFixed64 | Ty::Double => FIXED64,
                    _ => VARINT,
                };
                let scalar = read_scalar(packed, ty, number, wire)?;
                return seed
                    .deserialize(self.value(Value::Scalar(scalar)))
                    .map(Some);
            }
            self.packed = None;
        }
        if self.reader.at_end() {
            return Ok(None);
        }
        let (_, wire) = self.reader.tag()?;
        let value = match ty {
            Ty::Message(msg) => {
                if wire != LEN {
                    return Err(wire::wire_mismatch(number, wire));
                }
                Value::Message(msg, self.reader.len_delimited()?)
            }
            Ty::String | Ty::Bytes => {
                Value::Scalar(read_scalar(&mut self.reader, ty, number, wire)?)
            }
            _ if wire == LEN => {
                self.packed = Some(Reader::new(self.reader.len_delimited()?));
                return self.next_element_seed(seed);
            }
            _ => Value::Scalar(read_scalar(&mut self.reader, ty, number, wire)?),
        };
        seed.deserialize(self.value(value)).map(Some)
    }
}

impl<'de> Items<'de> {
    /// The elements of repeated field `field`, whose entries (tags included) are `data`.
    pub(super) fn new(ctx: Ctx, depth: u32, field: &'static Field, data: &'de [u8]) -> Self {
        Items {
            ctx,
            depth,
            field,
            reader: Reader::new(data),
            packed: None,
        }
    }

    /// How many entries are left (so that a `Vec` is allocated once, not regrown: the
    /// elements of k8s-openapi types are kilobytes each).
    fn count(&self) -> Option<usize> {
        let mut reader = self.reader;
        let mut count = 0;
        while !reader.at_end() {
            let (_, wire) = reader.tag().ok()?;
            reader.skip(wire).ok()?;
            count += 1;
        }
        Some(count)
    }

    fn value(&self, value: Value<'de>) -> ValueDe<'de> {
        ValueDe {
            ctx: self.ctx,
            depth: self.depth,
            value,
        }
    }
}

/// The entries of a map field (messages with the key in field 1 and the value in field 2).
pub(super) struct Entries<'de> {
    ctx: Ctx,
    depth: u32,
    field: &'static Field,
    reader: Reader<'de>,
    value: Value<'de>,
}

impl<'de> Entries<'de> {
    /// The entries of map field `field`, whose entries (tags included) are `data`.
    pub(super) fn new(ctx: Ctx, depth: u32, field: &'static Field, data: &'de [u8]) -> Self {
        Entries {
            ctx,
            depth,
            field,
            reader: Reader::new(data),
            value: Value::Null,
        }
    }
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = ProtobufError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProtobufError> {
        if self.reader.at_end() {
            return Ok(None);
        }
        let (number, wire) = self.reader.tag()?;
        if wire != LEN {
            return Err(wire::wire_mismatch(number, wire));
        }
        let entry = self.reader.len_delimited()?;
        let Ty::Message(entry_msg) = self.field.ty else {
            return Err(ProtobufError::Schema(format!(
                "map field {} has no entry message",
                self.field.json
            )));
        };
        let message = self.ctx.schema.message(entry_msg);
        let (Some(key_field), Some(value_field)) = (message.field(1), message.field(2)) else {
            return Err(ProtobufError::Schema(format!(
                "map entry {} has no key or value",
                message.full_name
            )));
        };
        let (mut key, mut value) = (None, None);
        let mut reader = Reader::new(entry);
        while !reader.at_end() {
            let (n, wire) = reader.tag()?;
            match n {
                1 => key = Some(read_scalar(&mut reader, key_field.ty, 1, wire)?),
                2 => {
                    value = Some(match value_field.ty {
                        Ty::Message(msg) => {
                            if wire != LEN {
                                return Err(wire::wire_mismatch(2, wire));
                            }
                            Value::Message(msg, reader.len_delimited()?)
                        }
                        ty => Value::Scalar(read_scalar(&mut reader, ty, 2, wire)?),
                    })
                }
                _ => reader.skip(wire)?,
            }
        }
        // An absent key or value is the type's zero, as Go reads it.
        self.value = value.unwrap_or(match value_field.ty {
            Ty::Message(msg) => Value::Message(msg, &[]),
            _ => zero_of(value_field),
        });
        match key.unwrap_or(Scalar::Str("")) {
            Scalar::Str(s) => seed.deserialize(de::value::BorrowedStrDeserializer::new(s)),
            Scalar::Bool(b) => seed.deserialize(b.to_string().into_deserializer()),
            Scalar::I64(v) => seed.deserialize(v.to_string().into_deserializer()),
            Scalar::U64(v) => seed.deserialize(v.to_string().into_deserializer()),
            Scalar::F64(_) | Scalar::Bytes(_) => Err(ProtobufError::Malformed(
                "a map key that is not a string or an integer".into(),
            )),
        }
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProtobufError> {
        let value = std::mem::replace(&mut self.value, Value::Null);
        seed.deserialize(ValueDe {
            ctx: self.ctx,
            depth: self.depth,
            value,
        })
    }
}
