//! Certificate helpers: a generated CA issues certificates rustls verifies; PEM keys and
//! certificates read and written (the seed's keyutil round trip on its RSA test key).

use std::sync::Arc;

use kube_rest::certs::{
    CertificateAuthority, certificates_from_file, certificates_to_pem, private_key_from_file,
    private_key_to_pem,
};
use kube_rest::tls::{parse_certificates, parse_private_key};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{PrivateKeyDer, ServerName, UnixTime};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

#[test]
fn a_generated_ca_issues_verifiable_certificates() {
    let ca = CertificateAuthority::generate("kube-rest test CA").unwrap();
    let server = ca.issue("server", &["localhost", "127.0.0.1"]).unwrap();
    assert!(
        !format!("{ca:?}").contains(&ca.certified_key().private_key_pem),
        "Debug must not print the key"
    );

    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_certificates(ca.certified_key().certificate_pem.as_bytes(), "ca").unwrap() {
        roots.add(cert).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let chain = parse_certificates(server.certificate_pem.as_bytes(), "server").unwrap();
    for name in ["localhost", "127.0.0.1"] {
        let name = ServerName::try_from(name).unwrap();
        verifier
            .verify_server_cert(&chain[0], &[], &name, &[], UnixTime::now())
            .unwrap();
    }
    let wrong = ServerName::try_from("example.com").unwrap();
    assert!(
        verifier
            .verify_server_cert(&chain[0], &[], &wrong, &[], UnixTime::now())
            .is_err()
    );

    // Another CA's certificate does not verify.
    let other = CertificateAuthority::generate("other")
        .unwrap()
        .issue("server", &["localhost"])
        .unwrap();
    let chain = parse_certificates(other.certificate_pem.as_bytes(), "other").unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    assert!(
        verifier
            .verify_server_cert(&chain[0], &[], &name, &[], UnixTime::now())
            .is_err()
    );

    // The generated key parses as PKCS#8.
    assert!(matches!(
        parse_private_key(server.private_key_pem.as_bytes(), "key").unwrap(),
        PrivateKeyDer::Pkcs8(_)
    ));
}

#[test]
fn pem_keys_and_certificates_round_trip() {
    let key = private_key_from_file(format!("{DATA}/ca-key.pem")).unwrap();
    assert!(
        matches!(key, PrivateKeyDer::Pkcs1(_)),
        "the seed's key is PKCS#1 RSA"
    );
    let pem = private_key_to_pem(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    assert!(pem.lines().all(|l| l.len() <= 64));
    let again = parse_private_key(pem.as_bytes(), "again").unwrap();
    assert_eq!(again.secret_der(), key.secret_der());
    // The file's own PEM (same 64-column wrapping) comes back byte for byte.
    let original = std::fs::read_to_string(format!("{DATA}/ca-key.pem")).unwrap();
    assert_eq!(pem.trim(), original.trim());

    let certificates = certificates_from_file(format!("{DATA}/ca.pem")).unwrap();
    assert_eq!(certificates.len(), 1);
    let written = certificates_to_pem(&certificates);
    assert_eq!(
        parse_certificates(written.as_bytes(), "written").unwrap(),
        certificates
    );

    // Errors name the file.
    let err = private_key_from_file(format!("{DATA}/ca.pem")).unwrap_err();
    assert!(
        err.to_string().contains("ca.pem") && err.to_string().contains("no PEM private key"),
        "{err}"
    );
    let err = certificates_from_file(format!("{DATA}/absent.pem")).unwrap_err();
    assert!(err.to_string().contains("absent.pem"), "{err}");
}
