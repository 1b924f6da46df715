//! Certificates for the TLS listener: a fresh self-signed CA, a server certificate for
//! `localhost`, `127.0.0.1` and `::1`, and (for client-certificate authentication) a client
//! certificate, all generated with rcgen at startup.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// A client certificate and its key, PEM (what a kubeconfig's `client-certificate-data` and
/// `client-key-data` hold).
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
}

/// The CA and certificates of one server.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The CA certificate, PEM: what clients trust (`certificate-authority-data`).
    pub ca_pem: String,
    /// A client certificate for `CN=<user>, O=system:masters`, when client-certificate
    /// authentication is on.
    pub client: Option<ClientCertificate>,
    ca_cert_der: Vec<u8>,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
}

fn tls_error(error: impl std::fmt::Display) -> Error {
    Error::Tls(error.to_string())
}

impl TlsMaterial {
    /// Generates a CA and a server certificate signed by it, and a client certificate for
    /// `client_user` if given.
    pub fn generate(client_user: Option<&str>) -> Result<TlsMaterial, Error> {
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
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params.signed_by(&server_key, &issuer).map_err(tls_error)?;

        let client = match client_user {
            Some(user) => {
                let key = KeyPair::generate().map_err(tls_error)?;
                let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
                params.distinguished_name.push(DnType::CommonName, user);
                params
                    .distinguished_name
                    .push(DnType::OrganizationName, "system:masters");
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                let cert = params.signed_by(&key, &issuer).map_err(tls_error)?;
                Some(ClientCertificate {
                    cert_pem: cert.pem(),
                    key_pem: key.serialize_pem(),
                })
            }
            None => None,
        };
        Ok(TlsMaterial {
            ca_pem: ca_cert.pem(),
            client,
            ca_cert_der: ca_cert.der().to_vec(),
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
        })
    }

    /// A rustls server configuration (ring provider) offering HTTP/2 and HTTP/1.1. With a client
    /// certificate generated, clients may present certificates signed by the CA (and may still
    /// connect without one).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?;
        let builder = if self.client.is_some() {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(self.ca_cert_der.clone()))
                .map_err(tls_error)?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(tls_error)?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(
                vec![CertificateDer::from(self.server_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
            )
            .map_err(tls_error)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The user a verified client certificate names (its subject's common name).
pub fn certificate_user(der: &[u8]) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let common_name = certificate.subject().iter_common_name().next()?;
    common_name.as_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificate_names_its_user() {
        let material = TlsMaterial::generate(Some("alice")).unwrap();
        let client = material.client.as_ref().unwrap();
        let der = rustls_pemfile::certs(&mut client.cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(certificate_user(&der).as_deref(), Some("alice"));
        assert!(material.server_config().is_ok());
        assert!(certificate_user(b"not a certificate").is_none());
    }
}
