//! The `scale` subresource of deployments and replicasets (`kubectl scale`, the scale client,
//! HorizontalPodAutoscalers): an `autoscaling/v1` Scale view of `spec.replicas`,
//! `status.replicas` and the label selector, read with GET and written with PUT or PATCH.

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::api::{ApiServer, Body, ResourceRequest, json_response};
use crate::object::meta_str;
use crate::patch::{self, PatchType};
use crate::registry::ResourceType;
use crate::status::{ApiError, Cause};

/// Whether a resource has the `scale` subresource.
pub fn has_scale(resource: &ResourceType) -> bool {
    !resource.custom
        && resource.group == "apps"
        && matches!(
            resource.plural.as_str(),
            "deployments" | "replicasets" | "statefulsets"
        )
}

/// The discovery entry of a resource's `scale` subresource (`APIResource`).
pub fn discovery_entry(resource: &ResourceType) -> Value {
    json!({
        "name": format!("{}/scale", resource.plural),
        "singularName": "",
        "namespaced": resource.namespaced,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    })
}

/// The Scale view of an object.
pub fn scale_of(object: &Value) -> Value {
    let mut metadata = Map::new();
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(value) = object["metadata"].get(field) {
            metadata.insert(field.into(), value.clone());
        }
    }
    let mut status = Map::new();
    status.insert(
        "replicas".into(),
        object["status"]["replicas"].as_i64().unwrap_or(0).into(),
    );
    let selector = selector_string(&object["spec"]["selector"]);
    if !selector.is_empty() {
        status.insert("selector".into(), Value::String(selector));
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": status,
    })
}

/// A LabelSelector in the string form (`app=web,tier in (a,b)`), requirements sorted by key as
/// apimachinery's `LabelSelectorAsSelector(...).String()` writes them.
fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        for (key, value) in labels {
            parts.push((
                key.clone(),
                format!("{key}={}", value.as_str().unwrap_or("")),
            ));
        }
    }
    if let Some(expressions) = selector["matchExpressions"].as_array() {
        for expression in expressions {
            let key = expression["key"].as_str().unwrap_or("").to_string();
            let mut values: Vec<&str> = expression["values"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            values.sort_unstable();
            let text = match expression["operator"].as_str().unwrap_or("") {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.clone(),
                "DoesNotExist" => format!("!{key}"),
                _ => continue,
            };
            parts.push((key, text));
        }
    }
    parts.sort();
    parts
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(",")
}

/// Serves GET, PUT and PATCH on `{resource}/{name}/scale`.
pub fn serve(
    server: &ApiServer,
    request: &ResourceRequest,
    method: &Method,
    content_type: &str,
    body: &[u8],
) -> Result<http::Response<Body>, ApiError> {
    let resource = &request.resource;
    let name = request.name.clone().unwrap_or_default();
    if *method == Method::GET {
        let object = server
            .store
            .get(&request.storage_key(), &request.key(&name))
            .ok_or_else(|| ApiError::not_found(resource, &name))?;
        return Ok(json_response(StatusCode::OK, &scale_of(&object)));
    }
    let patch_type = match *method {
        Method::PUT => None,
        Method::PATCH => Some(
            PatchType::from_content_type(content_type)
                .filter(|t| *t != PatchType::Apply)
                .ok_or_else(ApiError::unsupported_media_type)?,
        ),
        _ => return Err(ApiError::method_not_allowed()),
    };
    let updated = server.write(request, &name, |current| {
        let current_scale = scale_of(current);
        let proposed = match patch_type {
            Some(patch_type) => patch::apply_patch(&current_scale, patch_type, body)?,
            None => serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the object provided is unrecognized (must be of type Scale): {e}"
                ))
            })?,
        };
        if let Some(rv) = meta_str(&proposed, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(rv) != meta_str(current, "resourceVersion")
        {
            return Err(ApiError::conflict(resource, &name));
        }
        let replicas = proposed["spec"]["replicas"].as_i64().unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                "autoscaling",
                &name,
                vec![Cause::invalid(
                    "spec.replicas",
                    &replicas.to_string(),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let mut next = current.clone();
        next["spec"]["replicas"] = json!(replicas);
        Ok(next)
    })?;
    Ok(json_response(StatusCode::OK, &scale_of(&updated)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_in_apimachinery_string_form() {
        let selector = json!({
            "matchLabels": {"tier": "web", "app": "shop"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        });
        assert_eq!(
            selector_string(&selector),
            "app=shop,!canary,env in (dev,prod),tier=web"
        );
        assert_eq!(selector_string(&json!(null)), "");
    }

    #[test]
    fn scale_view_of_a_deployment() {
        let deployment = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7", "labels": {"a": "b"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 1}
        });
        assert_eq!(
            scale_of(&deployment),
            json!({
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7"},
                "spec": {"replicas": 2},
                "status": {"replicas": 1, "selector": "app=web"}
            })
        );
    }
}
