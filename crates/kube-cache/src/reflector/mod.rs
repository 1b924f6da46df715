//! The reflector: see [`Reflector`].

mod builder;
mod error;
#[cfg(test)]
pub(crate) mod fake;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_core::Stream;
use kube_apimachinery::{ListParams, Object, WatchEvent, WatchParams};
use kube_flowcontrol::SharedClock;
use kube_flowcontrol::wait::{BackoffManager, ExponentialBackoffManager};
use tokio_util::sync::CancellationToken;

pub use builder::{
    DEFAULT_PAGE_SIZE, MIN_WATCH_TIMEOUT, ReflectorBuilder, default_watch_error_handler,
};
pub use error::ReflectorError;
pub use stats::{ReflectorHandle, ReflectorStats};

use crate::key::ObjectKey;
use crate::lister_watcher::{ListWatchError, ListerWatcher};
use crate::reflector_store::ReflectorStore;
use crate::transform::Transforms;
use error::{
    is_expired, is_resource_expired, is_streaming_unsupported, is_too_large_resource_version,
    is_watch_error_retriable,
};
use stats::bump;

/// The watch error handler of a reflector (client-go's `WatchErrorHandler`).
pub type WatchErrorHandler<E> =
    Arc<dyn Fn(&ReflectorHandle, &ReflectorError<E>) + Send + Sync + 'static>;

type Result<T, E> = std::result::Result<T, ReflectorError<E>>;

/// A watch once opened: boxed so it can be handed from the streaming list to the watch loop.
type OpenWatch<L, K> = Pin<Box<<L as ListerWatcher<K>>::Watch>>;

/// Lists and watches one resource into a [`ReflectorStore`] (client-go's `Reflector`,
/// v1.35 behaviour of `tools/cache/reflector.go`).
///
/// One cycle ("list and watch"):
///
/// 1. **Fill the store.** With a streaming list (a `sendInitialEvents=true` watch whose
///    initial `ADDED` events end with a bookmark annotated `k8s.io/initial-events-end`) when
///    [enabled](ReflectorBuilder::streaming_list) and supported, else with a paged list: pages
///    of 500 at resourceVersion `"0"` the first time (servable from the watch cache), then at
///    the last synced resourceVersion (not paged, so the watch cache can serve it). A
///    continue token that expires mid-way turns into one full list; a resourceVersion that is
///    expired or too large turns into a list at `""` (the latest, a quorum read).
/// 2. **Watch** from the list's resourceVersion with bookmarks and a random 5-10 minute
///    server timeout. A watch that ends, or whose connection is cut, is restarted from the
///    last resourceVersion seen: no relist. A `410 Gone` (or any other error) ends the cycle.
///    A watch refused with `429` or a refused connection is retried after a backoff.
/// 3. Meanwhile, every resync period, the store is asked to resync if `should_resync` agrees.
///
/// Between cycles the reflector backs off: 800 ms doubling to 30 s, with a jitter of 1.0,
/// back to 800 ms after 2 minutes without a backoff (client-go's figures). Every relist and
/// backoff is logged through `tracing` and counted in [`ReflectorStats`].
///
/// # Where this differs from client-go
///
/// * Objects are typed: there is no expected-type or expected-GVK check of watch events.
/// * A server that answers a streaming list with `422`/`400` (no watch-list support) makes
///   the reflector stop trying streaming lists for good; client-go tries again each cycle.
/// * Internal errors (`500`) in a watch are not retried in place (client-go's
///   `MaxInternalErrorRetryDuration` is 0 by default, so it does not either).
/// * The list is assembled as typed objects, transformed as each page arrives, rather than
///   through `meta.ExtractList`.
///
/// ```no_run
/// # async fn demo(api: impl kube_cache::ListerWatcher<k8s_openapi::api::core::v1::Pod>) {
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_cache::{Indexer, Reflector};
/// use tokio_util::sync::CancellationToken;
///
/// let store = Indexer::<Pod>::new();
/// let reflector = Reflector::builder(api, store.clone()).name("pods").build();
/// let handle = reflector.handle();
/// let cancel = CancellationToken::new();
/// tokio::spawn(reflector.run(cancel.clone()));
/// // ... later
/// println!("synced: {} at {}", handle.has_synced(), handle.last_sync_resource_version());
/// cancel.cancel();
/// # }
/// ```
pub struct Reflector<K, L: ListerWatcher<K>, S> {
    inner: Inner<K, L, S>,
    state: State,
}

