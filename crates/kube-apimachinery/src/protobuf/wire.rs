//! Reading the protobuf wire format: varints, tags, length-delimited values.

use super::ProtobufError;

/// Wire type of varints.
pub(crate) const VARINT: u8 = 0;
/// Wire type of 8-byte values.
pub(crate) const FIXED64: u8 = 1;
/// Wire type of length-delimited values (strings, bytes, messages, packed scalars).
pub(crate) const LEN: u8 = 2;
/// Wire type of 4-byte values.
pub(crate) const FIXED32: u8 = 5;

/// A cursor over the bytes of one message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'de> {
    pub data: &'de [u8],
    pub pos: usize,
}

fn truncated() -> ProtobufError {
    ProtobufError::Malformed("unexpected end of a message".into())
}

impl<'de> Reader<'de> {
    pub fn new(data: &'de [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    #[inline]
    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// A varint, or `None` when the data ends inside it (for incremental readers).
    #[inline]
    pub fn try_varint(&mut self) -> Result<Option<u64>, ProtobufError> {
        let mut value = 0u64;
        for shift in 0..10 {
            let Some(&byte) = self.data.get(self.pos + shift) else {
                return Ok(None);
            };
            value |= u64::from(byte & 0x7f) << (7 * shift);
            if byte < 0x80 {
                self.pos += shift + 1;
                return Ok(Some(value));
            }
        }
        Err(ProtobufError::Malformed(
            "a varint longer than 10 bytes".into(),
        ))
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, ProtobufError> {
        // Most varints (tags, lengths, small numbers) are one byte.
        if let Some(&byte) = self.data.get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(byte));
        }
        self.try_varint()?.ok_or_else(truncated)
    }

    /// A field's tag: its number and wire type.
    #[inline]
    pub fn tag(&mut self) -> Result<(u32, u8), ProtobufError> {
        split_tag(self.varint()?)
    }

    /// A length-delimited value.
    #[inline]
    pub fn len_delimited(&mut self) -> Result<&'de [u8], ProtobufError> {
        let len = usize::try_from(self.varint()?).map_err(|_| truncated())?;
        let end = self.pos.checked_add(len).ok_or_else(truncated)?;
        let value = self.data.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(value)
    }

    #[inline]
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ProtobufError> {
        let bytes = self
            .data
            .get(self.pos..self.pos + N)
            .ok_or_else(truncated)?;
        self.pos += N;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Skips a value of wire type `wire`.
    pub fn skip(&mut self, wire: u8) -> Result<(), ProtobufError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed::<8>().map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.fixed::<4>().map(drop),
            other => Err(ProtobufError::Malformed(format!(
                "wire type {other} (groups are not used by Kubernetes)"
            ))),
        }
    }
}

/// A tag's field number and wire type.
#[inline]
pub(crate) fn split_tag(tag: u64) -> Result<(u32, u8), ProtobufError> {
    let number = u32::try_from(tag >> 3)
        .ok()
        .filter(|n| *n != 0)
        .ok_or_else(|| ProtobufError::Malformed(format!("field number {}", tag >> 3)))?;
    Ok((number, (tag & 7) as u8))
}

/// The first value of field `number` in `data`, if any, skipping the others.
pub(crate) fn find(data: &[u8], number: u32) -> Result<Option<(u8, Reader<'_>)>, ProtobufError> {
    let mut reader = Reader::new(data);
    while !reader.at_end() {
        let (n, wire) = reader.tag()?;
        if n == number {
            return Ok(Some((wire, reader)));
        }
        reader.skip(wire)?;
    }
    Ok(None)
}

/// The string or bytes of field `number` (empty when absent).
pub(crate) fn bytes_field(data: &[u8], number: u32) -> Result<&[u8], ProtobufError> {
    match find(data, number)? {
        Some((LEN, mut reader)) => reader.len_delimited(),
        Some((wire, _)) => Err(wire_mismatch(number, wire)),
        None => Ok(&[]),
    }
}

/// The varint of field `number` (0 when absent).
pub(crate) fn varint_field(data: &[u8], number: u32) -> Result<u64, ProtobufError> {
    match find(data, number)? {
        Some((VARINT, mut reader)) => reader.varint(),
        Some((wire, _)) => Err(wire_mismatch(number, wire)),
        None => Ok(0),
    }
}

pub(crate) fn wire_mismatch(number: u32, wire: u8) -> ProtobufError {
    ProtobufError::Malformed(format!("field {number} has the wrong wire type {wire}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_tags_and_truncation() {
        let mut r = Reader::new(&[0x96, 0x01, 0x0a, 0x02, b'h', b'i']);
        assert_eq!(r.varint().unwrap(), 150);
        assert_eq!(r.tag().unwrap(), (1, LEN));
        assert_eq!(r.len_delimited().unwrap(), b"hi");
        assert!(r.at_end());
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert_eq!(Reader::new(&[0x80]).try_varint().unwrap(), None);
        assert!(Reader::new(&[0x0a, 0x05, b'h']).skip(LEN).is_err());
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(split_tag(0x02).is_err()); // field number 0
        assert!(Reader::new(&[0x01]).skip(3).is_err());
    }
}
