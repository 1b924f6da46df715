//! Watch events and their incremental decoding from a chunked response body.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Buf, Bytes, BytesMut};
use futures_core::Stream;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Status};

/// One event of a watch (client-go's `watch.Event`).
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent<K> {
    /// An object was created (or existed when the watch started).
    Added(K),
    /// An object was changed.
    Modified(K),
    /// An object was deleted (its last state).
    Deleted(K),
    /// A progress marker: every event up to this resourceVersion was sent.
    Bookmark(Bookmark),
    /// The server reported an error in the stream (`410 Expired` when the resourceVersion is
    /// too old: re-list, then watch again).
    Error(Status),
}

/// The content of a `BOOKMARK` event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bookmark {
    /// The resourceVersion the watch has reached.
    pub resource_version: String,
    /// The bookmark's annotations (`k8s.io/initial-events-end: "true"` ends the initial events
    /// of a `sendInitialEvents` watch).
    pub annotations: BTreeMap<String, String>,
}

impl Bookmark {
    /// Whether this bookmark ends the initial events of a `sendInitialEvents=true` watch.
    pub fn is_initial_events_end(&self) -> bool {
        self.annotations
            .get("k8s.io/initial-events-end")
            .is_some_and(|v| v == "true")
    }
}

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
            serde_json::from_str(raw.object.get())
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
#[derive(Debug, Default)]
pub struct WatchDecoder {
    buffer: BytesMut,
}

impl WatchDecoder {
    /// An empty decoder.
    pub fn new() -> WatchDecoder {
        WatchDecoder::default()
    }

    /// Adds a chunk and decodes every complete event it finishes, in order.
    ///
    /// Parsing is attempted only when the chunk could end an event (it holds a newline or ends
    /// with `}`), so an object split into many chunks is not re-parsed for each of them.
    pub fn push<K: DeserializeOwned>(
        &mut self,
        chunk: &[u8],
        out: &mut VecDeque<Result<WatchEvent<K>, Error>>,
    ) {
        self.buffer.extend_from_slice(chunk);
        let may_end = chunk.contains(&b'\n') || chunk.trim_ascii_end().ends_with(b"}");
        if !may_end {
            return;
        }
        loop {
            let mut events =
                serde_json::Deserializer::from_slice(&self.buffer).into_iter::<RawEvent>();
            match events.next() {
                Some(Ok(raw)) => {
                    let offset = events.byte_offset();
                    let event = convert(raw);
                    out.push_back(event);
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

    /// Ends the stream: leftover bytes are a truncated event.
    pub fn finish(&mut self) -> Result<(), Error> {
        if self.buffer.iter().all(u8::is_ascii_whitespace) {
            self.buffer.clear();
            return Ok(());
        }
        let len = self.buffer.len();
        self.buffer.clear();
        Err(Error::decode_msg(format!(
            "watch stream ended in the middle of an event ({len} bytes left)"
        )))
    }
}

/// Turns a stream of body chunks into a stream of watch events. A body that ends in the middle
/// of an event yields a [`Error::Decode`] and then ends.
pub fn decode_events<K, S>(body: S) -> impl Stream<Item = Result<WatchEvent<K>, Error>> + Send
where
    K: DeserializeOwned + Send + 'static,
    S: Stream<Item = Result<Bytes, Error>> + Send + Unpin,
{
    struct State<S, K> {
        body: S,
        decoder: WatchDecoder,
        pending: VecDeque<Result<WatchEvent<K>, Error>>,
        done: bool,
    }
    let state = State {
        body,
        decoder: WatchDecoder::new(),
        pending: VecDeque::new(),
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        use futures_util::StreamExt as _;
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((event, state));
            }
            if state.done {
                return None;
            }
            match state.body.next().await {
                Some(Ok(chunk)) => state.decoder.push(&chunk, &mut state.pending),
                Some(Err(e)) => {
                    state.done = true;
                    return Some((Err(e), state));
                }
                None => {
                    state.done = true;
                    if let Err(e) = state.decoder.finish() {
                        tracing::warn!(error = %e, "watch stream truncated");
                        return Some((Err(e), state));
                    }
                }
            }
        }
    })
}
