//! What the `rest` and `kube` implementations of [`ListerWatcher`](crate::ListerWatcher)
//! share: decoding list bodies (whole or while they arrive, with or without
//! `managedFields`) and classifying transport errors. Only the requests differ.

#[cfg(feature = "rest")]
pub(crate) mod protobuf;
pub(crate) mod skip;
pub(crate) mod stream_list;

use bytes::Bytes;
use futures_core::Stream;
use kube_apimachinery::ListMeta;
#[cfg(feature = "rest")]
use kube_apimachinery::ObjectList;
use serde::de::DeserializeOwned;

pub use skip::WithoutManagedFields;
pub use stream_list::ScanError;

/// The streaming list scanner over `chunks` (the `fuzzing` feature's entry point).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_scan_list(chunks: &[&[u8]]) -> Result<usize, String> {
    let mut scanner = stream_list::ListScanner::<serde_json::Value>::new();
    for chunk in chunks {
        scanner.feed(chunk).map_err(|e| e.to_string())?;
    }
    scanner
        .finish()
        .map(|(items, _)| items.len())
        .map_err(|e| e.to_string())
}

use crate::lister_watcher::ListPage;

/// Why a list body streamed through [`decode_list_body`] did not give a page.
#[derive(Debug)]
pub(crate) enum BodyError<E, D = ScanError> {
    /// Reading the body failed (the client's error).
    Read(E),
    /// The body is not a list of the expected objects.
    Decode(D),
    /// The decoding thread panicked or was cancelled.
    Join(tokio::task::JoinError),
}

/// Decodes a list while its body arrives: the chunks of `body` are decoded on a blocking
/// thread (see [`stream_list`]), `on_metadata` is called as soon as the list's metadata is
/// complete (the API server writes it before the items), and `metadata.managedFields` is
/// skipped while decoding when `skip_managed_fields` is set.
pub(crate) async fn decode_list_body<K, E, S>(
    body: S,
    skip_managed_fields: bool,
    on_metadata: impl FnMut(&ListMeta) + Send + 'static,
) -> Result<ListPage<K>, BodyError<E>>
where
    K: DeserializeOwned + Send + 'static,
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    decode_body_with(body, move |rx| {
        if skip_managed_fields {
            stream_list::scan_chunks::<WithoutManagedFields<K>>(rx, on_metadata)
                .map(|(items, meta)| (items.into_iter().map(|w| w.0).collect::<Vec<K>>(), meta))
        } else {
            stream_list::scan_chunks::<K>(rx, on_metadata)
        }
    })
    .await
}

/// Reads `body` into `decode`, which runs on a blocking thread and receives the chunks as
/// they arrive, and makes a page of what it decodes.
pub(crate) async fn decode_body_with<K, E, D, S>(
    mut body: S,
    decode: impl FnOnce(tokio::sync::mpsc::Receiver<Bytes>) -> Result<(Vec<K>, ListMeta), D>
    + Send
    + 'static,
) -> Result<ListPage<K>, BodyError<E, D>>
where
    K: Send + 'static,
    D: Send + 'static,
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    // A bounded channel: a decoder that falls behind slows the reading down.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let runtime = tokio::runtime::Handle::current();
    let decoder = tokio::task::spawn_blocking(move || {
        let _runtime = runtime.enter();
        decode(rx)
    });
    let mut read_error = None;
    while let Some(chunk) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_next(cx)).await
    {
        match chunk {
            Ok(chunk) => {
                if tx.send(chunk).await.is_err() {
                    break; // the decoder stopped on an error: it reports it
                }
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let decoded = decoder.await.map_err(BodyError::Join)?;
    if let Some(e) = read_error {
        return Err(BodyError::Read(e));
    }
    let (items, metadata) = decoded.map_err(BodyError::Decode)?;
    Ok(ListPage {
        items,
        resource_version: metadata.resource_version.unwrap_or_default(),
        continue_token: metadata.continue_token.filter(|t| !t.is_empty()),
        remaining_item_count: metadata.remaining_item_count,
    })
}

#[cfg(feature = "rest")]
/// The `metadata` of a list without decoding its items (they are scanned, not built).
pub(crate) fn peek_list_meta(bytes: &[u8]) -> Result<ListMeta, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Peek {
        #[serde(default)]
        metadata: ListMeta,
    }
    serde_json::from_slice::<Peek>(bytes).map(|p| p.metadata)
}

#[cfg(feature = "rest")]
/// Decodes a whole page, with or without managedFields.
pub(crate) fn decode_page<K: DeserializeOwned>(
    bytes: &[u8],
    skip_managed_fields: bool,
) -> Result<ListPage<K>, serde_json::Error> {
    if skip_managed_fields {
        let list: ObjectList<WithoutManagedFields<K>> = serde_json::from_slice(bytes)?;
        Ok(into_page(list, |w| w.0))
    } else {
        let list: ObjectList<K> = serde_json::from_slice(bytes)?;
        Ok(into_page(list, |k| k))
    }
}

#[cfg(feature = "rest")]
/// A decoded list as a [`ListPage`], its items mapped by `f`.
pub(crate) fn into_page<T, K>(list: ObjectList<T>, f: impl Fn(T) -> K) -> ListPage<K> {
    let ObjectList { metadata, items } = list;
    ListPage {
        items: items.into_iter().map(f).collect(),
        resource_version: metadata.resource_version.unwrap_or_default(),
        continue_token: metadata.continue_token.filter(|t| !t.is_empty()),
        remaining_item_count: metadata.remaining_item_count,
    }
}

/// Whether an `std::io::Error` of kind `ConnectionRefused` is in `error`'s source chain
/// (client-go's `utilnet.IsConnectionRefused`), also when wrapped in another `io::Error`.
pub(crate) fn is_connection_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
            if let Some(inner) = io.get_ref()
                && inner
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
            {
                return true;
            }
        }
        next = error.source();
    }
    false
}
