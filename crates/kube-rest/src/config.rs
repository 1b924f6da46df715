//! Client configuration (client-go's `rest.Config`) and where it comes from (clientcmd's
//! loading rules and the in-cluster configuration).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::error::ConfigError;
use crate::kubeconfig::{AuthInfo, Kubeconfig};

/// Where the service-account files are mounted in a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Bytes given inline or a file to read them from (`Debug` prints the size of inline data,
/// never the data: it may be a private key).
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    /// The bytes themselves (PEM).
    Data(Vec<u8>),
    /// A file holding them.
    File(PathBuf),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Data(data) => write!(f, "Data(<{} bytes>)", data.len()),
            Source::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl Source {
    /// The bytes (reading the file when it is one).
    pub fn load(&self) -> Result<Vec<u8>, ConfigError> {
        match self {
            Source::Data(data) => Ok(data.clone()),
            Source::File(path) => std::fs::read(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            }),
        }
    }
}

/// How requests authenticate (`Debug` redacts tokens and passwords).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// No credentials (client certificates, when configured, still apply).
    #[default]
    None,
    /// A fixed bearer token.
    Token(String),
    /// A bearer token read from a file, re-read when the file changes (bound service-account
    /// tokens rotate).
    TokenFile(PathBuf),
    /// A token from an exec credential plugin, cached until its `expirationTimestamp` and
    /// re-fetched when the server answers 401.
    Exec(crate::kubeconfig::ExecConfig),
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
            Credentials::TokenFile(path) => f.debug_tuple("TokenFile").field(path).finish(),
            Credentials::Exec(exec) => f.debug_tuple("Exec").field(&exec.command).finish(),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// Everything needed to talk to one API server (client-go's `rest.Config`).
///
/// Build one with [`Config::new`] and the `with_*` methods, or load one with [`Config::infer`],
/// [`Config::from_kubeconfig`] or [`Config::in_cluster`].
///
/// Its `Debug` hides credentials: a `user:password@` in the server URL, like those of the
/// proxy URL and of [`Credentials`].
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The API server URL.
    pub cluster_url: http::Uri,
    /// The namespace of the context (`default` when unset).
    pub default_namespace: String,
    /// CA certificates to trust (PEM); the system roots when `None`.
    pub root_ca: Option<Source>,
    /// Skip server certificate verification (insecure).
    pub insecure_skip_tls_verify: bool,
    /// The name to verify the server certificate against instead of the URL's host.
    pub tls_server_name: Option<String>,
    /// Connect through this proxy: `http://` (a CONNECT tunnel, for `https://` and `http://`
    /// servers alike) or `socks5://`, with optional `user:password@`.
    pub proxy_url: Option<crate::proxy::ProxyUrl>,
    /// Without a `proxy_url`, take the proxy from `HTTPS_PROXY`/`HTTP_PROXY` and `NO_PROXY`
    /// as client-go does (on by default; never for localhost or loopback addresses).
    pub proxy_from_env: bool,
    /// The client certificate and key (PEM).
    pub client_identity: Option<(Source, Source)>,
    /// How requests authenticate.
    pub credentials: Credentials,
    /// The timeout of each non-watch request (none by default, as in client-go).
    pub timeout: Option<Duration>,
    /// The timeout for establishing a connection.
    pub connect_timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Client-side throttle: sustained queries per second (client-go's default: 5).
    pub qps: f32,
    /// Client-side throttle: burst (client-go's default: 10).
    pub burst: usize,
    /// Whether the client-side throttle is on (for discovery requests too).
    pub throttle: bool,
    /// The throttle of discovery requests (`/version`, `/api`, `/apis` and each group version),
    /// separate from `qps`: sustained queries per second (kubectl's default: 50).
    ///
    /// Legacy discovery sends one request per group version (about 25 on a v1.35 server): at
    /// QPS 5 and burst 10 it would take seconds and eat the budget of the requests that
    /// follow, so discovery gets kubectl's headroom (`WithDiscoveryQPS(50)`,
    /// `WithDiscoveryBurst(300)`).
    pub discovery_qps: f32,
    /// The burst of discovery requests (kubectl's default: 300).
    pub discovery_burst: usize,
    /// How many times a request is retried after a 429 or 5xx with `Retry-After` (any verb)
    /// or, for a `GET`, after losing its connection (client-go's default: 10).
    pub max_retries: u32,
    /// The longest `Retry-After` honoured; longer values are cut to this.
    pub max_retry_after: Duration,
    /// Do not ask for gzip-compressed answers (client-go's `DisableCompression`; off by
    /// default, as there: requests say `Accept-Encoding: gzip`, and kube-apiserver compresses
    /// answers over 128 KB, which are inflated while they arrive). Turn it on where the
    /// network is faster than compressing, e.g. on loopback when the server's CPU is scarce.
    pub disable_compression: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The server URL may carry `user:password@`: shown without it.
        let cluster_url = match self.cluster_url.authority() {
            Some(authority) if authority.as_str().contains('@') => {
                crate::proxy::redact_userinfo(&self.cluster_url.to_string())
            }
            _ => self.cluster_url.to_string(),
        };
        f.debug_struct("Config")
            .field("cluster_url", &cluster_url)
            .field("default_namespace", &self.default_namespace)
            .field("root_ca", &self.root_ca)
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .field("tls_server_name", &self.tls_server_name)
            .field("proxy_url", &self.proxy_url)
            .field("proxy_from_env", &self.proxy_from_env)
            .field("client_identity", &self.client_identity)
            .field("credentials", &self.credentials)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("user_agent", &self.user_agent)
            .field("qps", &self.qps)
            .field("burst", &self.burst)
            .field("throttle", &self.throttle)
            .field("discovery_qps", &self.discovery_qps)
            .field("discovery_burst", &self.discovery_burst)
            .field("max_retries", &self.max_retries)
            .field("max_retry_after", &self.max_retry_after)
            .field("disable_compression", &self.disable_compression)
            .finish()
    }
}

