//! The kubeconfig file format and client-go's merge rules.
//!
//! [`Kubeconfig::read`] parses one file, resolving relative paths against the file's directory.
//! [`Kubeconfig::merge`] folds several files the way `$KUBECONFIG` is folded by clientcmd: the
//! first file to define a named cluster, user or context wins, and the first file that sets
//! `current-context` decides it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// A parsed kubeconfig (`kind: Config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    /// `apiVersion` (`v1`).
    #[serde(
        rename = "apiVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub api_version: Option<String>,
    /// `kind` (`Config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The named clusters.
    #[serde(default, deserialize_with = "null_as_default")]
    pub clusters: Vec<NamedCluster>,
    /// The named users (`users` in the file).
    #[serde(rename = "users", default, deserialize_with = "null_as_default")]
    pub auth_infos: Vec<NamedAuthInfo>,
    /// The named contexts.
    #[serde(default, deserialize_with = "null_as_default")]
    pub contexts: Vec<NamedContext>,
    /// The context used when none is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// The files this configuration was read from, in precedence order (not serialized).
    #[serde(skip)]
    pub sources: Vec<PathBuf>,
}

/// A cluster with its name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedCluster {
    /// The name contexts refer to.
    pub name: String,
    /// The cluster (absent entries are an error when used).
    #[serde(default)]
    pub cluster: Option<Cluster>,
}

/// How to reach an API server (`Debug` redacts a `user:password@` in the URLs).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    /// The API server URL (`https://host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Skip verifying the server certificate (insecure).
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    /// A PEM file of CA certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<PathBuf>,
    /// Base64 of PEM CA certificates (wins over `certificate-authority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    /// The name to verify the server certificate against, instead of the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// An HTTP(S) proxy URL (its `user:password@`, if any, is redacted by `Debug`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret::optional"
    )]
    pub proxy_url: Option<String>,
}

/// A user with its name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedAuthInfo {
    /// The name contexts refer to.
    pub name: String,
    /// The credentials.
    #[serde(default)]
    pub user: Option<AuthInfo>,
}

/// Credentials for an API server (`Debug` redacts tokens, passwords and inline key data).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuthInfo {
    /// A PEM client certificate file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<PathBuf>,
    /// Base64 of a PEM client certificate (wins over the file).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret::optional"
    )]
    pub client_certificate_data: Option<String>,
    /// A PEM private key file (RSA, EC or PKCS#8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// Base64 of a PEM private key (wins over the file).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret::optional"
    )]
    pub client_key_data: Option<String>,
    /// A bearer token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret::optional"
    )]
    pub token: Option<String>,
    /// A file holding a bearer token, re-read when it changes.
    #[serde(rename = "tokenFile", default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Basic-auth user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Basic-auth password.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret::optional"
    )]
    pub password: Option<String>,
    /// An exec credential plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecConfig>,
    /// A legacy auth provider (not supported; kept for the error message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_provider: Option<serde_json::Value>,
}

impl std::fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("AuthInfo")
            .field("client_certificate", &self.client_certificate)
            .field(
                "client_certificate_data",
                &redacted(&self.client_certificate_data),
            )
            .field("client_key", &self.client_key)
            .field("client_key_data", &redacted(&self.client_key_data))
            .field("token", &redacted(&self.token))
            .field("token_file", &self.token_file)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("exec", &self.exec.as_ref().map(|e| &e.command))
            .field("auth_provider", &self.auth_provider.is_some())
            .finish()
    }
}

/// An exec credential plugin (`client.authentication.k8s.io` `v1` or `v1beta1`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecConfig {
    /// The command (a relative path with a separator is relative to the kubeconfig's directory).
    pub command: String,
    /// Its arguments.
    #[serde(default, deserialize_with = "null_as_default")]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default, deserialize_with = "null_as_default")]
    pub env: Vec<ExecEnvVar>,
    /// The `ExecCredential` API version (`client.authentication.k8s.io/v1` or `/v1beta1`).
    #[serde(default)]
    pub api_version: String,
    /// Shown when the command is not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_hint: Option<String>,
    /// Whether to pass the cluster in `KUBERNETES_EXEC_INFO` (not supported: ignored).
    #[serde(default)]
    pub provide_cluster_info: bool,
    /// `Never`, `IfAvailable` or `Always` (kube-rest never has a terminal to offer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive_mode: Option<String>,
}

