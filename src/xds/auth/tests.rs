use super::*;

use rcgen::{CertificateParams, KeyPair, SanType};

fn cert_with(sans: Vec<SanType>) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = sans;
    (params.self_signed(&key).unwrap(), key)
}

#[test]
fn the_identity_is_the_leafs_uri_sans() {
    let uri = "spiffe://meshplane.local/mesh/demo/virtualNode/web";
    let (cert, _) = cert_with(vec![
        SanType::DnsName("web".try_into().unwrap()),
        SanType::URI(uri.try_into().unwrap()),
    ]);
    let id = PeerIdentity::from_der(cert.der()).unwrap();
    assert_eq!(id.uris, vec![uri.to_string()]);
    assert_eq!(id.to_string(), uri);
    let (plain, _) = cert_with(vec![SanType::DnsName("web".try_into().unwrap())]);
    let none = PeerIdentity::from_der(plain.der()).unwrap();
    assert!(none.uris.is_empty());
    assert_eq!(none.to_string(), "(no URI SAN)");
    assert!(PeerIdentity::from_der(b"not a certificate").is_err());
}

fn tls(cert: &rcgen::Certificate, key: &KeyPair) -> XdsTls {
    XdsTls {
        cert_pem: cert.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes(),
        client_ca_pem: cert.pem().into_bytes(),
    }
}

fn applied(t: &XdsTls) -> Result<(), TlsError> {
    t.acceptor().map(|_| ())
}

#[test]
fn usable_material_makes_a_server_config_and_bad_material_is_refused() {
    let (cert, key) = cert_with(vec![SanType::DnsName("meshplane".try_into().unwrap())]);
    let good = tls(&cert, &key);
    assert!(applied(&good).is_ok());
    let no_ca = XdsTls {
        client_ca_pem: b"nothing".to_vec(),
        ..good.clone()
    };
    let err = applied(&no_ca).unwrap_err();
    assert!(err.to_string().contains("--xds-client-ca"), "{err}");
    let bad_key = XdsTls {
        key_pem: b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
        ..good.clone()
    };
    assert!(applied(&bad_key).is_err());
}

#[test]
fn debug_output_never_shows_the_key() {
    let (cert, key) = cert_with(vec![]);
    let t = tls(&cert, &key);
    let shown = format!("{t:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}

struct OnlyWeb;

impl Authorizer for OnlyWeb {
    fn authorize(&self, peer: Option<&PeerIdentity>, node_id: &str) -> Result<(), String> {
        match peer {
            Some(p) if p.uris.iter().any(|u| u.ends_with(node_id)) => Ok(()),
            _ => Err("not yours".into()),
        }
    }
}

#[test]
fn a_refusal_is_permission_denied_and_counted() {
    let m = XdsMetrics::default();
    let a: Arc<dyn Authorizer> = Arc::new(OnlyWeb);
    let web = PeerIdentity {
        uris: vec!["spiffe://x/web".into()],
    };
    assert!(check(Some(&a), Some(&web), "web", &m).is_ok());
    let err = check(Some(&a), Some(&web), "db", &m).unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(check(Some(&a), None, "web", &m).is_err());
    assert_eq!(m.denied.load(Ordering::Relaxed), 2);
    // No authorizer: anyone reads anything.
    assert!(check(None, None, "db", &m).is_ok());
    let mut text = Vec::new();
    render(&m, &mut |name, _, _, samples| {
        text.push(format!("{name} {}", samples[0].1))
    });
    assert_eq!(
        text,
        [
            "meshplane_xds_denied_total 2",
            "meshplane_xds_tls_handshake_failures_total 0"
        ]
    );
}
