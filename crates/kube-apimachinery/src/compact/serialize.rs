//! Serializing the compact encoding back as the value it holds (keys in their order), by
//! walking the bytes: `Compact<K>` serializes as the object with no JSON text in between.

use serde::Serialize;
use serde::ser::{Error as _, SerializeMap, SerializeSeq, Serializer};

use super::decode::{Reader, Token, nested};

/// The value at the reader's position; serializing it reads it. Serialize each `Node` once,
/// in order (as serializers do).
pub(super) struct Node<'a, 'de> {
    pub(super) reader: &'a Reader<'de>,
    /// How many arrays and objects enclose the value.
    pub(super) depth: usize,
}

impl Serialize for Node<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.reader.token().map_err(S::Error::custom)? {
            Token::Null => serializer.serialize_unit(),
            Token::Bool(value) => serializer.serialize_bool(value),
            Token::Uint(value) => serializer.serialize_u64(value),
            Token::Neg(value) => serializer.serialize_i64(value),
            Token::Float(value) => serializer.serialize_f64(value),
            Token::Str(value) => serializer.serialize_str(value),
            Token::Array => {
                let node = Node {
                    reader: self.reader,
                    depth: nested(self.depth).map_err(S::Error::custom)?,
                };
                let mut seq = serializer.serialize_seq(None)?;
                while !self.reader.array_end().map_err(S::Error::custom)? {
                    seq.serialize_element(&node)?;
                }
                seq.end()
            }
            Token::Object => {
                let node = Node {
                    reader: self.reader,
                    depth: nested(self.depth).map_err(S::Error::custom)?,
                };
                let mut map = serializer.serialize_map(None)?;
                while let Some(key) = self.reader.key().map_err(S::Error::custom)? {
                    map.serialize_entry(key, &node)?;
                }
                map.end()
            }
        }
    }
}
