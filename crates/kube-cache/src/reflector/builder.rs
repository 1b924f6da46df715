//! [`ReflectorBuilder`]: the options of a [`Reflector`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use kube_apimachinery::Object;
use kube_flowcontrol::{RealClock, SharedClock};

use super::{Config, Inner, Reflector, ReflectorError, ReflectorHandle, State, WatchErrorHandler};
use crate::lister_watcher::{ListWatchError, ListerWatcher};
use crate::reflector::stats::Shared;
use crate::reflector_store::ReflectorStore;
use crate::transform::Transforms;

/// client-go's `pager.PageSize`: the page size of lists at `""` and `"0"`.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// client-go's `minWatchTimeout`: each watch asks the server to end it after a random time
/// between this and twice this.
pub const MIN_WATCH_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Options of a [`Reflector`], from [`Reflector::builder`].
pub struct ReflectorBuilder<K, L: ListerWatcher<K>, S> {
    lw: L,
    store: S,
    name: Option<String>,
    page_size: u32,
    resync_period: Duration,
    should_resync: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
    streaming_list: bool,
    watch_error_handler: Option<WatchErrorHandler<L::Error>>,
    clock: Option<SharedClock>,
    transforms: Transforms<K>,
    label_selector: Option<String>,
    field_selector: Option<String>,
    min_watch_timeout: Duration,
    _kind: PhantomData<fn() -> K>,
}

impl<K, L, S> ReflectorBuilder<K, L, S>
where
    K: Object + Send + Sync + 'static,
    L: ListerWatcher<K>,
    S: ReflectorStore<K>,
{
    pub(super) fn new(lw: L, store: S) -> Self {
        ReflectorBuilder {
            lw,
            store,
            name: None,
            page_size: 0,
            resync_period: Duration::ZERO,
            should_resync: None,
            streaming_list: true,
            watch_error_handler: None,
            clock: None,
            transforms: Transforms::default(),
            label_selector: None,
            field_selector: None,
            min_watch_timeout: MIN_WATCH_TIMEOUT,
            _kind: PhantomData,
        }
    }

    /// The name in logs (default: `reflector`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The page size of lists (client-go's `WatchListPageSize`). Unset (0), lists at `""`
    /// and `"0"` use pages of 500, and lists at a specific resourceVersion are not paged so
    /// that the API server can serve them from its watch cache, unless the first list at
    /// `"0"` came back paged (the watch cache is off for this resource).
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size;
        self
    }

    /// How often the store is asked to resync while the reflector watches (0, the default:
    /// never).
    pub fn resync_period(mut self, period: Duration) -> Self {
        self.resync_period = period;
        self
    }

    /// Asked at each resync period; the store resyncs only when it says `true` (unset:
    /// always).
    pub fn should_resync(
        mut self,
        should_resync: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        self.should_resync = Some(Arc::new(should_resync));
        self
    }

    /// Whether to fill the store with a streaming list (a `sendInitialEvents=true` watch, the
    /// `WatchListClient` feature of client-go) rather than a paged list, when the
    /// [`ListerWatcher`] supports it ([`ListerWatcher::supports_streaming_list`]).
    ///
    /// On by default, as client-go's `WatchListClient` feature gate is since v1.35. A server
    /// that refuses such watches (`422`/`400`, as before v1.27) makes the reflector give up
    /// streaming for good, with one log line; any other error falls back to a list for that
    /// attempt only, as in client-go.
    pub fn streaming_list(mut self, on: bool) -> Self {
        self.streaming_list = on;
        self
    }

    /// Called with every error that ends a list-and-watch cycle before the reflector backs
    /// off and starts over (client-go's `WatchErrorHandler`). The default logs it: expired
    /// resourceVersions at debug level, the rest as errors.
    pub fn watch_error_handler(
        mut self,
        handler: impl Fn(&ReflectorHandle, &ReflectorError<L::Error>) + Send + Sync + 'static,
    ) -> Self {
        self.watch_error_handler = Some(Arc::new(handler));
        self
    }

    /// The clock of backoffs, resyncs and watch durations (default: the real one); tests
    /// pass a `FakeClock`.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adds a transform run on every object before it is stored, after the managedFields drop
    /// and the transforms added before it.
    pub fn transform(mut self, transform: impl Fn(&mut K) + Send + Sync + 'static) -> Self {
        self.transforms = self.transforms.push(transform);
        self
    }

    /// Whether `metadata.managedFields` is dropped before objects are stored (default
    /// `true`). The [`ListerWatcher`] is told, so kube-rest's skips the field while decoding.
    pub fn drop_managed_fields(mut self, on: bool) -> Self {
        self.transforms = self.transforms.drop_managed_fields(on);
        self
    }

    /// Lists and watches only the objects with these labels.
    pub fn label_selector(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Lists and watches only the objects with these fields.
    pub fn field_selector(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// The shortest server-side watch timeout (default 5 minutes; each watch gets a random
    /// one between this and twice this, to spread reconnections).
    pub fn min_watch_timeout(mut self, timeout: Duration) -> Self {
        self.min_watch_timeout = timeout;
        self
    }

    /// The reflector (call [`Reflector::run`] to start it).
    pub fn build(mut self) -> Reflector<K, L, S> {
        let streaming = self.streaming_list && self.lw.supports_streaming_list();
        self.lw
            .set_skip_managed_fields(self.transforms.drops_managed_fields());
        let name = self.name.unwrap_or_else(|| "reflector".to_string());
        let watch_error_handler = self
            .watch_error_handler
            .unwrap_or_else(|| Arc::new(default_watch_error_handler::<L::Error>));
        Reflector {
            inner: Inner {
                lw: self.lw,
                store: self.store,
                config: Config {
                    page_size: self.page_size,
                    resync_period: self.resync_period,
                    should_resync: self.should_resync,
                    watch_error_handler,
                    clock: self.clock.unwrap_or_else(RealClock::shared),
                    transforms: self.transforms,
                    label_selector: self.label_selector,
                    field_selector: self.field_selector,
                    min_watch_timeout: self.min_watch_timeout,
                },
                handle: ReflectorHandle {
                    shared: Arc::new(Shared::new(name)),
                },
                _kind: PhantomData,
            },
            state: State {
                use_streaming: streaming,
                paginated_result: false,
                last_sync_resource_version_unavailable: false,
            },
        }
    }
}

/// client-go's `DefaultWatchErrorHandler`: an expired resourceVersion is routine (debug), a
/// cut stream is logged at info, anything else as an error.
pub fn default_watch_error_handler<E: ListWatchError>(
    handle: &ReflectorHandle,
    error: &ReflectorError<E>,
) {
    let name = handle.name();
    if error.is_expired() {
        tracing::debug!(reflector = name, %error, "watch closed");
    } else if error.is_watch_cut() {
        tracing::info!(reflector = name, %error, "watch closed with unexpected EOF");
    } else {
        tracing::error!(reflector = name, %error, "failed to list or watch");
    }
}
