//! Watch streams: [`WatchStream`], the named stream [`Api::watch`](crate::Api::watch) returns,
//! and [`WatchDecoder`], the incremental decoding of watch events from a chunked body.
//!
//! The event types themselves ([`WatchEvent`], [`Bookmark`]) are
//! kube-apimachinery's, shared with the other crates.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_core::Stream;
use kube_apimachinery::protobuf::Decoder as ProtobufDecoder;
use kube_apimachinery::{Bookmark, Status, WatchEvent};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// The largest watch event accepted: 16 MiB, apimachinery's limit for a streamed object
/// (`streaming.NewDecoder`'s `ErrObjectTooLarge`). A larger event ends the stream with
/// [`Error::WatchFrameTooLarge`].
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// An event as it arrives: the object is kept as raw JSON borrowed from the buffer and decoded
/// once, straight into its type.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    object: &'a serde_json::value::RawValue,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct BookmarkMeta {
    #[serde(default)]
    resource_version: String,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct BookmarkObject {
    #[serde(default)]
    metadata: BookmarkMeta,
}

fn convert<K: DeserializeOwned>(raw: RawEvent<'_>) -> Result<WatchEvent<K>, Error> {
    let object = |value: &serde_json::value::RawValue| {
        serde_json::from_str::<K>(value.get())
            .map_err(|e| Error::decode(format!("watch {} object", raw.kind), e))
    };
    Ok(match &*raw.kind {
        "ADDED" => WatchEvent::Added(object(raw.object)?),
        "MODIFIED" => WatchEvent::Modified(object(raw.object)?),
        "DELETED" => WatchEvent::Deleted(object(raw.object)?),
        "BOOKMARK" => {
            let bookmark: BookmarkObject = serde_json::from_str(raw.object.get())
                .map_err(|e| Error::decode("watch BOOKMARK object", e))?;
            WatchEvent::Bookmark(Bookmark {
                resource_version: bookmark.metadata.resource_version,
                annotations: bookmark.metadata.annotations.unwrap_or_default(),
            })
        }
        "ERROR" => WatchEvent::Error(
            serde_json::from_str::<Status>(raw.object.get())
                .map_err(|e| Error::decode("watch ERROR status", e))?,
        ),
        other => {
            return Err(Error::decode_msg(format!(
                "unknown watch event type {other:?}"
            )));
        }
    })
}

/// Decodes watch events from bytes arriving in arbitrary chunks: an event may be split across
/// chunks and a chunk may hold several events (newline-separated or just concatenated JSON).
#[derive(Debug)]
pub struct WatchDecoder {
    buffer: BytesMut,
    max_event_bytes: usize,
    scanner: EventEnds,
    /// Protobuf frames (a 4-byte big-endian length, then a `WatchEvent` message) instead of
    /// JSON, read with this decoder.
    protobuf: Option<ProtobufDecoder>,
}

/// Finds where events may end without parsing: a scan of each byte once, across chunks,
/// tracking strings and the nesting depth of objects and arrays. An event may end where a
/// top-level value closes, or at a newline outside any value (a line of garbage, reported as
/// a decode error). So an event arriving a byte at a time is parsed once, not once per `}`.
#[derive(Debug, Default, Clone, Copy)]
struct EventEnds {
    /// How many bytes of the buffer were scanned.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Whether something may end in the scanned bytes.
    may_end: bool,
}

impl EventEnds {
    /// Scans the bytes of `buffer` past those already scanned.
    fn scan(&mut self, buffer: &[u8]) {
        if self.scanned > buffer.len() {
            // The buffer was emptied behind the scanner's back: start over.
            *self = EventEnds::default();
        }
        for &byte in &buffer[self.scanned..] {
            if self.in_string {
                match byte {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => match self.depth.checked_sub(1) {
                    Some(depth) => {
                        self.depth = depth;
                        self.may_end |= depth == 0;
                    }
                    // Unbalanced: let the parser say what is wrong.
                    None => self.may_end = true,
                },
                b'\n' if self.depth == 0 => self.may_end = true,
                _ => {}
            }
        }
        self.scanned = buffer.len();
    }
}

impl Default for WatchDecoder {
    fn default() -> Self {
        WatchDecoder::new()
    }
}

impl WatchDecoder {
    /// An empty decoder with the [`MAX_EVENT_BYTES`] limit.
    pub fn new() -> WatchDecoder {
        WatchDecoder::with_max_event_bytes(MAX_EVENT_BYTES)
    }

    /// An empty decoder refusing events larger than `max` bytes.
    pub fn with_max_event_bytes(max: usize) -> WatchDecoder {
        WatchDecoder {
            buffer: BytesMut::new(),
            max_event_bytes: max,
            scanner: EventEnds::default(),
            protobuf: None,
        }
    }

