//! SPDY/3 frames (the framing Kubernetes speaks under the `SPDY/3.1` upgrade): encoding and
//! incremental decoding.
//!
//! A control frame starts with the control bit, the version (3) and the type, then 8 bits of
//! flags and a 24-bit length; a data frame starts with a 31-bit stream id, then flags and
//! length. Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) go through the connection's
//! [`HeaderCompressor`] and [`HeaderDecompressor`].

use bytes::{Buf, Bytes, BytesMut};

use super::SpdyError;
use super::headers::{HeaderCompressor, HeaderDecompressor, Headers};

/// The protocol version in control frames.
pub(crate) const VERSION: u16 = 3;
/// FLAG_FIN: the sender's last frame on the stream.
pub(crate) const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL (SYN_STREAM): the recipient may not send on the stream.
pub(crate) const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// The most [`Frame::decode`] reserves for the rest of an incomplete frame.
const RESERVE_AHEAD: usize = 64 << 10;
/// The largest frame payload (24-bit length).
pub(crate) const MAX_LENGTH: usize = (1 << 24) - 1;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes.
#[allow(dead_code)] // the full table of the spec; the server sends a few of them
pub(crate) mod rst {
    /// PROTOCOL_ERROR.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// INVALID_STREAM.
    pub const INVALID_STREAM: u32 = 2;
    /// REFUSED_STREAM.
    pub const REFUSED_STREAM: u32 = 3;
    /// UNSUPPORTED_VERSION.
    pub const UNSUPPORTED_VERSION: u32 = 4;
    /// CANCEL (what spdystream's `Stream.Reset` sends).
    pub const CANCEL: u32 = 5;
    /// INTERNAL_ERROR.
    pub const INTERNAL_ERROR: u32 = 6;
    /// FLOW_CONTROL_ERROR.
    pub const FLOW_CONTROL_ERROR: u32 = 7;
    /// STREAM_IN_USE.
    pub const STREAM_IN_USE: u32 = 8;
    /// STREAM_ALREADY_CLOSED.
    pub const STREAM_ALREADY_CLOSED: u32 = 9;
}

/// GOAWAY status codes.
pub(crate) mod goaway {
    /// OK.
    pub const OK: u32 = 0;
    /// PROTOCOL_ERROR.
    pub const PROTOCOL_ERROR: u32 = 1;
}

/// One SPDY frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Opens a stream.
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        slot: u8,
        flags: u8,
        headers: Headers,
    },
    /// Accepts a stream.
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    /// Aborts a stream.
    RstStream { stream_id: u32, status: u32 },
    /// Connection settings: (flags, id, value).
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    /// A ping (client ids odd, server ids even); the receiver echoes the other side's.
    Ping { id: u32 },
    /// The sender accepts no new streams.
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    /// More headers for a stream.
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    /// Flow-control credit (stream 0: the whole connection, SPDY/3.1).
    WindowUpdate { stream_id: u32, delta: u32 },
    /// Stream data.
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type this implementation does not know (ignored, as the spec
    /// asks).
    Unknown { frame_type: u16 },
}

fn control_header(out: &mut Vec<u8>, frame_type: u16, flags: u8, length: usize) {
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&frame_type.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
}

fn check_length(length: usize) -> Result<(), SpdyError> {
    if length > MAX_LENGTH {
        return Err(SpdyError::FrameTooLarge(length));
    }
    Ok(())
}

