//! [`SharedInformerFactory`]: one informer per type, namespace and list options, started,
//! synced and shut down together (client-go's `informers.SharedInformerFactory`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kube_apimachinery::Object;
use kube_flowcontrol::clock::{RealClock, SharedClock};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::informer::shared::SharedIndexInformer;
use crate::lister_watcher::ListerWatcher;

/// The label and field selectors a factory's informers list and watch with (the part of
/// client-go's `metav1.ListOptions` a `TweakListOptionsFunc` changes in practice).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListOptions {
    /// A label selector (`app=web`).
    pub label_selector: Option<String>,
    /// A field selector (`spec.nodeName=node-1`).
    pub field_selector: Option<String>,
}

/// Where an informer lists and watches: a namespace (or all), and selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InformerScope {
    /// The namespace; `None`: every namespace (or cluster-scoped objects).
    pub namespace: Option<String>,
    /// The selectors.
    pub options: ListOptions,
}

impl InformerScope {
    /// Every namespace, no selector.
    pub fn all() -> InformerScope {
        InformerScope::default()
    }

    /// One namespace, no selector.
    pub fn namespaced(namespace: impl Into<String>) -> InformerScope {
        InformerScope {
            namespace: Some(namespace.into()),
            options: ListOptions::default(),
        }
    }

    /// The same scope with a label selector.
    pub fn labels(mut self, selector: impl Into<String>) -> InformerScope {
        self.options.label_selector = Some(selector.into());
        self
    }

    /// The same scope with a field selector.
    pub fn fields(mut self, selector: impl Into<String>) -> InformerScope {
        self.options.field_selector = Some(selector.into());
        self
    }
}

/// Makes the [`ListerWatcher`] of an informer of type `K` for a namespace (client-go's
/// `NewFilteredPodInformer` and friends, minus the informer): what a
/// [`SharedInformerFactory`] is built over.
///
/// Implemented for closures `Fn(Option<&str>) -> L` (one type per factory), and, with the
/// `rest` feature, for `kube_rest::Client` (every k8s-openapi type).
pub trait ListerWatcherFactory<K>: Send + Sync + 'static {
    /// The lister-watcher made.
    type ListerWatcher: ListerWatcher<K>;
    /// A lister-watcher of the objects of `namespace` (`None`: all namespaces, or the
    /// cluster-scoped objects).
    fn lister_watcher(&self, namespace: Option<&str>) -> Self::ListerWatcher;
}

impl<K, L, F> ListerWatcherFactory<K> for F
where
    F: Fn(Option<&str>) -> L + Send + Sync + 'static,
    L: ListerWatcher<K>,
{
    type ListerWatcher = L;
    fn lister_watcher(&self, namespace: Option<&str>) -> L {
        self(namespace)
    }
}

/// What identifies an informer of a factory: its type, the resource for types that serve
/// several (`DynamicObject`), namespace and selectors (client-go keys by `reflect.Type` alone,
/// with one namespace and tweak per factory; its dynamic factory keys by resource).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InformerKey {
    type_id: TypeId,
    /// The Rust type of the objects (`k8s_openapi::api::core::v1::Pod`).
    pub type_name: &'static str,
    /// The resource, for a type that serves several (`apps/v1/deployments` for a
    /// `DynamicObject` informer); `None` for a type of one resource.
    pub resource: Option<String>,
    /// Where the informer lists and watches.
    pub scope: InformerScope,
}

impl InformerKey {
    /// The key of an informer of `K` over `scope`.
    pub fn of<K: 'static>(scope: InformerScope) -> InformerKey {
        InformerKey {
            type_id: TypeId::of::<K>(),
            type_name: std::any::type_name::<K>(),
            resource: None,
            scope,
        }
    }

    /// The key of an informer of `K` for one of the resources `K` serves (`resource`: a name
    /// such as `apps/v1/deployments`).
    pub fn of_resource<K: 'static>(
        resource: impl Into<String>,
        scope: InformerScope,
    ) -> InformerKey {
        InformerKey {
            resource: Some(resource.into()),
            ..InformerKey::of::<K>(scope)
        }
    }
}

impl fmt::Display for InformerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resource {
            Some(resource) => f.write_str(resource)?,
            None => f.write_str(self.type_name.rsplit("::").next().unwrap_or(self.type_name))?,
        }
        if let Some(ns) = &self.scope.namespace {
            write!(f, " in {ns}")?;
        }
        if let Some(l) = &self.scope.options.label_selector {
            write!(f, " labels {l:?}")?;
        }
        if let Some(s) = &self.scope.options.field_selector {
            write!(f, " fields {s:?}")?;
        }
        Ok(())
    }
}

/// Why a factory could not start its informers.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    /// `start` was called outside a tokio runtime.
    #[error("SharedInformerFactory::start must be called within a tokio runtime")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
}

