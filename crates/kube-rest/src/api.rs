//! The typed API: `Api<K>` for any k8s-openapi resource, and for [`DynamicObject`]s of any
//! group, version and resource.

use std::fmt;
use std::marker::PhantomData;

use http::Method;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ClusterResourceScope, Metadata, NamespaceResourceScope, Resource};
use kube_apimachinery::{DynamicObject, ListParams, ObjectList, ResourceInfo, WatchParams};
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Client, RequestBuilder};
use crate::error::Error;
use crate::params::{DeleteParams, Patch, PatchParams, PostParams};
use crate::watch::WatchStream;

/// What a typed [`Api`] needs of its object type (implemented by every k8s-openapi resource
/// with `ObjectMeta` metadata).
pub trait ApiResource:
    Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Serialize + Clone + Send + 'static
{
}

impl<K> ApiResource for K where
    K: Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Serialize + Clone + Send + 'static
{
}

/// Typed access to one kind, in one namespace, in all namespaces, or cluster-wide.
///
/// `K` is a k8s-openapi type ([`Api::namespaced`], [`Api::cluster`]...) or [`DynamicObject`]
/// ([`Api::dynamic`]).
pub struct Api<K> {
    client: Client,
    resource: ResourceInfo,
    namespace: Option<String>,
    /// A namespaced kind seen across all namespaces: single-object calls are refused.
    all_namespaces: bool,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            client: self.client.clone(),
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            all_namespaces: self.all_namespaces,
            _kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Api<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("kind", &self.resource.kind)
            .field("api_version", &self.resource.api_version())
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl Api<DynamicObject> {
    /// Objects of the resource `info` in `namespace`; `None` means cluster-wide for a
    /// cluster-scoped resource and all namespaces for a namespaced one. A namespace given for
    /// a cluster-scoped resource is ignored; an empty namespace (`Some("")`) is refused by every
    /// call, never widened to all namespaces.
    pub fn dynamic(
        client: Client,
        info: &ResourceInfo,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        let namespace = namespace.filter(|_| info.is_namespaced());
        Api {
            client,
            resource: info.clone(),
            namespace: namespace.map(str::to_string),
            all_namespaces: info.is_namespaced() && namespace.is_none(),
            _kind: PhantomData,
        }
    }
}

impl<K: ApiResource + Resource<Scope = NamespaceResourceScope>> Api<K> {
    /// Objects in `namespace`. An empty namespace is refused by every call with a clear error
    /// (client-go's preflight check), never widened to all namespaces: use
    /// [`Api::all_namespaces`] for that.
    pub fn namespaced(client: Client, namespace: &str) -> Api<K> {
        Api {
            resource: ResourceInfo::of::<K>(),
            client,
            namespace: Some(namespace.to_string()),
            all_namespaces: false,
            _kind: PhantomData,
        }
    }

    /// Objects in the namespace of the client's context.
    pub fn default_namespaced(client: Client) -> Api<K> {
        let namespace = client.default_namespace().to_string();
        Api {
            resource: ResourceInfo::of::<K>(),
            client,
            namespace: Some(namespace),
            all_namespaces: false,
            _kind: PhantomData,
        }
    }

    /// Objects in every namespace (list and watch; single-object calls need a namespace).
    pub fn all_namespaces(client: Client) -> Api<K> {
        Api {
            resource: ResourceInfo::of::<K>(),
            client,
            namespace: None,
            all_namespaces: true,
            _kind: PhantomData,
        }
    }
}

impl<K: ApiResource + Resource<Scope = ClusterResourceScope>> Api<K> {
    /// Cluster-scoped objects.
    pub fn cluster(client: Client) -> Api<K> {
        Api {
            resource: ResourceInfo::of::<K>(),
            client,
            namespace: None,
            all_namespaces: false,
            _kind: PhantomData,
        }
    }
}

impl<K> Api<K>
where
    K: DeserializeOwned + Serialize + Clone + Send + 'static,
{
    /// Where this API's kind is served.
    pub fn resource(&self) -> &ResourceInfo {
        &self.resource
    }

    /// The namespace this API is bound to (`None`: all namespaces or cluster-scoped).
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The client this API sends its requests with (to build a request this API has no
    /// method for, such as kube-cache's list decoding that skips `managedFields`).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn request(&self, verb: Method) -> RequestBuilder<'_> {
        self.client
            .request(verb)
            .group_version(&self.resource.group, &self.resource.version)
            .namespace(self.namespace.as_deref())
            .resource(&self.resource.plural)
    }

    fn object_request(&self, verb: Method, name: &str) -> Result<RequestBuilder<'_>, Error> {
        self.check_namespace()?;
        Ok(self.request(verb).name(name))
    }

