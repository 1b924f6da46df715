//! Reading answers: bodies (error bodies capped), API errors from `Status` bodies, and the
//! classification of transport failures.

use super::*;

/// The error of a request that got no answer: [`Error::Tls`] when a TLS handshake failed,
/// [`Error::Transport`] otherwise, with hyper's error as the cause.
pub(super) fn transport_error(
    verb: &Method,
    uri: &http::Uri,
    error: hyper_util::client::legacy::Error,
) -> Error {
    connect_error(format!("{verb} {uri}"), error)
}

/// A [`Error::Tls`] when a rustls error is in `error`'s chain, a [`Error::Transport`]
/// otherwise.
pub(super) fn connect_error(
    context: String,
    error: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    if is_tls(&error) {
        Error::tls(context, error)
    } else {
        Error::transport(context, error)
    }
}

/// Whether a rustls error is somewhere in the chain (`io::Error::source` skips the error it
/// wraps, so wrapped errors are looked into with `get_ref`).
pub(super) fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
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
    // A client that accepts protobuf gets its errors in protobuf too.
    let decoded = if body.starts_with(&kube_apimachinery::protobuf::MAGIC) {
        kube_apimachinery::protobuf::Decoder::new()
            .object::<Status>(body)
            .ok()
    } else {
        match serde_json::from_slice::<Kind>(body) {
            Ok(kind) if kind.kind == "Status" => serde_json::from_slice::<Status>(body).ok(),
            _ => None,
        }
    };
    let status = match decoded {
        Some(mut status) => {
            if status.code == 0 {
                status.code = code.as_u16();
            }
            status
        }
        None => Status::from_code(code.as_u16(), body),
    };
    Error::Api(Box::new(status))
}
