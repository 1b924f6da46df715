//! CustomResourceDefinitions: creating one serves its resource, deleting one stops serving it.

use serde_json::{Value, json};

use crate::registry::{ALL_VERBS, PrinterColumn, Registry, ResourceType};

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The `additionalPrinterColumns` of a CRD version; the API server's default (`Age`, from
/// `.metadata.creationTimestamp`) when it has none.
fn printer_columns(version: &Value) -> Vec<PrinterColumn> {
    let Some(columns) = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        return vec![PrinterColumn {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        }];
    };
    let text = |c: &Value, key: &str| c.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    columns
        .iter()
        .map(|c| PrinterColumn {
            name: text(c, "name"),
            type_: text(c, "type"),
            format: text(c, "format"),
            description: text(c, "description"),
            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            json_path: text(c, "jsonPath"),
        })
        .collect()
}

/// The resource types a CRD object defines (one per served version).
pub fn resource_types(crd: &Value) -> Vec<ResourceType> {
    let spec = crd.get("spec").cloned().unwrap_or_default();
    let names = spec.get("names").cloned().unwrap_or_default();
    let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
    let plural = names.get("plural").and_then(Value::as_str).unwrap_or("");
    let kind = names.get("kind").and_then(Value::as_str).unwrap_or("");
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map_or_else(|| kind.to_lowercase(), str::to_string);
    let list_kind = names
        .get("listKind")
        .and_then(Value::as_str)
        .map_or_else(|| format!("{kind}List"), str::to_string);
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
        .filter_map(|v| {
            let version = v.get("name").and_then(Value::as_str)?;
            Some(ResourceType {
                group: group.to_string(),
                version: version.to_string(),
                plural: plural.to_string(),
                singular: singular.clone(),
                kind: kind.to_string(),
                list_kind: list_kind.clone(),
                namespaced,
                verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
                short_names: string_list(names.get("shortNames")),
                status_subresource: v
                    .get("subresources")
                    .and_then(|s| s.get("status"))
                    .is_some(),
                has_generation: true,
                field_labels: Vec::new(),
                categories: string_list(names.get("categories")),
                storage: None,
                custom: true,
                printer_columns: printer_columns(v),
            })
        })
        .collect()
}

/// The status the API server gives an accepted CRD.
pub fn accepted_status(crd: &Value) -> Value {
    let spec = crd.get("spec").cloned().unwrap_or_default();
    let stored: Vec<Value> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let now = crate::object::now_rfc3339();
    json!({
        "acceptedNames": spec.get("names").cloned().unwrap_or_default(),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now}
        ],
        "storedVersions": stored,
    })
}

/// Serves the resources of `crd`.
pub fn register(registry: &Registry, crd: &Value) {
    for resource in resource_types(crd) {
        tracing::debug!(group = %resource.group, version = %resource.version, plural = %resource.plural, "serving custom resource");
        registry.register(resource);
    }
}

/// Stops serving the resources of `crd`.
pub fn unregister(registry: &Registry, crd: &Value) {
    // Only once the CRD is really gone (not while it is terminating with finalizers).
    if crd
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
    {
        return;
    }
    if let Some(resource) = resource_types(crd).first() {
        registry.unregister(&resource.group, &resource.plural);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_defines_served_versions() {
        let crd = json!({"spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                         {"name": "v0", "served": false, "storage": false}]}});
        let types = resource_types(&crd);
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].list_kind, "WidgetList");
        assert!(types[0].status_subresource && types[0].namespaced && types[0].custom);
        let registry = Registry::default();
        register(&registry, &crd);
        assert!(registry.get("example.com", "v1", "widgets").is_some());
        unregister(&registry, &crd);
        assert!(registry.get("example.com", "v1", "widgets").is_none());
        assert_eq!(accepted_status(&crd)["storedVersions"], json!(["v1"]));
    }
}
