//! The kubeconfig a server writes for its clients.

use base64::Engine;
use serde_json::{Value, json};

/// A kubeconfig (as a JSON value: kubeconfigs are YAML, and JSON is YAML) for `server`,
/// trusting `ca_pem` (if TLS) and authenticating with `token`.
pub fn build(server: &str, ca_pem: Option<&str>, token: &str) -> Value {
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca.as_bytes()));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kube-testserver", "cluster": cluster}],
        "users": [{"name": "kube-testserver", "user": {"token": token}}],
        "contexts": [{"name": "kube-testserver", "context": {
            "cluster": "kube-testserver", "user": "kube-testserver", "namespace": "default"}}],
        "current-context": "kube-testserver",
        "preferences": {},
    })
}

/// The kubeconfig as YAML text.
pub fn to_yaml(kubeconfig: &Value) -> String {
    serde_yaml_ng::to_string(kubeconfig).unwrap_or_else(|_| kubeconfig.to_string())
}
