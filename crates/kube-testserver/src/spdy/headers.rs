//! SPDY/3 header blocks: the name/value block layout and its zlib compression with the
//! spec's preset dictionary.
//!
//! A block is a 32-bit pair count, then per pair a 32-bit name length, the (lowercase) name,
//! a 32-bit value length and the value; several values of one name are joined by NUL. Each
//! direction of a connection compresses all its blocks with one zlib stream (best
//! compression, the dictionary below), flushed with `Z_SYNC_FLUSH` after each block, as Go's
//! SPDY framer (moby/spdystream, used by Kubernetes) does.

use std::sync::OnceLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::SpdyError;

/// The header names of the dictionary, each stored with a 32-bit length before it.
const DICTIONARY_WORDS: [&str; 65] = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail: status codes and phrases, dates and common values.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 zlib dictionary (1423 bytes; its Adler-32 is `0xe3c6a7c2`).
pub(crate) fn dictionary() -> &'static [u8] {
    static DICTIONARY: OnceLock<Vec<u8>> = OnceLock::new();
    DICTIONARY.get_or_init(|| {
        let mut bytes = Vec::with_capacity(1423);
        for word in DICTIONARY_WORDS {
            bytes.extend_from_slice(&(word.len() as u32).to_be_bytes());
            bytes.extend_from_slice(word.as_bytes());
        }
        bytes.extend_from_slice(DICTIONARY_TAIL.as_bytes());
        bytes
    })
}

/// The largest uncompressed header block accepted (a guard against compression bombs).
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// Name/value pairs in wire order (names lowercase; NUL-joined values stay joined).
pub(crate) type Headers = Vec<(String, String)>;

/// The first value of `name` (case-insensitive), as Go's `Header.Get` returns it.
pub(crate) fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split('\0').next().unwrap_or(""))
}

/// Lays out `headers` as an uncompressed block.
pub(crate) fn encode_block(headers: &Headers) -> Vec<u8> {
    let mut block = Vec::new();
    block.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        block.extend_from_slice(&(name.len() as u32).to_be_bytes());
        block.extend_from_slice(name.as_bytes());
        block.extend_from_slice(&(value.len() as u32).to_be_bytes());
        block.extend_from_slice(value.as_bytes());
    }
    block
}

fn read_u32(block: &[u8], at: &mut usize) -> Result<u32, SpdyError> {
    let bytes = block
        .get(*at..*at + 4)
        .ok_or(SpdyError::InvalidFrame("header block truncated"))?;
    *at += 4;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn read_text(block: &[u8], at: &mut usize) -> Result<String, SpdyError> {
    let len = read_u32(block, at)? as usize;
    let bytes = block
        .get(*at..*at + len)
        .ok_or(SpdyError::InvalidFrame("header block truncated"))?;
    *at += len;
    String::from_utf8(bytes.to_vec()).map_err(|_| SpdyError::InvalidFrame("header is not UTF-8"))
}

/// Reads an uncompressed block; names must be lowercase and unique, as Go's framer checks.
pub(crate) fn decode_block(block: &[u8]) -> Result<Headers, SpdyError> {
    let mut at = 0;
    let count = read_u32(block, &mut at)? as usize;
    let mut headers = Headers::with_capacity(count.min(64));
    for _ in 0..count {
        let name = read_text(block, &mut at)?;
        if name != name.to_ascii_lowercase() {
            return Err(SpdyError::InvalidFrame("header was not lowercased"));
        }
        if headers.iter().any(|(n, _)| *n == name) {
            return Err(SpdyError::InvalidFrame("multiple headers with same name"));
        }
        let value = read_text(block, &mut at)?;
        headers.push((name, value));
    }
    if at != block.len() {
        return Err(SpdyError::InvalidFrame(
            "compressed payload size was incorrect",
        ));
    }
    Ok(headers)
}

/// One direction's header compressor.
pub(crate) struct HeaderCompressor {
    zlib: Compress,
}

impl std::fmt::Debug for HeaderCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderCompressor").finish_non_exhaustive()
    }
}

impl HeaderCompressor {
    /// A compressor primed with the dictionary.
    pub(crate) fn new() -> Result<HeaderCompressor, SpdyError> {
        let mut zlib = Compress::new(Compression::best(), true);
        zlib.set_dictionary(dictionary())
            .map_err(|error| SpdyError::Compression(error.to_string()))?;
        Ok(HeaderCompressor { zlib })
    }

    /// The compressed (sync-flushed) form of `headers`.
    pub(crate) fn compress(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let block = encode_block(headers);
        let mut out = Vec::with_capacity(block.len() + 64);
        let start_in = self.zlib.total_in();
        loop {
            let consumed = (self.zlib.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(block.len() + 64);
            }
            self.zlib
                .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|error| SpdyError::Compression(error.to_string()))?;
            let all_in = (self.zlib.total_in() - start_in) as usize == block.len();
            // Done once all input is in and the flush left spare room (nothing pending).
            if all_in && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// One direction's header decompressor.
pub(crate) struct HeaderDecompressor {
    zlib: Decompress,
}

impl std::fmt::Debug for HeaderDecompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDecompressor").finish_non_exhaustive()
    }
}

