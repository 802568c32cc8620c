//! The CA: creating and loading its directory (permissions, a second open, the wrong trust
//! domain), what proxy certificates name and how long they live, when they are renewed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

use super::*;
use crate::model::ProxyId;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// (URI SANs, DNS SANs, not_before, not_after, issuer CN) of a PEM certificate.
fn read(pem_text: &str) -> (Vec<String>, Vec<String>, i64, i64, bool) {
    let (_, p) = parse_x509_pem(pem_text.as_bytes()).unwrap();
    let cert = p.parse_x509().unwrap();
    let mut uris = Vec::new();
    let mut dns = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::URI(u) => uris.push(u.to_string()),
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                _ => {}
            }
        }
    }
    let v = cert.validity();
    let ca = cert.is_ca();
    (
        uris,
        dns,
        v.not_before.timestamp(),
        v.not_after.timestamp(),
        ca,
    )
}

#[test]
fn a_new_ca_dir_is_private_and_a_second_open_loads_the_same_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = CaDir::open_or_create(&dir, "example.org").unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    assert!(std::fs::read_to_string(dir.join("ca.key"))
        .unwrap()
        .contains("PRIVATE KEY"));
    let (uris, _, _, _, is_ca) = read(ca.ca_pem());
    assert!(is_ca);
    assert_eq!(uris, ["spiffe://example.org"]);
    let again = CaDir::open_or_create(&dir, "example.org").unwrap();
    assert_eq!(again.ca_pem(), ca.ca_pem(), "the existing CA is kept");
    let opened = CaDir::open(&dir, "example.org").unwrap();
    assert_eq!(opened.ca_pem(), ca.ca_pem());
    // Nothing of the key in Debug output.
    let shown = format!("{ca:?}");
    assert!(!shown.contains("PRIVATE") && shown.contains("example.org"));
}

#[test]
fn a_ca_dir_is_refused_for_another_trust_domain_a_readable_key_or_none_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    assert!(CaDir::open(&dir, "a.example")
        .unwrap_err()
        .to_string()
        .contains("ca init"));
    CaDir::open_or_create(&dir, "a.example").unwrap();
    let other = CaDir::open(&dir, "b.example").unwrap_err().to_string();
    assert!(other.contains("spiffe://a.example"), "{other}");
    let key = dir.join("ca.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = CaDir::open(&dir, "a.example").unwrap_err().to_string();
    assert!(
        err.contains("chmod 600") && !err.contains("PRIVATE"),
        "{err}"
    );
    assert!(CaDir::open_or_create(&dir, "Not A Domain").is_err());
}

#[test]
fn a_proxy_certificate_names_its_spiffe_id_and_dns_names_and_chains_to_the_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open_or_create(&tmp.path().join("ca"), DEFAULT_TRUST_DOMAIN).unwrap();
    let id = Identity {
        uri: "spiffe://meshplane.local/mesh/demo/virtualNode/backend".into(),
        dns: vec![
            "backend.demo.local".into(),
            "backend.svc".into(),
            "10.0.0.7".into(),
        ],
    };
    let validity = Duration::from_secs(3600);
    let creds = ca.issue(&id, validity).unwrap();
    let (uris, dns, nb, na, is_ca) = read(&creds.cert_pem);
    assert!(!is_ca);
    assert_eq!(uris, std::slice::from_ref(&id.uri));
    assert_eq!(dns, ["backend.demo.local", "backend.svc"]);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(nb <= now && nb >= now - 61, "backdated at most a minute");
    assert!((na - (now + 3600)).abs() <= 2, "valid for an hour");
    assert!(creds.key_pem().contains("PRIVATE KEY"));
    assert!(!format!("{creds:?}").contains("PRIVATE"));
    // Signed by the CA's key.
    let (_, ca_pem) = parse_x509_pem(ca.ca_pem().as_bytes()).unwrap();
    let ca_cert = ca_pem.parse_x509().unwrap();
    let (_, leaf_pem) = parse_x509_pem(creds.cert_pem.as_bytes()).unwrap();
    let leaf = leaf_pem.parse_x509().unwrap();
    assert_eq!(leaf.issuer(), ca_cert.subject());
    leaf.verify_signature(Some(ca_cert.public_key()))
        .expect("signed by the CA");
}

