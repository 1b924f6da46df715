//! [`SharedIndexInformerBuilder`]: the options of a [`SharedIndexInformer`] and of the
//! reflector it runs (client-go's `SharedIndexInformerOptions`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kube_apimachinery::Object;
use kube_flowcontrol::clock::{RealClock, SharedClock};

use crate::delta_fifo::DeltaFifo;
use crate::indexer::Indexer;
use crate::informer::shared::{Parts, SharedIndexInformer, Source, SourceArgs};
use crate::lister_watcher::ListerWatcher;
use crate::reflector::{Reflector, ReflectorError, ReflectorHandle, WatchErrorHandler};
use crate::transform::{TransformFn, Transforms};

/// Builds a [`SharedIndexInformer`] over a [`ListerWatcher`] (client-go's
/// `NewSharedIndexInformerWithOptions`), from [`SharedIndexInformer::builder`].
pub struct SharedIndexInformerBuilder<K, L: ListerWatcher<K>> {
    lister_watcher: L,
    name: String,
    resync_period: Duration,
    indexer: Option<Indexer<K>>,
    clock: SharedClock,
    drop_managed_fields: bool,
    transforms: Vec<TransformFn<K>>,
    label_selector: Option<String>,
    field_selector: Option<String>,
    page_size: Option<u32>,
    streaming_list: Option<bool>,
    watch_error_handler: Option<WatchErrorHandler<L::Error>>,
    /// A replacement for the reflector (the unit tests' scripted source).
    source: Option<Source<K>>,
}

impl<K, L: ListerWatcher<K>> fmt::Debug for SharedIndexInformerBuilder<K, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedIndexInformerBuilder")
            .field("name", &self.name)
            .field("resync_period", &self.resync_period)
            .field("label_selector", &self.label_selector)
            .field("field_selector", &self.field_selector)
            .finish_non_exhaustive()
    }
}

impl<K: Object + Send + Sync + 'static> SharedIndexInformer<K> {
    /// The options of an informer listing and watching with `lister_watcher`.
    ///
    /// ```no_run
    /// # async fn demo(api: impl kube_cache::ListerWatcher<k8s_openapi::api::core::v1::Pod>) {
    /// use std::time::Duration;
    /// use k8s_openapi::api::core::v1::Pod;
    /// use kube_apimachinery::Object;
    /// use kube_cache::informer::{HandlerFuncs, SharedIndexInformer};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let informer = SharedIndexInformer::builder(api)
    ///     .name("pods")
    ///     .resync_period(Duration::from_secs(60))
    ///     .build();
    /// informer
    ///     .add_event_handler(HandlerFuncs::new().on_add(|pod: &std::sync::Arc<Pod>, _| {
    ///         println!("added {}", pod.name())
    ///     }))
    ///     .unwrap();
    /// let cancel = CancellationToken::new();
    /// tokio::spawn({
    ///     let informer = informer.clone();
    ///     let cancel = cancel.clone();
    ///     async move { informer.run(cancel).await }
    /// });
    /// informer.wait_for_sync().await;
    /// println!("{} pods", informer.indexer().len());
    /// cancel.cancel();
    /// # }
    /// ```
    pub fn builder<L: ListerWatcher<K>>(lister_watcher: L) -> SharedIndexInformerBuilder<K, L> {
        SharedIndexInformerBuilder {
            lister_watcher,
            name: String::new(),
            resync_period: Duration::ZERO,
            indexer: None,
            clock: RealClock::shared(),
            drop_managed_fields: true,
            transforms: Vec::new(),
            label_selector: None,
            field_selector: None,
            page_size: None,
            streaming_list: None,
            watch_error_handler: None,
            source: None,
        }
    }
}

