//! kube-apiserver's checks before it proxies a connection to a pod's subresource (`exec`,
//! `attach`, `portforward`): shared by the WebSocket/SPDY endpoints so they refuse alike.

use std::sync::Arc;

use http::{Method, Request};
use serde_json::Value;

use crate::api::{ApiServer, User};
use crate::status::ApiError;

/// The storage key of pods (core group, resource `pods`).
pub(crate) fn pods_storage() -> (String, String) {
    (String::new(), "pods".to_string())
}

/// The method (GET or POST) and the user's right (`get` for GET, `create` for POST, as RBAC
/// names them for connect verbs), in kube-apiserver's order and wording.
pub(crate) fn authorize_connect<B>(
    request: &Request<B>,
    user: &User,
    subresource: &str,
    namespace: &str,
    pod: &str,
) -> Result<(), ApiError> {
    let method = request.method();
    if method != Method::GET && method != Method::POST {
        return Err(ApiError::method_not_allowed());
    }
    if !user.authenticated {
        let verb = if method == Method::GET {
            "get"
        } else {
            "create"
        };
        return Err(ApiError::forbidden(
            &user.name,
            verb,
            &format!("pods/{subresource}"),
            "",
            Some(namespace),
            pod,
        ));
    }
    Ok(())
}

/// The pod a connection goes to, or kube-apiserver's 404.
pub(crate) fn connect_target(
    server: &ApiServer,
    namespace: &str,
    pod: &str,
) -> Result<Arc<Value>, ApiError> {
    server
        .store
        .get(&pods_storage(), &(namespace.to_string(), pod.to_string()))
        .ok_or_else(|| match server.registry.get("", "v1", "pods") {
            Some(pods) => ApiError::not_found(&pods, pod),
            None => ApiError::path_not_found(),
        })
}