/// Everything a cycle reads; [`State`] is what it changes.
struct Inner<K, L: ListerWatcher<K>, S> {
    lw: L,
    store: S,
    config: Config<K, L::Error>,
    handle: ReflectorHandle,
    _kind: PhantomData<fn() -> K>,
}
struct Config<K, E: std::error::Error + 'static> {
    page_size: u32,
    resync_period: Duration,
    should_resync: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
    watch_error_handler: WatchErrorHandler<E>,
    clock: SharedClock,
    transforms: Transforms<K>,
    label_selector: Option<String>,
    field_selector: Option<String>,
    min_watch_timeout: Duration,
}

/// What the list-and-watch cycles remember between them.
struct State {
    /// Streaming lists are on and have not been refused by the server.
    use_streaming: bool,
    /// The first list at `"0"` came back paged: the watch cache is off, keep paging.
    paginated_result: bool,
    /// client-go's `isLastSyncResourceVersionUnavailable`: the last list or watch-list at
    /// the last resourceVersion failed with "expired" or "too large"; use `""` next.
    last_sync_resource_version_unavailable: bool,
}

/// How a watch stream ended without an error.
enum WatchEnd {
    /// The server closed it or the connection was cut: watch again from the last version.
    Closed,
    /// A streaming list got its `k8s.io/initial-events-end` bookmark.
    InitialEventsEnd,
}

/// Where watch events go: the store, or the temporary map of a streaming list.
enum Sink<'a, K> {
    Store,
    Temporary {
        objects: &'a mut HashMap<ObjectKey, Arc<K>>,
        resource_version: &'a mut String,
    },
}

impl<K, L, S> Reflector<K, L, S>
where
    K: Object + Send + Sync + 'static,
    L: ListerWatcher<K>,
    S: ReflectorStore<K>,
{
    /// Starts the options of a reflector that lists and watches with `lister_watcher` into
    /// `store`.
    pub fn builder(lister_watcher: L, store: S) -> ReflectorBuilder<K, L, S> {
        ReflectorBuilder::new(lister_watcher, store)
    }

    /// A cheap, cloneable view of this reflector (last synced resourceVersion, counters),
    /// valid before, during and after [`run`](Reflector::run).
    pub fn handle(&self) -> ReflectorHandle {
        self.inner.handle.clone()
    }

    /// The reflector's name.
    pub fn name(&self) -> &str {
        self.inner.handle.name()
    }

    /// The resourceVersion observed when the reflector last synced with its store.
    pub fn last_sync_resource_version(&self) -> String {
        self.inner.handle.last_sync_resource_version()
    }

    /// Lists and watches until `cancel` fires (client-go's `Run`): each list-and-watch cycle
    /// that ends is followed by a backoff, then a new cycle. Dropping the future stops the
    /// reflector too.
    pub async fn run(self, cancel: CancellationToken) {
        let Reflector { inner, mut state } = self;
        let name = inner.handle.name().to_string();
        tracing::debug!(reflector = %name, resync = ?inner.config.resync_period, "starting reflector");
        // client-go: 800ms doubling to 30s, reset after 2 minutes of health, jitter 1.0.
        let mut backoff = ExponentialBackoffManager::new(
            Duration::from_millis(800),
            Duration::from_secs(30),
            Duration::from_secs(120),
            2.0,
            1.0,
            inner.config.clock.clone(),
        );
        loop {
            let cycle = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                result = inner.list_and_watch(&mut state, &mut backoff) => result,
            };
            if let Err(error) = cycle {
                (inner.config.watch_error_handler)(&inner.handle, &error);
            }
            let delay = backoff.backoff();
            bump(&inner.counters().backoffs);
            tracing::info!(reflector = %name, ?delay, "list-and-watch ended: backing off before relisting");
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = inner.config.clock.sleep(delay) => {}
            }
        }
        tracing::debug!(reflector = %name, "stopping reflector");
    }
}

