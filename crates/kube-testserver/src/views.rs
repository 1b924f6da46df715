//! Resources that are another view of stored objects: events.k8s.io/v1 events are core/v1
//! events, converted field by field as the real server does.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::registry::{Registry, ResourceType};

/// (core/v1 field, events.k8s.io/v1 field) pairs.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("related", "related"),
    ("message", "note"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn is_events_v1(resource: &ResourceType) -> bool {
    resource.group == "events.k8s.io"
}

/// Whether `resource` shows its stored objects converted (not as they are stored).
pub fn is_view(resource: &ResourceType) -> bool {
    is_events_v1(resource)
}

fn convert(object: &Value, from_core: bool, api_version: &str) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version.to_string()));
    out.insert("kind".into(), Value::String("Event".to_string()));
    if let Some(metadata) = object.get("metadata") {
        out.insert("metadata".into(), metadata.clone());
    }
    for (core, v1) in EVENT_FIELDS {
        let (from, to) = if from_core { (core, v1) } else { (v1, core) };
        if let Some(value) = object.get(*from) {
            out.insert((*to).to_string(), value.clone());
        }
    }
    Value::Object(out)
}

/// The object as `resource` presents it.
pub fn for_resource(resource: &ResourceType, stored: &Value) -> Value {
    if is_events_v1(resource) {
        convert(stored, true, &resource.api_version())
    } else {
        stored.clone()
    }
}

/// The object as a list item of `resource`: built-in kinds drop `apiVersion` and `kind`.
pub fn list_item(resource: &ResourceType, stored: &Value) -> Value {
    strip_list_item(resource, for_resource(resource, stored))
}

/// An object already in `resource`'s form, as a list item.
pub fn strip_list_item(resource: &ResourceType, mut item: Value) -> Value {
    if !resource.custom
        && let Some(map) = item.as_object_mut()
    {
        map.remove("apiVersion");
        map.remove("kind");
    }
    item
}

/// A client-supplied object of `resource` in its stored form.
pub fn to_storage(resource: &ResourceType, object: Value) -> Value {
    if is_events_v1(resource) {
        convert(&object, false, "v1")
    } else {
        object
    }
}

/// The resource whose rules (validation, defaults, kind) apply to the stored objects.
pub fn storage_resource(registry: &Registry, resource: &Arc<ResourceType>) -> Arc<ResourceType> {
    match &resource.storage {
        Some((group, plural)) => registry
            .all()
            .into_iter()
            .find(|r| &r.group == group && &r.plural == plural && r.storage.is_none())
            .unwrap_or_else(|| Arc::clone(resource)),
        None => Arc::clone(resource),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_convert_both_ways() {
        let registry = Registry::with_builtins();
        let v1 = registry.get("events.k8s.io", "v1", "events").unwrap();
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p1"}, "message": "hi", "count": 2});
        let view = for_resource(&v1, &core);
        assert_eq!(view["apiVersion"], "events.k8s.io/v1");
        assert_eq!(view["regarding"]["name"], "p1");
        assert_eq!(view["note"], "hi");
        assert_eq!(view["deprecatedCount"], 2);
        let back = to_storage(&v1, view);
        assert_eq!(back["involvedObject"]["name"], "p1");
        assert_eq!(back["apiVersion"], "v1");
        assert_eq!(storage_resource(&registry, &v1).group, "");
    }
}
