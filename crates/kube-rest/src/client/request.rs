//! [`RequestBuilder`]: the parts of one request, built step by step, and sending it (auth,
//! throttle, retries, WebSocket upgrades).

use super::*;

/// The parts of one request, built step by step (client-go's `rest.Request`).
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder<'a> {
    pub(super) client: &'a Client,
    pub(super) verb: Method,
    pub(super) group: String,
    pub(super) version: String,
    pub(super) namespace: Option<String>,
    pub(super) resource: Option<String>,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
    pub(super) abs_path: Option<String>,
    pub(super) query: Vec<(String, String)>,
    pub(super) body: Option<Bytes>,
    pub(super) content_type: Option<String>,
    pub(super) accept: Option<String>,
    pub(super) timeout: Option<Duration>,
    /// `namespace(Some(""))` was asked for (refused when sent).
    pub(super) empty_namespace: bool,
    /// The first problem met while building (reported when the request is sent).
    pub(super) error: Option<String>,
    /// Whether this is a discovery request (throttled by the discovery throttle).
    pub(super) discovery: bool,
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
        let (parts, body) = response.into_parts();
        let body = crate::Body::new(&parts.headers, body);
        Ok(http::Response::from_parts(parts, body))
    }

    /// Sends the request and reads the whole body (within the timeout).
    pub async fn send(self) -> Result<Bytes, Error> {
        let timeout = self.timeout.or(self.client.inner.timeout);
        let run = async move {
            let response = self.execute().await?;
            let (parts, body) = response.into_parts();
            crate::Body::new(&parts.headers, body).bytes().await
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
            if inner.accept_gzip {
                request = request.header(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
            }
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
            let mut body = read_error_body(body).await;
            if crate::gzip::is_gzip(&parts.headers) {
                body =
                    crate::gzip::inflate(&body, response::MAX_ERROR_BODY_BYTES).unwrap_or_default();
            }
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
