//! Request authentication: fixed and file-backed bearer tokens, basic auth, exec plugins
//! (tokens, and client certificates handed to TLS through [`ExecCertificates`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use http::HeaderValue;
use parking_lot::Mutex;

use kube_flowcontrol::clock::SharedClock;
use serde::Deserialize;

use crate::config::Credentials;
use crate::error::Error;
use crate::kubeconfig::ExecConfig;

/// What identifies a version of a token file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

#[derive(Debug)]
pub(crate) struct CachedToken {
    stamp: FileStamp,
    read_at: std::time::Instant,
    header: HeaderValue,
}

/// How long a token read from a file is used without reading the file again, even when its
/// modification time and size did not change.
const TOKEN_FILE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Produces the `Authorization` header of each request.
#[derive(Debug)]
pub(crate) enum Authenticator {
    None,
    Fixed(HeaderValue),
    TokenFile(TokenFile),
    Exec(Box<ExecAuth>),
}

/// A bearer token read from a file, cached while the file does not change.
#[derive(Debug)]
pub(crate) struct TokenFile {
    path: PathBuf,
    clock: SharedClock,
    cached: Mutex<Option<CachedToken>>,
}

/// A credential from an exec plugin (a token, a client certificate, or both) and until when
/// it is valid.
#[derive(Debug)]
pub(crate) struct ExecToken {
    header: Option<HeaderValue>,
    expires: Option<SystemTime>,
}

/// The client certificate an exec plugin returned, for the TLS handshakes of new connections
/// (client-go's `GetClientCertificate` callback). Empty until the plugin ran.
#[derive(Debug, Default)]
pub(crate) struct ExecCertificates {
    current: parking_lot::RwLock<Option<Arc<rustls::sign::CertifiedKey>>>,
}

impl rustls::client::ResolvesClientCert for ExecCertificates {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.current.read().clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Runs an exec credential plugin and caches its token and certificate.
#[derive(Debug)]
pub(crate) struct ExecAuth {
    config: ExecConfig,
    clock: SharedClock,
    cached: tokio::sync::Mutex<Option<ExecToken>>,
    certificates: Arc<ExecCertificates>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredential {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    status: Option<ExecCredentialStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredentialStatus {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration_timestamp: Option<String>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key_data: Option<String>,
}

/// The longest an exec credential plugin may run (a hung plugin must not wedge the client).
const EXEC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

impl ExecAuth {
    async fn run(&self) -> Result<ExecToken, Error> {
        let exec = &self.config;
        let what = || format!("exec plugin {:?}", exec.command);
        let info = serde_json::json!({
            "apiVersion": exec.api_version,
            "kind": "ExecCredential",
            "spec": { "interactive": false },
        });
        let mut command = tokio::process::Command::new(&exec.command);
        command
            .args(&exec.args)
            .envs(exec.env.iter().map(|v| (v.name.as_str(), v.value.as_str())))
            .env("KUBERNETES_EXEC_INFO", info.to_string())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(EXEC_TIMEOUT, command.output())
            .await
            .map_err(|_| {
                Error::auth_msg(format!(
                    "{} did not finish within {EXEC_TIMEOUT:?} (killed)",
                    what()
                ))
            })?
            .map_err(|e| {
                let hint = exec
                    .install_hint
                    .as_deref()
                    .map(|h| format!(" (install hint: {})", h.trim()))
                    .unwrap_or_default();
                Error::auth(format!("running {}{hint}", what()), e)
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(Error::auth_msg(format!(
                "{} failed ({}): {}",
                what(),
                output.status,
                stderr.trim()
            )));
        }
        let ParsedCredential {
            header,
            certificate,
            expires,
        } = parse_exec_credential(&output.stdout, &exec.api_version, &what())?;
        if let Some(certificate) = certificate {
            // New connections present it; pooled ones keep the one they were opened with.
            *self.certificates.current.write() = Some(Arc::new(certificate));
        }
        Ok(ExecToken { header, expires })
    }

    async fn header(&self) -> Result<Option<HeaderValue>, Error> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && token.expires.is_none_or(|at| self.clock.wall_now() < at)
        {
            return Ok(token.header.clone());
        }
        let token = self.run().await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(header)
    }

    /// Forgets the cached credential unless it already changed since `used` was sent.
    async fn invalidate(&self, used: Option<&HeaderValue>) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.header.as_ref() == used) {
            *cached = None;
        }
    }
}

/// What an exec plugin printed, checked: the `Authorization` header of its token, its client
/// certificate and until when they are valid.
pub(crate) struct ParsedCredential {
    pub(crate) header: Option<HeaderValue>,
    pub(crate) certificate: Option<rustls::sign::CertifiedKey>,
    pub(crate) expires: Option<SystemTime>,
}

/// Parses an exec plugin's standard output (an `ExecCredential` of `api_version`); `what`
/// names the plugin in errors. Error messages never quote the plugin's output: it holds the
/// credential (serde's type errors would show a misplaced scalar).
pub(crate) fn parse_exec_credential(
    stdout: &[u8],
    api_version: &str,
    what: &str,
) -> Result<ParsedCredential, Error> {
    let credential: ExecCredential = serde_json::from_slice(stdout).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Error::auth_msg(format!(
            "{what} printed an ExecCredential with a field of the wrong type (line {}, column {})",
            e.line(),
            e.column()
        )),
        _ => Error::auth(format!("{what} printed no ExecCredential"), e),
    })?;
    if credential.kind != "ExecCredential" || credential.api_version != api_version {
        return Err(Error::auth_msg(format!(
            "{} printed kind {:?} apiVersion {:?}, expected ExecCredential {:?}",
            what, credential.kind, credential.api_version, api_version
        )));
    }
    let status = credential.status.ok_or_else(|| {
        Error::auth_msg(format!("{} printed an ExecCredential without status", what))
    })?;
    let token = status.token.filter(|t| !t.is_empty());
    let certificate = match (
        status.client_certificate_data.filter(|c| !c.is_empty()),
        status.client_key_data.filter(|k| !k.is_empty()),
    ) {
        (Some(certificate), Some(key)) => Some(certified_key(&certificate, &key, what)?),
        (None, None) => None,
        _ => {
            return Err(Error::auth_msg(format!(
                "{} returned only one of clientCertificateData and clientKeyData",
                what
            )));
        }
    };
    if token.is_none() && certificate.is_none() {
        return Err(Error::auth_msg(format!(
            "{} returned neither a token nor a client certificate",
            what
        )));
    }
    let expires = match status.expiration_timestamp.filter(|t| !t.is_empty()) {
        Some(timestamp) => {
            let parsed: jiff::Timestamp = timestamp.parse().map_err(|e| {
                Error::auth(format!("{} expirationTimestamp {timestamp:?}", what), e)
            })?;
            Some(SystemTime::from(parsed))
        }
        None => None,
    };
    Ok(ParsedCredential {
        header: token.map(|t| bearer(&t, what)).transpose()?,
        certificate,
        expires,
    })
}

