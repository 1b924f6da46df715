//! The Kubernetes WebSocket channel framing (`*.channel.k8s.io`), for both ends: exec,
//! attach and port forwarding clients, and servers that answer them.
//!
//! Every message starts with the number of the channel it belongs to: one byte in the
//! binary protocols, an ASCII character `'0' + channel` followed by base64 data in the
//! `base64` ones (as Go writes it, also past `'9'`). Exec and attach use [`STDIN`],
//! [`STDOUT`], [`STDERR`], [`ERROR`] (the final status) and [`RESIZE`] (terminal sizes,
//! [`TerminalSize`]). `v5.channel.k8s.io` adds the message `[255, channel]` ([`CLOSE`])
//! that half-closes one channel, which is how stdin reaches EOF while a command still runs.
//!
//! Port forwarding uses two channels per port (data `2i`, error `2i + 1`) whose first
//! message starts with the port number (two bytes, little endian); that prefix is payload
//! for this module, which frames any channel number.
//!
//! The types here do not depend on a WebSocket library: [`Frame`] is a text or binary
//! message, which maps one to one onto tungstenite's (or any library's) messages.
//!
//! ```
//! use kube_apimachinery::channel::{ChannelProtocol, Decoded, Frame, STDOUT};
//!
//! let protocol = ChannelProtocol::from_name("v4.base64.channel.k8s.io").unwrap();
//! let frame = protocol.encode(STDOUT, b"hello")?;
//! assert_eq!(frame, Frame::Text("1aGVsbG8=".into()));
//! assert_eq!(
//!     protocol.decode(frame)?,
//!     Some(Decoded::Data { channel: STDOUT, data: "hello".into() })
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

/// Stdin (client to server).
pub const STDIN: u8 = 0;
/// Stdout.
pub const STDOUT: u8 = 1;
/// Stderr.
pub const STDERR: u8 = 2;
/// The error channel: the final status of the remote command.
pub const ERROR: u8 = 3;
/// Terminal size changes (client to server, JSON `{"Width":w,"Height":h}`).
pub const RESIZE: u8 = 4;
/// The v5 close-channel signal: the message `[CLOSE, channel]`.
pub const CLOSE: u8 = 255;

/// The highest channel a base64 protocol can carry: `'0' + channel` must stay ASCII to be
/// valid text.
pub const MAX_BASE64_CHANNEL: u8 = 0x7f - b'0';

/// A `*.channel.k8s.io` WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelProtocol {
    /// `v5.channel.k8s.io`: v4 plus the close-channel message (stdin EOF).
    V5,
    /// `v4.channel.k8s.io`: the error channel carries a JSON `Status` with the exit code.
    V4,
    /// `v4.base64.channel.k8s.io`: v4 in base64 text messages.
    V4Base64,
    /// `v3.channel.k8s.io`: adds the resize channel; errors are plain text. A SPDY protocol
    /// name: kubelets do not offer it over WebSocket (some servers do).
    V3,
    /// `v2.channel.k8s.io`: stdin, stdout, stderr and a plain-text error channel. A SPDY
    /// protocol name, like [`ChannelProtocol::V3`].
    V2,
    /// `channel.k8s.io`: the original binary protocol (also what a connection without a
    /// subprotocol speaks).
    V1,
    /// `base64.channel.k8s.io`: the original protocol in base64 text messages.
    V1Base64,
}

impl ChannelProtocol {
    /// What an exec or attach client offers, best first: v5 (what kube-apiserver 1.30+
    /// translates, and the only protocol client-go's WebSocket executor offers), then the
    /// kubelet's own WebSocket protocols, which an API server passing the upgrade through
    /// reaches: v4 and `channel.k8s.io`. Only v5 can deliver stdin EOF before the end.
    pub const DEFAULT_OFFER: [ChannelProtocol; 3] = [
        ChannelProtocol::V5,
        ChannelProtocol::V4,
        ChannelProtocol::V1,
    ];

    /// Every protocol, newest first.
    pub const ALL: [ChannelProtocol; 7] = [
        ChannelProtocol::V5,
        ChannelProtocol::V4,
        ChannelProtocol::V4Base64,
        ChannelProtocol::V3,
        ChannelProtocol::V2,
        ChannelProtocol::V1,
        ChannelProtocol::V1Base64,
    ];

