//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch
//! (for built-in types: lists of named items merge by their key) and apply patches.

use serde_json::{Map, Value};

use crate::status::ApiError;

/// The patch types the server accepts, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// The merge key of a list field in built-in types, for strategic merge patch.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => Some("name"),
        // Container ports; service ports (keyed by `port`) are not told apart here.
        "ports" => Some("containerPort"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

fn strategic_merge_value(target: &mut Value, patch: &Value, field: Option<&str>) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => merge_maps(target, patch),
        (Value::Array(target), Value::Array(patch)) => match field.and_then(merge_key) {
            Some(key) => merge_lists_by_key(target, patch, key),
            None => *target = patch.clone(),
        },
        (target, patch) => *target = strip_directives(patch),
    }
}

fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !k.starts_with("$") && !v.is_null())
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn merge_maps(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = match strip_directives(&Value::Object(patch.clone())) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        return;
    }
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            target.remove(key);
            continue;
        }
        match target.get_mut(key) {
            Some(existing) if existing.is_object() || existing.is_array() => {
                strategic_merge_value(existing, value, Some(key))
            }
            _ => {
                target.insert(key.clone(), strip_directives(value));
            }
        }
    }
}

fn merge_lists_by_key(target: &mut Vec<Value>, patch: &[Value], key: &str) {
    for item in patch {
        let Some(id) = item.get(key) else {
            target.push(strip_directives(item));
            continue;
        };
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        let position = target.iter().position(|t| t.get(key) == Some(id));
        match (position, delete) {
            (Some(i), true) => {
                target.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge_value(&mut target[i], item, None),
            (None, false) => target.push(strip_directives(item)),
        }
    }
}

/// Applies a strategic merge patch to `target`.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target.is_object(), patch.is_object()) {
        (true, true) => strategic_merge_value(target, patch, None),
        _ => *target = strip_directives(patch),
    }
}

/// Applies `patch` of `patch_type` to `current`, returning the patched object.
pub fn apply_patch(current: &Value, patch_type: PatchType, body: &[u8]) -> Result<Value, ApiError> {
    let mut patched = current.clone();
    match patch_type {
        PatchType::Json => {
            let operations: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("json: {e}")))?;
            json_patch::patch(&mut patched, &operations).map_err(|_| ApiError::unprocessable())?;
        }
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("json: {e}")))?;
            json_patch::merge(&mut patched, &patch);
        }
        PatchType::StrategicMerge => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("json: {e}")))?;
            strategic_merge(&mut patched, &patch);
        }
        PatchType::Apply => {
            let patch = parse_apply_body(body)?;
            strategic_merge(&mut patched, &patch);
        }
    }
    Ok(patched)
}

/// Parses an apply patch body (YAML or JSON).
pub fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_yaml_ng::from_slice::<Value>(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "main", "image": "busybox", "command": ["sh"]},
            {"name": "side", "image": "nginx"}
        ]}});
        strategic_merge(
            &mut pod,
            &json!({"spec": {"containers": [{"name": "main", "image": "busybox:1.35.0"}]}}),
        );
        assert_eq!(pod["spec"]["containers"][0]["image"], "busybox:1.35.0");
        assert_eq!(pod["spec"]["containers"][0]["command"], json!(["sh"]));
        assert_eq!(pod["spec"]["containers"][1]["name"], "side");
        strategic_merge(
            &mut pod,
            &json!({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}),
        );
        assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn strategic_merge_replaces_plain_lists_and_deletes_nulls() {
        let mut cm = json!({"metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}}});
        strategic_merge(
            &mut cm,
            &json!({"metadata": {"finalizers": ["b"], "labels": {"x": null}}}),
        );
        assert_eq!(cm["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(cm["metadata"]["labels"], json!({"y": "2"}));
    }

    #[test]
    fn json_patch_errors_are_422() {
        let err = apply_patch(
            &json!({"metadata": {}}),
            PatchType::Json,
            br#"[{"op":"replace","path":"/metadata/nosuch/x","value":"x"}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        let ok = apply_patch(
            &json!({"metadata": {"labels": {}}}),
            PatchType::Json,
            br#"[{"op":"add","path":"/metadata/labels/a","value":"b"}]"#,
        )
        .unwrap();
        assert_eq!(ok["metadata"]["labels"]["a"], "b");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(PatchType::from_content_type("text/plain"), None);
    }
}