impl HeaderDecompressor {
    /// A decompressor that supplies the dictionary when the stream asks for it.
    pub(crate) fn new() -> HeaderDecompressor {
        HeaderDecompressor {
            zlib: Decompress::new(true),
        }
    }

    /// Decompresses one frame's header block.
    pub(crate) fn decompress(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        let mut out: Vec<u8> = Vec::with_capacity(compressed.len() * 4 + 64);
        let start_in = self.zlib.total_in();
        loop {
            let consumed = (self.zlib.total_in() - start_in) as usize;
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(SpdyError::InvalidFrame("header block too large"));
                }
                out.reserve(out.len().max(256));
            }
            let before = (self.zlib.total_in(), self.zlib.total_out());
            match self
                .zlib
                .decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => {
                    return Err(SpdyError::Compression("header stream ended".into()));
                }
                Ok(_) => {}
                Err(error) if error.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(dictionary())
                        .map_err(|error| SpdyError::Compression(error.to_string()))?;
                    continue;
                }
                Err(error) => return Err(SpdyError::Compression(error.to_string())),
            }
            let all_in = (self.zlib.total_in() - start_in) as usize == compressed.len();
            let progressed = (self.zlib.total_in(), self.zlib.total_out()) != before;
            if all_in && out.len() < out.capacity() {
                break;
            }
            if !progressed && out.len() < out.capacity() {
                return Err(SpdyError::Compression(
                    "header block is not a complete zlib flush".into(),
                ));
            }
        }
        decode_block(&out)
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
    fn the_dictionary_is_the_specs() {
        let dictionary = dictionary();
        assert_eq!(dictionary.len(), 1423);
        assert_eq!(&dictionary[..11], b"\0\0\0\x07options");
        assert!(dictionary.ends_with(b"enq=0."));
        // zlib names a dictionary by its Adler-32: a compressed block must carry the one
        // every SPDY/3 peer computes (0xe3c6a7c2).
        let mut compressor = HeaderCompressor::new().unwrap();
        let block = compressor.compress(&pairs(&[("port", "80")])).unwrap();
        assert_eq!(block[0] & 0x0f, 8, "deflate");
        assert_ne!(block[1] & 0x20, 0, "FDICT set");
        assert_eq!(&block[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
        assert!(block.ends_with(&[0, 0, 0xff, 0xff]), "sync flush");
    }

    #[test]
    fn blocks_round_trip_through_one_compression_context() {
        let mut compressor = HeaderCompressor::new().unwrap();
        let mut decompressor = HeaderDecompressor::new();
        let blocks = [
            pairs(&[("x-long", &"v".repeat(100_000)), ("multi", "a\0b")]),
            pairs(&[]),
            pairs(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            pairs(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
        ];
        for headers in &blocks {
            let compressed = compressor.compress(headers).unwrap();
            assert_eq!(&decompressor.decompress(&compressed).unwrap(), headers);
        }
        // The second identical-shaped block reuses the history: it is much smaller.
        let again = compressor.compress(&blocks[3]).unwrap();
        assert!(again.len() < 20, "{} bytes", again.len());
        assert_eq!(decompressor.decompress(&again).unwrap(), blocks[3]);
        assert_eq!(get(&blocks[0], "MULTI"), Some("a"));
    }

    #[test]
    fn decodes_blocks_compressed_by_c_zlib_with_the_dictionary() {
        // zlib 1.x, level 9, deflateSetDictionary(SPDY/3), Z_SYNC_FLUSH per block: the
        // error and data stream headers kubectl sends for one forwarded connection.
        let first = hex(
            "78f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45a024cc64610024398b209198094adc8c0600000000ffff",
        );
        let second = hex("c2aa15540a2512d209000000ffff");
        let mut decompressor = HeaderDecompressor::new();
        assert_eq!(
            decompressor.decompress(&first).unwrap(),
            pairs(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")])
        );
        assert_eq!(
            decompressor.decompress(&second).unwrap(),
            pairs(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")])
        );
    }

    #[test]
    fn malformed_blocks_are_errors() {
        assert!(decode_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']).is_err());
        let upper = encode_block(&pairs(&[("a", "1")]));
        let mut bad = upper.clone();
        bad[8] = b'A';
        assert!(decode_block(&bad).is_err());
        let twice = encode_block(&pairs(&[("a", "1"), ("a", "2")]));
        assert!(decode_block(&twice).is_err());
        let mut decompressor = HeaderDecompressor::new();
        assert!(decompressor.decompress(b"not zlib at all").is_err());
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }
}
