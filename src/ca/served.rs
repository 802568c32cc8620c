//! What a served certificate says, for the admin API (`/proxies`, `meshplane status`): the SPIFFE
//! URI, DNS names, serial and expiry of the leaf in an identity SDS secret, read from the secret's
//! certificate chain. The secret's key is never looked at.

use envoy_types::pb::envoy::config::core::v3::data_source;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{secret, Secret};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use serde::{Deserialize, Serialize};
use x509_parser::extensions::GeneralName;

/// The leaf certificate of an identity secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedCertificate {
    /// The URI SAN (the SPIFFE ID), if any.
    pub uri: Option<String>,
    /// DNS names and IP addresses.
    pub dns: Vec<String>,
    /// Hex, colon-separated, as `openssl x509 -serial` shows it (without the colons there).
    pub serial: String,
    /// Seconds since the Unix epoch.
    pub not_after: i64,
}

/// The leaf of the TLS certificate secret `any` (a packed `Secret`); `None` for another kind of
/// secret or one that does not parse.
pub fn served_certificate(any: &Any) -> Option<ServedCertificate> {
    let secret = Secret::decode(any.value.as_slice()).ok()?;
    let Some(secret::Type::TlsCertificate(tls)) = secret.r#type else {
        return None;
    };
    let pem = match tls.certificate_chain?.specifier? {
        data_source::Specifier::InlineBytes(b) => b,
        data_source::Specifier::InlineString(s) => s.into_bytes(),
        _ => return None,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let mut uri = None;
    let mut dns = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(u) if uri.is_none() => uri = Some(u.to_string()),
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(ip) => dns.extend(ip_text(ip)),
                _ => {}
            }
        }
    }
    Some(ServedCertificate {
        uri,
        dns,
        serial: cert.raw_serial_as_string(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

fn ip_text(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?).to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{Authority, CaDir, Identity};
    use crate::model::ProxyId;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn an_identity_secret_shows_its_names_serial_and_expiry_and_the_trust_bundle_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = CaDir::open_or_create(&tmp.path().join("ca"), "meshplane.local").unwrap();
        let auth = Authority::new(ca, Duration::from_secs(3600));
        let id = Identity {
            uri: "spiffe://meshplane.local/mesh/demo/virtualNode/web".into(),
            dns: vec!["web.demo.local".into(), "10.0.0.5".into()],
        };
        let node = ProxyId::virtual_node("demo", "web");
        let secret = auth.identity_secret(&node, &id).unwrap();
        let c = served_certificate(&secret.any).expect("a certificate");
        assert_eq!(c.uri.as_deref(), Some(id.uri.as_str()));
        assert_eq!(c.dns, ["web.demo.local", "10.0.0.5"]);
        assert!(c.serial.len() > 8 && c.serial.contains(':'), "{}", c.serial);
        let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
        let secs = in_an_hour.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        assert!((c.not_after - secs).abs() <= 5, "{} vs {secs}", c.not_after);
        assert!(!serde_json::to_string(&c).unwrap().contains("PRIVATE"));
        assert_eq!(served_certificate(&auth.trust_secret().any), None);
    }
}
