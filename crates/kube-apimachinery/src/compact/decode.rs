//! Reading the compact encoding (see [`encode`](super::encode)): a reader, and a serde
//! `Deserializer` over it, so a typed object is built straight from the bytes, with no JSON
//! text in between. Corrupt bytes (which only a bug could produce) are an error, never a
//! panic.

use std::cell::Cell;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess};
use serde::de::{VariantAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Error;

use super::dictionary;
use super::encode::{
    ARRAY, END, FALSE, FLOAT, MAX_DEPTH, NEG, NULL, OBJECT, SMALL_UINT, STR, TRUE, UINT, WORD,
};

fn corrupt(what: &str) -> Error {
    de::Error::custom(format_args!("corrupt compact encoding: {what}"))
}

/// A position in encoded bytes. The position is a `Cell` so that the serializer's nested
/// values can share one reader.
pub(super) struct Reader<'de> {
    bytes: &'de [u8],
    pos: Cell<usize>,
}

/// One decoded scalar, or the start of a container.
pub(super) enum Token<'de> {
    Null,
    Bool(bool),
    Uint(u64),
    Neg(i64),
    Float(f64),
    Str(&'de str),
    Array,
    Object,
}

impl<'de> Reader<'de> {
    pub(super) fn new(bytes: &'de [u8]) -> Self {
        Reader {
            bytes,
            pos: Cell::new(0),
        }
    }

    /// A reader of an encoded object's entries, past its opening tag.
    pub(super) fn object_entries(bytes: &'de [u8]) -> Result<Self, Error> {
        let reader = Reader::new(bytes);
        match reader.token()? {
            Token::Object => Ok(reader),
            _ => Err(corrupt("not an object")),
        }
    }

    /// Whether every byte was read.
    #[cfg(test)]
    pub(super) fn at_end(&self) -> bool {
        self.pos.get() >= self.bytes.len()
    }

    fn peek(&self) -> Result<u8, Error> {
        self.bytes
            .get(self.pos.get())
            .copied()
            .ok_or_else(|| corrupt("unexpected end"))
    }

    fn byte(&self) -> Result<u8, Error> {
        let byte = self.peek()?;
        self.pos.set(self.pos.get() + 1);
        Ok(byte)
    }