impl<K, L, S> Inner<K, L, S>
where
    K: Object + Send + Sync + 'static,
    L: ListerWatcher<K>,
    S: ReflectorStore<K>,
{
    fn name(&self) -> &str {
        self.handle.name()
    }

    fn counters(&self) -> &stats::Counters {
        &self.handle.shared.counters
    }

    fn last_sync_resource_version(&self) -> String {
        self.handle.shared.last_sync_resource_version()
    }

    /// One cycle: fill the store, then watch (with resyncs) until the watch gives up.
    async fn list_and_watch(
        &self,
        state: &mut State,
        backoff: &mut ExponentialBackoffManager,
    ) -> Result<(), L::Error> {
        let mut watch = None;
        let mut fallback_to_list = !state.use_streaming;
        if state.use_streaming {
            match self.watch_list(state, backoff).await {
                Ok(w) => watch = Some(w),
                Err(error) => {
                    bump(&self.counters().streaming_fallbacks);
                    if is_streaming_unsupported(error.status()) {
                        tracing::warn!(
                            reflector = self.name(),
                            %error,
                            "the server does not support streaming lists (watch-list): using paged lists from now on"
                        );
                        state.use_streaming = false;
                    } else {
                        tracing::warn!(
                            reflector = self.name(),
                            %error,
                            "the streaming list ended with an error, falling back to a paged list"
                        );
                    }
                    fallback_to_list = true;
                }
            }
        }
        if fallback_to_list {
            self.list(state).await?;
        }
        tracing::debug!(
            reflector = self.name(),
            resource_version = %self.last_sync_resource_version(),
            "caches populated"
        );
        tokio::select! {
            result = self.watch(watch, backoff) => result,
            never = self.resync_loop() => match never {},
        }
    }

    /// Waits a backoff delay (counted and logged).
    async fn back_off(&self, backoff: &mut ExponentialBackoffManager, why: &str) {
        let delay = backoff.backoff();
        bump(&self.counters().backoffs);
        tracing::info!(reflector = self.name(), ?delay, "{why}: backing off");
        self.config.clock.sleep(delay).await;
    }

    /// client-go's `relistResourceVersion`.
    fn relist_resource_version(&self, state: &State) -> String {
        if state.last_sync_resource_version_unavailable {
            return String::new();
        }
        let rv = self.last_sync_resource_version();
        if rv.is_empty() { "0".to_string() } else { rv }
    }

    /// client-go's `rewatchResourceVersion`.
    fn rewatch_resource_version(&self, state: &State) -> String {
        if state.last_sync_resource_version_unavailable {
            return String::new();
        }
        self.last_sync_resource_version()
    }

    fn list_params(&self) -> ListParams {
        let mut params = ListParams::default();
        params.label_selector = self.config.label_selector.clone();
        params.field_selector = self.config.field_selector.clone();
        params
    }

    fn watch_params(&self, send_initial_events: bool) -> WatchParams {
        let mut params = WatchParams::default();
        if let Some(selector) = &self.config.label_selector {
            params = params.labels(selector.clone());
        }
        if let Some(selector) = &self.config.field_selector {
            params = params.fields(selector.clone());
        }
        // Random in [min, 2*min): spreads the reconnections of many reflectors.
        let timeout = kube_flowcontrol::wait::jitter(self.config.min_watch_timeout, 1.0);
        let seconds = u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX).max(1);
        params
            .bookmarks(true)
            .timeout(seconds)
            .send_initial_events(send_initial_events)
    }

    /// Lists everything and replaces the store's content (client-go's `list`).
    async fn list(&self, state: &mut State) -> Result<(), L::Error> {
        let resource_version = self.relist_resource_version(state);
        let page_size = if self.config.page_size != 0 {
            self.config.page_size
        } else if state.paginated_result {
            DEFAULT_PAGE_SIZE
        } else if !resource_version.is_empty() && resource_version != "0" {
            // A list at a given version is served from the watch cache only unpaged.
            0
        } else {
            DEFAULT_PAGE_SIZE
        };
        tracing::debug!(reflector = self.name(), %resource_version, page_size, "listing");
        let mut listed = self.paged_list(&resource_version, page_size).await;
        if let Err(error) = &listed
            && (is_expired(error.status()) || is_too_large_resource_version(error.status()))
        {
            state.last_sync_resource_version_unavailable = true;
            tracing::info!(
                reflector = self.name(),
                %resource_version,
                %error,
                "the resourceVersion to list at is unavailable: listing at the latest"
            );
            listed = self
                .paged_list(&self.relist_resource_version(state), page_size)
                .await;
        }
        let listed = match listed {
            Ok(listed) => listed,
            Err(error) => {
                if error
                    .status()
                    .is_some_and(kube_apimachinery::Status::is_not_found)
                {
                    // Unblock whoever waits for a sync: the server has none of these.
                    self.store.replace(Vec::new(), "");
                }
                bump(&self.counters().list_errors);
                tracing::warn!(reflector = self.name(), %error, "failed to list");
                return Err(ReflectorError::List { source: error });
            }
        };
        if resource_version == "0" && listed.paginated {
            state.paginated_result = true;
        }
        state.last_sync_resource_version_unavailable = false;
        tracing::debug!(
            reflector = self.name(),
            items = listed.items.len(),
            resource_version = %listed.resource_version,
            "listed"
        );
        self.store.replace(listed.items, &listed.resource_version);
        self.handle
            .shared
            .set_last_sync_resource_version(&listed.resource_version);
        self.handle.shared.synced();
        Ok(())
    }

    /// client-go's `pager.List` with `FullListIfExpired`: pages of `page_size` (0: one
    /// request), and a full list at the requested version when a continue token expires.
    async fn paged_list(
        &self,
        resource_version: &str,
        page_size: u32,
    ) -> std::result::Result<Listed<K>, L::Error> {
        bump(&self.counters().lists);
        let mut params = self.list_params();
        params.resource_version = Some(resource_version.to_string());
        params.limit = Some(page_size);
        let mut listed = Listed {
            items: Vec::new(),
            resource_version: String::new(),
            paginated: false,
        };
        let mut first = true;
        loop {
            bump(&self.counters().list_pages);
            let page = match self.lw.list(&params).await {
                Ok(page) => page,
                Err(error) => {
                    if !is_resource_expired(error.status()) || params.continue_token.is_none() {
                        return Err(error);
                    }
                    // The list's version was compacted while paging: list everything at once.
                    bump(&self.counters().expired_continue_fallbacks);
                    bump(&self.counters().list_pages);
                    tracing::info!(
                        reflector = self.name(),
                        %error,
                        "continue token expired: falling back to a full list"
                    );
                    params.limit = None;
                    params.continue_token = None;
                    params.resource_version = Some(resource_version.to_string());
                    let page = self.lw.list(&params).await?;
                    listed.items.clear();
                    listed.items.reserve(page.items.len());
                    listed.resource_version = page.resource_version;
                    self.transform_into(page.items, &mut listed.items);
                    return Ok(listed);
                }
            };
            if first {
                listed.resource_version = page.resource_version;
                first = false;
            }
            if let Some(remaining) = page
                .remaining_item_count
                .and_then(|r| usize::try_from(r).ok())
            {
                listed.items.reserve(page.items.len() + remaining);
            }
            self.transform_into(page.items, &mut listed.items);
            match page.continue_token.filter(|t| !t.is_empty()) {
                None => return Ok(listed),
                Some(token) => {
                    params.continue_token = Some(token);
                    // The token carries the version: giving one too is refused.
                    params.resource_version = None;
                    params.resource_version_match = None;
                    listed.paginated = true;
                }
            }
        }
    }

    fn transform_into(&self, items: Vec<K>, out: &mut Vec<Arc<K>>) {
        let transforms = &self.config.transforms;
        out.extend(items.into_iter().map(|o| transforms.apply_owned(o)));
    }

    /// Fills the store with a streaming list and returns its watch, which goes on with the
    /// changes after the initial events (client-go's `watchList`).
    async fn watch_list(
        &self,
        state: &mut State,
        backoff: &mut ExponentialBackoffManager,
    ) -> Result<OpenWatch<L, K>, L::Error> {
        loop {
            let last_known = self.rewatch_resource_version(state);
            let params = self.watch_params(true);
            let start = self.config.clock.now();
            bump(&self.counters().streaming_lists);
            bump(&self.counters().watches_started);
            tracing::debug!(reflector = self.name(), resource_version = %last_known, "starting a streaming list");
            let mut watch = match self.lw.watch(&params, &last_known).await {
                Ok(watch) => Box::pin(watch),
                Err(source) => {
                    bump(&self.counters().watch_errors);
                    let error = ReflectorError::Watch { source };
                    if self.retry_watch_list(&error, state, backoff).await {
                        continue;
                    }
                    return Err(error);
                }
            };
            let mut objects = HashMap::new();
            let mut resource_version = String::new();
            let sink = Sink::Temporary {
                objects: &mut objects,
                resource_version: &mut resource_version,
            };
            match self.handle_watch(start, watch.as_mut(), sink, true).await {
                Ok(WatchEnd::InitialEventsEnd) => {
                    state.last_sync_resource_version_unavailable = false;
                    let items: Vec<Arc<K>> = objects.into_values().collect();
                    tracing::debug!(
                        reflector = self.name(),
                        items = items.len(),
                        %resource_version,
                        "streaming list done"
                    );
                    self.store.replace(items, &resource_version);
                    self.handle
                        .shared
                        .set_last_sync_resource_version(&resource_version);
                    self.store.update_resource_version(&resource_version);
                    self.handle.shared.synced();
                    return Ok(watch);
                }
                // Closed before the end of the initial events: start over with a clean state.
                Ok(WatchEnd::Closed) => continue,
                Err(error) => {
                    bump(&self.counters().watch_errors);
                    if self.retry_watch_list(&error, state, backoff).await {
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// client-go's `isErrorRetriableWithSideEffectsFn` of `watchList`.
    async fn retry_watch_list(
        &self,
        error: &ReflectorError<L::Error>,
        state: &mut State,
        backoff: &mut ExponentialBackoffManager,
    ) -> bool {
        if let ReflectorError::Watch { source } = error
            && is_watch_error_retriable(source)
        {
            self.back_off(backoff, "streaming list refused").await;
            return true;
        }
        if is_expired(error.status()) || is_too_large_resource_version(error.status()) {
            // Start from the latest version instead (a consistent snapshot).
            state.last_sync_resource_version_unavailable = true;
            return true;
        }
        false
    }

    /// Watches from the last synced version until the watch gives up (client-go's `watch`):
    /// `Ok` means "relist after a backoff", `Err` goes to the watch error handler first.
    async fn watch(
        &self,
        mut watch: Option<OpenWatch<L, K>>,
        backoff: &mut ExponentialBackoffManager,
    ) -> Result<(), L::Error> {
        loop {
            // Started before the request: some proxies send no headers before a first event.
            let start = self.config.clock.now();
            let mut open = match watch.take() {
                Some(open) => open,
                None => {
                    let params = self.watch_params(false);
                    let resource_version = self.last_sync_resource_version();
                    bump(&self.counters().watches_started);
                    tracing::debug!(reflector = self.name(), %resource_version, "watching");
                    match self.lw.watch(&params, &resource_version).await {
                        Ok(open) => Box::pin(open),
                        Err(source) => {
                            bump(&self.counters().watch_errors);
                            if is_watch_error_retriable(&source) {
                                tracing::debug!(reflector = self.name(), error = %source, "watch refused");
                                self.back_off(backoff, "watch refused").await;
                                continue;
                            }
                            return Err(ReflectorError::Watch { source });
                        }
                    }
                }
            };
            let ended = self
                .handle_watch(start, open.as_mut(), Sink::Store, false)
                .await;
            drop(open);
            let error = match ended {
                Ok(_) => continue,
                Err(error) => error,
            };
            bump(&self.counters().watch_errors);
            if error.is_expired() {
                tracing::info!(reflector = self.name(), %error, "watch expired: relisting");
            } else if error
                .status()
                .is_some_and(kube_apimachinery::Status::is_too_many_requests)
            {
                self.back_off(backoff, "watch answered 429").await;
                continue;
            } else {
                tracing::warn!(reflector = self.name(), %error, "watch ended with an error: relisting");
            }
            return Ok(());
        }
    }

    /// Applies the events of one watch (client-go's `handleWatch`/`watchHandler`).
    async fn handle_watch(
        &self,
        start: Instant,
        mut watch: Pin<&mut L::Watch>,
        mut sink: Sink<'_, K>,
        exit_on_initial_events_end: bool,
    ) -> std::result::Result<WatchEnd, ReflectorError<L::Error>> {
        let mut event_count = 0u64;
        loop {
            let next = std::future::poll_fn(|cx| watch.as_mut().poll_next(cx)).await;
            let event = match next {
                None => break,
                Some(Ok(event)) => event,
                Some(Err(error)) if error.is_watch_cut() => {
                    bump(&self.counters().watch_cuts);
                    tracing::info!(reflector = self.name(), %error, "watch cut: resuming from the last resourceVersion");
                    break;
                }
                Some(Err(source)) => return Err(ReflectorError::Watch { source }),
            };
            let mut initial_events_end = false;
            let resource_version = match event {
                WatchEvent::Error(status) => {
                    return Err(ReflectorError::WatchStatus(Box::new(status)));
                }
                WatchEvent::Bookmark(bookmark) => {
                    initial_events_end = bookmark.is_initial_events_end();
                    bookmark.resource_version
                }
                WatchEvent::Added(object) => self.apply(&mut sink, EventKind::Added, object),
                WatchEvent::Modified(object) => self.apply(&mut sink, EventKind::Modified, object),
                WatchEvent::Deleted(object) => self.apply(&mut sink, EventKind::Deleted, object),
            };
            match &mut sink {
                Sink::Store => {
                    self.handle
                        .shared
                        .set_last_sync_resource_version(&resource_version);
                    self.store.update_resource_version(&resource_version);
                }
                Sink::Temporary {
                    resource_version: rv,
                    ..
                } => **rv = resource_version,
            }
            bump(&self.counters().events);
            event_count += 1;
            if exit_on_initial_events_end && initial_events_end {
                tracing::debug!(
                    reflector = self.name(),
                    events = event_count,
                    elapsed = ?self.config.clock.since(start),
                    "got the bookmark that ends the initial events"
                );
                return Ok(WatchEnd::InitialEventsEnd);
            }
        }
        if event_count == 0 && self.config.clock.since(start) < Duration::from_secs(1) {
            return Err(ReflectorError::VeryShortWatch);
        }
        tracing::debug!(
            reflector = self.name(),
            events = event_count,
            "watch closed"
        );
        Ok(WatchEnd::Closed)
    }

    /// Transforms and stores one object; returns its resourceVersion.
    fn apply(&self, sink: &mut Sink<'_, K>, kind: EventKind, object: K) -> String {
        let resource_version = object.resource_version().unwrap_or("").to_string();
        let object = self.config.transforms.apply_owned(object);
        match sink {
            Sink::Store => match kind {
                EventKind::Added => self.store.add(object),
                EventKind::Modified => self.store.update(object),
                EventKind::Deleted => self.store.delete(object),
            },
            Sink::Temporary { objects, .. } => {
                let key = ObjectKey::of(&*object);
                match kind {
                    EventKind::Added | EventKind::Modified => {
                        objects.insert(key, object);
                    }
                    EventKind::Deleted => {
                        objects.remove(&key);
                    }
                }
            }
        }
        resource_version
    }

    /// Resyncs the store every resync period while the watch runs (client-go's
    /// `startResync`); never returns.
    async fn resync_loop(&self) -> std::convert::Infallible {
        loop {
            if self.config.resync_period.is_zero() {
                std::future::pending::<()>().await;
            }
            self.config.clock.sleep(self.config.resync_period).await;
            let should = self.config.should_resync.as_ref().is_none_or(|f| f());
            if should {
                tracing::debug!(reflector = self.name(), "forcing resync");
                bump(&self.counters().resyncs);
                self.store.resync();
            }
        }
    }
}

#[derive(Clone, Copy)]
enum EventKind {
    Added,
    Modified,
    Deleted,
}

/// A whole list: its objects (transformed), its resourceVersion, whether it came in pages.
struct Listed<K> {
    items: Vec<Arc<K>>,
    resource_version: String,
    paginated: bool,
}
