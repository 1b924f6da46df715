//! Certificate helpers (client-go's `util/cert` and `util/keyutil`): generate a self-signed CA
//! and certificates it signs, and read and write PEM certificates and private keys.
//!
//! Generated keys are ECDSA P-256 (the ring provider cannot generate RSA keys); RSA (PKCS#1),
//! EC (SEC1) and PKCS#8 keys are all read and written.

use std::path::Path;

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CertifiedKey {
    /// The certificate (PEM).
    pub certificate_pem: String,
    /// The private key (PKCS#8 PEM).
    pub private_key_pem: String,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("certificate_pem", &self.certificate_pem)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

fn tls_error(what: &str) -> impl Fn(rcgen::Error) -> Error + '_ {
    move |e| Error::tls(what, e)
}

/// A self-signed certificate authority kept in memory, to issue certificates (for tests and
/// demos; its PEM can be written for clients to trust).
pub struct CertificateAuthority {
    params: CertificateParams,
    key: KeyPair,
    certified: CertifiedKey,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("certified", &self.certified)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed CA for `common_name` (client-go's `NewSelfSignedCACert`), allowed to
    /// sign certificates and CRLs.
    pub fn generate(common_name: &str) -> Result<CertificateAuthority, Error> {
        let key = KeyPair::generate().map_err(tls_error("generating a CA key"))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(tls_error("CA parameters"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params
            .self_signed(&key)
            .map_err(tls_error("signing the CA certificate"))?;
        let certified = CertifiedKey {
            certificate_pem: certificate.pem(),
            private_key_pem: key.serialize_pem(),
        };
        Ok(CertificateAuthority {
            params,
            key,
            certified,
        })
    }

    /// The CA's certificate and key.
    pub fn certified_key(&self) -> &CertifiedKey {
        &self.certified
    }

    /// A certificate for `common_name` and the DNS names or IP addresses in `alt_names`,
    /// signed by this CA (for a server or a client).
    pub fn issue(&self, common_name: &str, alt_names: &[&str]) -> Result<CertifiedKey, Error> {
        let issuer = Issuer::from_params(&self.params, &self.key);
        let key = KeyPair::generate().map_err(tls_error("generating a key"))?;
        let names: Vec<String> = alt_names.iter().map(|n| n.to_string()).collect();
        let mut params =
            CertificateParams::new(names).map_err(tls_error("certificate parameters"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let certificate = params
            .signed_by(&key, &issuer)
            .map_err(tls_error("signing the certificate"))?;
        Ok(CertifiedKey {
            certificate_pem: certificate.pem(),
            private_key_pem: key.serialize_pem(),
        })
    }
}

/// Reads every certificate of a PEM file (client-go's `cert.CertsFromFile`).
pub fn certificates_from_file(
    path: impl AsRef<Path>,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let path = path.as_ref();
    let pem =
        std::fs::read(path).map_err(|e| Error::tls(format!("reading {}", path.display()), e))?;
    crate::tls::parse_certificates(&pem, &path.display().to_string())
}

/// Reads the first private key of a PEM file (client-go's `keyutil.PrivateKeyFromFile`).
pub fn private_key_from_file(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, Error> {
    let path = path.as_ref();
    let pem =
        std::fs::read(path).map_err(|e| Error::tls(format!("reading {}", path.display()), e))?;
    crate::tls::parse_private_key(&pem, &path.display().to_string())
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// Writes a private key as PEM in its own format (`RSA PRIVATE KEY`, `EC PRIVATE KEY` or
/// `PRIVATE KEY`), as client-go's `keyutil.MarshalPrivateKeyToPEM`.
pub fn private_key_to_pem(key: &PrivateKeyDer<'_>) -> Result<String, Error> {
    let (label, der) = match key {
        PrivateKeyDer::Pkcs1(k) => ("RSA PRIVATE KEY", k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(k) => ("EC PRIVATE KEY", k.secret_sec1_der()),
        PrivateKeyDer::Pkcs8(k) => ("PRIVATE KEY", k.secret_pkcs8_der()),
        _ => return Err(Error::tls_msg("unknown private key format")),
    };
    Ok(pem_block(label, der))
}

/// Writes certificates as PEM.
pub fn certificates_to_pem(certificates: &[CertificateDer<'_>]) -> String {
    certificates
        .iter()
        .map(|c| pem_block("CERTIFICATE", c))
        .collect()
}
