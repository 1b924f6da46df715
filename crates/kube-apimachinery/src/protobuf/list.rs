//! [`ListScanner`]: a list body read while it arrives.

use serde::de::{Deserialize, DeserializeOwned};

use super::de::{Ctx, MessageDe};
use super::schema::Ty;
use super::wire::{self, LEN, Reader};
use super::{Decoder, MAGIC, ProtobufError};
use crate::{ListMeta, ObjectList};

/// Where the scanner stands in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Magic,
    /// In the `runtime.Unknown` envelope, before its `raw`.
    Envelope,
    /// In the list's message, which ends at this offset of the buffer.
    List {
        end: usize,
    },
    /// After the list's message (the envelope's last fields).
    Done,
}

/// Reads a protobuf list body (`k8s\0`, the envelope, the list message) as its pieces arrive:
/// [`feed`](Self::feed) says when the list's metadata (resourceVersion, continue token) is
/// known, which the API server writes before the items, and each item is decoded as soon as
/// it is complete, so the body is never held whole.
///
/// ```
/// use kube_apimachinery::protobuf::Decoder;
///
/// let mut scanner = Decoder::new().list_scanner::<serde_json::Value>();
/// // k8s\0 + Unknown{typeMeta{"v1", "PodList"}, raw: PodList{metadata{resourceVersion: "7"}}}
/// let body = b"k8s\0\x0a\x0d\x0a\x02v1\x12\x07PodList\x12\x05\x0a\x03\x12\x017";
/// assert!(!scanner.feed(&body[..20])?);
/// assert!(scanner.feed(&body[20..])?); // the metadata is in
/// assert_eq!(scanner.metadata().unwrap().resource_version.as_deref(), Some("7"));
/// let list = scanner.finish()?;
/// assert!(list.items.is_empty());
/// # Ok::<(), kube_apimachinery::protobuf::ProtobufError>(())
/// ```
#[derive(Debug)]
pub struct ListScanner<T> {
    decoder: Decoder,
    buf: Vec<u8>,
    pos: usize,
    stage: Stage,
    list_msg: Option<(u32, u32)>,
    metadata: Option<ListMeta>,
    items: Vec<T>,
}

/// A field found in the buffer: its number, wire type, and where its value starts, how long
/// it is and where it ends.
#[derive(Debug, Clone, Copy)]
struct FieldAt {
    number: u32,
    wire: u8,
    start: usize,
    len: usize,
    end: usize,
}

/// Bytes already read that are dropped from the buffer once this many have gathered.
const COMPACT_AFTER: usize = 256 * 1024;

impl<T: DeserializeOwned> ListScanner<T> {
    pub(crate) fn new(decoder: Decoder) -> Self {
        ListScanner {
            decoder,
            buf: Vec::new(),
            pos: 0,
            stage: Stage::Magic,
            list_msg: None,
            metadata: None,
            items: Vec::new(),
        }
    }

    /// The list's metadata, once read.
    pub fn metadata(&self) -> Option<&ListMeta> {
        self.metadata.as_ref()
    }

    /// How many items are decoded so far.
    pub fn items_len(&self) -> usize {
        self.items.len()
    }

    /// Reads the next piece of the body; `Ok(true)` when this piece completed the list's
    /// metadata.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<bool, ProtobufError> {
        if self.pos >= COMPACT_AFTER {
            self.buf.drain(..self.pos);
            if let Stage::List { end } = &mut self.stage {
                *end -= self.pos;
            }
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
        let had_metadata = self.metadata.is_some();
        let ctx = self.decoder.ctx()?;
        while self.step(ctx)? {}
        Ok(!had_metadata && self.metadata.is_some())
    }

    /// The list, once the whole body was fed.
    pub fn finish(mut self) -> Result<ObjectList<T>, ProtobufError> {
        let ctx = self.decoder.ctx()?;
        while self.step(ctx)? {}
        match self.stage {
            Stage::Done if self.pos >= self.buf.len() => Ok(ObjectList {
                metadata: self.metadata.unwrap_or_default(),
                items: self.items,
            }),
            Stage::Magic if self.buf.len() >= MAGIC.len() => Err(ProtobufError::NoMagic),
            _ => Err(ProtobufError::Truncated(format!(
                "a list body cut after {} items",
                self.items.len()
            ))),
        }
    }