impl Config {
    /// A configuration for `cluster_url` with client-go's defaults and no credentials.
    pub fn new(cluster_url: http::Uri) -> Config {
        Config {
            cluster_url,
            default_namespace: "default".into(),
            root_ca: None,
            insecure_skip_tls_verify: false,
            tls_server_name: None,
            proxy_url: None,
            proxy_from_env: true,
            client_identity: None,
            credentials: Credentials::None,
            timeout: None,
            connect_timeout: Duration::from_secs(30),
            user_agent: default_user_agent(),
            qps: 5.0,
            burst: 10,
            throttle: true,
            discovery_qps: 50.0,
            discovery_burst: 300,
            max_retries: 10,
            max_retry_after: Duration::from_secs(60),
            disable_compression: false,
        }
    }

    /// Ignores `HTTPS_PROXY`/`HTTP_PROXY`: connects directly unless `proxy_url` is set.
    pub fn without_env_proxy(mut self) -> Config {
        self.proxy_from_env = false;
        self
    }

    /// Connects through this proxy (`http://host:port` or `socks5://host:port`).
    pub fn with_proxy_url(mut self, proxy_url: &str) -> Result<Config, ConfigError> {
        self.proxy_url =
            Some(crate::proxy::parse_proxy_url(proxy_url).map_err(ConfigError::Invalid)?);
        Ok(self)
    }