/// A client certificate and key from an exec plugin's PEM data.
fn certified_key(
    certificate: &str,
    key: &str,
    what: &str,
) -> Result<rustls::sign::CertifiedKey, Error> {
    let auth = |e: Error| Error::auth(what, e);
    let chain = crate::tls::parse_certificates(certificate.as_bytes(), "clientCertificateData")
        .map_err(auth)?;
    let key = crate::tls::parse_private_key(key.as_bytes(), "clientKeyData").map_err(auth)?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| Error::auth(format!("{what}: clientKeyData"), e))?;
    Ok(rustls::sign::CertifiedKey::new(chain, signing))
}

fn bearer(token: &str, what: &str) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.trim())).map_err(|_| {
        Error::auth_msg(format!(
            "{what} contains characters not allowed in a header"
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

impl Authenticator {
    pub(crate) fn new(
        credentials: &Credentials,
        clock: SharedClock,
    ) -> Result<Authenticator, Error> {
        Ok(match credentials {
            Credentials::None => Authenticator::None,
            Credentials::Token(token) => Authenticator::Fixed(bearer(token, "the bearer token")?),
            Credentials::TokenFile(path) => {
                let file = TokenFile {
                    path: path.clone(),
                    clock: clock.clone(),
                    cached: Mutex::new(None),
                };
                // Fail at construction on an unreadable file, as client-go does (the builder
                // is synchronous; requests read the file through tokio's thread pool).
                file.header_blocking()?;
                Authenticator::TokenFile(file)
            }
            Credentials::Exec(config) => Authenticator::Exec(Box::new(ExecAuth {
                config: config.clone(),
                clock,
                cached: tokio::sync::Mutex::new(None),
                certificates: Arc::default(),
            })),
            Credentials::Basic { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                let mut value =
                    HeaderValue::try_from(format!("Basic {encoded}")).map_err(|_| {
                        Error::auth_msg("basic-auth credentials are not a valid header")
                    })?;
                value.set_sensitive(true);
                Authenticator::Fixed(value)
            }
        })
    }

    /// The header for the next request; a token file is re-read when its modification time or
    /// length changed since the last read, an exec plugin is run when its token expired.
    pub(crate) async fn header(&self) -> Result<Option<HeaderValue>, Error> {
        match self {
            Authenticator::None => Ok(None),
            Authenticator::Fixed(value) => Ok(Some(value.clone())),
            Authenticator::Exec(exec) => exec.header().await,
            Authenticator::TokenFile(file) => file.header().await,
        }
    }

    /// Whether a 401 is worth one more try with fresh credentials.
    pub(crate) fn refreshable(&self) -> bool {
        matches!(self, Authenticator::Exec(_))
    }

    /// Drops cached credentials after a 401.
    pub(crate) async fn invalidate(&self, used: Option<&HeaderValue>) {
        if let Authenticator::Exec(exec) = self {
            exec.invalidate(used).await;
        }
    }

    /// Where an exec plugin's client certificate goes, for the TLS configuration.
    pub(crate) fn exec_certificates(&self) -> Option<Arc<ExecCertificates>> {
        match self {
            Authenticator::Exec(exec) => Some(Arc::clone(&exec.certificates)),
            _ => None,
        }
    }
}

impl TokenFile {
    /// The token file's header, read with blocking calls (only while building a client).
    fn header_blocking(&self) -> Result<Option<HeaderValue>, Error> {
        let stamp = match self.check(std::fs::metadata(&self.path))? {
            Freshness::Current(header) => return Ok(Some(header)),
            Freshness::Changed(stamp) => stamp,
        };
        self.accept(stamp, std::fs::read_to_string(&self.path))
    }

    /// The token file's header; the file is looked at through tokio's blocking pool (never a
    /// blocking call on the runtime), and read again only when it changed or every minute.
    async fn header(&self) -> Result<Option<HeaderValue>, Error> {
        let stamp = match self.check(tokio::fs::metadata(&self.path).await)? {
            Freshness::Current(header) => return Ok(Some(header)),
            Freshness::Changed(stamp) => stamp,
        };
        self.accept(stamp, tokio::fs::read_to_string(&self.path).await)
    }

    /// Whether the cached token of a token file can be used, given the file's metadata.
    fn check(&self, metadata: std::io::Result<std::fs::Metadata>) -> Result<Freshness, Error> {
        let TokenFile {
            path,
            clock,
            cached,
        } = self;
        let cached = cached.lock();
        let stamp = match metadata {
            Ok(metadata) => FileStamp {
                modified: metadata.modified().ok(),
                len: metadata.len(),
            },
            Err(e) => {
                // A rotation in progress can remove the file for a moment: keep the last
                // token if there is one.
                if let Some(token) = cached.as_ref() {
                    tracing::warn!(path = %path.display(), error = %e, "token file unreadable, using the previous token");
                    return Ok(Freshness::Current(token.header.clone()));
                }
                return Err(Error::auth(
                    format!("reading token file {}", path.display()),
                    e,
                ));
            }
        };
        if let Some(token) = cached.as_ref()
            && token.stamp == stamp
            // Re-read at least every minute, as client-go does, in case a rewrite kept the
            // size and landed within the file system's timestamp granularity.
            && clock.since(token.read_at) < TOKEN_FILE_MAX_AGE
        {
            return Ok(Freshness::Current(token.header.clone()));
        }
        Ok(Freshness::Changed(stamp))
    }

    /// Caches and returns the token just read from a token file with this `stamp`.
    fn accept(
        &self,
        stamp: FileStamp,
        read: std::io::Result<String>,
    ) -> Result<Option<HeaderValue>, Error> {
        let TokenFile {
            path,
            clock,
            cached,
        } = self;
        let token =
            read.map_err(|e| Error::auth(format!("reading token file {}", path.display()), e))?;
        let mut cached = cached.lock();
        if token.trim().is_empty() {
            if let Some(previous) = cached.as_ref() {
                tracing::warn!(path = %path.display(), "token file is empty, using the previous token");
                return Ok(Some(previous.header.clone()));
            }
            return Err(Error::auth_msg(format!(
                "token file {} is empty",
                path.display()
            )));
        }
        let header = bearer(&token, &format!("token file {}", path.display()))?;
        *cached = Some(CachedToken {
            stamp,
            read_at: clock.now(),
            header: header.clone(),
        });
        Ok(Some(header))
    }
}

/// Whether a token file must be read again.
enum Freshness {
    /// The cached token is still good.
    Current(HeaderValue),
    /// The file changed (or the token is too old): read it; it has this stamp.
    Changed(FileStamp),
}
