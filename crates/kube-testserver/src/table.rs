//! Server-side printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): the columns
//! `kubectl get` shows, for the common built-in kinds, and Name/Age for everything else.

use serde_json::{Value, json};

use crate::object::meta_str;
use crate::registry::ResourceType;

/// Whether an `Accept` header asks for a `meta.k8s.io` Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
    })
}

/// A column: name, type, priority (1 = only with `-o wide`).
type Column = (&'static str, &'static str, u8);

fn columns(resource: &ResourceType) -> Vec<Column> {
    let extra: &[Column] = match (resource.group.as_str(), resource.plural.as_str()) {
        ("", "pods") => &[
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
        ],
        ("", "namespaces") => &[("Status", "string", 0), ("Age", "string", 0)],
        ("", "nodes") => &[("Status", "string", 0), ("Age", "string", 0)],
        ("", "configmaps") => &[("Data", "integer", 0), ("Age", "string", 0)],
        ("", "secrets") => &[
            ("Type", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        ("", "services") => &[
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("Age", "string", 0),
        ],
        ("apps", "deployments") => &[
            ("Ready", "string", 0),
            ("Up-to-date", "string", 0),
            ("Available", "string", 0),
            ("Age", "string", 0),
        ],
        ("coordination.k8s.io", "leases") => &[("Holder", "string", 0), ("Age", "string", 0)],
        ("", "events") => &[
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _ => &[("Age", "string", 0)],
    };
    let mut all = vec![("Name", "string", 0)];
    all.extend_from_slice(extra);
    all
}

/// kubectl's short duration format (`5s`, `3m`, `2h`, `4d`).
fn age(created: Option<&str>, now: jiff::Timestamp) -> String {
    let Some(created) = created.and_then(|c| c.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".to_string();
    };
    let seconds = now.as_second().saturating_sub(created.as_second()).max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 2 => format!("{}m", s / 60),
        s if s < 86_400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".to_string(),
        other => other.to_string(),
    }
}

fn count(value: &Value) -> usize {
    value.as_object().map_or(0, |m| m.len())
}

fn cell(resource: &ResourceType, column: &str, object: &Value, now: jiff::Timestamp) -> Value {
    let created = meta_str(object, "creationTimestamp");
    match column {
        "Name" => json!(meta_str(object, "name").unwrap_or("")),
        "Age" => json!(age(created, now)),
        _ => match (resource.plural.as_str(), column) {
            ("pods", "Ready") => {
                let total = object["spec"]["containers"].as_array().map_or(0, Vec::len);
                let ready = object["status"]["containerStatuses"]
                    .as_array()
                    .map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
                json!(format!("{ready}/{total}"))
            }
            ("pods", "Status") => {
                if meta_str(object, "deletionTimestamp").is_some() {
                    json!("Terminating")
                } else {
                    json!(
                        object["status"]["reason"]
                            .as_str()
                            .or(object["status"]["phase"].as_str())
                            .unwrap_or("Unknown")
                    )
                }
            }
            ("pods", "Restarts") => {
                let restarts: i64 = object["status"]["containerStatuses"]
                    .as_array()
                    .map_or(0, |s| {
                        s.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
                    });
                json!(restarts.to_string())
            }
            ("pods", "IP") => json!(text(&object["status"]["podIP"])),
            ("pods", "Node") => json!(text(&object["spec"]["nodeName"])),
            ("namespaces", "Status") => json!(text(&object["status"]["phase"])),
            ("nodes", "Status") => {
                let ready = object["status"]["conditions"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                    .map(|c| c["status"] == "True");
                json!(match ready {
                    Some(true) => "Ready",
                    Some(false) => "NotReady",
                    None => "Unknown",
                })
            }
            ("configmaps", "Data") => json!(count(&object["data"]) + count(&object["binaryData"])),
            ("secrets", "Data") => json!(count(&object["data"])),
            ("secrets", "Type") => json!(text(&object["type"])),
            ("services", "Type") => json!(object["spec"]["type"].as_str().unwrap_or("ClusterIP")),
            ("services", "Cluster-IP") => json!(text(&object["spec"]["clusterIP"])),
            ("deployments", "Ready") => json!(format!(
                "{}/{}",
                object["status"]["readyReplicas"].as_i64().unwrap_or(0),
                object["spec"]["replicas"].as_i64().unwrap_or(1)
            )),
            ("deployments", "Up-to-date") => {
                json!(object["status"]["updatedReplicas"].as_i64().unwrap_or(0))
            }
            ("deployments", "Available") => {
                json!(object["status"]["availableReplicas"].as_i64().unwrap_or(0))
            }
            ("leases", "Holder") => json!(text(&object["spec"]["holderIdentity"])),
            ("events", "Type") => json!(text(&object["type"])),
            ("events", "Reason") => json!(text(&object["reason"])),
            ("events", "Object") => json!(format!(
                "{}/{}",
                object["involvedObject"]["kind"]
                    .as_str()
                    .unwrap_or("")
                    .to_lowercase(),
                object["involvedObject"]["name"].as_str().unwrap_or("")
            )),
            ("events", "Message") => json!(text(&object["message"])),
            _ => Value::Null,
        },
    }
}

fn row(resource: &ResourceType, columns: &[Column], object: &Value, now: jiff::Timestamp) -> Value {
    let cells: Vec<Value> = columns
        .iter()
        .map(|(name, _, _)| cell(resource, name, object, now))
        .collect();
    json!({
        "cells": cells,
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        },
    })
}

/// A Table of `objects`; `with_columns` false omits the column definitions (later watch events).
pub fn table(
    resource: &ResourceType,
    objects: &[&Value],
    resource_version: &str,
    continue_token: Option<&str>,
    with_columns: bool,
) -> Value {
    let columns = columns(resource);
    let now = jiff::Timestamp::now();
    let definitions: Vec<Value> = if with_columns {
        columns
            .iter()
            .map(|(name, kind, priority)| {
                json!({
                    "name": name,
                    "type": kind,
                    "format": if *name == "Name" { "name" } else { "" },
                    "description": "",
                    "priority": priority,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": objects.iter().map(|o| row(resource, &columns, o, now)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn pods_print_like_kubectl() {
        let registry = Registry::with_builtins();
        let pods = registry.get("", "v1", "pods").unwrap();
        let pod = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [{"ready": true, "restartCount": 2}, {"ready": false, "restartCount": 1}]}});
        let t = table(&pods, &[&pod], "7", None, true);
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "3");
        assert!(cells[4].as_str().unwrap().ends_with('d'));
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "web");
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