    /// Sets the default namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Config {
        self.default_namespace = namespace.into();
        self
    }

    /// Sets the credentials.
    pub fn with_credentials(mut self, credentials: Credentials) -> Config {
        self.credentials = credentials;
        self
    }

    /// Trusts these CA certificates (PEM) instead of the system roots.
    pub fn with_root_ca(mut self, ca: Source) -> Config {
        self.root_ca = Some(ca);
        self
    }

    /// Authenticates with a client certificate and key (PEM).
    pub fn with_client_identity(mut self, certificate: Source, key: Source) -> Config {
        self.client_identity = Some((certificate, key));
        self
    }

    /// Sets the per-request timeout (watches are not limited by it).
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Config {
        self.timeout = timeout;
        self
    }

    /// Sets the `User-Agent` header.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Config {
        self.user_agent = user_agent.into();
        self
    }

    /// Sets the client-side throttle (`qps` sustained, `burst` at once).
    pub fn with_rate_limit(mut self, qps: f32, burst: usize) -> Config {
        self.qps = qps;
        self.burst = burst;
        self.throttle = true;
        self
    }

    /// Sets the throttle of discovery requests (kubectl's: QPS 50, burst 300).
    pub fn with_discovery_rate_limit(mut self, qps: f32, burst: usize) -> Config {
        self.discovery_qps = qps;
        self.discovery_burst = burst;
        self
    }

    /// Turns the client-side throttle off (for discovery requests too).
    pub fn without_throttle(mut self) -> Config {
        self.throttle = false;
        self
    }

    /// Sets how many times a request is retried (0 turns retries off).
    pub fn with_max_retries(mut self, max_retries: u32) -> Config {
        self.max_retries = max_retries;
        self
    }

    /// Loads the configuration the way kubectl does: `$KUBECONFIG` (merged), else
    /// `~/.kube/config`, else the in-cluster configuration.
    pub fn infer() -> Result<Config, ConfigError> {
        KubeconfigLoader::new().load()
    }

    /// The configuration of the current context of a kubeconfig.
    pub fn from_kubeconfig(kubeconfig: &Kubeconfig) -> Result<Config, ConfigError> {
        resolve(kubeconfig, &Overrides::default())
    }

    /// The in-cluster configuration: the service-account token (re-read as it rotates), CA and
    /// namespace, and `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`.
    pub fn in_cluster() -> Result<Config, ConfigError> {
        in_cluster_from(&Environment::process())
    }
}

