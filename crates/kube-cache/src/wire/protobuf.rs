//! Protobuf list bodies (what kube-apiserver answers built-in kinds in when asked, as
//! client-go does by default): read with kube-apimachinery's decoder, `managedFields` skipped
//! unread, the continue token handed over before the items are decoded.

use bytes::Bytes;
use kube_apimachinery::ListMeta;
use kube_apimachinery::protobuf::{Decoder, MAGIC, ProtobufError};
use serde::de::DeserializeOwned;

use crate::lister_watcher::ListPage;

use super::into_page;

/// Whether a body is Kubernetes protobuf (its magic), not JSON.
pub(crate) fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(&MAGIC)
}

/// Decodes the chunks of a protobuf list body as they arrive (on a blocking thread, see
/// [`decode_body_with`](super::decode_body_with)), calling `on_metadata` as soon as the
/// list's metadata is read.
pub(crate) fn scan_chunks<K: DeserializeOwned>(
    mut chunks: tokio::sync::mpsc::Receiver<Bytes>,
    skip_managed_fields: bool,
    mut on_metadata: impl FnMut(&ListMeta),
) -> Result<(Vec<K>, ListMeta), ProtobufError> {
    let mut scanner = Decoder::new()
        .skip_managed_fields(skip_managed_fields)
        .list_scanner::<K>();
    while let Some(chunk) = chunks.blocking_recv() {
        if scanner.feed(&chunk)?
            && let Some(metadata) = scanner.metadata()
        {
            on_metadata(metadata);
        }
    }
    let list = scanner.finish()?;
    Ok((list.items, list.metadata))
}

/// Decodes a whole protobuf page; `on_metadata` is called once the list's metadata is read,
/// before the items are.
pub(crate) fn decode_page<K: DeserializeOwned>(
    body: &[u8],
    skip_managed_fields: bool,
    mut on_metadata: impl FnMut(&ListMeta),
) -> Result<ListPage<K>, ProtobufError> {
    let mut scanner = Decoder::new()
        .skip_managed_fields(skip_managed_fields)
        .list_scanner::<K>();
    // The metadata comes first: feed a little, then the rest.
    let head = body.len().min(4096);
    if scanner.feed(&body[..head])?
        && let Some(metadata) = scanner.metadata()
    {
        on_metadata(metadata);
    }
    if scanner.feed(&body[head..])?
        && let Some(metadata) = scanner.metadata()
    {
        on_metadata(metadata);
    }
    Ok(into_page(scanner.finish()?, |k| k))
}
