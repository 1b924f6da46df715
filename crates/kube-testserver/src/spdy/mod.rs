//! A server-side SPDY/3 implementation, as far as Kubernetes streaming needs it: the framing
//! ([`frame`]), header-block compression with the spec's zlib dictionary ([`headers`]) and a
//! connection that accepts client streams ([`connection`]).
//!
//! Kubernetes upgrades with `Upgrade: SPDY/3.1` but frames SPDY/3 through moby/spdystream,
//! which implements no flow control: it never sends WINDOW_UPDATE and ignores the ones it
//! gets. This server does the same (WINDOW_UPDATE and SETTINGS are read and ignored; its own
//! sends are not held to a window), so neither side stalls after 64 KiB.

pub(crate) mod connection;
pub(crate) mod frame;
pub(crate) mod headers;

/// Why a SPDY connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpdyError {
    /// Reading or writing the connection failed.
    #[error("SPDY connection I/O: {0}")]
    Io(#[source] std::io::Error),
    /// A frame breaks the protocol.
    #[error("invalid SPDY frame: {0}")]
    InvalidFrame(&'static str),
    /// A control frame of another SPDY version.
    #[error("unsupported SPDY version {0}")]
    UnsupportedVersion(u16),
    /// A frame longer than the 24-bit length allows.
    #[error("SPDY frame too large: {0} bytes")]
    FrameTooLarge(usize),
    /// Header (de)compression failed.
    #[error("SPDY header compression: {0}")]
    Compression(String),
}