impl Frame {
    /// The wire form of the frame; header blocks are compressed with `compressor`.
    pub(crate) fn encode(&self, compressor: &mut HeaderCompressor) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::new();
        match self {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                slot,
                flags,
                headers,
            } => {
                let block = compressor.compress(headers)?;
                check_length(10 + block.len())?;
                control_header(&mut out, TYPE_SYN_STREAM, *flags, 10 + block.len());
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&(associated_to & 0x7fff_ffff).to_be_bytes());
                out.push((priority & 0x07) << 5);
                out.push(*slot);
                out.extend_from_slice(&block);
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            }
            | Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let frame_type = if matches!(self, Frame::SynReply { .. }) {
                    TYPE_SYN_REPLY
                } else {
                    TYPE_HEADERS
                };
                let block = compressor.compress(headers)?;
                check_length(4 + block.len())?;
                control_header(&mut out, frame_type, *flags, 4 + block.len());
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Frame::RstStream { stream_id, status } => {
                control_header(&mut out, TYPE_RST_STREAM, 0, 8);
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&status.to_be_bytes());
            }
            Frame::Settings { flags, entries } => {
                let length = 4 + 8 * entries.len();
                check_length(length)?;
                control_header(&mut out, TYPE_SETTINGS, *flags, length);
                out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                for (entry_flags, id, value) in entries {
                    out.push(*entry_flags);
                    out.extend_from_slice(&id.to_be_bytes()[1..]);
                    out.extend_from_slice(&value.to_be_bytes());
                }
            }
            Frame::Ping { id } => {
                control_header(&mut out, TYPE_PING, 0, 4);
                out.extend_from_slice(&id.to_be_bytes());
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                control_header(&mut out, TYPE_GOAWAY, 0, 8);
                out.extend_from_slice(&(last_good_stream_id & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&status.to_be_bytes());
            }
            Frame::WindowUpdate { stream_id, delta } => {
                control_header(&mut out, TYPE_WINDOW_UPDATE, 0, 8);
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                check_length(data.len())?;
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.push(*flags);
                out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(data);
            }
            Frame::Unknown { .. } => {
                return Err(SpdyError::InvalidFrame("unknown frame type"));
            }
        }
        Ok(out)
    }

    /// Decodes the next frame at the front of `buffer` (consuming it), or `None` when the
    /// buffer does not hold a whole frame yet.
    pub(crate) fn decode(
        buffer: &mut BytesMut,
        decompressor: &mut HeaderDecompressor,
    ) -> Result<Option<Frame>, SpdyError> {
        if buffer.len() < 8 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([0, buffer[5], buffer[6], buffer[7]]) as usize;
        if buffer.len() < 8 + length {
            // Room for what is missing, but never more than 64 KiB ahead of the bytes that
            // arrived: a header claiming 16 MiB must not allocate them before they come.
            buffer.reserve((8 + length - buffer.len()).min(RESERVE_AHEAD));
            return Ok(None);
        }
        let head = buffer.split_to(8);
        let mut payload = buffer.split_to(length).freeze();
        let flags = head[4];
        if head[0] & 0x80 == 0 {
            let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            if stream_id == 0 {
                return Err(SpdyError::InvalidFrame("stream id zero is disallowed"));
            }
            return Ok(Some(Frame::Data {
                stream_id,
                flags,
                data: payload,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return Err(SpdyError::UnsupportedVersion(version));
        }
        let frame_type = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize| {
            if payload.len() < n {
                Err(SpdyError::InvalidFrame("invalid control frame"))
            } else {
                Ok(())
            }
        };
        let frame = match frame_type {
            TYPE_SYN_STREAM => {
                need(10)?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let associated_to = payload.get_u32() & 0x7fff_ffff;
                let priority = payload.get_u8() >> 5;
                let slot = payload.get_u8();
                if stream_id == 0 {
                    return Err(SpdyError::InvalidFrame("stream id zero is disallowed"));
                }
                let headers = decompressor.decompress(&payload)?;
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    slot,
                    flags,
                    headers,
                }
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                need(4)?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let headers = decompressor.decompress(&payload)?;
                if frame_type == TYPE_SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        flags,
                        headers,
                    }
                }
            }
            TYPE_RST_STREAM => {
                need(8)?;
                Frame::RstStream {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    status: payload.get_u32(),
                }
            }
            TYPE_SETTINGS => {
                need(4)?;
                let count = payload.get_u32() as usize;
                if payload.len() != count.saturating_mul(8) {
                    return Err(SpdyError::InvalidFrame("invalid control frame"));
                }
                let entries = (0..count)
                    .map(|_| {
                        let word = payload.get_u32();
                        ((word >> 24) as u8, word & 0x00ff_ffff, payload.get_u32())
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            TYPE_PING => {
                need(4)?;
                Frame::Ping {
                    id: payload.get_u32(),
                }
            }
            TYPE_GOAWAY => {
                // SPDY/2 peers send no status; SPDY/3 adds it.
                need(4)?;
                let last_good_stream_id = payload.get_u32() & 0x7fff_ffff;
                let status = if payload.len() >= 4 {
                    payload.get_u32()
                } else {
                    goaway::OK
                };
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }
            TYPE_WINDOW_UPDATE => {
                need(8)?;
                Frame::WindowUpdate {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    delta: payload.get_u32() & 0x7fff_ffff,
                }
            }
            other => Frame::Unknown { frame_type: other },
        };
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Headers {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_frame_round_trips() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                headers: pairs(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 1,
                priority: 7,
                slot: 2,
                flags: FLAG_FIN | FLAG_UNIDIRECTIONAL,
                headers: pairs(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: pairs(&[]),
            },
            Frame::Headers {
                stream_id: 3,
                flags: FLAG_FIN,
                headers: pairs(&[("a", "b")]),
            },
            Frame::RstStream {
                stream_id: 5,
                status: rst::CANCEL,
            },
            Frame::Settings {
                flags: 1,
                entries: vec![(0, 4, 100), (1, 7, 65536)],
            },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_good_stream_id: 9,
                status: goaway::OK,
            },
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 1 << 20,
            },
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
        ];
        let mut compressor = HeaderCompressor::new().unwrap();
        let mut wire = BytesMut::new();
        for frame in &frames {
            wire.extend_from_slice(&frame.encode(&mut compressor).unwrap());
        }
        // Fed byte by byte, the decoder waits for whole frames.
        let mut decompressor = HeaderDecompressor::new();
        let mut buffer = BytesMut::new();
        let mut decoded = Vec::new();
        for byte in wire {
            buffer.extend_from_slice(&[byte]);
            while let Some(frame) = Frame::decode(&mut buffer, &mut decompressor).unwrap() {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
    }

    #[test]
    fn wire_layout_matches_the_spec() {
        let mut compressor = HeaderCompressor::new().unwrap();
        assert_eq!(
            Frame::Ping { id: 1 }.encode(&mut compressor).unwrap(),
            [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]
        );
        assert_eq!(
            Frame::RstStream {
                stream_id: 3,
                status: rst::CANCEL
            }
            .encode(&mut compressor)
            .unwrap(),
            [0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 5]
        );
        assert_eq!(
            Frame::Data {
                stream_id: 5,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hi")
            }
            .encode(&mut compressor)
            .unwrap(),
            [0, 0, 0, 5, 1, 0, 0, 2, b'h', b'i']
        );
        let syn = Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: Headers::new(),
        }
        .encode(&mut compressor)
        .unwrap();
        assert_eq!(&syn[..4], &[0x80, 3, 0, 2]);
        assert_eq!(
            u32::from_be_bytes([0, syn[5], syn[6], syn[7]]) as usize,
            syn.len() - 8
        );
    }

    #[test]
    fn bad_frames_are_errors_and_unknown_types_are_skipped() {
        let mut decompressor = HeaderDecompressor::new();
        let mut version2 = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(matches!(
            Frame::decode(&mut version2, &mut decompressor),
            Err(SpdyError::UnsupportedVersion(2))
        ));
        let mut short_ping = BytesMut::from(&[0x80, 3, 0, 6, 0, 0, 0, 2, 0, 1][..]);
        assert!(Frame::decode(&mut short_ping, &mut decompressor).is_err());
        let mut stream_zero = BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert!(Frame::decode(&mut stream_zero, &mut decompressor).is_err());
        let mut unknown = BytesMut::from(
            &[
                0x80, 3, 0, 10, 0, 0, 0, 2, 9, 9, 0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 3,
            ][..],
        );
        assert_eq!(
            Frame::decode(&mut unknown, &mut decompressor).unwrap(),
            Some(Frame::Unknown { frame_type: 10 })
        );
        assert_eq!(
            Frame::decode(&mut unknown, &mut decompressor).unwrap(),
            Some(Frame::Ping { id: 3 })
        );
    }
}