    /// The subprotocol name sent in `Sec-WebSocket-Protocol`.
    pub fn name(self) -> &'static str {
        match self {
            ChannelProtocol::V5 => "v5.channel.k8s.io",
            ChannelProtocol::V4 => "v4.channel.k8s.io",
            ChannelProtocol::V4Base64 => "v4.base64.channel.k8s.io",
            ChannelProtocol::V3 => "v3.channel.k8s.io",
            ChannelProtocol::V2 => "v2.channel.k8s.io",
            ChannelProtocol::V1 => "channel.k8s.io",
            ChannelProtocol::V1Base64 => "base64.channel.k8s.io",
        }
    }

    /// The protocol named `name`; the empty name (no subprotocol) is `channel.k8s.io`.
    pub fn from_name(name: &str) -> Option<ChannelProtocol> {
        if name.is_empty() {
            return Some(ChannelProtocol::V1);
        }
        ChannelProtocol::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether messages are base64 text rather than binary.
    pub fn is_base64(self) -> bool {
        matches!(self, ChannelProtocol::V4Base64 | ChannelProtocol::V1Base64)
    }

    /// Whether a channel can be closed on its own (v5).
    pub fn can_close_channels(self) -> bool {
        self == ChannelProtocol::V5
    }

    /// Whether the error channel carries a JSON `Status` (v4 and later) rather than text.
    pub fn has_status(self) -> bool {
        matches!(
            self,
            ChannelProtocol::V5 | ChannelProtocol::V4 | ChannelProtocol::V4Base64
        )
    }

    /// The message carrying `data` on `channel`.
    ///
    /// Fails only for a base64 protocol and a channel above [`MAX_BASE64_CHANNEL`], whose
    /// prefix would not be ASCII.
    pub fn encode(self, channel: u8, data: &[u8]) -> Result<Frame, EncodeError> {
        if !self.is_base64() {
            let mut frame = Vec::with_capacity(1 + data.len());
            frame.push(channel);
            frame.extend_from_slice(data);
            return Ok(Frame::Binary(Bytes::from(frame)));
        }
        if channel > MAX_BASE64_CHANNEL {
            return Err(EncodeError::ChannelOutOfRange {
                protocol: self,
                channel,
            });
        }
        let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
        text.push(char::from(b'0' + channel));
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
        Ok(Frame::Text(text))
    }

    /// The v5 message closing `channel` (`[255, channel]`); `None` for older protocols,
    /// which cannot half-close a channel.
    pub fn encode_close(self, channel: u8) -> Option<Frame> {
        self.can_close_channels()
            .then(|| Frame::Binary(Bytes::from(vec![CLOSE, channel])))
    }

    /// Decodes a message: `Ok(None)` for an empty one (it carries nothing, and Go's peers
    /// skip it).
    pub fn decode(self, frame: Frame) -> Result<Option<Decoded>, DecodeError> {
        match frame {
            Frame::Binary(bytes) => self.decode_binary(bytes),
            Frame::Text(text) => self.decode_text(&text),
        }
    }

    /// Decodes a binary message (the bytes are shared, not copied).
    pub fn decode_binary(self, bytes: Bytes) -> Result<Option<Decoded>, DecodeError> {
        if self.is_base64() {
            return Err(DecodeError::WrongFrameType {
                protocol: self,
                expected: "text",
            });
        }
        let Some(&channel) = bytes.first() else {
            return Ok(None);
        };
        if channel == CLOSE && self.can_close_channels() {
            return match bytes.get(1) {
                Some(&closed) => Ok(Some(Decoded::Close { channel: closed })),
                None => Err(DecodeError::CloseWithoutChannel),
            };
        }
        Ok(Some(Decoded::Data {
            channel,
            data: bytes.slice(1..),
        }))
    }

    /// Decodes a text message.
    pub fn decode_text(self, text: &str) -> Result<Option<Decoded>, DecodeError> {
        if !self.is_base64() {
            return Err(DecodeError::WrongFrameType {
                protocol: self,
                expected: "binary",
            });
        }
        let Some((&digit, data)) = text.as_bytes().split_first() else {
            return Ok(None);
        };
        let Some(channel) = digit.checked_sub(b'0') else {
            return Err(DecodeError::NotAChannel {
                protocol: self,
                found: char::from(digit),
            });
        };
        let data = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|source| DecodeError::Base64 {
                protocol: self,
                source,
            })?;
        Ok(Some(Decoded::Data {
            channel,
            data: Bytes::from(data),
        }))
    }
}

impl fmt::Display for ChannelProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One WebSocket message, independent of the WebSocket library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A binary message.
    Binary(Bytes),
    /// A text message.
    Text(String),
}

/// What a message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Data on a channel (possibly empty: the first message of a stream often is).
    Data {
        /// The channel.
        channel: u8,
        /// The data.
        data: Bytes,
    },
    /// v5: the peer closed `channel` (no more data will come on it).
    Close {
        /// The channel closed.
        channel: u8,
    },
}