/// An environment variable of an exec plugin (its `Debug` hides the value, often a secret).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecEnvVar {
    /// The name.
    pub name: String,
    /// The value.
    #[serde(default, deserialize_with = "secret::required")]
    pub value: String,
}

/// A context with its name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedContext {
    /// The name `current-context` refers to.
    pub name: String,
    /// The context.
    #[serde(default)]
    pub context: Option<Context>,
}

/// A (cluster, user, namespace) triple.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// The cluster name.
    #[serde(default)]
    pub cluster: String,
    /// The user name.
    #[serde(default)]
    pub user: String,
    /// The default namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The deepest `[`/`{` nesting handed to the YAML parser. Its scanner is quadratic in the
/// depth of flow collections (16,000 nested `{a: `: 8.6 s in a debug build) before its recursion limit
/// (128 levels) refuses the document, so deeper text is refused up front.
const MAX_FLOW_NESTING: usize = 256;

/// Whether `text` opens more than `limit` brackets (`[`, `{`) without closing them, counting
/// brackets in quoted strings too: a document that deep is refused by the parser anyway.
fn flow_nesting_exceeds(text: &str, limit: usize) -> bool {
    let mut depth: usize = 0;
    for byte in text.bytes() {
        match byte {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

impl Kubeconfig {
    /// Reads and parses one kubeconfig file; relative paths in it are made relative to its
    /// directory. An empty file is an empty configuration, as in client-go.
    pub fn read(path: impl AsRef<Path>) -> Result<Kubeconfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Kubeconfig::parse(&text, path)
    }

    /// Parses kubeconfig text as if read from `path` (used for error messages and to resolve
    /// relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Kubeconfig, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        if flow_nesting_exceeds(text, MAX_FLOW_NESTING) {
            return Err(parse_error(format!(
                "more than {MAX_FLOW_NESTING} nested [ or {{ (the YAML parser refuses 128 levels anyway)"
            )));
        }
        let mut config = if text.trim().is_empty() {
            Kubeconfig::default()
        } else {
            let value: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(text).map_err(|e| parse_error(e.to_string()))?;
            if value.is_null() {
                Kubeconfig::default()
            } else {
                if !value.is_mapping() {
                    return Err(parse_error(
                        "expected a mapping (kind: Config) at the top level".into(),
                    ));
                }
                serde_yaml_ng::from_value(value).map_err(|e| parse_error(e.to_string()))?
            }
        };
        if let Some(kind) = &config.kind
            && !kind.is_empty()
            && kind != "Config"
        {
            return Err(parse_error(format!(
                "kind is {kind:?}, expected \"Config\""
            )));
        }
        for (what, names) in [
            (
                "cluster",
                config
                    .clusters
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>(),
            ),
            (
                "user",
                config.auth_infos.iter().map(|c| c.name.as_str()).collect(),
            ),
            (
                "context",
                config.contexts.iter().map(|c| c.name.as_str()).collect(),
            ),
        ] {
            if names.iter().any(|name| name.is_empty()) {
                return Err(parse_error(format!("a {what} entry has an empty name")));
            }
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.resolve_paths(&base);
        config.sources = vec![path.to_path_buf()];
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut Option<PathBuf>| {
            if let Some(path) = p
                && !path.as_os_str().is_empty()
                && path.is_relative()
            {
                *path = base.join(&*path);
            }
        };
        for cluster in self.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
            resolve(&mut cluster.certificate_authority);
        }
        for user in self.auth_infos.iter_mut().filter_map(|u| u.user.as_mut()) {
            resolve(&mut user.client_certificate);
            resolve(&mut user.client_key);
            resolve(&mut user.token_file);
            if let Some(exec) = user.exec.as_mut()
                && exec.command.contains(std::path::MAIN_SEPARATOR)
                && Path::new(&exec.command).is_relative()
            {
                exec.command = base.join(&exec.command).to_string_lossy().into_owned();
            }
        }
    }

    /// Folds `other` (lower precedence) into `self`: entries whose name `self` already has are
    /// ignored, and `current-context` is kept when `self` sets it.
    pub fn merge(mut self, other: Kubeconfig) -> Kubeconfig {
        fn fold<T>(into: &mut Vec<T>, from: Vec<T>, name: impl Fn(&T) -> &str) {
            for item in from {
                if !into.iter().any(|existing| name(existing) == name(&item)) {
                    into.push(item);
                }
            }
        }
        fold(&mut self.clusters, other.clusters, |c| &c.name);
        fold(&mut self.auth_infos, other.auth_infos, |c| &c.name);
        fold(&mut self.contexts, other.contexts, |c| &c.name);
        if self.current_context.as_deref().is_none_or(str::is_empty) {
            self.current_context = other.current_context;
        }
        self.sources.extend(other.sources);
        self
    }

    /// Reads every existing file of a `$KUBECONFIG`-style list and merges them in order.
    /// Missing files are skipped (as in client-go), duplicates and empty entries ignored; a file
    /// that exists but cannot be read or parsed is an error.
    pub fn read_and_merge<I, P>(paths: I) -> Result<Option<Kubeconfig>, ConfigError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let mut seen: Vec<PathBuf> = Vec::new();
        let mut merged: Option<Kubeconfig> = None;
        for path in paths {
            let path = path.as_ref();
            if path.as_os_str().is_empty() || seen.iter().any(|p| p == path) {
                continue;
            }
            seen.push(path.to_path_buf());
            let config = match Kubeconfig::read(path) {
                Ok(config) => config,
                Err(ConfigError::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    tracing::debug!(path = %path.display(), "kubeconfig in the list does not exist, skipped");
                    continue;
                }
                Err(e) => return Err(e),
            };
            merged = Some(match merged {
                None => config,
                Some(merged) => merged.merge(config),
            });
        }
        Ok(merged)
    }

    /// The named context.
    pub fn context(&self, name: &str) -> Option<&NamedContext> {
        self.contexts.iter().find(|c| c.name == name)
    }

    /// The named cluster.
    pub fn cluster(&self, name: &str) -> Option<&NamedCluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The named user.
    pub fn auth_info(&self, name: &str) -> Option<&NamedAuthInfo> {
        self.auth_infos.iter().find(|c| c.name == name)
    }

    /// The files merged, for error messages.
    pub fn sources_display(&self) -> String {
        if self.sources.is_empty() {
            return "<in-memory kubeconfig>".into();
        }
        self.sources
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |url: &Option<String>| url.as_deref().map(crate::proxy::redact_userinfo);
        f.debug_struct("Cluster")
            .field("server", &redacted(&self.server))
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .field("certificate_authority", &self.certificate_authority)
            .field(
                "certificate_authority_data",
                &self
                    .certificate_authority_data
                    .as_ref()
                    .map(|d| format!("<{} bytes>", d.len())),
            )
            .field("tls_server_name", &self.tls_server_name)
            .field("proxy_url", &redacted(&self.proxy_url))
            .finish()
    }
}

