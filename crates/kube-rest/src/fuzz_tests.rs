//! Property tests of the crate-private parsers a server or a plugin reaches: an exec plugin's
//! `ExecCredential` output, error bodies (`Status` or anything else) and proxy URLs. Arbitrary
//! bytes and mutations of valid inputs; each parse must return (`Ok` or `Err`) without
//! panicking, within a generous time budget. `PROPTEST_CASES` raises the number of cases for
//! long runs (docs/fuzzing.md).

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;

use crate::auth::parse_exec_credential;
use crate::client::api_error;
use crate::error::Error;

/// The number of cases: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `f` on another thread and fails if it does not finish within ten seconds (a hang;
/// every parse here takes microseconds).
fn within_budget<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the parser hung"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the parser panicked"),
    }
}

/// One edit of a valid input.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bit)| Edit::Flip(at, bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(at, len)| Edit::Duplicate(at, len)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        match *edit {
            Edit::Flip(at, bit) if len > 0 => bytes[at % len] ^= 1 << (bit % 8),
            Edit::Insert(at, byte) => bytes.insert(at % (len + 1), byte),
            Edit::Delete(at) if len > 0 => {
                bytes.remove(at % len);
            }
            Edit::Truncate(at) => bytes.truncate(at % (len + 1)),
            Edit::Duplicate(at, n) if len > 0 => {
                let at = at % len;
                let end = (at + 1 + n % 64).min(len);
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            _ => {}
        }
    }
    bytes
}

/// `valid` inputs with up to eight random edits each.
fn mutated(valid: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(valid),
        prop::collection::vec(edit(), 0..8),
    )
        .prop_map(|(bytes, edits)| apply(bytes, &edits))
}

const TOKEN: &str = "fuzz-secret-token-0a1b2c3d4e";
const API_VERSION: &str = "client.authentication.k8s.io/v1";

fn valid_credentials() -> Vec<Vec<u8>> {
    let credential = |status: serde_json::Value| {
        serde_json::json!({"apiVersion": API_VERSION, "kind": "ExecCredential", "status": status})
            .to_string()
            .into_bytes()
    };
    vec![
        credential(serde_json::json!({"token": TOKEN})),
        credential(
            serde_json::json!({"token": TOKEN, "expirationTimestamp": "2030-01-01T00:00:00Z"}),
        ),
        credential(
            serde_json::json!({"token": TOKEN, "clientCertificateData": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "clientKeyData": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"}),
        ),
    ]
}

fn valid_statuses() -> Vec<Vec<u8>> {
    let not_found = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "configmaps \"x\" not found", "reason": "NotFound",
        "details": {"name": "x", "kind": "configmaps", "causes": [{"reason": "FieldValueInvalid",
        "message": "bad", "field": "spec"}], "retryAfterSeconds": 3}, "code": 404});
    vec![
        not_found.to_string().into_bytes(),
        br#"{"kind":"Status","status":"Failure","code":0}"#.to_vec(),
        b"<html>502 Bad Gateway</html>".to_vec(),
        Vec::new(),
    ]
}

fn check_credential(stdout: Vec<u8>) {
    let result = within_budget(move || {
        parse_exec_credential(&stdout, API_VERSION, "exec plugin \"fuzz\"").map(|parsed| {
            (
                parsed.header.map(|h| h.is_sensitive()),
                parsed.expires.is_some(),
            )
        })
    });
    match result {
        // A token is always a sensitive header (hyper and h2 never log it).
        Ok((header, _)) => assert_ne!(header, Some(false)),
        Err(e) => {
            assert!(matches!(e, Error::Auth { .. }), "{e:?}");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(TOKEN), "{shown}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn exec_credential_output_arbitrary_bytes(stdout in prop::collection::vec(any::<u8>(), 0..256)) {
        check_credential(stdout);
    }

    #[test]
    fn exec_credential_output_mutated(stdout in mutated(valid_credentials())) {
        check_credential(stdout);
    }

    #[test]
    fn error_bodies(code in 100u16..600, body in prop_oneof![
        mutated(valid_statuses()),
        prop::collection::vec(any::<u8>(), 0..2048),
    ]) {
        let code = http::StatusCode::from_u16(code).unwrap();
        let error = within_budget(move || api_error(code, &body));
        let Error::Api(status) = error else { panic!("{error:?}") };
        prop_assert!(status.code != 0);
        // A body that is not a Status is cut: a server cannot make the message huge.
        prop_assert!(status.message.chars().count() <= 2048);
    }

    #[test]
    fn proxy_urls_never_show_their_password(
        scheme in prop::sample::select(vec!["http", "socks5", "https", ""]),
        user in "[a-zA-Z0-9%._-]{0,12}",
        host in "[a-z0-9.:\\[\\]]{0,20}",
        rest in "[/a-z?=#@]{0,10}",
    ) {
        let password = "Pr0xy-s3cret-9f8e";
        let url = if scheme.is_empty() {
            format!("{user}:{password}@{host}{rest}")
        } else {
            format!("{scheme}://{user}:{password}@{host}{rest}")
        };
        let redacted = crate::proxy::redact_userinfo(&url);
        prop_assert!(!redacted.contains(password), "{}", redacted);
        match crate::proxy::parse_proxy_url(&url) {
            Ok(proxy) => {
                let shown = format!("{proxy:?}");
                prop_assert!(!shown.contains(password), "{}", shown);
            }
            Err(message) => prop_assert!(!message.contains(password), "{}", message),
        }
    }

    #[test]
    fn proxy_url_arbitrary_text(url in "\\PC{0,40}") {
        let _ = crate::proxy::redact_userinfo(&url);
        let _ = crate::proxy::parse_proxy_url(&url);
    }
}

/// Minimal cases kept as plain tests.
#[test]
fn exec_credential_type_errors_do_not_quote_the_output() {
    for stdout in [
        format!(r#"{{"apiVersion":"{API_VERSION}","kind":"ExecCredential","status":"{TOKEN}"}}"#),
        format!(
            r#"{{"apiVersion":"{API_VERSION}","kind":"ExecCredential","status":{{"token":["{TOKEN}"]}}}}"#
        ),
        format!(
            r#"{{"apiVersion":"{API_VERSION}","kind":"ExecCredential","status":{{"token":"x","clientKeyData":{{"{TOKEN}":1}}}}}}"#
        ),
        format!(
            r#"{{"apiVersion":"{API_VERSION}","kind":"ExecCredential","status":{{"token":"{TOKEN}","expirationTimestamp":5}}}}"#
        ),
    ] {
        check_credential(stdout.into_bytes());
    }
    // The integer form of a token is quoted by serde ("invalid type: integer `...`").
    let err = parse_exec_credential(
        br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":81234567}}"#,
        API_VERSION,
        "plugin",
    )
    .err()
    .map(|e| format!("{e} {e:?}"))
    .unwrap_or_default();
    assert!(!err.is_empty() && !err.contains("81234567"), "{err}");
}