/// Why data could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A base64 protocol cannot carry this channel number.
    #[error("{protocol} cannot carry channel {channel} (at most {MAX_BASE64_CHANNEL})")]
    ChannelOutOfRange {
        /// The protocol.
        protocol: ChannelProtocol,
        /// The channel.
        channel: u8,
    },
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A text message in a binary protocol, or the reverse.
    #[error("a {protocol} message in the wrong format (expected {expected})")]
    WrongFrameType {
        /// The protocol.
        protocol: ChannelProtocol,
        /// `"text"` or `"binary"`.
        expected: &'static str,
    },
    /// A base64 message that does not start with a channel character.
    #[error("a {protocol} message starts with {found:?}, not a channel digit")]
    NotAChannel {
        /// The protocol.
        protocol: ChannelProtocol,
        /// The first character.
        found: char,
    },
    /// A base64 message whose data is not base64.
    #[error("a {protocol} message is not valid base64")]
    Base64 {
        /// The protocol.
        protocol: ChannelProtocol,
        /// The decoder's error.
        #[source]
        source: base64::DecodeError,
    },
    /// A v5 close message without the channel to close.
    #[error("a v5.channel.k8s.io close message without a channel")]
    CloseWithoutChannel,
    /// A resize message that is not a terminal size.
    #[error("invalid terminal size: {reason}")]
    Resize {
        /// What is wrong.
        reason: String,
    },
}