    /// The next field's number and value when it is complete in the buffer (up to `limit`):
    /// `Ok(None)` to wait for more bytes. `whole` says whether a length-delimited value must
    /// be complete; if not, the value's start and length are returned.
    fn field(
        &self,
        limit: usize,
        whole: impl Fn(u32) -> bool,
    ) -> Result<Option<FieldAt>, ProtobufError> {
        let mut reader = Reader::new(&self.buf[..limit]);
        reader.pos = self.pos;
        let Some(tag) = reader.try_varint()? else {
            return Ok(None);
        };
        let (number, wire) = wire::split_tag(tag)?;
        let start = reader.pos;
        if wire == LEN {
            let Some(len) = reader.try_varint()? else {
                return Ok(None);
            };
            let len = usize::try_from(len)
                .map_err(|_| ProtobufError::Malformed("a length over usize".into()))?;
            let value_start = reader.pos;
            let end = value_start
                .checked_add(len)
                .ok_or_else(|| ProtobufError::Malformed("a length over usize".into()))?;
            if whole(number) && end > limit {
                return Ok(None);
            }
            return Ok(Some(FieldAt {
                number,
                wire,
                start: value_start,
                len,
                end,
            }));
        }
        // Fixed-size and varint values: complete or wait.
        let mut skip = reader;
        skip.pos = start;
        match skip.skip(wire) {
            Ok(()) => Ok(Some(FieldAt {
                number,
                wire,
                start,
                len: skip.pos - start,
                end: skip.pos,
            })),
            Err(_) if skip.data.len() - start < 10 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One step: `Ok(true)` when something was read, `Ok(false)` to wait for more bytes.
    fn step(&mut self, ctx: Ctx) -> Result<bool, ProtobufError> {
        match self.stage {
            Stage::Magic => {
                if self.buf.len() < MAGIC.len() {
                    return Ok(false);
                }
                if self.buf[..MAGIC.len()] != MAGIC {
                    return Err(ProtobufError::NoMagic);
                }
                self.pos = MAGIC.len();
                self.stage = Stage::Envelope;
                Ok(true)
            }
            Stage::Envelope => {
                if self.pos >= self.buf.len() {
                    return Ok(false);
                }
                let Some(FieldAt {
                    number,
                    wire,
                    start,
                    len,
                    end,
                }) = self.field(self.buf.len(), |n| n != 2)?
                else {
                    return Ok(false);
                };
                match (number, wire) {
                    (1, LEN) => {
                        let (api_version, kind) = super::type_meta(&self.buf[start..end])?;
                        self.list_msg = Some(list_message(ctx, api_version, kind)?);
                        self.pos = end;
                    }
                    (2, LEN) => {
                        if self.list_msg.is_none() {
                            return Err(ProtobufError::MissingKind {
                                type_meta: "/".into(),
                            });
                        }
                        self.pos = start;
                        self.stage = Stage::List { end: start + len };
                    }
                    _ => self.pos = end,
                }
                Ok(true)
            }
            Stage::List { end: list_end } => {
                if self.pos >= list_end {
                    self.pos = list_end;
                    self.stage = Stage::Done;
                    return Ok(true);
                }
                let limit = list_end.min(self.buf.len());
                let Some(FieldAt {
                    number,
                    wire,
                    start,
                    end,
                    ..
                }) = self.field(limit, |_| true)?
                else {
                    if self.buf.len() >= list_end {
                        return Err(ProtobufError::Malformed(
                            "a field runs past the end of the list".into(),
                        ));
                    }
                    return Ok(false);
                };
                // ok: set in the envelope stage, before the list stage starts.
                let (meta_msg, item_msg) = self.list_msg.unwrap_or_default();
                let value = &self.buf[start..end];
                match (number, wire) {
                    (1, LEN) => {
                        self.metadata = Some(ListMeta::deserialize(MessageDe {
                            ctx,
                            depth: 0,
                            msg: meta_msg,
                            data: value,
                            type_meta: None,
                        })?);
                    }
                    (2, LEN) => {
                        let item = T::deserialize(MessageDe {
                            ctx,
                            depth: 0,
                            msg: item_msg,
                            data: value,
                            type_meta: None,
                        })?;
                        self.items.push(item);
                    }
                    _ => {}
                }
                self.pos = end;
                Ok(true)
            }
            Stage::Done => {
                // The envelope's last fields (contentEncoding, contentType): skipped whole.
                if self.pos >= self.buf.len() {
                    return Ok(false);
                }
                match self.field(self.buf.len(), |_| true)? {
                    Some(FieldAt { end, .. }) => {
                        self.pos = end;
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
        }
    }
}

/// The messages of a list kind's metadata and items.
fn list_message(ctx: Ctx, api_version: &str, kind: &str) -> Result<(u32, u32), ProtobufError> {
    let msg = super::kind_message(ctx, api_version, kind)?;
    let message = ctx.schema.message(msg);
    let typed = |json: &str| match message.fields.iter().find(|f| &*f.json == json) {
        Some(field) => match field.ty {
            Ty::Message(m) => Some(m),
            _ => None,
        },
        None => None,
    };
    match (typed("metadata"), typed("items")) {
        (Some(meta), Some(items)) if message.field(2).is_some_and(|f| f.repeated) => {
            Ok((meta, items))
        }
        _ => Err(ProtobufError::NotAList { kind: kind.into() }),
    }
}