    /// A decoder of a protobuf watch stream (`application/vnd.kubernetes.protobuf;
    /// stream=watch`: each event a 4-byte big-endian length and a `WatchEvent` message), read
    /// with `decoder` (which may skip `managedFields`).
    pub fn protobuf(decoder: ProtobufDecoder) -> WatchDecoder {
        WatchDecoder {
            protobuf: Some(decoder),
            ..WatchDecoder::new()
        }
    }

    /// Decodes every complete protobuf frame of the buffer.
    fn decode_frames<K: DeserializeOwned>(
        &mut self,
        decoder: ProtobufDecoder,
        out: &mut VecDeque<Result<WatchEvent<K>, Error>>,
    ) {
        while self.buffer.len() >= 4 {
            let mut length = [0; 4];
            length.copy_from_slice(&self.buffer[..4]);
            let length = u32::from_be_bytes(length) as usize;
            if length > self.max_event_bytes {
                self.buffer = BytesMut::new();
                out.push_back(Err(Error::WatchFrameTooLarge {
                    limit: self.max_event_bytes,
                }));
                return;
            }
            if self.buffer.len() < 4 + length {
                return;
            }
            let frame = &self.buffer[4..4 + length];
            out.push_back(
                decoder
                    .watch_event(frame)
                    .map_err(|e| Error::decode("watch event", e)),
            );
            self.buffer.advance(4 + length);
        }
    }

    /// Adds a chunk and decodes every complete event it finishes, in order.
    ///
    /// Parsing is attempted only when the bytes so far could end an event (a top-level value
    /// closed, or a newline outside any value), found by a scan that reads each byte once: an
    /// object split into many chunks, even of one byte each, is parsed once. When
    /// the incomplete event in the buffer outgrows the limit, an
    /// [`Error::WatchFrameTooLarge`] is pushed and the buffer dropped: the caller should end
    /// the stream there.
    pub fn push<K: DeserializeOwned>(
        &mut self,
        chunk: &[u8],
        out: &mut VecDeque<Result<WatchEvent<K>, Error>>,
    ) {
        self.buffer.extend_from_slice(chunk);
        if let Some(decoder) = self.protobuf {
            self.decode_frames(decoder, out);
            return;
        }
        self.scanner.scan(&self.buffer);
        if self.scanner.may_end {
            self.decode_buffered(out);
            // What is left is the start of the next event (or nothing): scanned afresh.
            self.scanner = EventEnds::default();
            self.scanner.scan(&self.buffer);
        }
        if self.buffer.len() > self.max_event_bytes {
            self.buffer = BytesMut::new();
            self.scanner = EventEnds::default();
            out.push_back(Err(Error::WatchFrameTooLarge {
                limit: self.max_event_bytes,
            }));
        }
    }

