//! A response body that pauses in the middle (and may end there): the "stall" fault.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use crate::api::Body;
use crate::faults::StallEnd;

/// Where a stalled body is.
enum Phase {
    /// Before the first data frame: it is split in two around the pause.
    Before,
    /// The first half went out: pause, then send this (or end).
    Paused(Bytes),
    /// After the pause: the rest of the body as it comes.
    After,
}

/// `body`, paused for `pause` after half of its first data frame, then resumed or cut.
pub(crate) fn stalled(body: Body, pause: Duration, end: StallEnd) -> Body {
    let frames =
        futures_util::stream::unfold((body, Phase::Before), move |(mut body, phase)| async move {
            match phase {
                Phase::Paused(rest) => {
                    tokio::time::sleep(pause).await;
                    match end {
                        StallEnd::Truncate => None,
                        StallEnd::Resume => Some((Ok(Frame::data(rest)), (body, Phase::After))),
                    }
                }
                Phase::After => {
                    let Ok(frame) = body.frame().await?;
                    Some((Ok(frame), (body, Phase::After)))
                }
                Phase::Before => {
                    let Ok(frame) = body.frame().await?;
                    match frame.into_data() {
                        Ok(mut data) => {
                            let head = data.split_to(data.len() / 2);
                            Some((Ok(Frame::data(head)), (body, Phase::Paused(data))))
                        }
                        Err(frame) => Some((Ok(frame), (body, Phase::Before))),
                    }
                }
            }
        });
    StreamBody::new(frames).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    fn full(text: &'static str) -> Body {
        Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync()
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_body_is_whole_after_the_pause() {
        let started = tokio::time::Instant::now();
        let body = stalled(full("0123456789"), Duration::from_secs(3), StallEnd::Resume);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"0123456789");
        assert!(started.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_truncated_body_ends_in_the_middle() {
        let body = stalled(
            full("0123456789"),
            Duration::from_secs(1),
            StallEnd::Truncate,
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"01234");
    }
}
