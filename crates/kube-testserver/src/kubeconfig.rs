//! The kubeconfig a server writes for its clients.

use base64::Engine;
use serde_json::{Value, json};

/// How the kubeconfig's user authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// A bearer token.
    Token(&'a str),
    /// A client certificate and key (PEM).
    ClientCertificate {
        /// Certificate, PEM.
        cert_pem: &'a str,
        /// Private key, PEM.
        key_pem: &'a str,
    },
}

/// A kubeconfig (as a JSON value: kubeconfigs are YAML, and JSON is YAML) for `server`,
/// trusting `ca_pem` (if TLS) and authenticating with `credentials`.
pub fn build(server: &str, ca_pem: Option<&str>, credentials: Credentials<'_>) -> Value {
    let encode =
        |pem: &str| json!(base64::engine::general_purpose::STANDARD.encode(pem.as_bytes()));
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] = encode(ca);
    }
    let user = match credentials {
        Credentials::Token(token) => json!({"token": token}),
        Credentials::ClientCertificate { cert_pem, key_pem } => json!({
            "client-certificate-data": encode(cert_pem),
            "client-key-data": encode(key_pem),
        }),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kube-testserver", "cluster": cluster}],
        "users": [{"name": "kube-testserver", "user": user}],
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
