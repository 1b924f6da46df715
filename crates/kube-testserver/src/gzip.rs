//! Response compression as kube-apiserver does it (APIResponseCompression, on by default):
//! an answer of at least 128 KiB to a request that accepts gzip is sent gzip-compressed at
//! level 1 (`Content-Encoding: gzip`, `Vary: Accept-Encoding`); watches and other streams
//! (whose size is not known up front) never are. Compression runs while the body is written.

use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, VARY};
use http::{HeaderValue, Response};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};

use crate::api::Body;

/// kube-apiserver's `defaultGzipThresholdBytes`.
const THRESHOLD: u64 = 128 * 1024;

/// Whether a request's `Accept-Encoding` names gzip.
pub(crate) fn accepts_gzip(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// Compresses `response` when the request accepted gzip and the body is large and of known
/// size.
pub(crate) fn maybe_compress(accepts: bool, response: Response<Body>) -> Response<Body> {
    let size = hyper::body::Body::size_hint(response.body()).exact();
    if !accepts
        || size.is_none_or(|s| s < THRESHOLD)
        || response.headers().contains_key(CONTENT_ENCODING)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(VARY, HeaderValue::from_static("Accept-Encoding"));
    let body = GzipBody {
        inner: body,
        encoder: Some(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        )),
    };
    Response::from_parts(parts, body.boxed_unsync())
}

/// A body compressed while it is written.
struct GzipBody {
    inner: Body,
    /// `None` once the gzip trailer was written.
    encoder: Option<flate2::write::GzEncoder<Vec<u8>>>,
}

impl hyper::body::Body for GzipBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(None) => {
                    // ok: writing into a Vec cannot fail.
                    let rest = this
                        .encoder
                        .take()
                        .map(|e| e.finish().unwrap_or_default())
                        .unwrap_or_default();
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                }
                Poll::Ready(Some(Err(never))) => match never {},
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers: none are sent
            };
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(&data);
            // Flush in pieces of 32 KiB or more, so the client inflates while it reads.
            if encoder.get_ref().len() >= 32 * 1024 {
                let out = std::mem::take(encoder.get_mut());
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use std::io::Read as _;

    fn headers(accept: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, accept.parse().unwrap());
        headers
    }

    #[test]
    fn accept_encoding_is_parsed() {
        assert!(accepts_gzip(&headers("gzip")));
        assert!(accepts_gzip(&headers("deflate, GZip;q=0.5")));
        assert!(!accepts_gzip(&headers("gzip;q=0")));
        assert!(!accepts_gzip(&headers("br")));
        assert!(!accepts_gzip(&http::HeaderMap::new()));
    }

    #[tokio::test]
    async fn large_answers_are_compressed_small_ones_not() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 7) as u8 + b'a').collect();
        let response = |data: Vec<u8>| {
            let len = data.len();
            let mut r = Response::new(Full::new(Bytes::from(data)).boxed_unsync());
            r.headers_mut().insert(CONTENT_LENGTH, len.into());
            r
        };
        let small = maybe_compress(true, response(b"{}".to_vec()));
        assert!(small.headers().get(CONTENT_ENCODING).is_none());
        let plain = maybe_compress(false, response(big.clone()));
        assert!(plain.headers().get(CONTENT_ENCODING).is_none());
        let gz = maybe_compress(true, response(big.clone()));
        assert_eq!(gz.headers()[CONTENT_ENCODING], "gzip");
        assert!(gz.headers().get(CONTENT_LENGTH).is_none());
        let compressed = gz.into_body().collect().await.unwrap().to_bytes();
        assert!(compressed.len() < big.len() / 10);
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, big);
    }
}