fn default_user_agent() -> String {
    format!(
        "kube-rest/{} ({} {})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Overrides applied on top of a kubeconfig (kubectl's `--context`, `--cluster`, `--user`,
/// `--namespace` and `--server`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overrides {
    /// Use this context instead of `current-context`.
    pub context: Option<String>,
    /// Use this cluster instead of the context's.
    pub cluster: Option<String>,
    /// Use this user instead of the context's.
    pub user: Option<String>,
    /// Use this namespace instead of the context's.
    pub namespace: Option<String>,
    /// Use this server URL instead of the cluster's.
    pub server: Option<String>,
}

/// The process environment the loader looks at (injectable for tests).
#[derive(Debug, Clone, Default)]
struct Environment {
    kubeconfig: Option<OsString>,
    home: Option<PathBuf>,
    service_host: Option<String>,
    service_port: Option<String>,
    service_account_dir: PathBuf,
}

impl Environment {
    fn process() -> Environment {
        Environment {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::home_dir(),
            service_host: std::env::var("KUBERNETES_SERVICE_HOST").ok(),
            service_port: std::env::var("KUBERNETES_SERVICE_PORT").ok(),
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
        }
    }
}

/// Loads a [`Config`] with clientcmd's rules and overrides.
///
/// Precedence: an explicit path (which must exist), else every file of `$KUBECONFIG` (merged,
/// missing ones skipped), else `~/.kube/config`, else the in-cluster configuration.
#[derive(Debug, Clone)]
pub struct KubeconfigLoader {
    explicit_path: Option<PathBuf>,
    overrides: Overrides,
    env: Environment,
}

impl Default for KubeconfigLoader {
    fn default() -> Self {
        KubeconfigLoader::new()
    }
}

impl KubeconfigLoader {
    /// A loader reading the process environment.
    pub fn new() -> KubeconfigLoader {
        KubeconfigLoader {
            explicit_path: None,
            overrides: Overrides::default(),
            env: Environment::process(),
        }
    }

    /// Reads this file only (kubectl's `--kubeconfig`); it must exist.
    pub fn explicit_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.explicit_path = Some(path.into());
        self
    }

    /// Uses this context instead of `current-context`.
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.overrides.context = Some(context.into());
        self
    }

    /// Uses this cluster instead of the context's.
    pub fn cluster(mut self, cluster: impl Into<String>) -> Self {
        self.overrides.cluster = Some(cluster.into());
        self
    }

    /// Uses this user instead of the context's.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.overrides.user = Some(user.into());
        self
    }

    /// Uses this namespace instead of the context's.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.overrides.namespace = Some(namespace.into());
        self
    }

    /// Uses this server URL instead of the cluster's.
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.overrides.server = Some(server.into());
        self
    }

    /// Takes `$KUBECONFIG` from this value instead of the process environment.
    pub fn kubeconfig_env(mut self, value: Option<impl Into<OsString>>) -> Self {
        self.env.kubeconfig = value.map(Into::into);
        self
    }

    /// Takes the home directory from this value instead of the process environment.
    pub fn home_dir(mut self, home: Option<impl Into<PathBuf>>) -> Self {
        self.env.home = home.map(Into::into);
        self
    }

    /// Takes the in-cluster environment from these values instead of the process (host, port,
    /// and the directory holding `token`, `ca.crt` and `namespace`).
    pub fn in_cluster_env(
        mut self,
        host: Option<String>,
        port: Option<String>,
        service_account_dir: impl Into<PathBuf>,
    ) -> Self {
        self.env.service_host = host;
        self.env.service_port = port;
        self.env.service_account_dir = service_account_dir.into();
        self
    }

    /// The merged kubeconfig these rules find, if any file exists.
    pub fn kubeconfig(&self) -> Result<Option<Kubeconfig>, ConfigError> {
        if let Some(path) = &self.explicit_path {
            return Kubeconfig::read(path).map(Some);
        }
        if let Some(list) = &self.env.kubeconfig
            && !list.is_empty()
        {
            let paths: Vec<PathBuf> = std::env::split_paths(list).collect();
            return Kubeconfig::read_and_merge(paths);
        }
        if let Some(home) = &self.env.home {
            return Kubeconfig::read_and_merge([home.join(".kube").join("config")]);
        }
        Ok(None)
    }

    /// Loads the configuration.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let in_cluster_possible =
            self.env.service_host.is_some() && self.env.service_port.is_some();
        match self.kubeconfig()? {
            // An empty kubeconfig counts as none (client-go's ErrEmptyConfig): try in-cluster.
            Some(kubeconfig)
                if !(in_cluster_possible
                    && kubeconfig.contexts.is_empty()
                    && kubeconfig.clusters.is_empty()) =>
            {
                resolve(&kubeconfig, &self.overrides)
            }
            _ => {
                if in_cluster_possible {
                    let mut config = in_cluster_from(&self.env)?;
                    if let Some(namespace) = &self.overrides.namespace {
                        config.default_namespace.clone_from(namespace);
                    }
                    if let Some(server) = &self.overrides.server {
                        config.cluster_url = parse_server(server, "the server override")?;
                    }
                    return Ok(config);
                }
                let tried = match (&self.env.kubeconfig, &self.env.home) {
                    (Some(list), _) if !list.is_empty() => {
                        format!("$KUBECONFIG ({})", list.to_string_lossy())
                    }
                    (_, Some(home)) => home.join(".kube").join("config").display().to_string(),
                    _ => "$KUBECONFIG or ~/.kube/config (no home directory)".into(),
                };
                Err(ConfigError::NotFound { tried })
            }
        }
    }
}

fn parse_server(server: &str, what: &str) -> Result<http::Uri, ConfigError> {
    let uri: http::Uri = server
        .parse()
        .map_err(|e| ConfigError::Invalid(format!("{what}: server URL {server:?}: {e}")))?;
    match uri.scheme_str() {
        Some("https" | "http") if uri.host().is_some() => Ok(uri),
        _ => Err(ConfigError::Invalid(format!(
            "{what}: server URL {server:?} must be http:// or https:// with a host"
        ))),
    }
}

fn decode_data(data: &str, what: &str) -> Result<Vec<u8>, ConfigError> {
    let compact: String = data.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| ConfigError::Invalid(format!("{what} is not valid base64: {e}")))
}

