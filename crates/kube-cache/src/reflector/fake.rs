//! An in-memory [`ListerWatcher`] for the unit tests (client-go's `ListWatch` with
//! `ListFunc`/`WatchFunc` closures), and a few helpers.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::{ListParams, Object, Status, WatchEvent, WatchParams};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::lister_watcher::{ListPage, ListWatchError, ListerWatcher};

#[derive(Debug, Clone, thiserror::Error)]
#[error("fake error: {message}")]
pub(crate) struct FakeError {
    pub(crate) message: String,
    pub(crate) status: Option<Box<Status>>,
    pub(crate) cut: bool,
    pub(crate) refused: bool,
}

impl FakeError {
    pub(crate) fn msg(message: &str) -> FakeError {
        FakeError {
            message: message.into(),
            status: None,
            cut: false,
            refused: false,
        }
    }
    pub(crate) fn status(code: u16, reason: &str, message: &str) -> FakeError {
        FakeError {
            status: Some(Box::new(Status::failure(code, reason, message))),
            ..FakeError::msg(message)
        }
    }
    pub(crate) fn cut() -> FakeError {
        FakeError {
            cut: true,
            ..FakeError::msg("unexpected EOF")
        }
    }
    pub(crate) fn refused() -> FakeError {
        FakeError {
            refused: true,
            ..FakeError::msg("connection refused")
        }
    }
}

impl ListWatchError for FakeError {
    fn status(&self) -> Option<&Status> {
        self.status.as_deref()
    }
    fn is_watch_cut(&self) -> bool {
        self.cut
    }
    fn is_connection_refused(&self) -> bool {
        self.refused
    }
}

pub(crate) type Event = Result<WatchEvent<Pod>, FakeError>;

/// A watch fed through a channel (client-go's `watch.FakeWatcher`); it ends when every
/// sender is dropped.
pub(crate) struct FakeWatch(mpsc::UnboundedReceiver<Event>);

impl Stream for FakeWatch {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.0.poll_recv(cx)
    }
}

/// A new watch and its sender.
pub(crate) fn fake_watch() -> (mpsc::UnboundedSender<Event>, FakeWatch) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, FakeWatch(rx))
}

/// A watch that sends `events` then ends.
pub(crate) fn closed_watch(events: Vec<Event>) -> FakeWatch {
    let (tx, watch) = fake_watch();
    for e in events {
        let _ = tx.send(e);
    }
    watch
}

type ListFn = dyn Fn(&ListParams) -> Result<ListPage<Pod>, FakeError> + Send + Sync;
type WatchFn = dyn Fn(&WatchParams, &str) -> Result<FakeWatch, FakeError> + Send + Sync;

/// Calls recorded by a [`FakeLw`].
#[derive(Debug, Default)]
pub(crate) struct Calls {
    pub(crate) lists: Vec<ListParams>,
    pub(crate) watches: Vec<(WatchParams, String)>,
}

#[derive(Clone)]
pub(crate) struct FakeLw {
    list: Arc<ListFn>,
    watch: Arc<WatchFn>,
    pub(crate) calls: Arc<Mutex<Calls>>,
    pub(crate) streaming: bool,
}

impl FakeLw {
    pub(crate) fn new(
        list: impl Fn(&ListParams) -> Result<ListPage<Pod>, FakeError> + Send + Sync + 'static,
        watch: impl Fn(&WatchParams, &str) -> Result<FakeWatch, FakeError> + Send + Sync + 'static,
    ) -> FakeLw {
        FakeLw {
            list: Arc::new(list),
            watch: Arc::new(watch),
            calls: Arc::default(),
            streaming: false,
        }
    }

    pub(crate) fn streaming(mut self) -> FakeLw {
        self.streaming = true;
        self
    }
}

impl ListerWatcher<Pod> for FakeLw {
    type Error = FakeError;
    type Watch = FakeWatch;

    fn list(
        &self,
        params: &ListParams,
    ) -> impl Future<Output = Result<ListPage<Pod>, FakeError>> + Send {
        self.calls.lock().lists.push(params.clone());
        let result = (self.list)(params);
        async move { result }
    }

    fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> impl Future<Output = Result<FakeWatch, FakeError>> + Send {
        self.calls
            .lock()
            .watches
            .push((params.clone(), resource_version.to_string()));
        let result = (self.watch)(params, resource_version);
        async move { result }
    }

    fn supports_streaming_list(&self) -> bool {
        self.streaming
    }
}

pub(crate) fn pod(name: &str, rv: &str) -> Pod {
    let mut pod = Pod::default();
    pod.meta_mut().name = Some(name.into());
    pod.meta_mut().namespace = Some("ns".into());
    pod.meta_mut().resource_version = Some(rv.into());
    pod
}

pub(crate) fn page(items: Vec<Pod>, rv: &str, cont: Option<&str>) -> ListPage<Pod> {
    ListPage {
        items,
        resource_version: rv.into(),
        continue_token: cont.map(str::to_string),
        remaining_item_count: None,
    }
}

pub(crate) fn bookmark(rv: &str, initial_end: bool) -> Event {
    let mut b = kube_apimachinery::Bookmark {
        resource_version: rv.into(),
        ..Default::default()
    };
    if initial_end {
        b.annotations.insert(
            kube_apimachinery::INITIAL_EVENTS_END_ANNOTATION.into(),
            "true".into(),
        );
    }
    Ok(WatchEvent::Bookmark(b))
}