    fn decode_buffered<K: DeserializeOwned>(
        &mut self,
        out: &mut VecDeque<Result<WatchEvent<K>, Error>>,
    ) {
        loop {
            let mut events =
                serde_json::Deserializer::from_slice(&self.buffer).into_iter::<RawEvent>();
            match events.next() {
                Some(Ok(raw)) => {
                    let offset = events.byte_offset();
                    if offset > self.max_event_bytes {
                        out.push_back(Err(Error::WatchFrameTooLarge {
                            limit: self.max_event_bytes,
                        }));
                    } else {
                        out.push_back(convert(raw));
                    }
                    self.buffer.advance(offset);
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => {
                    // Drop the malformed line so that one bad event does not poison the rest.
                    out.push_back(Err(Error::decode("watch event", e)));
                    match self.buffer.iter().position(|&b| b == b'\n') {
                        Some(newline) => self.buffer.advance(newline + 1),
                        None => self.buffer.clear(),
                    }
                }
                None => {
                    self.buffer.clear();
                    break;
                }
            }
        }
    }

    /// Ends the stream: leftover bytes are a truncated event ([`Error::WatchTruncated`]).
    pub fn finish(&mut self) -> Result<(), Error> {
        self.scanner = EventEnds::default();
        if self.buffer.is_empty()
            || self.protobuf.is_none() && self.buffer.iter().all(u8::is_ascii_whitespace)
        {
            self.buffer.clear();
            return Ok(());
        }
        let len = self.buffer.len();
        self.buffer.clear();
        Err(Error::WatchTruncated {
            leftover_bytes: len,
            source: None,
        })
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// The events of one watch, as [`Api::watch`](crate::Api::watch) returns them: an
/// `impl Stream<Item = Result<WatchEvent<K>, Error>>` with a name, so it can be stored in a
/// struct.
///
/// The stream ends when the server ends the watch (its timeout, or a clean close). It ends
/// with one last error when:
/// * the connection fails or the body stops in the middle of an event:
///   [`Error::WatchTruncated`] (every event before it was complete: re-watch from the last
///   resourceVersion seen, as client-go's reflector does, without a relist);
/// * an event is larger than [`MAX_EVENT_BYTES`]: [`Error::WatchFrameTooLarge`].
///
/// A malformed event is reported as an [`Error::Decode`] item and decoding goes on with the
/// next line. Dropping the stream closes the HTTP request.
#[must_use = "streams do nothing unless polled"]
pub struct WatchStream<K> {
    body: ByteStream,
    decoder: WatchDecoder,
    pending: VecDeque<Result<WatchEvent<K>, Error>>,
    done: bool,
}

// No field is structurally pinned: the body is boxed and `K` only sits in a `VecDeque`.
impl<K> Unpin for WatchStream<K> {}

impl<K> std::fmt::Debug for WatchStream<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("pending", &self.pending.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<K: DeserializeOwned> WatchStream<K> {
    /// Decodes the events of any stream of body chunks (a recorded watch, another transport).
    pub fn from_stream<S>(body: S) -> WatchStream<K>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
    {
        WatchStream {
            body: Box::pin(body),
            decoder: WatchDecoder::new(),
            pending: VecDeque::new(),
            done: false,
        }
    }

    /// Decodes the events of a protobuf watch stream (see [`WatchDecoder::protobuf`]).
    pub fn from_protobuf_stream<S>(body: S, decoder: ProtobufDecoder) -> WatchStream<K>
    where
        S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
    {
        WatchStream {
            decoder: WatchDecoder::protobuf(decoder),
            ..WatchStream::from_stream(body)
        }
    }

    /// Sets the largest event accepted (default [`MAX_EVENT_BYTES`]).
    pub fn max_event_bytes(mut self, max: usize) -> WatchStream<K> {
        self.decoder.max_event_bytes = max;
        self
    }
}

impl<K: DeserializeOwned> Stream for WatchStream<K> {
    type Item = Result<WatchEvent<K>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is Unpin (the body is boxed).
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.pop_front() {
                if matches!(event, Err(Error::WatchFrameTooLarge { .. })) {
                    tracing::warn!(
                        limit = this.decoder.max_event_bytes,
                        "watch event over the size limit: ending the watch"
                    );
                    this.pending.clear();
                    this.done = true;
                }
                return Poll::Ready(Some(event));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.decoder.push(&chunk, &mut this.pending),
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    let leftover_bytes = this.decoder.buffer.len();
                    this.decoder.buffer.clear();
                    tracing::warn!(error = %e, leftover_bytes, "watch stream cut");
                    return Poll::Ready(Some(Err(Error::WatchTruncated {
                        leftover_bytes,
                        source: Some(Box::new(e)),
                    })));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if let Err(e) = this.decoder.finish() {
                        tracing::warn!(error = %e, "watch stream truncated");
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
        }
    }
}

impl<K: DeserializeOwned> futures_util::stream::FusedStream for WatchStream<K> {
    fn is_terminated(&self) -> bool {
        self.done && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::EventEnds;

    /// The offsets (1-based: bytes scanned) at which the scanner first says an event may end.
    fn ends(text: &str) -> Vec<usize> {
        let bytes = text.as_bytes();
        let mut scanner = EventEnds::default();
        let mut ends = Vec::new();
        for len in 1..=bytes.len() {
            scanner.scan(&bytes[..len]);
            if scanner.may_end {
                ends.push(len);
                // The next event starts here: scanned afresh, as the decoder does after a parse.
                let rest = &bytes[len..];
                return [ends, ends_after(len, rest)].concat();
            }
        }
        ends
    }

    fn ends_after(offset: usize, rest: &[u8]) -> Vec<usize> {
        ends(std::str::from_utf8(rest).unwrap())
            .into_iter()
            .map(|end| end + offset)
            .collect()
    }

    #[test]
    fn braces_and_quotes_inside_strings_end_nothing() {
        let event = r#"{"type":"ADDED","object":{"data":{"k":"} \" { ] [ \\"}}}"#;
        assert_eq!(ends(event), vec![event.len()]);
    }

    #[test]
    fn a_top_level_value_or_a_newline_outside_values_may_end_an_event() {
        assert_eq!(ends("{}{}"), vec![2, 4]);
        assert_eq!(ends("{\n}\n"), vec![3, 4]);
        assert_eq!(ends("garbage\n{}"), vec![8, 10]);
        assert_eq!(ends("[1,[2]]"), vec![7]);
        // An unbalanced close is left to the parser to report.
        assert_eq!(ends("}"), vec![1]);
        assert_eq!(ends("{\"a\":1"), Vec::<usize>::new());
    }

    #[test]
    fn a_buffer_emptied_behind_the_scanner_starts_over() {
        let mut scanner = EventEnds::default();
        scanner.scan(b"{\"a\":");
        scanner.scan(b"");
        assert!(!scanner.may_end);
        scanner.scan(b"{}");
        assert!(scanner.may_end);
    }
}
