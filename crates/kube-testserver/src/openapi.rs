//! A minimal OpenAPI v3 description (`/openapi/v3` and one document per group-version).
//!
//! Clients such as kubectl read it to learn which operations exist and that the server checks
//! fields itself (`fieldValidation`); schemas are open (`x-kubernetes-preserve-unknown-fields`)
//! because the server stores any JSON, so client-side schema validation accepts every object.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn schema_name(resource: &ResourceType) -> String {
    let group = if resource.group.is_empty() {
        "core".to_string()
    } else {
        resource.group.clone()
    };
    format!(
        "io.k8s.testserver.{group}.{}.{}",
        resource.version, resource.kind
    )
}

/// `/openapi/v3`: the group-versions with their documents' URLs.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for resource in registry.all() {
        let path = gv_path(&resource.group, &resource.version);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}")}),
        );
    }
    json!({"paths": paths})
}

fn gvk(resource: &ResourceType) -> Value {
    json!({"group": resource.group, "version": resource.version, "kind": resource.kind})
}

fn operation(resource: &ResourceType, action: &str, query: &[&str]) -> Value {
    let parameters: Vec<Value> = query
        .iter()
        .map(|name| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
        .collect();
    let body_schema = json!({"$ref": format!("#/components/schemas/{}", schema_name(resource))});
    json!({
        "operationId": format!("{action}{}", resource.kind),
        "parameters": parameters,
        "requestBody": {"content": {"application/json": {"schema": body_schema}}},
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": body_schema}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(resource),
    })
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let write_params = ["dryRun", "fieldManager", "fieldValidation", "pretty"];
    let patch_params = [
        "dryRun",
        "fieldManager",
        "fieldValidation",
        "force",
        "pretty",
    ];
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let prefix = format!("/{}", gv_path(group, version));
    for resource in &resources {
        let collection = if resource.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", resource.plural)
        } else {
            format!("{prefix}/{}", resource.plural)
        };
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(resource, "list", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"]),
                "post": operation(resource, "post", &write_params),
                "delete": operation(resource, "deletecollection", &["labelSelector", "fieldSelector"]),
            }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(resource, "get", &["pretty"]),
                "put": operation(resource, "put", &write_params),
                "patch": operation(resource, "patch", &patch_params),
                "delete": operation(resource, "delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
            }),
        );
        schemas.insert(
            schema_name(resource),
            json!({
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk(resource)],
                "x-kubernetes-preserve-unknown-fields": true,
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (kube-testserver)", "version": "v1.24.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_describe_patch_with_field_validation() {
        let registry = Registry::with_builtins();
        assert!(root(&registry)["paths"].get("api/v1").is_some());
        let doc = group_version(&registry, "", "v1").unwrap();
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Pod");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(group_version(&registry, "nope", "v1").is_none());
    }
}
