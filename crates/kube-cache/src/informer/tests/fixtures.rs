//! A scripted source (a fake API server: client-go's `FakeControllerSource`), a recording
//! handler and helpers.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube_apimachinery::Object;
use kube_flowcontrol::clock::{FakeClock, SharedClock};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::informer::shared::{Source, SourceArgs};
use crate::informer::{ResourceEventHandler, SharedIndexInformer};
use crate::key::ObjectOrTombstone;

/// A pod `name` in `default` at resourceVersion `rv`.
pub(super) fn pod(name: &str, rv: &str) -> Pod {
    let mut pod = Pod::default();
    pod.meta_mut().namespace = Some("default".into());
    pod.meta_mut().name = Some(name.into());
    pod.meta_mut().resource_version = Some(rv.into());
    pod
}

/// What the scripted source does next.
pub(super) enum Command {
    /// A relist (client-go's reflector `Replace`).
    Replace(Vec<Pod>),
    Add(Pod),
    Update(Pod),
    Delete(Pod),
}

/// A fake API server feeding an informer's queue, with the reflector's resync loop: every
/// resync check period (on the informer's clock) it asks `should_resync` and resyncs.
pub(super) struct ScriptedSource {
    tx: mpsc::UnboundedSender<Command>,
}

impl ScriptedSource {
    /// A source whose first list is `initial`, and the informer source reading it.
    pub(super) fn new(initial: Vec<Pod>) -> (ScriptedSource, Source<Pod>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Command>();
        let source: Source<Pod> = Box::new(move |args: SourceArgs<Pod>| {
            Box::pin(async move {
                let SourceArgs {
                    fifo,
                    resync_period,
                    should_resync,
                    transforms,
                    clock,
                    last_sync_rv,
                    cancel,
                } = args;
                let rv = Arc::new(Mutex::new(String::from("1")));
                let read = Arc::clone(&rv);
                let _ = last_sync_rv.set(Box::new(move || read.lock().clone()));
                let tf = |p: Pod| transforms.apply_owned(p);
                let initial: Vec<Arc<Pod>> = initial.into_iter().map(tf).collect();
                fifo.replace(initial, "1");
                loop {
                    let resync = async {
                        if resync_period.is_zero() {
                            std::future::pending::<()>().await;
                        }
                        clock.sleep(resync_period).await;
                    };
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = resync => {
                            if should_resync() {
                                fifo.resync();
                            }
                        }
                        command = rx.recv() => {
                            let Some(command) = command else { return };
                            match command {
                                Command::Replace(list) => {
                                    let list: Vec<Arc<Pod>> = list.into_iter().map(tf).collect();
                                    fifo.replace(list, "r");
                                }
                                Command::Add(p) => {
                                    *rv.lock() = p.resource_version().unwrap_or("").into();
                                    fifo.add(tf(p));
                                }
                                Command::Update(p) => {
                                    *rv.lock() = p.resource_version().unwrap_or("").into();
                                    fifo.update(tf(p));
                                }
                                Command::Delete(p) => fifo.delete(tf(p)),
                            }
                        }
                    }
                }
            })
        });
        (ScriptedSource { tx }, source)
    }

    pub(super) fn send(&self, command: Command) {
        self.tx.send(command).expect("the source runs");
    }
}

/// A lister-watcher never used: the scripted source replaces the reflector.
pub(super) struct Unused;

/// The error of [`Unused`].
#[derive(Debug, thiserror::Error)]
#[error("unused")]
pub(super) struct UnusedError;

impl crate::ListWatchError for UnusedError {
    fn status(&self) -> Option<&kube_apimachinery::Status> {
        None
    }
}

impl crate::ListerWatcher<Pod> for Unused {
    type Error = UnusedError;
    type Watch = futures_util_free::Empty;
    async fn list(
        &self,
        _params: &kube_apimachinery::ListParams,
    ) -> Result<crate::ListPage<Pod>, UnusedError> {
        Err(UnusedError)
    }
    async fn watch(
        &self,
        _params: &kube_apimachinery::WatchParams,
        _rv: &str,
    ) -> Result<Self::Watch, UnusedError> {
        Err(UnusedError)
    }
}

/// An empty watch stream, without a futures-util dependency.
mod futures_util_free {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use k8s_openapi::api::core::v1::Pod;
    use kube_apimachinery::WatchEvent;

    pub(in super::super) struct Empty;

    impl futures_core::Stream for Empty {
        type Item = Result<WatchEvent<Pod>, super::UnusedError>;
        fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(None)
        }
    }
}

/// The builder of an informer fed by `feed`.
pub(super) fn scripted_builder(
    feed: Source<Pod>,
) -> crate::informer::SharedIndexInformerBuilder<Pod, Unused> {
    SharedIndexInformer::builder(Unused).source(feed)
}

/// An informer over a scripted source with `initial` objects.
pub(super) fn informer(
    initial: Vec<Pod>,
    resync: Duration,
    clock: Option<&FakeClock>,
) -> (SharedIndexInformer<Pod>, ScriptedSource) {
    let (source, feed) = ScriptedSource::new(initial);
    let mut builder = scripted_builder(feed).resync_period(resync);
    if let Some(clock) = clock {
        builder = builder.clock(clock.shared() as SharedClock);
    }
    (builder.build(), source)
}

/// Runs the informer on a task; returns the token stopping it and the task.
pub(super) fn run(
    informer: &SharedIndexInformer<Pod>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let informer = informer.clone();
        let cancel = cancel.clone();
        async move { informer.run(cancel).await }
    });
    (cancel, task)
}

/// Records what a handler receives, as `add:name[:initial]`, `update:name`, `delete:name`.
#[derive(Default)]
pub(super) struct Recorder {
    events: watch::Sender<Vec<String>>,
}

impl Recorder {
    pub(super) fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    fn push(&self, event: String) {
        self.events.send_modify(|v| v.push(event));
    }

    pub(super) fn events(&self) -> Vec<String> {
        self.events.borrow().clone()
    }

    /// The names of the objects received (adds and updates), sorted.
    pub(super) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .events()
            .iter()
            .filter(|e| !e.starts_with("delete:"))
            .map(|e| e.split(':').nth(1).unwrap_or("").to_string())
            .collect();
        names.sort();
        names
    }

    pub(super) fn clear(&self) {
        self.events.send_modify(|v| v.clear());
    }

    /// Waits (at most 10 s) until at least `n` events were recorded.
    pub(super) async fn wait_len(&self, n: usize) -> Vec<String> {
        let mut rx = self.events.subscribe();
        let waited =
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|v| v.len() >= n)).await;
        let events = self.events();
        assert!(waited.is_ok(), "expected {n} events, got {events:?}");
        events
    }
}

impl ResourceEventHandler<Pod> for Recorder {
    fn on_add(&self, obj: &Arc<Pod>, is_in_initial_list: bool) {
        let suffix = if is_in_initial_list { ":initial" } else { "" };
        self.push(format!("add:{}{suffix}", obj.name()));
    }
    fn on_update(&self, _old: &Arc<Pod>, new: &Arc<Pod>) {
        self.push(format!("update:{}", new.name()));
    }
    fn on_delete(&self, obj: &ObjectOrTombstone<Pod>) {
        let name = match obj {
            ObjectOrTombstone::Object(p) => p.name().to_string(),
            ObjectOrTombstone::Tombstone(t) => format!("tombstone {}", t.key),
        };
        self.push(format!("delete:{name}"));
    }
}

/// Waits (at most 10 s of real time, polling every millisecond) until `cond` holds.
pub(super) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