#[test]
fn client_credentials_name_the_node_and_are_written_with_a_private_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open_or_create(&tmp.path().join("ca"), "corp.example").unwrap();
    let node = ProxyId::parse("mesh/demo/virtualGateway/gw").unwrap();
    let creds = ca
        .client_credentials(&node, Duration::from_secs(60))
        .unwrap();
    let (uris, dns, ..) = read(&creds.cert_pem);
    assert_eq!(uris, ["spiffe://corp.example/mesh/demo/virtualGateway/gw"]);
    assert!(dns.is_empty());
    let out = tmp.path().join("out");
    write_credentials(&out, &creds).unwrap();
    assert_eq!(mode(&out.join("key.pem")), 0o600);
    assert_eq!(
        std::fs::read_to_string(out.join("ca.pem")).unwrap(),
        ca.ca_pem()
    );
    let server = ca
        .xds_server_credentials(
            &["localhost".into(), "127.0.0.1".into()],
            Duration::from_secs(3600),
        )
        .unwrap();
    let (uris, dns, ..) = read(&server.cert_pem);
    assert_eq!(uris, ["spiffe://corp.example/meshplane/xds"]);
    assert_eq!(dns, ["localhost"]);
}

#[test]
fn a_proxy_keeps_its_certificate_until_two_thirds_of_its_life_or_a_change_of_names() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open_or_create(&tmp.path().join("ca"), DEFAULT_TRUST_DOMAIN).unwrap();
    let auth = Authority::new(ca, Duration::from_secs(3));
    let node = ProxyId::virtual_node("demo", "web");
    let id = Identity {
        uri: spiffe_uri(DEFAULT_TRUST_DOMAIN, &node),
        dns: vec!["web".into()],
    };
    let first = auth.identity_secret(&node, &id).unwrap();
    let same = auth.identity_secret(&node, &id).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &same), "kept while fresh");
    let due = auth.next_renewal().unwrap();
    let left = due.duration_since(SystemTime::now()).unwrap_or_default();
    assert!(
        left <= Duration::from_secs(2) && left > Duration::from_millis(1500),
        "{left:?}"
    );
    assert!(auth.due(SystemTime::now()).is_empty());
    assert_eq!(auth.due(due), std::slice::from_ref(&node));
    let renamed = Identity {
        dns: vec!["web".into(), "web.demo.local".into()],
        ..id.clone()
    };
    assert_eq!(
        auth.stale(|_| Some(renamed.clone())),
        std::slice::from_ref(&node)
    );
    let second = auth.identity_secret(&node, &renamed).unwrap();
    assert_ne!(first.hash, second.hash, "a new certificate for new names");
    assert!(auth.stale(|_| None).is_empty());
    assert!(auth.is_empty(), "a node gone is forgotten");
}

#[test]
fn validities_take_hours_and_days() {
    assert_eq!(parse_validity("24h"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_validity("2d"), Ok(Duration::from_secs(172_800)));
    assert_eq!(parse_validity("90s"), Ok(Duration::from_secs(90)));
    assert!(parse_validity("500ms").is_err());
    assert!(parse_validity("soon").is_err());
}

#[test]
fn a_rotation_step_is_taken_on_reload_with_every_certificate_due_and_a_new_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = CaDir::open_or_create(&dir, DEFAULT_TRUST_DOMAIN).unwrap();
    let auth = Authority::new(ca, Duration::from_secs(3600));
    let node = ProxyId::virtual_node("demo", "web");
    let id = Identity {
        uri: spiffe_uri(DEFAULT_TRUST_DOMAIN, &node),
        dns: vec!["web".into()],
    };
    auth.identity_secret(&node, &id).unwrap();
    let trust = auth.trust_secret();
    assert!(!auth.reload().unwrap(), "nothing changed");
    assert!(auth.due(SystemTime::now()).is_empty());

    rotate(&dir, DEFAULT_TRUST_DOMAIN, RotateStep::Add).unwrap();
    assert!(auth.reload().unwrap());
    assert_ne!(auth.trust_secret().any, trust.any, "the two-root bundle");
    assert_eq!(auth.due(SystemTime::now()), [node]);
    assert_eq!(
        auth.ca().bundle_pem().matches("BEGIN CERTIFICATE").count(),
        2
    );
    assert!(!auth.reload().unwrap());

    // A step half done (a certificate that is not the key's) keeps the CA as it was.
    let before = auth.ca().ca_pem().to_string();
    std::fs::copy(dir.join("next.crt"), dir.join("ca.crt")).unwrap();
    assert!(auth.reload().is_err());
    assert_eq!(auth.ca().ca_pem(), before);
}

#[test]
fn reload_reads_the_directory_only_when_its_files_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = CaDir::open_or_create(&dir, DEFAULT_TRUST_DOMAIN).unwrap();
    let auth = Authority::new(ca, Duration::from_secs(3600));
    // Garbage of the same size with the same modification time: the check does not read it.
    let path = dir.join("ca.crt");
    let meta = std::fs::metadata(&path).unwrap();
    std::fs::write(&path, vec![b'x'; meta.len() as usize]).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(meta.modified().unwrap()).unwrap();
    assert!(
        !auth.reload().unwrap(),
        "unchanged sizes and times: not read"
    );
    // Another time: read, and refused.
    f.set_modified(meta.modified().unwrap() + Duration::from_secs(1))
        .unwrap();
    assert!(auth.reload().is_err());
}
