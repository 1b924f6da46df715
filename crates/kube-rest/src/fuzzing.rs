//! Entry points of crate-private parsers for the cargo-fuzz targets in `fuzz/` (the
//! `fuzzing` feature). Not a stable API.

/// Parses an exec credential plugin's standard output; whether it gave a credential.
pub fn exec_credential(stdout: &[u8]) -> bool {
    crate::auth::parse_exec_credential(stdout, "client.authentication.k8s.io/v1", "fuzz").is_ok()
}

/// Turns a non-2xx answer into an error, as the client does; the error's status code.
pub fn error_body(code: u16, body: &[u8]) -> Option<u16> {
    let code = http::StatusCode::from_u16(code).ok()?;
    crate::client::api_error(code, body)
        .status()
        .map(|s| s.code)
}

/// Checks a `proxy-url` and redacts it for messages; whether it is usable.
pub fn proxy_url(url: &str) -> bool {
    let _ = crate::proxy::redact_userinfo(url);
    crate::proxy::parse_proxy_url(url).is_ok()
}
