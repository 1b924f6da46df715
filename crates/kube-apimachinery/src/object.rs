//! The object-metadata trait every kube-toolkit crate works with, and [`DynamicObject`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::{Deserialize, Serialize};

use crate::resource::ResourceInfo;

static EMPTY_MAP: BTreeMap<String, String> = BTreeMap::new();

/// An API object with standard metadata: every k8s-openapi resource whose metadata is an
/// `ObjectMeta` (blanket impl), and [`DynamicObject`].
///
/// The accessors follow apimachinery's `meta.Object`: a missing name is `""`, a missing or
/// empty namespace is `None`, missing maps are empty. Method names avoid k8s-openapi's
/// `Metadata::metadata`, so both traits can be in scope.
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_apimachinery::Object;
///
/// let mut pod = Pod::default();
/// pod.meta_mut().name = Some("web-0".into());
/// pod.meta_mut().namespace = Some("prod".into());
/// assert_eq!(pod.name(), "web-0");
/// assert_eq!(pod.namespace(), Some("prod"));
/// assert!(pod.labels().is_empty());
/// ```
pub trait Object {
    /// The object's metadata.
    fn meta(&self) -> &ObjectMeta;

    /// The object's metadata, mutably.
    fn meta_mut(&mut self) -> &mut ObjectMeta;

    /// `metadata.name`, `""` when unset.
    fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or("")
    }

    /// `metadata.namespace`, `None` when unset or empty (cluster-scoped objects).
    fn namespace(&self) -> Option<&str> {
        self.meta().namespace.as_deref().filter(|ns| !ns.is_empty())
    }

    /// `metadata.resourceVersion`, `None` when unset or empty.
    fn resource_version(&self) -> Option<&str> {
        self.meta()
            .resource_version
            .as_deref()
            .filter(|rv| !rv.is_empty())
    }

    /// `metadata.uid`, `None` when unset or empty.
    fn uid(&self) -> Option<&str> {
        self.meta().uid.as_deref().filter(|uid| !uid.is_empty())
    }

    /// `metadata.generation`, 0 when unset.
    fn generation(&self) -> i64 {
        self.meta().generation.unwrap_or(0)
    }

    /// `metadata.labels`, empty when unset.
    fn labels(&self) -> &BTreeMap<String, String> {
        self.meta().labels.as_ref().unwrap_or(&EMPTY_MAP)
    }

    /// `metadata.annotations`, empty when unset.
    fn annotations(&self) -> &BTreeMap<String, String> {
        self.meta().annotations.as_ref().unwrap_or(&EMPTY_MAP)
    }

    /// `metadata.ownerReferences`, empty when unset.
    fn owner_references(&self) -> &[OwnerReference] {
        self.meta().owner_references.as_deref().unwrap_or(&[])
    }

    /// `metadata.finalizers`, empty when unset.
    fn finalizers(&self) -> &[String] {
        self.meta().finalizers.as_deref().unwrap_or(&[])
    }

    /// `metadata.deletionTimestamp`: set once a deletion was asked for.
    fn deletion_timestamp(&self) -> Option<&Time> {
        self.meta().deletion_timestamp.as_ref()
    }

    /// Whether a deletion was asked for (the object is terminating).
    fn is_being_deleted(&self) -> bool {
        self.meta().deletion_timestamp.is_some()
    }

    /// The owner reference marked `controller: true`, if any (apimachinery's
    /// `GetControllerOf`).
    fn controller_ref(&self) -> Option<&OwnerReference> {
        self.owner_references()
            .iter()
            .find(|r| r.controller == Some(true))
    }
}

impl<K> Object for K
where
    K: k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    fn meta(&self) -> &ObjectMeta {
        self.metadata()
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.metadata_mut()
    }
}

/// An object of any kind: typed metadata, everything else as JSON (client-go's
/// `unstructured.Unstructured`, with the metadata decoded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicObject {
    /// `apiVersion`.
    #[serde(
        rename = "apiVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub api_version: String,
    /// `kind`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The object's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Every other top-level field (`spec`, `status`, `data`...).
    #[serde(flatten)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl DynamicObject {
    /// An object of this kind with this name (apiVersion and kind filled in).
    pub fn new(name: &str, info: &ResourceInfo) -> DynamicObject {
        DynamicObject {
            api_version: info.api_version(),
            kind: info.kind.clone(),
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: serde_json::Map::new(),
        }
    }

    /// Sets the namespace.
    pub fn within(mut self, namespace: &str) -> DynamicObject {
        self.metadata.namespace = Some(namespace.into());
        self
    }

    /// Sets a top-level field.
    pub fn with(mut self, field: &str, value: serde_json::Value) -> DynamicObject {
        self.data.insert(field.into(), value);
        self
    }

    /// Converts to a typed object (through JSON).
    pub fn try_parse<K: serde::de::DeserializeOwned>(self) -> Result<K, serde_json::Error> {
        serde_json::to_value(self).and_then(serde_json::from_value)
    }
}

impl Object for DynamicObject {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};

    fn generic_name<K: Object>(object: &K) -> String {
        object.name().to_string()
    }

    #[test]
    fn blanket_and_dynamic_impls_agree() {
        let mut cm = ConfigMap::default();
        cm.meta_mut().name = Some("a".into());
        cm.meta_mut().namespace = Some(String::new());
        assert_eq!(generic_name(&cm), "a");
        assert_eq!(cm.namespace(), None, "an empty namespace is no namespace");
        let info = ResourceInfo::of::<ConfigMap>();
        let dynamic = DynamicObject::new("a", &info).within("ns");
        assert_eq!(generic_name(&dynamic), "a");
        assert_eq!(dynamic.namespace(), Some("ns"));
        assert_eq!(dynamic.api_version, "v1");
        assert_eq!(dynamic.kind, "ConfigMap");
    }

    #[test]
    fn controller_ref_is_the_one_marked_controller() {
        let mut pod = Pod::default();
        let owner = |name: &str, controller| OwnerReference {
            name: name.into(),
            controller,
            ..OwnerReference::default()
        };
        pod.meta_mut().owner_references = Some(vec![owner("a", None), owner("b", Some(true))]);
        assert_eq!(pod.controller_ref().map(|r| r.name.as_str()), Some("b"));
        assert!(!pod.is_being_deleted());
    }

    #[test]
    fn dynamic_object_round_trips_and_parses() {
        let json = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "d", "resourceVersion": "7"},
            "data": {"k": "v"}
        });
        let object: DynamicObject = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(object.resource_version(), Some("7"));
        assert_eq!(serde_json::to_value(&object).unwrap(), json);
        let cm: ConfigMap = object.try_parse().unwrap();
        assert_eq!(cm.data.unwrap()["k"], "v");
    }
}
