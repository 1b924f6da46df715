//! Entry points of crate-private parsers for the cargo-fuzz targets in `fuzz/` (the
//! `fuzzing` feature). Not a stable API.

use bytes::BytesMut;

use crate::spdy::frame::Frame;
use crate::spdy::headers::{HeaderDecompressor, decode_block};

/// Decodes SPDY frames from `wire` fed in chunks of `chunk` bytes, as a connection reads
/// them; the number of frames before the end or the first error.
pub fn spdy_frames(wire: &[u8], chunk: usize) -> usize {
    let mut decompressor = HeaderDecompressor::new();
    let mut buffer = BytesMut::new();
    let mut frames = 0;
    for piece in wire.chunks(chunk.max(1)) {
        buffer.extend_from_slice(piece);
        loop {
            match Frame::decode(&mut buffer, &mut decompressor) {
                Ok(Some(_)) => frames += 1,
                Ok(None) => break,
                Err(_) => return frames,
            }
        }
    }
    frames
}

/// Reads a SPDY header block, uncompressed and compressed; how many headers it held.
pub fn spdy_header_block(block: &[u8]) -> usize {
    let plain = decode_block(block).map(|h| h.len()).unwrap_or(0);
    let inflated = HeaderDecompressor::new()
        .decompress(block)
        .map(|h| h.len())
        .unwrap_or(0);
    plain + inflated
}

/// The path as the server routes it (percent-decoded).
pub fn request_path(raw: &str) -> Option<String> {
    crate::request::decode_path(raw)
}