fn resolve(kubeconfig: &Kubeconfig, overrides: &Overrides) -> Result<Config, ConfigError> {
    let sources = kubeconfig.sources_display();
    let context_name = overrides
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone().filter(|c| !c.is_empty()));
    let context = match &context_name {
        Some(name) => Some(
            kubeconfig
                .context(name)
                .ok_or_else(|| ConfigError::Missing {
                    kind: "context",
                    name: name.clone(),
                    sources: sources.clone(),
                })?
                .context
                .clone()
                .unwrap_or_default(),
        ),
        None => None,
    };
    if context.is_none() && overrides.cluster.is_none() {
        return Err(ConfigError::NoCurrentContext { sources });
    }
    let context = context.unwrap_or_default();
    let cluster_name = overrides.cluster.clone().unwrap_or(context.cluster);
    if cluster_name.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "context {:?} in {sources} names no cluster",
            context_name.unwrap_or_default()
        )));
    }
    let cluster = kubeconfig
        .cluster(&cluster_name)
        .ok_or_else(|| ConfigError::Missing {
            kind: "cluster",
            name: cluster_name.clone(),
            sources: sources.clone(),
        })?
        .cluster
        .clone()
        .unwrap_or_default();
    let user_name = overrides.user.clone().unwrap_or(context.user);
    let user = if user_name.is_empty() {
        AuthInfo::default()
    } else {
        kubeconfig
            .auth_info(&user_name)
            .ok_or_else(|| ConfigError::Missing {
                kind: "user",
                name: user_name.clone(),
                sources: sources.clone(),
            })?
            .user
            .clone()
            .unwrap_or_default()
    };

    let server = overrides
        .server
        .clone()
        .or(cluster.server.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConfigError::NoServer {
            cluster: cluster_name.clone(),
            sources: sources.clone(),
        })?;
    let mut config = Config::new(parse_server(
        &server,
        &format!("cluster {cluster_name:?} in {sources}"),
    )?);
    config.default_namespace = overrides
        .namespace
        .clone()
        .or(context.namespace)
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".into());

    if let Some(proxy) = cluster.proxy_url.as_deref().filter(|p| !p.is_empty()) {
        config.proxy_url = Some(crate::proxy::parse_proxy_url(proxy).map_err(|e| {
            ConfigError::Invalid(format!("cluster {cluster_name:?} in {sources}: {e}"))
        })?);
    }
    config.insecure_skip_tls_verify = cluster.insecure_skip_tls_verify;
    config.tls_server_name = cluster.tls_server_name.filter(|s| !s.is_empty());
    let ca_what = format!("certificate-authority-data of cluster {cluster_name:?} in {sources}");
    config.root_ca = match (
        cluster.certificate_authority_data.as_deref(),
        cluster.certificate_authority,
    ) {
        (Some(data), _) if !data.is_empty() => Some(Source::Data(decode_data(data, &ca_what)?)),
        (_, Some(path)) if !path.as_os_str().is_empty() => Some(Source::File(path)),
        _ => None,
    };
    if config.insecure_skip_tls_verify && config.root_ca.is_some() {
        return Err(ConfigError::Invalid(format!(
            "cluster {cluster_name:?} in {sources}: specifying a root certificates file with the insecure flag is not allowed"
        )));
    }

    let user_what = |field: &str| format!("{field} of user {user_name:?} in {sources}");
    let certificate = match (
        user.client_certificate_data.as_deref(),
        &user.client_certificate,
    ) {
        (Some(data), _) if !data.is_empty() => Some(Source::Data(decode_data(
            data,
            &user_what("client-certificate-data"),
        )?)),
        (_, Some(path)) if !path.as_os_str().is_empty() => Some(Source::File(path.clone())),
        _ => None,
    };
    let key = match (user.client_key_data.as_deref(), &user.client_key) {
        (Some(data), _) if !data.is_empty() => Some(Source::Data(decode_data(
            data,
            &user_what("client-key-data"),
        )?)),
        (_, Some(path)) if !path.as_os_str().is_empty() => Some(Source::File(path.clone())),
        _ => None,
    };
    config.client_identity = match (certificate, key) {
        (Some(certificate), Some(key)) => Some((certificate, key)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::Invalid(format!(
                "user {user_name:?} in {sources} has a client certificate but no client key"
            )));
        }
        (None, Some(_)) => {
            return Err(ConfigError::Invalid(format!(
                "user {user_name:?} in {sources} has a client key but no client certificate"
            )));
        }
    };

    let token = user.token.filter(|t| !t.is_empty());
    let token_file = user.token_file.filter(|p| !p.as_os_str().is_empty());
    let username = user.username.filter(|u| !u.is_empty());
    config.credentials = match (token, token_file, username) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(ConfigError::Invalid(format!(
                "user {user_name:?} in {sources}: username/password or bearer token may be set, but not both"
            )));
        }
        // client-go: an inline token wins over tokenFile.
        (Some(token), _, None) => Credentials::Token(token),
        (None, Some(path), None) => Credentials::TokenFile(path),
        (None, None, Some(username)) => Credentials::Basic {
            username,
            password: user.password.unwrap_or_default(),
        },
        (None, None, None) => Credentials::None,
    };
    // As client-go: an exec plugin is not run when other credentials (a client certificate
    // included) are configured.
    if config.credentials == Credentials::None
        && config.client_identity.is_none()
        && let Some(exec) = user.exec
    {
        match exec.api_version.as_str() {
            "client.authentication.k8s.io/v1" | "client.authentication.k8s.io/v1beta1" => {}
            other => {
                return Err(ConfigError::Invalid(format!(
                    "user {user_name:?} in {sources}: exec plugin apiVersion {other:?} is not supported \
                     (client.authentication.k8s.io/v1 or v1beta1)"
                )));
            }
        }
        if exec.command.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "user {user_name:?} in {sources}: exec plugin has no command"
            )));
        }
        if exec.interactive_mode.as_deref() == Some("Always") {
            return Err(ConfigError::Invalid(format!(
                "user {user_name:?} in {sources}: exec plugin {:?} needs an interactive terminal \
                 (interactiveMode: Always), which kube-rest never provides",
                exec.command
            )));
        }
        config.credentials = Credentials::Exec(exec);
    }
    if config.credentials == Credentials::None
        && config.client_identity.is_none()
        && user.auth_provider.is_some()
    {
        return Err(ConfigError::Invalid(format!(
            "user {user_name:?} in {sources} uses an auth-provider, which kube-rest does not support"
        )));
    }
    Ok(config)
}

