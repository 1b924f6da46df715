//! [`Body`]: the streamed body of a response, without exposing hyper's body type.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use hyper::body::{Body as _, Incoming};

use crate::error::Error;
use crate::gzip::{Inflater, is_gzip};

/// The body of a response sent with
/// [`RequestBuilder::send_streaming`](crate::RequestBuilder::send_streaming): a `Stream` of
/// byte chunks as they arrive (trailers are skipped). Dropping it closes the request.
///
/// It wraps hyper's body so that a hyper upgrade is not a breaking change of this crate.
#[must_use = "streams do nothing unless polled"]
pub struct Body {
    inner: Incoming,
    /// Inflates a gzip-compressed answer; `None` once the stream has ended.
    inflater: Option<Inflater>,
    gzip: bool,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

impl Body {
    /// The body of an answer with these headers (gzip-compressed ones are inflated).
    pub(crate) fn new(headers: &http::HeaderMap, inner: Incoming) -> Body {
        let gzip = is_gzip(headers);
        Body {
            inner,
            inflater: gzip.then(Inflater::new),
            gzip,
        }
    }

    /// Reads the whole body.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        let compressed = crate::client::read_body(self.inner).await?;
        if self.gzip {
            crate::gzip::inflate(&compressed, usize::MAX)
        } else {
            Ok(compressed)
        }
    }

    /// Whether the server has sent the whole body.
    pub fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

impl Stream for Body {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    // The end: what the inflater still holds, or that the stream was cut.
                    return match self.inflater.take().map(Inflater::finish) {
                        Some(Ok(rest)) if !rest.is_empty() => Poll::Ready(Some(Ok(rest))),
                        Some(Err(e)) => Poll::Ready(Some(Err(e))),
                        _ => Poll::Ready(None),
                    };
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(Error::transport(
                        "reading the response body",
                        e,
                    ))));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                if !self.gzip {
                    return Poll::Ready(Some(Ok(data)));
                }
                let Some(inflater) = self.inflater.as_mut() else {
                    continue; // data after an error: dropped
                };
                match inflater.push(&data) {
                    Ok(inflated) if inflated.is_empty() => continue,
                    Ok(inflated) => return Poll::Ready(Some(Ok(inflated))),
                    Err(e) => {
                        self.inflater = None;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_is_send_sync_and_unpin() {
        fn is<T: Send + Sync + Unpin>() {}
        is::<super::Body>();
    }
}