    /// A request on a subresource of one object (`pods/{name}/log`).
    pub(crate) fn subresource_request(
        &self,
        verb: Method,
        name: &str,
        subresource: &str,
    ) -> Result<RequestBuilder<'_>, Error> {
        Ok(self.object_request(verb, name)?.subresource(subresource))
    }

    /// Refuses single-object calls and creations on an `Api` that sees all namespaces.
    fn check_namespace(&self) -> Result<(), Error> {
        if self.all_namespaces {
            return Err(Error::Request(format!(
                "{} is namespaced: this call needs an Api bound to a namespace, not all_namespaces",
                self.resource.kind
            )));
        }
        Ok(())
    }

    /// Gets an object by name.
    pub async fn get(&self, name: &str) -> Result<K, Error> {
        self.object_request(Method::GET, name)?.json().await
    }

    /// Gets an object by name, `None` when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>, Error> {
        match self.get(name).await {
            Ok(object) => Ok(Some(object)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists one page of objects.
    pub async fn list(&self, params: &ListParams) -> Result<ObjectList<K>, Error> {
        self.request(Method::GET)
            .params(params.to_query())
            .json()
            .await
    }

    /// Lists every object, following continue tokens page by page (`params.limit` is the
    /// page size; 500 when unset, as kubectl). The result keeps the list's resourceVersion
    /// (the first page's: every page is served at it), from which a watch can start. A
    /// continue token that expired mid-way surfaces as an error with [`Error::is_gone`].
    pub async fn list_all(&self, params: &ListParams) -> Result<ObjectList<K>, Error> {
        let mut params = params.clone();
        if params.limit.is_none_or(|l| l == 0) {
            params.limit = Some(500);
        }
        let mut all = ObjectList::default();
        loop {
            let page = self.list(&params).await?;
            if all.metadata.resource_version.is_none() {
                all.metadata.resource_version = page.metadata.resource_version.clone();
            }
            all.items.extend(page.items);
            match page.metadata.continue_token.filter(|t| !t.is_empty()) {
                Some(token) => {
                    params.continue_token = Some(token);
                    // The continue token carries the resourceVersion of the first page.
                    params.resource_version = None;
                    params.resource_version_match = None;
                }
                None => return Ok(all),
            }
        }
    }

    /// Creates an object.
    pub async fn create(&self, params: &PostParams, object: &K) -> Result<K, Error> {
        self.check_namespace()?;
        self.request(Method::POST)
            .params(params.query())
            .json_body(object)
            .json()
            .await
    }

    /// Replaces an object (a `PUT`, with optimistic concurrency on its resourceVersion).
    pub async fn replace(&self, name: &str, params: &PostParams, object: &K) -> Result<K, Error> {
        self.object_request(Method::PUT, name)?
            .params(params.query())
            .json_body(object)
            .json()
            .await
    }

    /// Patches an object.
    pub async fn patch<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, Error> {
        self.patch_request(self.object_request(Method::PATCH, name)?, params, patch)?
            .json()
            .await
    }

    fn patch_request<'a, P: Serialize>(
        &self,
        request: RequestBuilder<'a>,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<RequestBuilder<'a>, Error> {
        if matches!(patch, Patch::Apply(_))
            && params.field_manager.as_deref().is_none_or(str::is_empty)
        {
            return Err(Error::Request(
                "an apply patch needs a field manager (PatchParams::apply)".into(),
            ));
        }
        if params.force && !matches!(patch, Patch::Apply(_)) {
            return Err(Error::Request(
                "force is only allowed with an apply patch".into(),
            ));
        }
        let body = patch
            .body()
            .map_err(|e| Error::Request(format!("serializing the patch: {e}")))?;
        Ok(request
            .params(params.query())
            .body(body, patch.content_type()))
    }

    /// Deletes an object. Returns the object when the deletion is pending (finalizers or a
    /// grace period), `None` when it is gone.
    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<Option<K>, Error> {
        let body = self
            .object_request(Method::DELETE, name)?
            .json_body(&params.body())
            .send()
            .await?;
        decode_object_or_status(&body)
    }

    /// Deletes every object matching `list` (selectors).
    pub async fn delete_collection(
        &self,
        params: &DeleteParams,
        list: &ListParams,
    ) -> Result<(), Error> {
        // Like create: an Api over all namespaces does not delete across all of them.
        self.check_namespace()?;
        self.request(Method::DELETE)
            .params(list.to_query())
            .json_body(&params.body())
            .send()
            .await?;
        Ok(())
    }

    /// Gets the status subresource.
    pub async fn get_status(&self, name: &str) -> Result<K, Error> {
        self.object_request(Method::GET, name)?
            .subresource("status")
            .json()
            .await
    }

    /// Replaces the status subresource.
    pub async fn replace_status(
        &self,
        name: &str,
        params: &PostParams,
        object: &K,
    ) -> Result<K, Error> {
        self.object_request(Method::PUT, name)?
            .subresource("status")
            .params(params.query())
            .json_body(object)
            .json()
            .await
    }

    /// Patches the status subresource.
    pub async fn patch_status<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, Error> {
        let request = self
            .object_request(Method::PATCH, name)?
            .subresource("status");
        self.patch_request(request, params, patch)?.json().await
    }

    /// Watches objects from `resource_version` (`""`: the current objects as `ADDED` first;
    /// `"0"`: from any cached state). The stream ends when the server closes the watch; an
    /// expired version arrives as a [`WatchEvent`](crate::WatchEvent)`::Error` with code 410; a
    /// stream cut in the middle of an event ends with [`Error::WatchTruncated`] (re-watch from
    /// the last resourceVersion seen, no relist needed).
    pub async fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<WatchStream<K>, Error> {
        let response = self
            .request(Method::GET)
            .params(params.to_query(resource_version))
            .send_streaming()
            .await?;
        Ok(WatchStream::from_stream(response.into_body()))
    }
}

fn decode_object_or_status<K: DeserializeOwned>(body: &[u8]) -> Result<Option<K>, Error> {
    #[derive(Deserialize)]
    struct Kind {
        #[serde(default)]
        kind: String,
    }
    let kind: Kind = serde_json::from_slice(body).map_err(|e| Error::decode("body", e))?;
    if kind.kind == "Status" {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| Error::decode("body", e))
}
