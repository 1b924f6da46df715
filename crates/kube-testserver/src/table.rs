//! Server-side printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): the columns
//! `kubectl get` shows, for the common built-in kinds, a custom resource's
//! `additionalPrinterColumns`, and Name/Age for everything else.

use std::borrow::Cow;

use serde_json::{Value, json};

use crate::object::meta_str;
use crate::registry::{PrinterColumn, ResourceType};

/// Whether an `Accept` header asks for a `meta.k8s.io` Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
    })
}

/// A column: name, type, priority (1 = only with `-o wide`).
type Builtin = (&'static str, &'static str, u8);

/// A column of a Table.
#[derive(Debug, Clone)]
struct Column {
    name: Cow<'static, str>,
    type_: Cow<'static, str>,
    format: Cow<'static, str>,
    description: Cow<'static, str>,
    priority: i64,
    /// Where a custom resource's column reads its value.
    json_path: Option<String>,
}

impl Column {
    fn builtin((name, type_, priority): Builtin) -> Column {
        Column {
            name: Cow::Borrowed(name),
            type_: Cow::Borrowed(type_),
            format: Cow::Borrowed(if name == "Name" { "name" } else { "" }),
            description: Cow::Borrowed(""),
            priority: i64::from(priority),
            json_path: None,
        }
    }

    fn custom(column: &PrinterColumn) -> Column {
        Column {
            name: Cow::Owned(column.name.clone()),
            type_: Cow::Owned(column.type_.clone()),
            format: Cow::Owned(column.format.clone()),
            // apiextensions-apiserver describes a column without a description by its path.
            description: Cow::Owned(if column.description.is_empty() {
                format!(
                    "Custom resource definition column (in JSONPath format): {}",
                    column.json_path
                )
            } else {
                column.description.clone()
            }),
            priority: column.priority,
            json_path: Some(column.json_path.clone()),
        }
    }
}

/// The description of `metadata.name` (the API server's, for the Name column).
const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

fn columns(resource: &ResourceType) -> Vec<Column> {
    if resource.custom && !resource.printer_columns.is_empty() {
        // apiextensions-apiserver's table convertor: Name, then the CRD's columns.
        let mut name = Column::builtin(("Name", "string", 0));
        name.description = Cow::Borrowed(NAME_DESCRIPTION);
        let mut all = vec![name];
        all.extend(resource.printer_columns.iter().map(Column::custom));
        return all;
    }
    if resource.group.is_empty() && resource.plural == "events" {
        // kube-apiserver's event printer: the name comes last, with `-o wide` only.
        return [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "string", 1),
            ("Name", "string", 1),
        ]
        .into_iter()
        .map(Column::builtin)
        .collect();
    }
    let extra: &[Builtin] = match (resource.group.as_str(), resource.plural.as_str()) {
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
        _ => &[("Age", "string", 0)],
    };
    let mut all = vec![Column::builtin(("Name", "string", 0))];
    all.extend(extra.iter().copied().map(Column::builtin));
    all
}

/// The value at a simple JSONPath (`.status.conditions[0].type`, optionally in braces), as
/// CRD printer columns allow them.
fn at_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let mut value = object;
    for segment in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        let (field, indexes) = match segment.find('[') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        if !field.is_empty() {
            value = value.get(field)?;
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            let index: usize = index.strip_suffix(']')?.parse().ok()?;
            value = value.get(index)?;
        }
    }
    Some(value)
}