/// A terminal size, as the resize channel carries it: `{"Width":80,"Height":24}`.
///
/// It also serializes with serde in that form; [`TerminalSize::from_json`] is the lenient
/// reading a kubelet does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "PascalCase")]
pub struct TerminalSize {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

impl TerminalSize {
    /// The JSON a client sends on [`RESIZE`].
    pub fn to_json(&self) -> Vec<u8> {
        format!(r#"{{"Width":{},"Height":{}}}"#, self.width, self.height).into_bytes()
    }

    /// Parses a resize message as the kubelet does (Go's `encoding/json` into
    /// `remotecommand.TerminalSize`): field names match case-insensitively, a missing field
    /// is 0, other fields are ignored, and a size must be an integer from 0 to 65535.
    pub fn from_json(data: &[u8]) -> Result<TerminalSize, DecodeError> {
        let invalid = |reason: String| DecodeError::Resize { reason };
        let value: Value =
            serde_json::from_slice(data).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(invalid(format!("{value} is not an object")));
        };
        let mut size = TerminalSize::default();
        // Go prefers an exact match, then takes the last case-insensitive one; with at most
        // one key per name in practice, the first case-insensitive match is enough.
        for (target, name) in [(&mut size.width, "Width"), (&mut size.height, "Height")] {
            let found = object.get(name).or_else(|| {
                object
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            });
            match found {
                None | Some(Value::Null) => {}
                Some(value) => {
                    *target = value
                        .as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .ok_or_else(|| invalid(format!("{name} {value} is not a 16-bit size")))?;
                }
            }
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(channel: u8, bytes: &'static [u8]) -> Option<Decoded> {
        Some(Decoded::Data {
            channel,
            data: Bytes::from_static(bytes),
        })
    }

    #[test]
    fn names_round_trip() {
        for protocol in ChannelProtocol::ALL {
            assert_eq!(ChannelProtocol::from_name(protocol.name()), Some(protocol));
            assert_eq!(protocol.to_string(), protocol.name());
        }
        assert_eq!(ChannelProtocol::from_name(""), Some(ChannelProtocol::V1));
        assert_eq!(ChannelProtocol::from_name("v6.channel.k8s.io"), None);
    }

    #[test]
    fn capabilities_follow_the_versions() {
        use ChannelProtocol::*;
        for protocol in ChannelProtocol::ALL {
            assert_eq!(protocol.can_close_channels(), protocol == V5, "{protocol}");
            assert_eq!(
                protocol.has_status(),
                matches!(protocol, V5 | V4 | V4Base64),
                "{protocol}"
            );
            assert_eq!(
                protocol.is_base64(),
                matches!(protocol, V4Base64 | V1Base64),
                "{protocol}"
            );
        }
    }

    #[test]
    fn binary_frames_carry_a_channel_byte() {
        let p = ChannelProtocol::V5;
        assert_eq!(
            p.encode(STDIN, b"foo\n").unwrap(),
            Frame::Binary(Bytes::from_static(&[0, b'f', b'o', b'o', b'\n']))
        );
        assert_eq!(
            p.decode(Frame::Binary(Bytes::from_static(&[1, b'\n'])))
                .unwrap(),
            data(STDOUT, b"\n")
        );
        assert_eq!(
            p.decode_binary(Bytes::from_static(&[1])).unwrap(),
            data(STDOUT, b"")
        );
        assert_eq!(p.decode_binary(Bytes::new()).unwrap(), None);
        assert_eq!(
            ChannelProtocol::V4
                .decode_text("1abc")
                .unwrap_err()
                .to_string(),
            "a v4.channel.k8s.io message in the wrong format (expected binary)"
        );
    }

    #[test]
    fn v5_closes_channels_and_older_protocols_do_not() {
        let close = ChannelProtocol::V5.encode_close(STDIN).unwrap();
        assert_eq!(close, Frame::Binary(Bytes::from_static(&[CLOSE, STDIN])));
        assert_eq!(
            ChannelProtocol::V5.decode(close).unwrap(),
            Some(Decoded::Close { channel: STDIN })
        );
        assert_eq!(
            ChannelProtocol::V5.decode_binary(Bytes::from_static(&[CLOSE])),
            Err(DecodeError::CloseWithoutChannel)
        );
        assert_eq!(ChannelProtocol::V4.encode_close(STDIN), None);
        // Before v5, 255 is just a channel.
        assert_eq!(
            ChannelProtocol::V4
                .decode_binary(Bytes::from_static(&[CLOSE, 0]))
                .unwrap(),
            data(CLOSE, &[0])
        );
    }

    #[test]
    fn base64_frames_carry_a_channel_digit() {
        // The example of the wsstream documentation.
        let p = ChannelProtocol::V1Base64;
        assert_eq!(
            p.encode(STDIN, b"foo\n").unwrap(),
            Frame::Text("0Zm9vCg==".into())
        );
        assert_eq!(p.decode_text("1Cg==").unwrap(), data(STDOUT, b"\n"));
        assert_eq!(
            ChannelProtocol::V4Base64.encode(STDERR, b"hello").unwrap(),
            Frame::Text("2aGVsbG8=".into())
        );
        assert_eq!(p.decode_text("").unwrap(), None);
        assert_eq!(p.decode_text("3").unwrap(), data(ERROR, b""));
        assert!(matches!(
            p.decode_text("!"),
            Err(DecodeError::NotAChannel { found: '!', .. })
        ));
        let error = p.decode_text("1!!").unwrap_err();
        assert!(std::error::Error::source(&error).is_some(), "{error}");
        assert!(matches!(
            p.decode_binary(Bytes::from_static(b"0")),
            Err(DecodeError::WrongFrameType {
                expected: "text",
                ..
            })
        ));
    }

    #[test]
    fn base64_channels_past_nine_are_written_as_go_writes_them() {
        // Port forwarding numbers two channels per port: '0' + 11 is ';'.
        let p = ChannelProtocol::V4Base64;
        let frame = p.encode(11, b"x").unwrap();
        assert_eq!(frame, Frame::Text(";eA==".into()));
        assert_eq!(p.decode(frame).unwrap(), data(11, b"x"));
        assert_eq!(
            p.encode(MAX_BASE64_CHANNEL, b"").unwrap(),
            Frame::Text("\u{7f}".into())
        );
        assert_eq!(
            p.encode(MAX_BASE64_CHANNEL + 1, b"").unwrap_err(),
            EncodeError::ChannelOutOfRange {
                protocol: p,
                channel: 80
            }
        );
        // Binary protocols carry every channel.
        assert!(ChannelProtocol::V4.encode(200, b"").is_ok());
    }

    #[test]
    fn terminal_sizes() {
        let size = TerminalSize {
            width: 80,
            height: 24,
        };
        assert_eq!(size.to_json(), br#"{"Width":80,"Height":24}"#);
        assert_eq!(TerminalSize::from_json(&size.to_json()).unwrap(), size);
        assert_eq!(serde_json::to_vec(&size).unwrap(), size.to_json());
        // Go's decoder: case-insensitive names, missing fields are 0, extras ignored.
        assert_eq!(
            TerminalSize::from_json(br#"{"width":100,"HEIGHT":30,"x":1}"#).unwrap(),
            TerminalSize {
                width: 100,
                height: 30
            }
        );
        assert_eq!(
            TerminalSize::from_json(b"{}").unwrap(),
            TerminalSize::default()
        );
        for bad in [
            &b"[1]"[..],
            b"not json",
            br#"{"Width":-1}"#,
            br#"{"Width":70000}"#,
            br#"{"Height":1.5}"#,
        ] {
            assert!(
                matches!(
                    TerminalSize::from_json(bad),
                    Err(DecodeError::Resize { .. })
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
