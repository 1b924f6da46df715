//! The REST client: request building, authentication, throttling, retries and error decoding.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
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
mod request;
mod response;
mod retry;
use crate::config::Config;
use crate::error::{Error, Status};
use crate::proxy::Connector;
#[cfg(feature = "ws")]
pub use preconnect::UpgradeConnection;
pub use request::RequestBuilder;
#[cfg(feature = "ws")]
use response::connect_error;
use response::transport_error;
pub(crate) use response::{api_error, read_body, read_error_body};
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
    /// Ask for gzip-compressed answers (unless `Config::disable_compression`).
    accept_gzip: bool,
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
                accept_gzip: !config.disable_compression,
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