    fn take(&self, len: usize) -> Result<&'de [u8], Error> {
        let start = self.pos.get();
        let bytes = start
            .checked_add(len)
            .and_then(|end| self.bytes.get(start..end))
            .ok_or_else(|| corrupt("unexpected end"))?;
        self.pos.set(start + len);
        Ok(bytes)
    }

    fn varint(&self) -> Result<u64, Error> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(corrupt("varint overflow"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("varint overflow"))
    }

    fn usize(&self) -> Result<usize, Error> {
        usize::try_from(self.varint()?).map_err(|_| corrupt("length overflow"))
    }

    fn text(&self, len: usize) -> Result<&'de str, Error> {
        std::str::from_utf8(self.take(len)?).map_err(|_| corrupt("invalid UTF-8"))
    }

    fn word(&self) -> Result<&'static str, Error> {
        dictionary::word(self.usize()?).ok_or_else(|| corrupt("unknown word"))
    }

    /// The next value's token; for containers, only the opening tag is read.
    pub(super) fn token(&self) -> Result<Token<'de>, Error> {
        Ok(match self.byte()? {
            NULL => Token::Null,
            FALSE => Token::Bool(false),
            TRUE => Token::Bool(true),
            UINT => Token::Uint(self.varint()?),
            NEG => {
                let magnitude =
                    i64::try_from(self.varint()?).map_err(|_| corrupt("integer overflow"))?;
                Token::Neg(!magnitude)
            }
            FLOAT => {
                let mut bytes = [0; 8];
                bytes.copy_from_slice(self.take(8)?);
                Token::Float(f64::from_le_bytes(bytes))
            }
            STR => {
                let len = self.usize()?;
                Token::Str(self.text(len)?)
            }
            WORD => Token::Str(self.word()?),
            ARRAY => Token::Array,
            OBJECT => Token::Object,
            tag if tag >= SMALL_UINT => Token::Uint(u64::from(tag - SMALL_UINT)),
            _ => return Err(corrupt("unknown tag")),
        })
    }

    /// Inside an array: consumes `END` and returns true at the end of the array.
    pub(super) fn array_end(&self) -> Result<bool, Error> {
        if self.peek()? == END {
            self.pos.set(self.pos.get() + 1);
            return Ok(true);
        }
        Ok(false)
    }

    /// Inside an object: the next key, `None` at the end of the object.
    pub(super) fn key(&self) -> Result<Option<&'de str>, Error> {
        let words = dictionary::len();
        match self.usize()? {
            0 => Ok(None),
            id if id <= words => Ok(Some(
                dictionary::word(id - 1).ok_or_else(|| corrupt("unknown word"))?,
            )),
            inline => self.text(inline - words - 1).map(Some),
        }
    }

    /// Skips one value.
    pub(super) fn skip(&self, depth: usize) -> Result<(), Error> {
        match self.token()? {
            Token::Array => {
                let depth = nested(depth)?;
                while !self.array_end()? {
                    self.skip(depth)?;
                }
            }
            Token::Object => {
                let depth = nested(depth)?;
                while self.key()?.is_some() {
                    self.skip(depth)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The depth inside one more container.
pub(super) fn nested(depth: usize) -> Result<usize, Error> {
    if depth >= MAX_DEPTH {
        return Err(corrupt("nested too deep"));
    }
    Ok(depth + 1)
}

/// Deserializes a `T` from the whole of `bytes`.
#[cfg(test)]
pub(super) fn from_bytes<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error> {
    let reader = Reader::new(bytes);
    let value = T::deserialize(Decoder {
        reader: &reader,
        depth: 0,
    })?;
    if !reader.at_end() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(value)
}

/// A serde `Deserializer` of the value at the reader's position.
pub(super) struct Decoder<'a, 'de> {
    pub(super) reader: &'a Reader<'de>,
    /// How many arrays and objects enclose the value.
    pub(super) depth: usize,
}

impl<'de> de::Deserializer<'de> for Decoder<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.reader.token()? {
            Token::Null => visitor.visit_unit(),
            Token::Bool(value) => visitor.visit_bool(value),
            Token::Uint(value) => visitor.visit_u64(value),
            Token::Neg(value) => visitor.visit_i64(value),
            Token::Float(value) => visitor.visit_f64(value),
            Token::Str(value) => visitor.visit_borrowed_str(value),
            Token::Array => {
                let mut seq = Seq {
                    reader: self.reader,
                    depth: nested(self.depth)?,
                    done: false,
                };
                let value = visitor.visit_seq(&mut seq)?;
                if !seq.done && !self.reader.array_end()? {
                    return Err(de::Error::custom("trailing array elements"));
                }
                Ok(value)
            }
            Token::Object => {
                let mut map = Map {
                    reader: self.reader,
                    depth: nested(self.depth)?,
                    done: false,
                };
                let value = visitor.visit_map(&mut map)?;
                if !map.done && self.reader.key()?.is_some() {
                    return Err(de::Error::custom("trailing object entries"));
                }
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.reader.peek()? == NULL {
            self.reader.byte()?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // As serde_json: a string's bytes, or an array of numbers.
        match self.reader.peek()? {
            STR | WORD => match self.reader.token()? {
                Token::Str(text) => visitor.visit_borrowed_bytes(text.as_bytes()),
                _ => Err(corrupt("expected a string")),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.reader.skip(self.depth)?;
        visitor.visit_unit()
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // As serde_json: `"Variant"` or `{"Variant": value}`.
        match self.reader.peek()? {
            OBJECT => {
                self.reader.byte()?;
                let depth = nested(self.depth)?;
                let value = visitor.visit_enum(Enum {
                    reader: self.reader,
                    depth,
                })?;
                if self.reader.key()?.is_some() {
                    return Err(de::Error::custom("an enum object has one entry"));
                }
                Ok(value)
            }
            _ => match self.reader.token()? {
                Token::Str(variant) => {
                    visitor.visit_enum(IntoDeserializer::<Error>::into_deserializer(variant))
                }
                _ => Err(de::Error::custom("expected an enum")),
            },
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct Seq<'a, 'de> {
    reader: &'a Reader<'de>,
    depth: usize,
    done: bool,
}

impl<'de> SeqAccess<'de> for Seq<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.done || self.reader.array_end()? {
            self.done = true;
            return Ok(None);
        }
        seed.deserialize(Decoder {
            reader: self.reader,
            depth: self.depth,
        })
        .map(Some)
    }
}

struct Map<'a, 'de> {
    reader: &'a Reader<'de>,
    depth: usize,
    done: bool,
}

impl<'de> MapAccess<'de> for Map<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if self.done {
            return Ok(None);
        }
        match self.reader.key()? {
            Some(key) => seed
                .deserialize(BorrowedStrDeserializer::new(key))
                .map(Some),
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(Decoder {
            reader: self.reader,
            depth: self.depth,
        })
    }
}

/// `{"Variant": value}`, the object's tag already read.
struct Enum<'a, 'de> {
    reader: &'a Reader<'de>,
    depth: usize,
}

impl<'a, 'de> EnumAccess<'de> for Enum<'a, 'de> {
    type Error = Error;
    type Variant = Decoder<'a, 'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Decoder<'a, 'de>), Error> {
        let key = self
            .reader
            .key()?
            .ok_or_else(|| de::Error::custom("expected an enum variant"))?;
        let variant = seed.deserialize(BorrowedStrDeserializer::<Error>::new(key))?;
        Ok((
            variant,
            Decoder {
                reader: self.reader,
                depth: self.depth,
            },
        ))
    }
}

impl<'de> VariantAccess<'de> for Decoder<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}