/// A custom column's cell, as apiextensions-apiserver's `cellForJSONValue` makes it: typed
/// values, dates as ages, and null for anything missing or of the wrong type.
fn custom_cell(column: &Column, path: &str, object: &Value, now: jiff::Timestamp) -> Value {
    let Some(value) = at_path(object, path).filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match column.type_.as_ref() {
        // The JSONPath printer: strings raw, anything else as JSON.
        "string" => json!(text(value)),
        "integer" => value
            .as_i64()
            .or_else(|| value.as_f64().map(|f| f as i64))
            .map_or(Value::Null, |i| json!(i)),
        "number" => value.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => value.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match value.as_str() {
            Some(date) if date.parse::<jiff::Timestamp>().is_ok() => json!(age(Some(date), now)),
            Some(_) => json!("<invalid>"),
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// `lastTimestamp`, else `eventTime`, else `firstTimestamp`, as an age, and `(xN over AGE)`
/// for a repeated event (kube-apiserver's Last Seen).
fn event_last_seen(object: &Value, now: jiff::Timestamp) -> Value {
    let at = ["lastTimestamp", "eventTime", "firstTimestamp"]
        .iter()
        .find_map(|k| object[*k].as_str());
    let last = age(at, now);
    match object["count"].as_i64() {
        Some(count) if count > 1 => {
            let first = age(object["firstTimestamp"].as_str().or(at), now);
            json!(format!("{last} (x{count} over {first})"))
        }
        _ => json!(last),
    }
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

fn cell(resource: &ResourceType, column: &Column, object: &Value, now: jiff::Timestamp) -> Value {
    if let Some(path) = &column.json_path {
        return custom_cell(column, path, object, now);
    }
    let created = meta_str(object, "creationTimestamp");
    match column.name.as_ref() {
        "Name" => json!(meta_str(object, "name").unwrap_or("")),
        "Age" => json!(age(created, now)),
        name => match (resource.plural.as_str(), name) {
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
            ("events", "Last Seen") => event_last_seen(object, now),
            ("events", "First Seen") => json!(age(object["firstTimestamp"].as_str(), now)),
            ("events", "Count") => json!(object["count"].as_i64().unwrap_or(1).to_string()),
            ("events", "Subobject") => {
                json!(object["involvedObject"]["fieldPath"].as_str().unwrap_or(""))
            }
            ("events", "Source") => {
                let component = object["source"]["component"].as_str().unwrap_or("");
                json!(match object["source"]["host"].as_str() {
                    Some(host) if !host.is_empty() => format!("{component}, {host}"),
                    _ => component.to_string(),
                })
            }
            _ => Value::Null,
        },
    }
}

fn row(resource: &ResourceType, columns: &[Column], object: &Value, now: jiff::Timestamp) -> Value {
    let cells: Vec<Value> = columns
        .iter()
        .map(|column| cell(resource, column, object, now))
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
            .map(|column| {
                json!({
                    "name": column.name,
                    "type": column.type_,
                    "format": column.format,
                    "description": column.description,
                    "priority": column.priority,
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

    #[test]
    fn custom_resources_print_their_printer_columns() {
        let crd = json!({
            "metadata": {"name": "podsets.demo.example"},
            "spec": {"group": "demo.example", "scope": "Namespaced",
                "names": {"plural": "podsets", "kind": "PodSet"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "additionalPrinterColumns": [
                        {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
                        {"name": "Image", "type": "string", "priority": 1,
                            "jsonPath": ".spec.template.spec.containers[0].image"},
                        {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}});
        let resource = crate::crd::resource_types(&crd).remove(0);
        let object = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "nginx"}]}}}});
        let t = table(&resource, &[&object], "9", None, true);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["Name", "Desired", "Ready", "Image", "Paused", "Age"]
        );
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"][1]["type"], "integer");
        assert_eq!(
            t["columnDefinitions"][1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.replicas"
        );
        assert_eq!(t["columnDefinitions"][3]["priority"], 1);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], 3);
        assert_eq!(cells[2], Value::Null); // no status yet: kubectl prints <none>
        assert_eq!(cells[3], "nginx");
        assert_eq!(cells[4], Value::Null);
        assert!(cells[5].as_str().unwrap().ends_with('d'));
    }

    #[test]
    fn custom_resources_without_columns_print_name_and_age() {
        let crd = json!({"spec": {"group": "demo.example", "names": {"plural": "things", "kind": "Thing"},
            "versions": [{"name": "v1"}]}});
        let resource = crate::crd::resource_types(&crd).remove(0);
        let object =
            json!({"metadata": {"name": "a", "creationTimestamp": "2020-01-01T00:00:00Z"}});
        let t = table(&resource, &[&object], "1", None, true);
        assert_eq!(t["columnDefinitions"][1]["name"], "Age");
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert!(t["rows"][0]["cells"][1].as_str().unwrap().ends_with('d'));
    }

    #[test]
    fn events_print_like_kubectl_get_events() {
        let registry = Registry::with_builtins();
        let events = registry.get("", "v1", "events").unwrap();
        let event = json!({"metadata": {"name": "web.1"}, "type": "Normal", "reason": "SuccessfulCreate",
            "involvedObject": {"kind": "PodSet", "name": "web"}, "message": "Created pod: web-0",
            "source": {"component": "podset-controller"}, "count": 2,
            "firstTimestamp": "2020-01-01T00:00:00Z", "lastTimestamp": "2020-01-01T00:00:00Z"});
        let t = table(&events, &[&event], "3", None, true);
        let shown: Vec<(&str, i64)> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            &shown[..4],
            [("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0)]
        );
        assert_eq!(shown[9], ("Name", 1));
        let cells = &t["rows"][0]["cells"];
        let last_seen = cells[0].as_str().unwrap();
        assert!(
            last_seen.contains("d (x2 over ") && last_seen.ends_with("d)"),
            "{last_seen}"
        );
        assert_eq!(cells[3], "podset/web");
        assert_eq!(cells[5], "podset-controller");
        assert_eq!(cells[6], "Created pod: web-0");
        assert_eq!(cells[8], "2");
        assert_eq!(cells[9], "web.1");
    }
}
