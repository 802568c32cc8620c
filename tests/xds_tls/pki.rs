#![allow(dead_code)]
//! A throwaway PKI for the mTLS tests, made with rcgen: a CA, meshplane's server certificate
//! (for 127.0.0.1 and localhost) and client certificates with a SPIFFE URI SAN, written as the
//! files `serve --xds-tls-*` and `bootstrap --xds-tls DIR` expect.

use std::path::{Path, PathBuf};

use meshplane::xds::auth::XdsTls;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
pub struct Issued {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn issue(&self, cn: &str, sans: Vec<SanType>, usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// meshplane's xDS certificate, for 127.0.0.1 and localhost.
    pub fn server(&self) -> Issued {
        self.issue(
            "meshplane",
            vec![
                SanType::IpAddress([127, 0, 0, 1].into()),
                SanType::DnsName("localhost".try_into().unwrap()),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose identity is `uri` (a SPIFFE ID).
    pub fn client(&self, uri: &str) -> Issued {
        self.issue(
            uri,
            vec![SanType::URI(uri.try_into().unwrap())],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    /// The server side's TLS settings: `server` as the port's certificate, this CA for clients.
    pub fn xds_tls(&self, server: &Issued) -> XdsTls {
        XdsTls {
            cert_pem: server.cert.clone().into_bytes(),
            key_pem: server.key.clone().into_bytes(),
            client_ca_pem: self.pem().into_bytes(),
        }
    }
}

/// The SPIFFE ID of a node in the default trust domain.
pub fn spiffe(node_id: &str) -> String {
    format!("spiffe://meshplane.local/{node_id}")
}

/// Writes `cert.pem`, `key.pem` and `ca.pem` (the CA that signed meshplane's certificate) into
/// `dir`, as `meshplane ca issue --out DIR` does.
pub fn write_dir(dir: &Path, client: &Issued, server_ca: &Ca) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cert.pem"), &client.cert).unwrap();
    std::fs::write(dir.join("key.pem"), &client.key).unwrap();
    std::fs::write(dir.join("ca.pem"), server_ca.pem()).unwrap();
    dir.to_path_buf()
}
