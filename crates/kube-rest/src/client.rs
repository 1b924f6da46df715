//! The REST client: request building, authentication, throttling, retries and error decoding.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube_flowcontrol::clock::{RealClock, SharedClock};
use kube_flowcontrol::throttle::{RateLimiter, TokenBucketRateLimiter};
use rustls::pki_types::ServerName;
use serde::de::DeserializeOwned;

use crate::auth::Authenticator;

#[cfg(feature = "ws")]
mod preconnect;
mod retry;
use crate::config::Config;
use crate::error::{Error, Status};
use crate::proxy::Connector;
#[cfg(feature = "ws")]
pub use preconnect::UpgradeConnection;
pub use retry::RetryStats;

/// `application/json`.
pub const JSON: &str = "application/json";

/// A client for one API server, cheap to clone (connections are pooled and shared).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: HyperClient<HttpsConnector<Connector>, Full<Bytes>>,
    /// HTTP/1.1 only (ALPN `http/1.1`): a WebSocket upgrade cannot ride on HTTP/2.
    #[cfg(feature = "ws")]
    upgrade_http: HyperClient<HttpsConnector<Connector>, Full<Bytes>>,
    /// `upgrade_http`'s connector, for connections opened ahead of an upgrade.
    #[cfg(feature = "ws")]
    upgrade_connector: HttpsConnector<Connector>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    path_prefix: String,
    auth: Authenticator,
    limiter: Option<Arc<dyn RateLimiter>>,
    /// The throttle of discovery requests (kubectl's headroom: QPS 50, burst 300).
    discovery_limiter: Option<Arc<dyn RateLimiter>>,
    clock: SharedClock,
    timeout: Option<Duration>,
    user_agent: HeaderValue,
    max_retries: u32,
    max_retry_after: Duration,
    retry_counters: retry::Counters,
    default_namespace: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field(
                "server",
                &format_args!(
                    "{}://{}{}",
                    self.inner.scheme, self.inner.authority, self.inner.path_prefix
                ),
            )
            .field("default_namespace", &self.inner.default_namespace)
            .field("throttled", &self.inner.limiter.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`] from a [`Config`], with an optional clock and throttles.
pub struct ClientBuilder {
    config: Config,
    clock: Option<SharedClock>,
    limiter: Option<Arc<dyn RateLimiter>>,
    discovery_limiter: Option<Arc<dyn RateLimiter>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Uses this clock for throttling and `Retry-After` waits (a fake one in tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses this throttle instead of a token bucket built from the config's `qps` and `burst`.
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Uses this throttle for discovery requests instead of a token bucket built from the
    /// config's `discovery_qps` and `discovery_burst`.
    pub fn discovery_rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.discovery_limiter = Some(limiter);
        self
    }

    /// Builds the client (loading TLS material now, so that a bad file is reported here).
    pub fn build(self) -> Result<Client, Error> {
        let config = self.config;
        let clock = self.clock.unwrap_or_else(RealClock::shared);
        let throttle = |given: Option<Arc<dyn RateLimiter>>, qps: f32, burst: usize, what: &str| {
            match (given, config.throttle) {
                (_, false) => Ok(None),
                (Some(limiter), true) => Ok(Some(limiter)),
                (None, true) => {
                    if qps.is_nan() || qps <= 0.0 || burst == 0 {
                        return Err(Error::Config(crate::error::ConfigError::Invalid(format!(
                            "{what} needs qps > 0 and burst > 0 (got qps {qps} and burst {burst}); turn the throttle off instead"
                        ))));
                    }
                    Ok(Some(Arc::new(TokenBucketRateLimiter::with_clock(
                        qps,
                        burst,
                        clock.clone(),
                    )) as Arc<dyn RateLimiter>))
                }
            }
        };
        let limiter = throttle(self.limiter, config.qps, config.burst, "throttle")?;
        let discovery_limiter = throttle(
            self.discovery_limiter,
            config.discovery_qps,
            config.discovery_burst,
            "discovery throttle",
        )?;
        let uri = &config.cluster_url;
        let scheme = uri.scheme().cloned().unwrap_or(http::uri::Scheme::HTTPS);
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| Error::Request(format!("server URL {uri} has no host")))?;
        let path_prefix = uri.path().trim_end_matches('/').to_string();

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        // Like client-go's dialer: TCP keepalive, so a silently dead peer is noticed.
        http.set_keepalive(Some(Duration::from_secs(30)));
        let auth = Authenticator::new(&config.credentials, clock.clone())?;
        let mut tls = crate::tls::client_config(&config)?;
        // An exec plugin may return a client certificate: without a configured one, TLS asks
        // the plugin's latest (client-go's GetClientCertificate).
        if config.client_identity.is_none()
            && let Some(certificates) = auth.exec_certificates()
        {
            tls.client_auth_cert_resolver = certificates;
        }
        let server_name = match &config.tls_server_name {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|e| Error::tls(format!("tls-server-name {name:?}"), e))?,
            ),
            None => None,
        };
        let https = |tls: rustls::ClientConfig| {
            let builder = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http();
            match &server_name {
                Some(name) => {
                    builder.with_server_name_resolver(FixedServerNameResolver::new(name.clone()))
                }
                None => builder,
            }
        };
        // The kubeconfig's proxy-url, else the environment's (client-go's
        // http.ProxyFromEnvironment), unless turned off.
        let proxy = match &config.proxy_url {
            Some(proxy) => Some(proxy.clone()),
            None if config.proxy_from_env => {
                let proxy = crate::proxy_env::proxy_for(uri, |name| std::env::var(name).ok())
                    .map_err(|e| Error::Config(crate::error::ConfigError::Invalid(e)))?;
                if let Some(proxy) = &proxy {
                    tracing::debug!(?proxy, server = %uri, "using the proxy from the environment");
                }
                proxy
            }
            None => None,
        };
        let tcp = Connector::new(http, proxy.as_ref())?;
        #[cfg(feature = "ws")]
        let upgrade_connector = https(tls.clone())
            .enable_http1()
            .wrap_connector(tcp.clone());
        #[cfg(feature = "ws")]
        let upgrade_http = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(upgrade_connector.clone());
        let connector = https(tls).enable_all_versions().wrap_connector(tcp);
        // HTTP/2 pings (client-go: ReadIdleTimeout 30s, PingTimeout 15s) end a watch whose
        // connection died silently instead of leaving it waiting forever.
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_timeout(Duration::from_secs(15))
            .http2_keep_alive_while_idle(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        let user_agent = HeaderValue::try_from(config.user_agent.as_str()).map_err(|_| {
            Error::Request(format!(
                "user agent {:?} is not a valid header",
                config.user_agent
            ))
        })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                #[cfg(feature = "ws")]
                upgrade_http,
                #[cfg(feature = "ws")]
                upgrade_connector,
                scheme,
                authority,
                path_prefix,
                auth,
                limiter,
                discovery_limiter,
                clock,
                timeout: config.timeout,
                user_agent,
                max_retries: config.max_retries,
                max_retry_after: config.max_retry_after,
                retry_counters: retry::Counters::default(),
                default_namespace: config.default_namespace,
            }),
        })
    }
}

impl Client {
    /// A client for `config` on the real clock.
    pub fn try_from_config(config: Config) -> Result<Client, Error> {
        Client::builder(config).build()
    }

    /// A builder, to set a clock or a custom throttle.
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder {
            config,
            clock: None,
            limiter: None,
            discovery_limiter: None,
        }
    }

    /// Loads the configuration ([`Config::infer`]) and builds a client.
    pub fn try_default() -> Result<Client, Error> {
        Client::try_from_config(Config::infer()?)
    }

    /// The namespace of the configuration's context.
    pub fn default_namespace(&self) -> &str {
        &self.inner.default_namespace
    }

    /// Starts a request with this verb.
    pub fn request(&self, verb: Method) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            verb,
            group: String::new(),
            version: "v1".into(),
            namespace: None,
            resource: None,
            name: None,
            subresource: None,
            abs_path: None,
            query: Vec::new(),
            body: None,
            content_type: None,
            accept: None,
            timeout: None,
            empty_namespace: false,
            error: None,
            discovery: false,
        }
    }

    /// How many requests this client (with its clones) sent again after a `Retry-After`
    /// answer or a lost connection, and how many times retrying ran out.
    pub fn retry_stats(&self) -> RetryStats {
        self.inner.retry_counters.stats()
    }

    /// The URL prefix (scheme, host and path prefix) of the server.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}{}",
            self.inner.scheme, self.inner.authority, self.inner.path_prefix
        )
    }
}

/// The parts of one request, built step by step (client-go's `rest.Request`).
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder<'a> {
    client: &'a Client,
    verb: Method,
    group: String,
    version: String,
    namespace: Option<String>,
    resource: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    abs_path: Option<String>,
    query: Vec<(String, String)>,
    body: Option<Bytes>,
    content_type: Option<String>,
    accept: Option<String>,
    timeout: Option<Duration>,
    /// `namespace(Some(""))` was asked for (refused when sent).
    empty_namespace: bool,
    /// The first problem met while building (reported when the request is sent).
    error: Option<String>,
    /// Whether this is a discovery request (throttled by the discovery throttle).
    discovery: bool,
}

fn check_segment(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} may not be empty"));
    }
    if value == "." || value == ".." {
        return Err(format!("{what} may not be {value:?}"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '/' | '%' | '?' | '#') || c.is_control() || c.is_whitespace())
    {
        return Err(format!("{what} {value:?} may not contain {c:?}"));
    }
    Ok(())
}

impl<'a> RequestBuilder<'a> {
    fn segment(&mut self, what: &str, value: &str) -> Option<String> {
        match check_segment(what, value) {
            Ok(()) => Some(value.to_string()),
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    /// Sets the API group and version (`""` for the core group: `/api/v1`, otherwise
    /// `/apis/{group}/{version}`).
    pub fn group_version(mut self, group: &str, version: &str) -> Self {
        if !group.is_empty() {
            self.group = self.segment("group", group).unwrap_or_default();
        } else {
            self.group.clear();
        }
        self.version = self.segment("version", version).unwrap_or_default();
        self
    }

    /// Sets the namespace (`None` for cluster-scoped or all-namespaces requests).
    ///
    /// An empty namespace (`Some("")`) is refused when the request is sent, as client-go's
    /// preflight check does, rather than widened to all namespaces.
    pub fn namespace(mut self, namespace: Option<&str>) -> Self {
        self.namespace = match namespace {
            Some("") => {
                self.empty_namespace = true;
                None
            }
            Some(ns) => self.segment("namespace", ns),
            None => None,
        };
        self
    }

    /// client-go's `requestPreflightCheck`, stricter: an empty namespace is never a request
    /// over all namespaces.
    fn preflight(&self) -> Result<(), Error> {
        if !self.empty_namespace {
            return Ok(());
        }
        let message = if self.verb == Method::POST {
            "an empty namespace may not be set during creation"
        } else if self.name.is_some() {
            "an empty namespace may not be set when a resource name is provided"
        } else {
            "an empty namespace may not be set (leave the namespace out to list, watch or \
             delete across all namespaces)"
        };
        Err(Error::Request(message.into()))
    }

    /// Sets the resource (plural, lower case: `pods`).
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = self.segment("resource", resource);
        self
    }

    /// Sets the object name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = self.segment("resource name", name);
        self
    }

    /// Sets the subresource (`status`, `scale`...).
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = self.segment("subresource", subresource);
        self
    }

    /// Requests this absolute path (`/version`, `/apis`) instead of a resource path.
    pub fn abs_path(mut self, path: &str) -> Self {
        if !path.starts_with('/') || path.contains(['?', '#']) || path.split('/').any(|s| s == "..")
        {
            self.error.get_or_insert(format!(
                "absolute path {path:?} must start with / and have no query"
            ));
        } else {
            self.abs_path = Some(path.to_string());
        }
        self
    }

    /// Adds a query parameter.
    pub fn param(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_string(), value.into()));
        self
    }

    /// Adds query parameters.
    pub fn params<I, K, V>(mut self, params: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.query
            .extend(params.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Sets the body and its content type.
    pub fn body(mut self, body: impl Into<Bytes>, content_type: &str) -> Self {
        self.body = Some(body.into());
        self.content_type = Some(content_type.to_string());
        self
    }

    /// Serializes `value` as the JSON body.
    pub fn json_body<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.body(body, JSON),
            Err(e) => {
                self.error
                    .get_or_insert(format!("serializing the body: {e}"));
                self
            }
        }
    }

    /// Sets the `Accept` header (`application/json` by default).
    pub fn accept(mut self, accept: &str) -> Self {
        self.accept = Some(accept.to_string());
        self
    }

    /// Marks this request as discovery: it waits on the discovery throttle (kubectl's QPS 50
    /// and burst 300 by default) instead of the client's.
    pub(crate) fn discovery(mut self) -> Self {
        self.discovery = true;
        self
    }

    /// Waits for this request's turn in the client-side throttle.
    async fn throttle(&self) -> Result<(), Error> {
        let inner = &self.client.inner;
        let limiter = if self.discovery {
            &inner.discovery_limiter
        } else {
            &inner.limiter
        };
        match limiter {
            Some(limiter) => limiter.wait().await.map_err(Error::throttle),
            None => Ok(()),
        }
    }

    /// Overrides the client's timeout for this request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The path and query this request goes to (without scheme and host).
    pub fn path_and_query(&self) -> Result<String, Error> {
        if let Some(message) = &self.error {
            return Err(Error::Request(message.clone()));
        }
        self.preflight()?;
        let mut path = self.client.inner.path_prefix.clone();
        if let Some(abs) = &self.abs_path {
            path.push_str(abs);
        } else {
            if self.group.is_empty() {
                path.push_str("/api/");
            } else {
                path.push_str("/apis/");
                path.push_str(&self.group);
                path.push('/');
            }
            path.push_str(&self.version);
            // client-go: a namespace with the resource "namespaces" is the namespace's name.
            if let Some(ns) = &self.namespace {
                path.push_str("/namespaces/");
                path.push_str(ns);
            }
            if let Some(resource) = &self.resource {
                path.push('/');
                path.push_str(resource);
            } else if self.name.is_some() || self.subresource.is_some() {
                return Err(Error::Request(
                    "a name or subresource needs a resource".into(),
                ));
            }
            if let Some(name) = &self.name {
                path.push('/');
                path.push_str(name);
            }
            if let Some(sub) = &self.subresource {
                if self.name.is_none() {
                    return Err(Error::Request("a subresource needs a name".into()));
                }
                path.push('/');
                path.push_str(sub);
            }
        }
        if !self.query.is_empty() {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &self.query {
                query.append_pair(k, v);
            }
            path.push('?');
            path.push_str(&query.finish());
        }
        Ok(path)
    }

    /// Sends the request and returns the response head with its streaming body. Error
    /// statuses are decoded into [`Error::Api`]. The client's timeout covers only the
    /// response head here (this is how watches are opened).
    pub async fn send_streaming(self) -> Result<http::Response<crate::Body>, Error> {
        let timeout = self.timeout.or(self.client.inner.timeout);
        let response = match timeout {
            Some(t) => tokio::time::timeout(t, self.execute())
                .await
                .map_err(|_| Error::Timeout(t))??,
            None => self.execute().await?,
        };
        Ok(response.map(crate::Body::new))
    }

    /// Sends the request and reads the whole body (within the timeout).
    pub async fn send(self) -> Result<Bytes, Error> {
        let timeout = self.timeout.or(self.client.inner.timeout);
        let run = async move {
            let response = self.execute().await?;
            read_body(response.into_body()).await
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, run)
                .await
                .map_err(|_| Error::Timeout(t))?,
            None => run.await,
        }
    }

    /// Sends the request and decodes the JSON answer.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, Error> {
        let body = self.send().await?;
        serde_json::from_slice(&body).map_err(|e| Error::decode("body", e))
    }

    fn uri(&self) -> Result<(String, http::Uri), Error> {
        let path = self.path_and_query()?;
        let inner = &self.client.inner;
        let uri = http::Uri::builder()
            .scheme(inner.scheme.clone())
            .authority(inner.authority.clone())
            .path_and_query(path.as_str())
            .build()
            .map_err(|e| Error::Request(format!("{path}: {e}")))?;
        Ok((path, uri))
    }

    /// Opens a WebSocket on this request's path: a `GET` upgraded over HTTP/1.1, offering the
    /// subprotocols `protocols` in order of preference, with the client's authentication, TLS,
    /// proxy and throttle. The client's timeout (or this request's) covers the handshake only.
    ///
    /// An answer other than `101 Switching Protocols` is an error: the server's `Status` as
    /// [`Error::Api`] (a 404 for a missing pod, a 403 when no offered protocol is supported),
    /// or [`Error::Upgrade`] when the handshake itself is wrong (a bad `Sec-WebSocket-Accept`,
    /// a protocol that was not offered).
    #[cfg(feature = "ws")]
    pub async fn connect_websocket(
        self,
        protocols: &[&str],
    ) -> Result<crate::upgrade::WebSocketConnection, Error> {
        self.connect_websocket_maybe_on(None, protocols).await
    }

    /// Like [`connect_websocket`](Self::connect_websocket), sending the upgrade request on
    /// `connection`, opened ahead with [`Client::open_upgrade_connection`]: the TCP and TLS
    /// handshakes are already done. When `connection` was closed meanwhile (or was opened by
    /// another client), the request goes on a new connection instead, as
    /// `connect_websocket` sends it.
    #[cfg(feature = "ws")]
    pub async fn connect_websocket_on(
        self,
        connection: UpgradeConnection,
        protocols: &[&str],
    ) -> Result<crate::upgrade::WebSocketConnection, Error> {
        self.connect_websocket_maybe_on(Some(connection), protocols)
            .await
    }

    #[cfg(feature = "ws")]
    async fn connect_websocket_maybe_on(
        self,
        connection: Option<UpgradeConnection>,
        protocols: &[&str],
    ) -> Result<crate::upgrade::WebSocketConnection, Error> {
        let timeout = self.timeout.or(self.client.inner.timeout);
        let connect = self.upgrade(connection, protocols);
        match timeout {
            Some(t) => tokio::time::timeout(t, connect)
                .await
                .map_err(|_| Error::Timeout(t))?,
            None => connect.await,
        }
    }

    #[cfg(feature = "ws")]
    async fn upgrade(
        self,
        mut connection: Option<UpgradeConnection>,
        protocols: &[&str],
    ) -> Result<crate::upgrade::WebSocketConnection, Error> {
        let (path, uri) = self.uri()?;
        let inner = &self.client.inner;
        let mut refreshed = false;
        loop {
            self.throttle().await?;
            let key = crate::upgrade::new_key();
            let mut request = crate::upgrade::handshake_request(&uri, &key, protocols)?
                .header(USER_AGENT, inner.user_agent.clone());
            let auth = inner.auth.header().await?;
            if let Some(auth) = &auth {
                request = request.header(AUTHORIZATION, auth.clone());
            }
            let request = request
                .body(Full::new(Bytes::new()))
                .map_err(|e| Error::Request(e.to_string()))?;
            let request = match connection.take() {
                Some(connection) => match connection.send(&self.client.inner, request).await {
                    preconnect::Sent::Answered(response) => Ok(response),
                    preconnect::Sent::Unsent(request) => Err(request),
                    preconnect::Sent::Failed(error) => {
                        return Err(connect_error(format!("GET {uri}"), error));
                    }
                },
                None => Err(request),
            };
            let response = match request {
                Ok(response) => response,
                Err(request) => inner
                    .upgrade_http
                    .request(request)
                    .await
                    .map_err(|e| transport_error(&Method::GET, &uri, e))?,
            };
            let status = response.status();
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return crate::upgrade::finish(response, &key, protocols).await;
            }
            if status == StatusCode::UNAUTHORIZED && inner.auth.refreshable() && !refreshed {
                refreshed = true;
                let _ = read_error_body(response.into_body()).await;
                inner.auth.invalidate(auth.as_ref()).await;
                tracing::debug!(%path, "401 on upgrade: refreshing exec credentials");
                continue;
            }
            let (parts, body) = response.into_parts();
            let body = read_error_body(body).await;
            if parts.status.is_success() {
                return Err(Error::Upgrade(format!(
                    "{path}: the server answered {} instead of switching to a WebSocket",
                    parts.status
                )));
            }
            return Err(api_error(parts.status, &body));
        }
    }

    /// Sends the request, retrying as client-go does (see [`retry`]): `429`/`5xx` answers
    /// with `Retry-After` for every verb, lost connections for `GET`s.
    async fn execute(self) -> Result<http::Response<Incoming>, Error> {
        let (path, uri) = self.uri()?;
        let inner = &self.client.inner;
        let mut retries: u32 = 0;
        let mut refreshed = false;
        loop {
            self.throttle().await?;
            let mut request = http::Request::builder()
                .method(self.verb.clone())
                .uri(uri.clone())
                .header(USER_AGENT, inner.user_agent.clone())
                .header(
                    ACCEPT,
                    match &self.accept {
                        Some(accept) => HeaderValue::try_from(accept.as_str())
                            .map_err(|_| Error::Request(format!("accept header {accept:?}")))?,
                        None => HeaderValue::from_static(JSON),
                    },
                );
            if let Some(ct) = &self.content_type {
                request = request.header(
                    CONTENT_TYPE,
                    HeaderValue::try_from(ct.as_str())
                        .map_err(|_| Error::Request(format!("content type {ct:?}")))?,
                );
            }
            let auth = inner.auth.header().await?;
            if let Some(auth) = &auth {
                request = request.header(AUTHORIZATION, auth.clone());
            }
            let request = request
                .body(Full::new(self.body.clone().unwrap_or_default()))
                .map_err(|e| Error::Request(e.to_string()))?;
            let response = match inner.http.request(request).await {
                Ok(response) => response,
                Err(error) => {
                    // Only a GET is sent again: the server may have acted on anything else.
                    let lost = (self.verb == Method::GET)
                        .then(|| retry::lost_connection(&error))
                        .flatten();
                    let error = transport_error(&self.verb, &uri, error);
                    match lost {
                        // client-go answers itself with `Retry-After: 1`.
                        Some(reason) if self.may_retry(&mut retries, &path, reason, &error) => {
                            self.wait(Duration::from_secs(1)).await;
                            continue;
                        }
                        _ => return Err(error),
                    }
                }
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status == StatusCode::UNAUTHORIZED && inner.auth.refreshable() && !refreshed {
                // The server did not process the request: fetch fresh credentials, try once more.
                refreshed = true;
                let _ = read_error_body(response.into_body()).await;
                inner.auth.invalidate(auth.as_ref()).await;
                tracing::debug!(verb = %self.verb, %path, "401: refreshing exec credentials");
                continue;
            }
            let wait = retry::wait_asked(status, response.headers(), inner.clock.wall_now());
            let (parts, body) = response.into_parts();
            let body = read_error_body(body).await;
            let error = api_error(parts.status, &body);
            match wait {
                Some(wait) if self.may_retry(&mut retries, &path, "Retry-After", &error) => {
                    self.wait(wait).await;
                }
                _ => return Err(error),
            }
        }
    }

    /// Whether one more retry is allowed (counting it); when they ran out, logs and counts
    /// the exhaustion.
    fn may_retry(&self, retries: &mut u32, path: &str, reason: &str, error: &Error) -> bool {
        let inner = &self.client.inner;
        if *retries < inner.max_retries {
            *retries += 1;
            inner.retry_counters.retried();
            tracing::debug!(verb = %self.verb, %path, reason, retry = *retries, %error, "retrying");
            return true;
        }
        if inner.max_retries > 0 {
            inner.retry_counters.exhausted();
            tracing::warn!(verb = %self.verb, %path, reason, attempts = *retries + 1, %error, "giving up: retries exhausted");
        }
        false
    }

    /// Sleeps before a retry, on the client's clock, at most `max_retry_after`.
    async fn wait(&self, wait: Duration) {
        let inner = &self.client.inner;
        inner.clock.sleep(wait.min(inner.max_retry_after)).await;
    }
}

/// The error of a request that got no answer: [`Error::Tls`] when a TLS handshake failed,
/// [`Error::Transport`] otherwise, with hyper's error as the cause.
fn transport_error(
    verb: &Method,
    uri: &http::Uri,
    error: hyper_util::client::legacy::Error,
) -> Error {
    connect_error(format!("{verb} {uri}"), error)
}

/// A [`Error::Tls`] when a rustls error is in `error`'s chain, a [`Error::Transport`]
/// otherwise.
fn connect_error(context: String, error: impl std::error::Error + Send + Sync + 'static) -> Error {
    if is_tls(&error) {
        Error::tls(context, error)
    } else {
        Error::transport(context, error)
    }
}

/// Whether a rustls error is somewhere in the chain (`io::Error::source` skips the error it
/// wraps, so wrapped errors are looked into with `get_ref`).
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<rustls::Error>() {
        return true;
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return is_tls(inner);
    }
    error.source().is_some_and(is_tls)
}

pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, Error> {
    Ok(body
        .collect()
        .await
        .map_err(|e| Error::transport("reading the response body", e))?
        .to_bytes())
}

/// The most read of a non-2xx answer's body: a `Status` is a few hundred bytes; a server (or
/// a proxy in front of it) answering an error with an endless body must not exhaust memory.
pub(crate) const MAX_ERROR_BODY_BYTES: usize = 1 << 20;

/// The body of a non-2xx answer, cut at [`MAX_ERROR_BODY_BYTES`] (the rest is not read, and
/// the connection is closed rather than reused); empty when reading it fails.
pub(crate) async fn read_error_body(mut body: Incoming) -> Bytes {
    let mut read = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            let room = MAX_ERROR_BODY_BYTES - read.len();
            if data.len() >= room {
                read.extend_from_slice(&data[..room]);
                tracing::debug!(
                    limit = MAX_ERROR_BODY_BYTES,
                    "an error answer's body is longer than the limit: the rest is not read"
                );
                break;
            }
            read.extend_from_slice(&data);
        }
    }
    read.freeze()
}

/// The error of a non-2xx answer: its `Status` body when it has one.
pub(crate) fn api_error(code: StatusCode, body: &[u8]) -> Error {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(default)]
        kind: String,
    }
    let status = match serde_json::from_slice::<Kind>(body) {
        Ok(kind) if kind.kind == "Status" => match serde_json::from_slice::<Status>(body) {
            Ok(mut status) => {
                if status.code == 0 {
                    status.code = code.as_u16();
                }
                status
            }
            Err(_) => Status::from_code(code.as_u16(), body),
        },
        _ => Status::from_code(code.as_u16(), body),
    };
    Error::Api(Box::new(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(body: &serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(body).unwrap_or_default()
    }

    #[test]
    fn api_errors_are_classified() {
        let not_found = status(
            &serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "pods \"x\" not found", "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404}),
        );
        let exists = status(
            &serde_json::json!({"kind": "Status", "reason": "AlreadyExists", "code": 409, "message": "exists"}),
        );
        let conflict =
            status(&serde_json::json!({"kind": "Status", "reason": "Conflict", "code": 409}));
        let expired =
            status(&serde_json::json!({"kind": "Status", "reason": "Expired", "code": 410}));
        let invalid = status(
            &serde_json::json!({"kind": "Status", "reason": "Invalid", "code": 422,
            "details": {"causes": [{"reason": "FieldValueInvalid", "field": "metadata.name", "message": "bad"}]}}),
        );
        let no_code = status(&serde_json::json!({"kind": "Status", "reason": "TooManyRequests"}));
        let not_status = status(&serde_json::json!({"kind": "Pod"}));
        type Check = fn(&Error) -> bool;
        let cases: Vec<(u16, &[u8], &str, Check)> = vec![
            (404, &not_found, "NotFound", Error::is_not_found),
            (409, &exists, "AlreadyExists", |e| {
                e.is_already_exists() && !e.is_conflict()
            }),
            (409, &conflict, "Conflict", |e| {
                e.is_conflict() && !e.is_already_exists()
            }),
            (410, &expired, "Expired", Error::is_gone),
            (422, &invalid, "Invalid", |e| {
                e.is_invalid()
                    && e.status()
                        .and_then(|s| s.details.as_ref())
                        .is_some_and(|d| d.causes[0].field == "metadata.name")
            }),
            (429, &no_code, "TooManyRequests", |e| {
                e.is_too_many_requests() && e.status().is_some_and(|s| s.code == 429)
            }),
            (429, b"", "TooManyRequests", Error::is_too_many_requests),
            (404, &not_status, "NotFound", Error::is_not_found),
            (502, b"<html>bad gateway</html>", "Unknown", |e| {
                e.is_server_error()
                    && e.status()
                        .is_some_and(|s| s.message.contains("bad gateway"))
            }),
            (401, b"Unauthorized", "Unauthorized", Error::is_unauthorized),
            (403, b"", "Forbidden", |e| {
                e.is_forbidden() && !e.is_not_found()
            }),
            (504, b"", "Timeout", Error::is_timeout),
            (400, b"", "BadRequest", Error::is_bad_request),
        ];
        for (code, body, reason, check) in cases {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
            let error = api_error(code, body);
            assert_eq!(
                error.status().map(|s| s.reason.as_str()),
                Some(reason),
                "{code}"
            );
            assert!(check(&error), "{code} {reason}: {error}");
        }
        // Non-API errors answer no API question.
        let transport = Error::transport_msg("reset");
        assert!(!transport.is_not_found() && !transport.is_gone() && transport.status().is_none());
        // Long bodies are cut.
        let long = "x".repeat(2000);
        let error = api_error(StatusCode::BAD_GATEWAY, long.as_bytes());
        assert!(
            error
                .status()
                .is_some_and(|s| s.message.len() < 600 && s.message.ends_with("..."))
        );
    }
}
