//! The compact binary encoding of a JSON value, and its writer: built in one pass from any
//! self-describing serde `Deserializer` (serde_json's as the client streams an object), with
//! no `serde_json::Value` in between.
//!
//! A value is a one-byte tag and its payload:
//!
//! | tag | value | payload |
//! | --- | --- | --- |
//! | `NULL`, `FALSE`, `TRUE` | null, false, true | none |
//! | `0x80 + n` | the integer `n` (0 to 127) | none |
//! | `UINT` | an integer >= 128 | its LEB128 varint |
//! | `NEG` | a negative integer `n` | the varint of `-(n + 1)` |
//! | `FLOAT` | a float | 8 bytes, little-endian IEEE 754 |
//! | `STR` | a string | varint byte length, UTF-8 bytes |
//! | `WORD` | a string of the [dictionary](super::dictionary) | varint word id |
//! | `ARRAY` | an array | the values, then `END` |
//! | `OBJECT` | an object | the entries (key, value) in order, then the key `0` |
//!
//! An object key is one varint `k`: `0` ends the object; `1..=W` (`W` words in the
//! dictionary) is word `k - 1`; above, the key is inline, `k - W - 1` bytes of UTF-8 follow.
//! Numbers keep their value, not their text (as `serde_json::Value` does): `1e2` comes back
//! as `100.0`.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::dictionary;

pub(super) const NULL: u8 = 0;
pub(super) const FALSE: u8 = 1;
pub(super) const TRUE: u8 = 2;
pub(super) const UINT: u8 = 3;
pub(super) const NEG: u8 = 4;
pub(super) const FLOAT: u8 = 5;
pub(super) const STR: u8 = 6;
pub(super) const WORD: u8 = 7;
pub(super) const ARRAY: u8 = 8;
pub(super) const OBJECT: u8 = 9;
pub(super) const END: u8 = 10;
/// Tags from here on are the integers 0 to 127.
pub(super) const SMALL_UINT: u8 = 0x80;

/// The deepest nesting of arrays and objects encoded or decoded (serde_json's own limit).
pub(super) const MAX_DEPTH: usize = 128;

/// Appends the LEB128 varint of `value`.
pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Truncation intended: the low seven bits, with the continuation bit.
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_usize(out: &mut Vec<u8>, value: usize) {
    put_varint(out, value as u64);
}

/// Appends an unsigned integer.
pub(super) fn put_uint(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(SMALL_UINT + value as u8);
    } else {
        out.push(UINT);
        put_varint(out, value);
    }
}

/// Appends a signed integer.
pub(super) fn put_int(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        put_uint(out, value.unsigned_abs());
    } else {
        out.push(NEG);
        // -(value + 1) = !value, non-negative.
        put_varint(out, (!value).unsigned_abs());
    }
}

/// Appends a float.
pub(super) fn put_float(out: &mut Vec<u8>, value: f64) {
    out.push(FLOAT);
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a string value.
pub(super) fn put_str(out: &mut Vec<u8>, text: &str) {
    match dictionary::id(text) {
        Some(id) => {
            out.push(WORD);
            put_usize(out, id);
        }
        None => {
            out.push(STR);
            put_usize(out, text.len());
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// Appends an object key.
pub(super) fn put_key(out: &mut Vec<u8>, key: &str) {
    match dictionary::id(key) {
        Some(id) => put_usize(out, id + 1),
        None => {
            put_usize(out, dictionary::len() + 1 + key.len());
            out.extend_from_slice(key.as_bytes());
        }
    }
}

/// Ends an object.
pub(super) fn end_object(out: &mut Vec<u8>) {
    out.push(0);
}

/// Encodes one value from a deserializer, appending it to `out`.
pub(super) struct ValueSeed<'a> {
    pub(super) out: &'a mut Vec<u8>,
    /// How many arrays and objects enclose the value.
    pub(super) depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn nested<E: de::Error>(&mut self) -> Result<ValueSeed<'_>, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom("recursion limit exceeded"));
        }
        Ok(ValueSeed {
            out: self.out,
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.out.push(if value { TRUE } else { FALSE });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        put_int(self.out, value);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        put_uint(self.out, value);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        put_float(self.out, value);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        put_str(self.out, value);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push(NULL);
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let nested = self.nested()?;
        nested.out.push(ARRAY);
        while let Some(()) = seq.next_element_seed(ValueSeed {
            out: nested.out,
            depth: nested.depth,
        })? {}
        nested.out.push(END);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let nested = self.nested()?;
        nested.out.push(OBJECT);
        while let Some(()) = map.next_key_seed(KeySeed(nested.out))? {
            map.next_value_seed(ValueSeed {
                out: nested.out,
                depth: nested.depth,
            })?;
        }
        end_object(nested.out);
        Ok(())
    }
}

/// Encodes one object key.
pub(super) struct KeySeed<'a>(pub(super) &'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        put_key(self.0, key);
        Ok(())
    }
}
