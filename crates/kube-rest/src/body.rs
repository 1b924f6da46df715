//! [`Body`]: the streamed body of a response, without exposing hyper's body type.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use hyper::body::{Body as _, Incoming};

use crate::error::Error;

/// The body of a response sent with
/// [`RequestBuilder::send_streaming`](crate::RequestBuilder::send_streaming): a `Stream` of
/// byte chunks as they arrive (trailers are skipped). Dropping it closes the request.
///
/// It wraps hyper's body so that a hyper upgrade is not a breaking change of this crate.
#[must_use = "streams do nothing unless polled"]
pub struct Body {
    inner: Incoming,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

impl Body {
    pub(crate) fn new(inner: Incoming) -> Body {
        Body { inner }
    }

    /// Reads the whole body.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        crate::client::read_body(self.inner).await
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
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(Error::transport(
                        "reading the response body",
                        e,
                    ))));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                return Poll::Ready(Some(Ok(data)));
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
