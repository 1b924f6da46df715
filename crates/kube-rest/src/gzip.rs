//! gzip-compressed answers, as client-go's transport handles them: every request says
//! `Accept-Encoding: gzip` (unless [`Config::disable_compression`](crate::Config)), and an
//! answer with `Content-Encoding: gzip` is inflated while it arrives. kube-apiserver compresses
//! answers over 128 KB (lists, mostly; never watches).

use std::io::Write as _;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_ENCODING;

use crate::error::Error;

/// Whether an answer's body is gzip-compressed.
pub(crate) fn is_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
}

/// Inflates a gzip stream given in pieces.
pub(crate) struct Inflater {
    decoder: flate2::write::GzDecoder<Vec<u8>>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

fn corrupt(e: std::io::Error) -> Error {
    Error::decode("the gzip-compressed body", e)
}

impl Inflater {
    pub(crate) fn new() -> Self {
        Inflater {
            decoder: flate2::write::GzDecoder::new(Vec::new()),
        }
    }

    /// Inflates the next piece; returns what it decompressed to (possibly nothing yet).
    pub(crate) fn push(&mut self, compressed: &[u8]) -> Result<Bytes, Error> {
        self.decoder.write_all(compressed).map_err(corrupt)?;
        Ok(Bytes::from(std::mem::take(self.decoder.get_mut())))
    }

    /// Ends the stream: the rest of the output, or an error when the stream was cut.
    pub(crate) fn finish(mut self) -> Result<Bytes, Error> {
        self.decoder
            .try_finish()
            .map_err(|e| Error::transport("the body ended inside its gzip stream", e))?;
        let rest = std::mem::take(self.decoder.get_mut());
        // A stream whose gzip trailer never came.
        self.decoder
            .finish()
            .map_err(|e| Error::transport("the body ended inside its gzip stream", e))?;
        Ok(Bytes::from(rest))
    }
}

/// Inflates a whole body, giving up (with what was inflated) past `limit` bytes of output.
pub(crate) fn inflate(compressed: &[u8], limit: usize) -> Result<Bytes, Error> {
    let mut inflater = Inflater::new();
    let mut out = bytes::BytesMut::new();
    for piece in compressed.chunks(16 * 1024) {
        out.extend_from_slice(&inflater.push(piece)?);
        if out.len() > limit {
            out.truncate(limit);
            return Ok(out.freeze());
        }
    }
    out.extend_from_slice(&inflater.finish()?);
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn inflates_in_any_pieces() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let compressed = gzip(&data);
        for size in [1, 7, 4096, compressed.len()] {
            let mut inflater = Inflater::new();
            let mut out = Vec::new();
            for piece in compressed.chunks(size) {
                out.extend_from_slice(&inflater.push(piece).unwrap());
            }
            out.extend_from_slice(&inflater.finish().unwrap());
            assert_eq!(out, data, "pieces of {size}");
        }
        assert_eq!(inflate(&compressed, usize::MAX).unwrap(), data);
        assert_eq!(inflate(&compressed, 10).unwrap().len(), 10);
    }

    #[test]
    fn cut_and_corrupt_streams_are_errors() {
        let compressed = gzip(b"{\"kind\":\"Status\"}");
        let cut = &compressed[..compressed.len() - 4];
        let mut inflater = Inflater::new();
        inflater.push(cut).unwrap();
        assert!(matches!(inflater.finish(), Err(Error::Transport { .. })));
        assert!(matches!(
            inflate(b"not gzip at all", usize::MAX),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn content_encoding_is_read_loosely() {
        let mut headers = HeaderMap::new();
        assert!(!is_gzip(&headers));
        headers.insert(CONTENT_ENCODING, "GZIP ".parse().unwrap());
        assert!(is_gzip(&headers));
        headers.insert(CONTENT_ENCODING, "br".parse().unwrap());
        assert!(!is_gzip(&headers));
    }
}
