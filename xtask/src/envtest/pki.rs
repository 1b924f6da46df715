//! The certificates and keys of an envtest control plane, generated with rcgen at each start:
//! a CA, the kube-apiserver's serving certificate signed by it, a client certificate for the
//! admin user (`CN=envtest-admin, O=system:masters`, as controller-runtime's envtest provisions
//! it), a bearer token for the same user, and the service-account signing key pair.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// The admin user envtest provisions (`controlplane.User{Name: "envtest-admin", Groups:
/// ["system:masters"]}`).
pub const ADMIN_USER: &str = "envtest-admin";
/// Its group: the one RBAC lets do everything.
pub const ADMIN_GROUP: &str = "system:masters";

/// Everything generated, PEM where a file or kubeconfig takes it, DER where rustls does.
pub struct Pki {
    /// The CA certificate (clients trust it; the apiserver checks client certificates with it).
    pub ca_pem: String,
    ca_der: Vec<u8>,
    /// The serving certificate and its key.
    pub server_cert_pem: String,
    /// The serving certificate's private key (PKCS#8).
    pub server_key_pem: String,
    /// The admin's client certificate and its key.
    pub client_cert_pem: String,
    /// The client certificate's private key (PKCS#8).
    pub client_key_pem: String,
    client_cert_der: Vec<u8>,
    client_key_der: Vec<u8>,
    /// The admin's bearer token (64 hex digits), for `--token-auth-file`.
    pub token: String,
    /// The service-account token signing key (private, PKCS#8) and its public half.
    pub sa_key_pem: String,
    /// The public key the apiserver verifies service-account tokens with.
    pub sa_pub_pem: String,
}

fn rcgen_error(what: &'static str) -> impl Fn(rcgen::Error) -> String {
    move |error| format!("cannot generate the {what}: {error}")
}

impl Pki {
    /// Generates a fresh set (ECDSA P-256 keys, which kube-apiserver accepts everywhere).
    pub fn generate() -> Result<Pki, String> {
        let ca_key = KeyPair::generate().map_err(rcgen_error("CA key"))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error("CA"))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kube-toolkit-envtest-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_error("CA"))?;
        let issuer = Issuer::new(ca_params, ca_key);

        // The names a client may use for the server: loopback, and the in-cluster names and
        // first service IP (10.0.0.1 in the 10.0.0.0/24 service range), as kubeadm signs them.
        let server_key = KeyPair::generate().map_err(rcgen_error("serving key"))?;
        let mut server_params = CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "::1".to_string(),
            "localhost".to_string(),
            "10.0.0.1".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
        ])
        .map_err(rcgen_error("serving certificate"))?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        server_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .map_err(rcgen_error("serving certificate"))?;

        // The apiserver reads the user from the subject: CN is the name, each O a group.
        let client_key = KeyPair::generate().map_err(rcgen_error("client key"))?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())
            .map_err(rcgen_error("client certificate"))?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, ADMIN_USER);
        client_params
            .distinguished_name
            .push(DnType::OrganizationName, ADMIN_GROUP);
        client_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params
            .signed_by(&client_key, &issuer)
            .map_err(rcgen_error("client certificate"))?;

        let sa_key = KeyPair::generate().map_err(rcgen_error("service-account key"))?;

        Ok(Pki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            client_cert_der: client_cert.der().to_vec(),
            client_key_der: client_key.serialize_der(),
            token: random_token()?,
            sa_key_pem: sa_key.serialize_pem(),
            sa_pub_pem: sa_key.public_key_pem(),
        })
    }

    /// A line of a `--token-auth-file`: `token,user,uid,"group1,group2"`.
    pub fn token_file(&self) -> String {
        format!(
            "{},{ADMIN_USER},{ADMIN_USER},\"{ADMIN_GROUP}\"\n",
            self.token
        )
    }

    /// A rustls client configuration that trusts only the CA and presents the admin's client
    /// certificate (for the readiness probes).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let tls = |error: rustls::Error| format!("cannot configure TLS: {error}");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca_der.clone()))
            .map_err(tls)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from(self.client_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.client_key_der.clone())),
            )
            .map_err(tls)?;
        Ok(Arc::new(config))
    }
}

/// The server name the serving certificate is checked against.
pub fn loopback_name() -> ServerName<'static> {
    ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())
}

/// 32 bytes from the operating system's CSPRNG (through ring, already there for rustls), hex.
fn random_token() -> Result<String, String> {
    let provider = rustls::crypto::ring::default_provider();
    let mut bytes = [0u8; 32];
    provider
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| "the operating system gave no random bytes for the admin token".to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_distinct_material_in_the_formats_the_apiserver_reads() {
        let a = Pki::generate().unwrap();
        let b = Pki::generate().unwrap();
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.server_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(a.sa_pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(a.token.len(), 64);
        assert_ne!(a.token, b.token);
        assert_ne!(a.ca_pem, b.ca_pem);
        assert_eq!(
            a.token_file(),
            format!(
                "{},envtest-admin,envtest-admin,\"system:masters\"\n",
                a.token
            )
        );
        a.client_config().unwrap();
    }

    #[test]
    fn the_client_certificate_names_the_admin_in_system_masters() {
        let pki = Pki::generate().unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&pki.client_cert_der).unwrap();
        let subject = cert.subject();
        let cn = subject.iter_common_name().next().unwrap().as_str().unwrap();
        let o = subject
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!((cn, o), (ADMIN_USER, ADMIN_GROUP));
    }
}
