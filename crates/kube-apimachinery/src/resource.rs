//! Where a kind is served: group, version, kind, plural and scope.

use serde::{Deserialize, Serialize};

/// Whether objects of a resource live in namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Objects live in a namespace (pods, configmaps...).
    Namespaced,
    /// Objects are cluster-wide (nodes, namespaces...).
    Cluster,
}

/// Where a kind is served: API group, version, kind, plural resource name and scope
/// (client-go's `GroupVersionResource` and `GroupVersionKind` together, with the scope of
/// `APIResource`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceInfo {
    /// The API group (`""` for the core group).
    pub group: String,
    /// The version (`v1`).
    pub version: String,
    /// The kind (`Deployment`).
    pub kind: String,
    /// The plural resource name used in URLs (`deployments`).
    pub plural: String,
    /// Whether objects live in namespaces.
    pub scope: Scope,
}

impl ResourceInfo {
    /// A resource of a group and version (`group` `""` for the core group).
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, scope: Scope) -> ResourceInfo {
        ResourceInfo {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            scope,
        }
    }

    /// The info of a k8s-openapi type (feature `k8s-openapi`, on by default).
    ///
    /// ```
    /// use k8s_openapi::api::apps::v1::Deployment;
    /// use kube_apimachinery::{ResourceInfo, Scope};
    ///
    /// let info = ResourceInfo::of::<Deployment>();
    /// assert_eq!(info.api_version(), "apps/v1");
    /// assert_eq!(info.plural, "deployments");
    /// assert_eq!(info.scope, Scope::Namespaced);
    /// ```
    #[cfg(feature = "k8s-openapi")]
    pub fn of<K>() -> ResourceInfo
    where
        K: k8s_openapi::Resource<Scope: 'static>,
    {
        let namespaced = std::any::TypeId::of::<K::Scope>()
            == std::any::TypeId::of::<k8s_openapi::NamespaceResourceScope>();
        ResourceInfo {
            group: K::GROUP.into(),
            version: K::VERSION.into(),
            kind: K::KIND.into(),
            plural: K::URL_PATH_SEGMENT.into(),
            scope: if namespaced {
                Scope::Namespaced
            } else {
                Scope::Cluster
            },
        }
    }

    /// Whether objects live in namespaces.
    pub fn is_namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (`deployments.apps`), or `plural` for the core group: the name kubectl
    /// and error messages use.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

#[cfg(all(test, feature = "k8s-openapi"))]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Namespace, Pod};

    #[test]
    fn scope_and_names_of_typed_resources() {
        let pod = ResourceInfo::of::<Pod>();
        assert_eq!(
            (pod.api_version(), pod.group_resource()),
            ("v1".into(), "pods".into())
        );
        assert!(pod.is_namespaced());
        assert_eq!(ResourceInfo::of::<Namespace>().scope, Scope::Cluster);
        let crd = ResourceInfo::new("example.com", "v1", "PodSet", "podsets", Scope::Namespaced);
        assert_eq!(crd.api_version(), "example.com/v1");
        assert_eq!(crd.group_resource(), "podsets.example.com");
    }
}