impl<K, L> SharedIndexInformerBuilder<K, L>
where
    K: Object + Send + Sync + 'static,
    L: ListerWatcher<K>,
{
    /// The name used in logs, for the queue and the reflector (client-go's `Name`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The default resync period of handlers and the initial resync check period; zero (the
    /// default) means no resyncs at all, even for handlers that ask for one (client-go's
    /// `ResyncPeriod`).
    pub fn resync_period(mut self, period: Duration) -> Self {
        self.resync_period = period;
        self
    }

    /// The store to fill (default: an [`Indexer`] with the namespace index). It must be
    /// empty; more indices can be added with
    /// [`add_indexers`](SharedIndexInformer::add_indexers).
    pub fn indexer(mut self, indexer: Indexer<K>) -> Self {
        self.indexer = Some(indexer);
        self
    }

    /// The clock of the handlers' resync schedule and of the reflector (a fake one in
    /// tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a transform applied to each listed or watched object before it is stored and
    /// handed out, after the managedFields drop and the transforms added before (client-go's
    /// `SetTransform`, handed to the reflector).
    pub fn transform(mut self, transform: impl Fn(&mut K) + Send + Sync + 'static) -> Self {
        self.transforms.push(Arc::new(transform));
        self
    }

    /// Whether `metadata.managedFields` is dropped before objects are stored (default
    /// `true`).
    pub fn drop_managed_fields(mut self, on: bool) -> Self {
        self.drop_managed_fields = on;
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

    /// The reflector's list page size (see [`ReflectorBuilder::page_size`](crate::ReflectorBuilder::page_size)).
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// Whether the reflector fills the store with a streaming list (see
    /// [`ReflectorBuilder::streaming_list`](crate::ReflectorBuilder::streaming_list)).
    pub fn streaming_list(mut self, on: bool) -> Self {
        self.streaming_list = Some(on);
        self
    }

    /// Called with every error that ends a list-and-watch cycle (client-go's
    /// `SetWatchErrorHandler`).
    pub fn watch_error_handler(
        mut self,
        handler: impl Fn(&ReflectorHandle, &ReflectorError<L::Error>) + Send + Sync + 'static,
    ) -> Self {
        self.watch_error_handler = Some(Arc::new(handler));
        self
    }

    /// Replaces the reflector by another source (unit tests).
    #[cfg(test)]
    pub(crate) fn source(mut self, source: Source<K>) -> Self {
        self.source = Some(source);
        self
    }

    /// Builds the informer; nothing runs until [`run`](SharedIndexInformer::run).
    pub fn build(self) -> SharedIndexInformer<K> {
        let mut transforms = Transforms::new().drop_managed_fields(self.drop_managed_fields);
        for t in &self.transforms {
            transforms = transforms.push_shared(Arc::clone(t));
        }
        let indexer = self.indexer.unwrap_or_default();
        let name = self.name;
        let source = match self.source {
            Some(source) => source,
            None => reflector_source(ReflectorOptions {
                lister_watcher: self.lister_watcher,
                name: name.clone(),
                drop_managed_fields: self.drop_managed_fields,
                label_selector: self.label_selector,
                field_selector: self.field_selector,
                page_size: self.page_size,
                streaming_list: self.streaming_list,
                watch_error_handler: self.watch_error_handler,
            }),
        };
        SharedIndexInformer::from_parts(Parts {
            name,
            resync_period: self.resync_period,
            indexer,
            transforms,
            clock: self.clock,
            source,
        })
    }
}

struct ReflectorOptions<K, L: ListerWatcher<K>> {
    lister_watcher: L,
    name: String,
    drop_managed_fields: bool,
    label_selector: Option<String>,
    field_selector: Option<String>,
    page_size: Option<u32>,
    streaming_list: Option<bool>,
    watch_error_handler: Option<WatchErrorHandler<L::Error>>,
}

/// The informer's source: a reflector listing and watching into the informer's queue, with
/// the informer's resync check period, `should_resync` and clock (client-go's
/// `sharedIndexInformer.Run` building its controller's `Config`).
fn reflector_source<K, L>(options: ReflectorOptions<K, L>) -> Source<K>
where
    K: Object + Send + Sync + 'static,
    L: ListerWatcher<K>,
{
    Box::new(move |args: SourceArgs<K>| {
        let SourceArgs {
            fifo,
            resync_period,
            should_resync,
            transforms,
            clock,
            last_sync_rv,
            cancel,
        } = args;
        let name = if options.name.is_empty() {
            "informer".to_owned()
        } else {
            options.name
        };
        let mut builder = Reflector::<K, L, DeltaFifo<K>>::builder(options.lister_watcher, fifo)
            .name(name)
            .resync_period(resync_period)
            .should_resync(move || should_resync())
            .clock(clock)
            .drop_managed_fields(options.drop_managed_fields);
        // The managedFields drop is the reflector's own (it lets the lister-watcher skip the
        // field while decoding); the user's transforms follow it.
        let user = transforms.drop_managed_fields(false);
        if !user.is_identity() {
            builder = builder.transform(move |obj: &mut K| user.apply(obj));
        }
        if let Some(selector) = options.label_selector {
            builder = builder.label_selector(selector);
        }
        if let Some(selector) = options.field_selector {
            builder = builder.field_selector(selector);
        }
        if let Some(size) = options.page_size {
            builder = builder.page_size(size);
        }
        if let Some(on) = options.streaming_list {
            builder = builder.streaming_list(on);
        }
        if let Some(handler) = options.watch_error_handler {
            builder = builder.watch_error_handler(move |h, e| handler(h, e));
        }
        let reflector = builder.build();
        let handle = reflector.handle();
        let _ = last_sync_rv.set(Box::new(move || handle.last_sync_resource_version()));
        Box::pin(reflector.run(cancel))
    })
}
