//! Certificates for the TLS listener: a fresh self-signed CA and a server certificate for
//! `localhost`, `127.0.0.1` and `::1`, generated with rcgen at startup.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// The CA and server certificate of one server.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The CA certificate, PEM: what clients trust (`certificate-authority-data`).
    pub ca_pem: String,
    /// The server certificate, PEM.
    pub server_cert_pem: String,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
}

fn tls_error(error: impl std::fmt::Display) -> Error {
    Error::Tls(error.to_string())
}

impl TlsMaterial {
    /// Generates a CA and a server certificate signed by it.
    pub fn generate() -> Result<TlsMaterial, Error> {
        let ca_key = KeyPair::generate().map_err(tls_error)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kube-testserver-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_error)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(tls_error)?;
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ])
        .map_err(tls_error)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let server_cert = params.signed_by(&server_key, &issuer).map_err(tls_error)?;
        Ok(TlsMaterial {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
        })
    }

    /// A rustls server configuration (ring provider) offering HTTP/2 and HTTP/1.1.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.server_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
            )
            .map_err(tls_error)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
