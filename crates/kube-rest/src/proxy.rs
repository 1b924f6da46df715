//! Connecting directly, through an HTTP proxy (CONNECT tunnel) or through a SOCKS5 proxy
//! (kubeconfig's `proxy-url`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::error::{ConfigError, Error};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The TCP connector under TLS: direct, or through the configured proxy.
#[derive(Debug, Clone)]
pub(crate) enum Connector {
    Direct(HttpConnector),
    Tunnel(Tunnel<HttpConnector>),
    Socks(SocksV5<HttpConnector>),
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a `proxy-url`: `http://` (CONNECT tunnel) or `socks5://`, with optional
/// `user:password@`.
pub(crate) fn parse_proxy_url(url: &str) -> Result<ProxyUrl, String> {
    let shown = redact_userinfo(url);
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("proxy-url {shown:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "socks5") if uri.host().is_some() => Ok(ProxyUrl(uri)),
        Some("https") => Err(format!(
            "proxy-url {shown:?}: https proxies are not supported yet (http:// CONNECT or socks5://)"
        )),
        _ => Err(format!(
            "proxy-url {shown:?} must be http://host:port or socks5://host:port"
        )),
    }
}

/// `url` with any `user:password@` replaced by `<redacted>@`, for messages and `Debug`.
///
/// Conservative: everything after the scheme up to the last `@` is hidden, even when the
/// URL is malformed (a password with an unescaped `/`, no scheme, a `://` after the `@`).
pub(crate) fn redact_userinfo(url: &str) -> String {
    let (prefix, rest) = match url.find("://") {
        Some(i)
            if i > 0
                && url[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            url.split_at(i + 3)
        }
        _ => ("", url),
    };
    match rest.rfind('@') {
        Some(at) => format!("{prefix}<redacted>@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// A proxy URL. Its `Debug` hides the credentials it may carry (`user:password@`).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(pub(crate) Uri);

impl ProxyUrl {
    /// The URL, credentials included.
    pub fn uri(&self) -> &Uri {
        &self.0
    }
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyUrl({})", redact_userinfo(&self.0.to_string()))
    }
}

fn credentials(proxy: &Uri) -> Option<(String, String)> {
    let authority = proxy.authority()?.as_str();
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    Some((percent_decode(user), percent_decode(password)))
}

impl Connector {
    pub(crate) fn new(http: HttpConnector, proxy: Option<&ProxyUrl>) -> Result<Connector, Error> {
        let Some(ProxyUrl(proxy)) = proxy else {
            return Ok(Connector::Direct(http));
        };
        // The connector dials the proxy by host and port only.
        let host = proxy.host().unwrap_or_default();
        let port = proxy
            .port_u16()
            .unwrap_or(if proxy.scheme_str() == Some("socks5") {
                1080
            } else {
                80
            });
        let dial: Uri = format!(
            "http://{}:{port}",
            if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.to_string()
            }
        )
        .parse()
        .map_err(|e| {
            Error::Config(ConfigError::Invalid(format!(
                "proxy-url {}: {e}",
                redact_userinfo(&proxy.to_string())
            )))
        })?;
        match proxy.scheme_str() {
            Some("socks5") => {
                let mut socks = SocksV5::new(dial, http);
                if let Some((user, password)) = credentials(proxy) {
                    socks = socks.with_auth(user, password);
                }
                Ok(Connector::Socks(socks))
            }
            _ => {
                let mut tunnel = Tunnel::new(dial, http);
                if let Some((user, password)) = credentials(proxy) {
                    let encoded = base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{password}"));
                    let value =
                        HeaderValue::try_from(format!("Basic {encoded}")).map_err(|_| {
                            Error::Config(ConfigError::Invalid(
                                "proxy-url credentials are not a valid header".into(),
                            ))
                        })?;
                    tunnel = tunnel.with_auth(value);
                }
                Ok(Connector::Tunnel(tunnel))
            }
        }
    }
}

impl Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Connector::Direct(c) => c.poll_ready(cx).map_err(Into::into),
            Connector::Tunnel(c) => c.poll_ready(cx).map_err(Into::into),
            Connector::Socks(c) => c.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match self {
            Connector::Direct(c) => {
                let connecting = c.call(dst);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
            Connector::Tunnel(c) => {
                let connecting = c.call(dst);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
            Connector::Socks(c) => {
                let connecting = c.call(dst);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            redact_userinfo("http://alice:s3cret@proxy:3128/x"),
            "http://<redacted>@proxy:3128/x"
        );
        assert_eq!(
            redact_userinfo("socks5://proxy:1080"),
            "socks5://proxy:1080"
        );
        let url = parse_proxy_url("http://alice:s3cret@proxy:3128").unwrap();
        assert!(!format!("{url:?}").contains("s3cret"));
        let error = parse_proxy_url("https://alice:s3cret@proxy:3128").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
        // Found by the property tests: malformed URLs showed their password.
        for url in [
            ":s3cret@://",
            "http://alice:s3/cret@proxy:3128",
            "alice:s3cret@proxy",
        ] {
            assert!(!redact_userinfo(url).contains("s3"), "{url}");
            let shown = match parse_proxy_url(url) {
                Ok(proxy) => format!("{proxy:?}"),
                Err(error) => error,
            };
            assert!(!shown.contains("s3"), "{shown}");
        }
    }
}
