//! Issuing leaf certificates with the CA's key: a fresh ECDSA P-256 key per certificate, the
//! identity's SPIFFE URI and DNS names (or IP addresses) as subject alternative names, a validity
//! that starts a little in the past (clocks differ), and the usages the certificate is for.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};

use super::{CaDir, CaError};

/// What a certificate names: a SPIFFE URI and DNS names (or IP addresses).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    pub uri: String,
    pub dns: Vec<String>,
}

/// A certificate with its key, and when it stops being valid. `Debug` leaves the key out.
#[derive(Clone)]
pub struct Credentials {
    pub cert_pem: String,
    key_pem: String,
    /// The trust bundle every peer's certificate must chain to (PEM).
    pub ca_pem: String,
    pub not_after: SystemTime,
}

impl Credentials {
    /// The private key (PKCS#8 PEM). Handed to whoever the certificate is for; never logged.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// What a certificate may be used for (extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Usage {
    Server,
    Client,
    Both,
}

/// How far back a certificate's validity starts: a quarter of its life, at most a minute, so a
/// peer whose clock is a little behind still accepts it.
fn backdate(validity: Duration) -> Duration {
    (validity / 4).min(Duration::from_secs(60))
}

pub(super) fn leaf(
    ca: &CaDir,
    id: &Identity,
    validity: Duration,
    usage: Usage,
) -> Result<Credentials, CaError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    // Identity is in the SANs; a short common name only helps people reading the certificate.
    let cn: String = id
        .uri
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect();
    if !cn.is_empty() {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.subject_alt_names = sans(id)?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match usage {
        Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Usage::Both => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    params.use_authority_key_identifier_extension = true;
    let now = SystemTime::now();
    let not_after = now + validity;
    params.not_before = (now - backdate(validity)).into();
    params.not_after = not_after.into();
    let cert = params.signed_by(&key, &ca.issuer)?;
    Ok(Credentials {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem: ca.bundle_pem.clone(),
        not_after,
    })
}

/// The URI first, then each name: an IP address as one, anything else as a DNS name. Names that
/// cannot be a DNS name (not ASCII) are left out rather than failing the whole certificate.
fn sans(id: &Identity) -> Result<Vec<SanType>, CaError> {
    let mut out = Vec::with_capacity(id.dns.len() + 1);
    if !id.uri.is_empty() {
        let uri = id.uri.clone().try_into().map_err(|_| CaError::Invalid {
            path: Default::default(),
            message: format!("`{}` cannot be a URI name", id.uri),
        })?;
        out.push(SanType::URI(uri));
    }
    for name in &id.dns {
        if let Ok(ip) = name.parse::<IpAddr>() {
            out.push(SanType::IpAddress(ip));
        } else if let Ok(dns) = name.clone().try_into() {
            out.push(SanType::DnsName(dns));
        }
    }
    Ok(out)
}