/// Deserializers of secret strings whose errors never quote the value: serde's "invalid type"
/// errors show unexpected scalars (`password: 12345678` is a YAML integer), and a kubeconfig
/// parse error is printed and logged.
mod secret {
    use serde::Deserializer;
    use serde::de::{Error, Visitor};

    struct SecretString;

    const HIDDEN: &str = "invalid type: expected a string (value not shown: it may be a secret)";

    impl<'de> Visitor<'de> for SecretString {
        type Value = String;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_string<E: Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_bool<E: Error>(self, _: bool) -> Result<String, E> {
            Err(E::custom(HIDDEN))
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<String, E> {
            Err(E::custom(HIDDEN))
        }
        fn visit_i128<E: Error>(self, _: i128) -> Result<String, E> {
            Err(E::custom(HIDDEN))
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<String, E> {
            Err(E::custom(HIDDEN))
        }
        fn visit_u128<E: Error>(self, _: u128) -> Result<String, E> {
            Err(E::custom(HIDDEN))
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<String, E> {
            Err(E::custom(HIDDEN))
        }
        fn visit_bytes<E: Error>(self, _: &[u8]) -> Result<String, E> {
            Err(E::custom(HIDDEN))
        }
        fn visit_unit<E: Error>(self) -> Result<String, E> {
            Err(E::custom(HIDDEN))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
            Err(A::Error::custom(HIDDEN))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
            Err(A::Error::custom(HIDDEN))
        }
        fn visit_enum<A: serde::de::EnumAccess<'de>>(self, _: A) -> Result<String, A::Error> {
            Err(A::Error::custom(HIDDEN))
        }
    }

    struct OptionalSecret;

    impl<'de> Visitor<'de> for OptionalSecret {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_none<E: Error>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
            d.deserialize_any(SecretString).map(Some)
        }
    }

    /// A secret `String`.
    pub(super) fn required<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_any(SecretString)
    }

    /// An optional secret `String` (`null` is `None`).
    pub(super) fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_option(OptionalSecret)
    }
}

impl std::fmt::Debug for ExecEnvVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecEnvVar")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}