/// An informer of any type, as the factory keeps it.
trait ErasedInformer: Send + Sync {
    fn run(&self, cancel: CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>>;
    fn has_synced(&self) -> bool;
    fn wait_for_sync(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    fn as_any(&self) -> &dyn Any;
}

impl<K: Object + Send + Sync + 'static> ErasedInformer for SharedIndexInformer<K> {
    fn run(&self, cancel: CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let informer = self.clone();
        Box::pin(async move { informer.run(cancel).await })
    }
    fn has_synced(&self) -> bool {
        SharedIndexInformer::has_synced(self)
    }
    fn wait_for_sync(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(SharedIndexInformer::wait_for_sync(self))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct Entry {
    informer: Arc<dyn ErasedInformer>,
    started: bool,
}

struct State {
    informers: HashMap<InformerKey, Entry>,
    shutting_down: bool,
}

struct Inner<S> {
    source: S,
    scope: InformerScope,
    default_resync: Duration,
    custom_resync: HashMap<TypeId, Duration>,
    clock: SharedClock,
    state: Mutex<State>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// One informer per type (and namespace and selectors), created on first request, started
/// together, synced together, shut down together (client-go's `SharedInformerFactory`).
///
/// `S` makes the lister-watchers ([`ListerWatcherFactory`]): a closure for a factory of one
/// type, or (feature `rest`) a `kube_rest::Client` for every k8s-openapi type. Any factory
/// also takes a closure per call ([`informer_for`](Self::informer_for)).
///
/// The handle is cheap to clone; clones share the informers.
pub struct SharedInformerFactory<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for SharedInformerFactory<S> {
    fn clone(&self) -> Self {
        SharedInformerFactory {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for SharedInformerFactory<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("SharedInformerFactory")
            .field("scope", &self.inner.scope)
            .field("informers", &state.informers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Builds a [`SharedInformerFactory`] (client-go's `NewSharedInformerFactoryWithOptions`
/// and its options).
pub struct SharedInformerFactoryBuilder<S> {
    source: S,
    scope: InformerScope,
    default_resync: Duration,
    custom_resync: HashMap<TypeId, Duration>,
    clock: SharedClock,
}

impl<S> fmt::Debug for SharedInformerFactoryBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedInformerFactoryBuilder")
            .field("scope", &self.scope)
            .field("default_resync", &self.default_resync)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> SharedInformerFactoryBuilder<S> {
    /// Informers of one namespace (client-go's `WithNamespace`); default: all.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.scope.namespace = Some(namespace.into());
        self
    }

    /// Changes the list options of every informer (client-go's `WithTweakListOptions`).
    pub fn tweak_list_options(mut self, tweak: impl FnOnce(&mut ListOptions)) -> Self {
        tweak(&mut self.scope.options);
        self
    }

    /// The resync period of informers (client-go's `defaultResync`; default: none).
    pub fn default_resync(mut self, period: Duration) -> Self {
        self.default_resync = period;
        self
    }

    /// The resync period of the informers of `K` (client-go's `WithCustomResyncConfig`).
    pub fn resync_for<K: 'static>(mut self, period: Duration) -> Self {
        self.custom_resync.insert(TypeId::of::<K>(), period);
        self
    }

    /// The clock of the informers' resyncs and reflectors (a fake one in tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The factory.
    pub fn build(self) -> SharedInformerFactory<S> {
        SharedInformerFactory {
            inner: Arc::new(Inner {
                source: self.source,
                scope: self.scope,
                default_resync: self.default_resync,
                custom_resync: self.custom_resync,
                clock: self.clock,
                state: Mutex::new(State {
                    informers: HashMap::new(),
                    shutting_down: false,
                }),
                tasks: TaskTracker::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }
}

impl<S: Send + Sync + 'static> SharedInformerFactory<S> {
    /// A factory whose informers get their lister-watchers from `source`.
    pub fn builder(source: S) -> SharedInformerFactoryBuilder<S> {
        SharedInformerFactoryBuilder {
            source,
            scope: InformerScope::default(),
            default_resync: Duration::ZERO,
            custom_resync: HashMap::new(),
            clock: RealClock::shared(),
        }
    }

    /// The scope of [`informer`](Self::informer): the factory's namespace and list options.
    pub fn scope(&self) -> &InformerScope {
        &self.inner.scope
    }

    /// What the factory makes its lister-watchers from (the client, for a factory over
    /// kube-rest).
    pub fn source(&self) -> &S {
        &self.inner.source
    }

    /// The informer of `K` in the factory's scope, created on first request (client-go's
    /// `InformerFor`, as generated `Informer()` methods call it).
    pub fn informer<K>(&self) -> SharedIndexInformer<K>
    where
        K: Object + Send + Sync + 'static,
        S: ListerWatcherFactory<K>,
    {
        self.informer_in::<K>(&self.inner.scope.clone())
    }

    /// The informer of `K` in another scope.
    pub fn informer_in<K>(&self, scope: &InformerScope) -> SharedIndexInformer<K>
    where
        K: Object + Send + Sync + 'static,
        S: ListerWatcherFactory<K>,
    {
        let inner = Arc::clone(&self.inner);
        self.informer_for::<K, _>(scope, move |scope| {
            inner.source.lister_watcher(scope.namespace.as_deref())
        })
    }

    /// The informer of `K` in `scope`, its lister-watcher made by `make` when it does not
    /// exist yet (client-go's `InformerFor(obj, newFunc)`).
    pub fn informer_for<K, L>(
        &self,
        scope: &InformerScope,
        make: impl FnOnce(&InformerScope) -> L,
    ) -> SharedIndexInformer<K>
    where
        K: Object + Send + Sync + 'static,
        L: ListerWatcher<K>,
    {
        self.keyed_informer(InformerKey::of::<K>(scope.clone()), make)
    }

    /// The informer of `K` for one of the resources a type of several resources serves (a
    /// `DynamicObject`; `resource` names it, e.g. `apps/v1/deployments`) in `scope`, its
    /// lister-watcher made by `make` when it does not exist yet (client-go's
    /// `DynamicSharedInformerFactory.ForResource`; with the `rest` feature,
    /// `SharedInformerFactory<Client>::for_resource` does it from a `ResourceInfo`).
    pub fn informer_for_resource<K, L>(
        &self,
        resource: &str,
        scope: &InformerScope,
        make: impl FnOnce(&InformerScope) -> L,
    ) -> SharedIndexInformer<K>
    where
        K: Object + Send + Sync + 'static,
        L: ListerWatcher<K>,
    {
        self.keyed_informer(InformerKey::of_resource::<K>(resource, scope.clone()), make)
    }

    fn keyed_informer<K, L>(
        &self,
        key: InformerKey,
        make: impl FnOnce(&InformerScope) -> L,
    ) -> SharedIndexInformer<K>
    where
        K: Object + Send + Sync + 'static,
        L: ListerWatcher<K>,
    {
        let scope = key.scope.clone();
        let mut state = self.inner.state.lock();
        let existing = state
            .informers
            .get(&key)
            .and_then(|e| e.informer.as_any().downcast_ref::<SharedIndexInformer<K>>());
        if let Some(informer) = existing {
            return informer.clone();
        }
        let resync = self
            .inner
            .custom_resync
            .get(&TypeId::of::<K>())
            .copied()
            .unwrap_or(self.inner.default_resync);
        let mut builder = SharedIndexInformer::builder(make(&scope))
            .name(key.to_string())
            .resync_period(resync)
            .clock(Arc::clone(&self.inner.clock));
        if let Some(selector) = &scope.options.label_selector {
            builder = builder.label_selector(selector.clone());
        }
        if let Some(selector) = &scope.options.field_selector {
            builder = builder.field_selector(selector.clone());
        }
        let informer = builder.build();
        state.informers.insert(
            key,
            Entry {
                informer: Arc::new(informer.clone()),
                started: false,
            },
        );
        informer
    }

    /// The keys of the informers created so far.
    pub fn keys(&self) -> Vec<InformerKey> {
        self.inner.state.lock().informers.keys().cloned().collect()
    }

    /// Starts every informer not started yet, each on its own task, until `cancel` fires or
    /// [`shutdown`](Self::shutdown); returns how many were started. Can be called again for
    /// informers requested later; does nothing once shutting down (client-go's `Start`).
    pub fn start(&self, cancel: &CancellationToken) -> Result<usize, FactoryError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(FactoryError::NoRuntime)?;
        let mut state = self.inner.state.lock();
        if state.shutting_down {
            return Ok(0);
        }
        let mut started = 0;
        for (key, entry) in state.informers.iter_mut().filter(|(_, e)| !e.started) {
            entry.started = true;
            started += 1;
            let stop = self.inner.shutdown.child_token();
            let caller = cancel.clone();
            let informer = Arc::clone(&entry.informer);
            tracing::debug!(informer = %key, "starting informer");
            self.inner.tasks.spawn_on(
                async move {
                    let run = informer.run(stop.clone());
                    tokio::pin!(run);
                    tokio::select! {
                        _ = &mut run => return,
                        _ = caller.cancelled() => stop.cancel(),
                    }
                    run.await;
                },
                &runtime,
            );
        }
        Ok(started)
    }

    /// Waits for every started informer to sync, or for `cancel`; tells for each whether it
    /// synced (client-go's `WaitForCacheSync`, keyed by [`InformerKey`]).
    pub async fn wait_for_cache_sync(
        &self,
        cancel: &CancellationToken,
    ) -> HashMap<InformerKey, bool> {
        let started: Vec<(InformerKey, Arc<dyn ErasedInformer>)> = {
            let state = self.inner.state.lock();
            state
                .informers
                .iter()
                .filter(|(_, e)| e.started)
                .map(|(k, e)| (k.clone(), Arc::clone(&e.informer)))
                .collect()
        };
        let mut results = HashMap::with_capacity(started.len());
        for (key, informer) in started {
            let synced = tokio::select! {
                biased;
                _ = cancel.cancelled() => informer.has_synced(),
                _ = informer.wait_for_sync() => true,
            };
            results.insert(key, synced);
        }
        results
    }

    /// Stops every informer and waits for all their tasks to end; later
    /// [`start`](Self::start)s do nothing (client-go's `Shutdown`).
    pub async fn shutdown(&self) {
        self.inner.state.lock().shutting_down = true;
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}
