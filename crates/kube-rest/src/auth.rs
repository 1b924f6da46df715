//! Request authentication: fixed and file-backed bearer tokens, basic auth.

use std::path::PathBuf;
use std::time::SystemTime;

use base64::Engine as _;
use http::HeaderValue;
use parking_lot::Mutex;

use crate::config::Credentials;
use crate::error::Error;

/// What identifies a version of a token file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

#[derive(Debug)]
pub(crate) struct CachedToken {
    stamp: FileStamp,
    header: HeaderValue,
}

/// Produces the `Authorization` header of each request.
#[derive(Debug)]
pub(crate) enum Authenticator {
    None,
    Fixed(HeaderValue),
    TokenFile {
        path: PathBuf,
        cached: Mutex<Option<CachedToken>>,
    },
}

fn bearer(token: &str, what: &str) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.trim())).map_err(|_| {
        Error::Auth(format!(
            "{what} contains characters not allowed in a header"
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

impl Authenticator {
    pub(crate) fn new(credentials: &Credentials) -> Result<Authenticator, Error> {
        Ok(match credentials {
            Credentials::None => Authenticator::None,
            Credentials::Token(token) => Authenticator::Fixed(bearer(token, "the bearer token")?),
            Credentials::TokenFile(path) => {
                let authenticator = Authenticator::TokenFile {
                    path: path.clone(),
                    cached: Mutex::new(None),
                };
                // Fail at construction on an unreadable file, as client-go does.
                authenticator.header()?;
                authenticator
            }
            Credentials::Basic { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                let mut value =
                    HeaderValue::try_from(format!("Basic {encoded}")).map_err(|_| {
                        Error::Auth("basic-auth credentials are not a valid header".into())
                    })?;
                value.set_sensitive(true);
                Authenticator::Fixed(value)
            }
        })
    }

    /// The header for the next request; a token file is re-read when its modification time or
    /// length changed since the last read.
    pub(crate) fn header(&self) -> Result<Option<HeaderValue>, Error> {
        match self {
            Authenticator::None => Ok(None),
            Authenticator::Fixed(value) => Ok(Some(value.clone())),
            Authenticator::TokenFile { path, cached } => {
                let metadata = std::fs::metadata(path);
                let mut cached = cached.lock();
                let stamp = match metadata {
                    Ok(metadata) => FileStamp {
                        modified: metadata.modified().ok(),
                        len: metadata.len(),
                    },
                    Err(e) => {
                        // A rotation in progress can remove the file for a moment: keep the
                        // last token if there is one.
                        if let Some(token) = cached.as_ref() {
                            tracing::warn!(path = %path.display(), error = %e, "token file unreadable, using the previous token");
                            return Ok(Some(token.header.clone()));
                        }
                        return Err(Error::Auth(format!(
                            "reading token file {}: {e}",
                            path.display()
                        )));
                    }
                };
                if let Some(token) = cached.as_ref()
                    && token.stamp == stamp
                {
                    return Ok(Some(token.header.clone()));
                }
                let token = std::fs::read_to_string(path).map_err(|e| {
                    Error::Auth(format!("reading token file {}: {e}", path.display()))
                })?;
                if token.trim().is_empty() {
                    if let Some(previous) = cached.as_ref() {
                        tracing::warn!(path = %path.display(), "token file is empty, using the previous token");
                        return Ok(Some(previous.header.clone()));
                    }
                    return Err(Error::Auth(format!(
                        "token file {} is empty",
                        path.display()
                    )));
                }
                let header = bearer(&token, &format!("token file {}", path.display()))?;
                *cached = Some(CachedToken {
                    stamp,
                    header: header.clone(),
                });
                Ok(Some(header))
            }
        }
    }
}
