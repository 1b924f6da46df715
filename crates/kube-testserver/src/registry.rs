//! The resources the server serves: group, version, names, scope, verbs, subresources.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

/// The verbs every built-in resource supports.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served resource (what discovery's `APIResource` describes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group ("" for the core group).
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Plural resource name used in URLs (`pods`).
    pub plural: String,
    /// Singular name (`pod`).
    pub singular: String,
    /// Kind of one object (`Pod`).
    pub kind: String,
    /// Kind of a list (`PodList`).
    pub list_kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Verbs allowed on the resource.
    pub verbs: Vec<String>,
    /// Short names (`po`).
    pub short_names: Vec<String>,
    /// Whether the resource has a `/status` subresource (main updates then ignore `.status`).
    pub status_subresource: bool,
    /// Whether `metadata.generation` is maintained (bumped when anything but status and
    /// metadata changes).
    pub has_generation: bool,
    /// Extra field labels that field selectors accept, besides `metadata.name` and
    /// `metadata.namespace`.
    pub field_labels: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Where the objects are stored: resources that are views of another (events.k8s.io/v1
    /// events over core/v1 events) name it here.
    pub storage: Option<(String, String)>,
    /// Whether the resource comes from a CustomResourceDefinition (list items then keep their
    /// `apiVersion` and `kind`, as for real custom resources).
    pub custom: bool,
    /// The `additionalPrinterColumns` of a custom resource's version: the columns of its
    /// server-side Table after `Name`.
    pub printer_columns: Vec<PrinterColumn>,
}

/// A CRD's `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    /// The column's name (`Ready`).
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: String,
    /// The OpenAPI format (`int32`, `name`...), or empty.
    pub format: String,
    /// A human-readable description.
    pub description: String,
    /// 0 for `kubectl get`, more for `-o wide` only.
    pub priority: i64,
    /// A simple JSONPath into the object (`.status.readyReplicas`).
    pub json_path: String,
}

impl ResourceType {
    /// `apiVersion` of the objects (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `leases.coordination.k8s.io`: how error messages name the resource.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The key under which objects are stored (group, plural), shared by all versions.
    pub fn storage_key(&self) -> (String, String) {
        self.storage
            .clone()
            .unwrap_or_else(|| (self.group.clone(), self.plural.clone()))
    }

    /// Whether field selectors may use `label`.
    pub fn supports_field_label(&self, label: &str) -> bool {
        label == "metadata.name"
            || (label == "metadata.namespace" && self.namespaced)
            || self.field_labels.iter().any(|l| l == label)
    }
}

/// Builder-ish constructor for the built-in table.
struct Def {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    generation: bool,
    fields: &'static [&'static str],
    all: bool,
}

impl Def {
    fn build(&self) -> ResourceType {
        ResourceType {
            group: self.group.to_string(),
            version: self.version.to_string(),
            plural: self.plural.to_string(),
            singular: self.kind.to_lowercase(),
            kind: self.kind.to_string(),
            list_kind: format!("{}List", self.kind),
            namespaced: self.namespaced,
            verbs: ALL_VERBS.iter().map(|v| v.to_string()).collect(),
            short_names: self.short.iter().map(|s| s.to_string()).collect(),
            status_subresource: self.status,
            has_generation: self.generation,
            field_labels: self.fields.iter().map(|s| s.to_string()).collect(),
            categories: if self.all {
                vec!["all".to_string()]
            } else {
                Vec::new()
            },
            storage: None,
            custom: false,
            printer_columns: Vec::new(),
        }
    }
}

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

