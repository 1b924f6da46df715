//! rustls client configuration (ring provider) from a [`Config`].

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::Config;
use crate::error::Error;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses the PEM certificates in `pem` (at least one is required).
pub fn parse_certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::tls(format!("{what}: invalid PEM"), e))?;
    if certs.is_empty() {
        return Err(Error::tls_msg(format!("{what}: no PEM certificate found")));
    }
    Ok(certs)
}

/// Parses the first private key (PKCS#1 RSA, SEC1 EC or PKCS#8) in `pem`.
pub fn parse_private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, Error> {
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|e| Error::tls(format!("{what}: invalid PEM"), e))?
        .ok_or_else(|| {
            Error::tls_msg(format!(
                "{what}: no PEM private key found (RSA, EC or PKCS#8)"
            ))
        })
}

/// The rustls client configuration for `config`: its CA (or the system roots), its client
/// certificate, or no verification at all with `insecure_skip_tls_verify`. ALPN is left empty:
/// the connector of [`Client`](crate::Client) offers HTTP/2 then HTTP/1.1.
pub fn client_config(config: &Config) -> Result<ClientConfig, Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls("choosing the TLS versions", e))?;
    let builder = if config.insecure_skip_tls_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification {
                algorithms: provider().signature_verification_algorithms,
            }))
    } else {
        let mut roots = RootCertStore::empty();
        match &config.root_ca {
            Some(source) => {
                let pem = source.load()?;
                for cert in parse_certificates(&pem, "certificate authority")? {
                    roots
                        .add(cert)
                        .map_err(|e| Error::tls("certificate authority", e))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                for error in &native.errors {
                    tracing::debug!(%error, "loading a system root certificate");
                }
                let (added, _ignored) = roots.add_parsable_certificates(native.certs);
                if added == 0 {
                    return Err(Error::tls_msg(
                        "no certificate authority configured and no system root certificates found",
                    ));
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let tls = match &config.client_identity {
        Some((certificate, key)) => {
            let chain = parse_certificates(&certificate.load()?, "client certificate")?;
            let key = parse_private_key(&key.load()?, "client key")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::tls("client certificate and key", e))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(tls)
}

/// The verifier of `insecure-skip-tls-verify`: any certificate is accepted, but handshake
/// signatures are still checked against the presented certificate.
#[derive(Debug)]
struct NoVerification {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
