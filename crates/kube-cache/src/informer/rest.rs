//! Informers over kube-rest (feature `rest`): a `kube_rest::Client` makes the
//! lister-watcher of every k8s-openapi type for a
//! [`SharedInformerFactory`](super::SharedInformerFactory).

use kube_apimachinery::Object;
use kube_rest::k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, Resource};
use kube_rest::{Api, ApiResource, Client, DynamicObject, ResourceInfo};

use crate::informer::factory::{InformerScope, ListerWatcherFactory, SharedInformerFactory};
use crate::informer::shared::SharedIndexInformer;
use crate::lister_watcher::ListerWatcher;
use crate::rest::ApiListerWatcher;

/// How a resource's scope turns a namespace into an [`Api`]: all namespaces or one for a
/// namespaced kind, cluster-wide (the namespace ignored) for a cluster-scoped one.
pub trait InformerResourceScope: Sized {
    /// The `Api` of `K` for `namespace`.
    fn api<K>(client: Client, namespace: Option<&str>) -> Api<K>
    where
        K: ApiResource + Resource<Scope = Self>;
}

impl InformerResourceScope for NamespaceResourceScope {
    fn api<K>(client: Client, namespace: Option<&str>) -> Api<K>
    where
        K: ApiResource + Resource<Scope = Self>,
    {
        match namespace {
            Some(namespace) => Api::namespaced(client, namespace),
            None => Api::all_namespaces(client),
        }
    }
}

impl InformerResourceScope for ClusterResourceScope {
    fn api<K>(client: Client, _namespace: Option<&str>) -> Api<K>
    where
        K: ApiResource + Resource<Scope = Self>,
    {
        Api::cluster(client)
    }
}

/// A client makes the lister-watcher ([`ApiListerWatcher`]) of any k8s-openapi type:
/// `SharedInformerFactory::builder(client)` gives informers of every built-in type (client-go's
/// generated `informers` package).
impl<K> ListerWatcherFactory<K> for Client
where
    K: ApiResource + Object + Sync,
    K::Scope: InformerResourceScope,
    ApiListerWatcher<K>: ListerWatcher<K>,
{
    type ListerWatcher = ApiListerWatcher<K>;

    fn lister_watcher(&self, namespace: Option<&str>) -> ApiListerWatcher<K> {
        ApiListerWatcher::new(<K::Scope as InformerResourceScope>::api::<K>(
            self.clone(),
            namespace,
        ))
    }
}

/// Informers of any resource as [`DynamicObject`]s (client-go's `dynamicinformer`): one
/// informer per resource and scope, shared like the typed ones.
impl SharedInformerFactory<Client> {
    /// The informer of the resource `info` in the factory's scope, created on first request
    /// (client-go's `DynamicSharedInformerFactory.ForResource`). A namespace in the scope is
    /// ignored for a cluster-scoped resource.
    pub fn for_resource(&self, info: &ResourceInfo) -> SharedIndexInformer<DynamicObject> {
        self.for_resource_in(info, &self.scope().clone())
    }

    /// The informer of the resource `info` in another scope.
    pub fn for_resource_in(
        &self,
        info: &ResourceInfo,
        scope: &InformerScope,
    ) -> SharedIndexInformer<DynamicObject> {
        let client = self.source().clone();
        let name = resource_name(info);
        self.informer_for_resource(&name, scope, |scope| {
            ApiListerWatcher::new(Api::dynamic(client, info, scope.namespace.as_deref()))
        })
    }
}

/// `group/version/plural` (`v1/pods` for the core group): the name of a resource in
/// [`InformerKey`](crate::informer::InformerKey)s and informer names.
fn resource_name(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        format!("{}/{}", info.version, info.plural)
    } else {
        format!("{}/{}/{}", info.group, info.version, info.plural)
    }
}