fn in_cluster_from(env: &Environment) -> Result<Config, ConfigError> {
    let (Some(host), Some(port)) = (env.service_host.as_deref(), env.service_port.as_deref())
    else {
        return Err(ConfigError::InCluster(
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined".into(),
        ));
    };
    if host.is_empty() || port.is_empty() {
        return Err(ConfigError::InCluster(
            "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must not be empty".into(),
        ));
    }
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let url = format!("https://{host}:{port}");
    let uri: http::Uri = url
        .parse()
        .map_err(|e| ConfigError::InCluster(format!("invalid server URL {url:?}: {e}")))?;
    let dir: &Path = &env.service_account_dir;
    let token_path = dir.join("token");
    // Read once now so that a missing token is reported at load time, as in client-go.
    std::fs::read(&token_path)
        .map_err(|e| ConfigError::InCluster(format!("reading {}: {e}", token_path.display())))?;
    let ca_path = dir.join("ca.crt");
    if !ca_path.is_file() {
        return Err(ConfigError::InCluster(format!(
            "CA file {} does not exist",
            ca_path.display()
        )));
    }
    let namespace = std::fs::read_to_string(dir.join("namespace"))
        .ok()
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".into());
    Ok(Config::new(uri)
        .with_namespace(namespace)
        .with_root_ca(Source::File(ca_path))
        .with_credentials(Credentials::TokenFile(token_path)))
}