const BUILTINS: &[Def] = &[
    Def {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        short: &["ns"],
        status: true,
        generation: false,
        fields: &["status.phase"],
        all: false,
    },
    Def {
        group: "",
        version: "v1",
        plural: "nodes",
        kind: "Node",
        namespaced: false,
        short: &["no"],
        status: true,
        generation: false,
        fields: &["spec.unschedulable"],
        all: false,
    },
    Def {
        group: "",
        version: "v1",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
        short: &["po"],
        status: true,
        generation: false,
        fields: POD_FIELDS,
        all: true,
    },
    Def {
        group: "",
        version: "v1",
        plural: "services",
        kind: "Service",
        namespaced: true,
        short: &["svc"],
        status: true,
        generation: false,
        fields: &[],
        all: true,
    },
    Def {
        group: "",
        version: "v1",
        plural: "endpoints",
        kind: "Endpoints",
        namespaced: true,
        short: &["ep"],
        status: false,
        generation: false,
        fields: &[],
        all: false,
    },
    Def {
        group: "",
        version: "v1",
        plural: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        short: &["cm"],
        status: false,
        generation: false,
        fields: &[],
        all: false,
    },
    Def {
        group: "",
        version: "v1",
        plural: "secrets",
        kind: "Secret",
        namespaced: true,
        short: &[],
        status: false,
        generation: false,
        fields: &["type"],
        all: false,
    },
    Def {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
        short: &["sa"],
        status: false,
        generation: false,
        fields: &[],
        all: false,
    },
    Def {
        group: "",
        version: "v1",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        status: false,
        generation: false,
        fields: EVENT_FIELDS,
        all: false,
    },
    Def {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        status: false,
        generation: false,
        fields: &[],
        all: false,
    },
    Def {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        short: &[],
        status: false,
        generation: false,
        fields: &[],
        all: false,
    },
    Def {
        group: "apps",
        version: "v1",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        short: &["deploy"],
        status: true,
        generation: true,
        fields: &[],
        all: true,
    },
    Def {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        kind: "ReplicaSet",
        namespaced: true,
        short: &["rs"],
        status: true,
        generation: true,
        fields: &[],
        all: true,
    },
    Def {
        group: "batch",
        version: "v1",
        plural: "jobs",
        kind: "Job",
        namespaced: true,
        short: &[],
        status: true,
        generation: true,
        fields: &[],
        all: true,
    },
    Def {
        group: "batch",
        version: "v1",
        plural: "cronjobs",
        kind: "CronJob",
        namespaced: true,
        short: &["cj"],
        status: true,
        generation: true,
        fields: &[],
        all: true,
    },
    Def {
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short: &["crd", "crds"],
        status: true,
        generation: true,
        fields: &[],
        all: false,
    },
];

/// The set of served resources; CustomResourceDefinitions add to it at runtime.
#[derive(Debug, Default)]
pub struct Registry {
    types: RwLock<Vec<Arc<ResourceType>>>,
    by_path: RwLock<HashMap<(String, String, String), Arc<ResourceType>>>,
}

impl Registry {
    /// A registry with the built-in resources.
    pub fn with_builtins() -> Registry {
        let registry = Registry::default();
        for def in BUILTINS {
            let mut resource = def.build();
            if resource.group == "events.k8s.io" {
                // events.k8s.io/v1 is another view of the core/v1 events.
                resource.field_labels = EVENT_FIELDS.iter().map(|s| s.to_string()).collect();
                resource.storage = Some((String::new(), "events".to_string()));
            }
            registry.register(resource);
        }
        if let Some(namespaces) = registry.get("", "v1", "namespaces") {
            // The real server serves no deletecollection on namespaces.
            let mut namespaces = (*namespaces).clone();
            namespaces.verbs.retain(|v| v != "deletecollection");
            registry.register(namespaces);
        }
        registry
    }

    /// Adds (or replaces) a resource.
    pub fn register(&self, resource: ResourceType) {
        let resource = Arc::new(resource);
        let key = (
            resource.group.clone(),
            resource.version.clone(),
            resource.plural.clone(),
        );
        let mut types = self.types.write();
        types.retain(|t| {
            (t.group.as_str(), t.version.as_str(), t.plural.as_str())
                != (key.0.as_str(), key.1.as_str(), key.2.as_str())
        });
        types.push(Arc::clone(&resource));
        self.by_path.write().insert(key, resource);
    }

    /// Removes every version of `group`/`plural` (when its CRD is deleted).
    pub fn unregister(&self, group: &str, plural: &str) {
        self.types
            .write()
            .retain(|t| !(t.group == group && t.plural == plural));
        self.by_path
            .write()
            .retain(|(g, _, p), _| !(g == group && p == plural));
    }

    /// The resource served at `group`/`version`/`plural`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.by_path
            .read()
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Every resource, in registration order.
    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        self.types.read().clone()
    }

    /// Whether `group`/`version` is served at all.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.types
            .read()
            .iter()
            .any(|t| t.group == group && t.version == version)
    }

    /// The served groups other than the core group, each with its versions, in registration
    /// order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.read().iter().filter(|t| !t.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_served() {
        let registry = Registry::with_builtins();
        let pods = registry.get("", "v1", "pods").unwrap();
        assert_eq!(pods.kind, "Pod");
        assert_eq!(pods.list_kind, "PodList");
        assert!(pods.namespaced && pods.status_subresource);
        assert!(pods.supports_field_label("status.phase"));
        assert!(!pods.supports_field_label("spec.foo"));
        let leases = registry.get("coordination.k8s.io", "v1", "leases").unwrap();
        assert_eq!(leases.qualified_plural(), "leases.coordination.k8s.io");
        assert_eq!(leases.api_version(), "coordination.k8s.io/v1");
        let events = registry.get("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(events.storage_key(), (String::new(), "events".to_string()));
        assert!(registry.groups().iter().any(|(g, _)| g == "apps"));
    }
}
