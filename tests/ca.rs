//! meshplane's own CA with real Envoy: a proxy whose cluster and listener take their certificate
//! and trust from SDS secrets `meshplane/identity` and `meshplane/trust` over its ADS stream gets
//! them from meshplane, completes mutual TLS through itself (the client side checks the server's
//! SPIFFE URI), and keeps serving with zero failed requests while its certificate is replaced
//! every few seconds (Envoy's `sds.meshplane/identity.update_success` counts the pushes).
//!
//! Here the proxy's TLS cluster and listeners are written by the test (what `translate::tls` makes
//! of `acm`) and published into the server's cache for a node id the mesh does not define, so
//! the certificate's validity can be seconds; the certificates come from `ca::Authority`, as the
//! build stage gets them, and are renewed when it says they are due. The same from mesh files
//! alone, through the translation, is tests/acm_mesh.rs.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use envoy_types::pb::envoy::config::core::v3::data_source;
use meshplane::ca::{Authority, CaDir, Identity, IDENTITY_SECRET, TRUST_SECRET};
use meshplane::model::ProxyId;
use meshplane::xds::{Snapshot, TypeSnapshot};
use proxy::resources;
use support::envoy::{free_port, http_get, Envoy};
use support::*;

#[path = "ca/proxy.rs"]
mod proxy;

const NODE: &str = "mesh/tls/virtualNode/web";
const TD: &str = "meshplane.local";

/// The node's secrets, as the build stage gets them from the CA.
fn secrets(ca: &Authority, id: &Identity) -> Arc<TypeSnapshot> {
    let node = ProxyId::parse(NODE).unwrap();
    let identity = ca.identity_secret(&node, id).expect("issue");
    Arc::new(TypeSnapshot::new(
        [
            (IDENTITY_SECRET.to_string(), identity),
            (TRUST_SECRET.to_string(), ca.trust_secret()),
        ]
        .into(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_from_sds_secrets_survives_rotation_with_zero_failed_requests() {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let work = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let validity = Duration::from_secs(3);
    let ca = Authority::new(
        CaDir::open_or_create(&work.path().join("ca"), TD).unwrap(),
        validity,
    );
    let id = Identity {
        uri: format!("spiffe://{TD}/{NODE}"),
        dns: vec!["web.tls.local".into()],
    };
    let (plain, secure) = (free_port(), free_port());
    let base = resources(plain, secure);
    let publish = |s: Arc<TypeSnapshot>| {
        let snap = Snapshot::new(base.clone()).with_secrets(s);
        server.pipeline.cache.set(NODE, Some(Arc::new(snap)));
    };
    publish(secrets(&ca, &id));
    let envoy = Envoy::start(NODE, server.xds_addr, work.path()).await;

    // Traffic: one request at a time through plain → TLS cluster → mTLS listener, counted.
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    first_secured_response(plain, "no request got through mTLS", work.path()).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (sent, failed, stop) = (sent.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                match http_get(([127, 0, 0, 1], plain).into(), "web", "/", &[]).await {
                    Ok((200, _)) => {}
                    other => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed request: {other:?}");
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Four renewals, each when the CA says the certificate is due (two thirds of 3 s).
    let mut rotations = 0;
    let first_cert = server.pipeline.cache.get(NODE).unwrap().types[4].clone();
    while rotations < 4 {
        let due = ca.next_renewal().unwrap();
        let wait = due.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::time::sleep(wait).await;
        assert_eq!(ca.due(SystemTime::now()), [ProxyId::parse(NODE).unwrap()]);
        publish(secrets(&ca, &id));
        rotations += 1;
    }
    // Long enough past the last certificate's expiry that any use of an old one would fail.
    tokio::time::sleep(validity + Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    let updates = envoy.stat("sds.meshplane/identity.update_success").await;
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!(
        "rotation under traffic: {rotations} certificate rotations ({validity:?} validity), \
         {sent} requests, {failed} failed, sds.meshplane/identity.update_success = {updates}"
    );
    assert_ne!(
        first_cert.version,
        server.pipeline.cache.get(NODE).unwrap().types[4].version
    );
    assert!(sent > 100, "steady traffic: {sent} requests");
    assert_eq!(failed, 0, "no request may fail while certificates rotate");
    assert!(
        updates > rotations,
        "Envoy took the first certificate and every rotation: {updates}"
    );
    let resp = envoy.admin_get("/certs").await;
    assert!(resp.contains(&format!("spiffe://{TD}/{NODE}")), "{resp}");
    drop(envoy);
    server.shutdown().await;
}

const SDS_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// The private key PEM inside an identity secret.
fn key_of(any: &envoy_types::pb::google::protobuf::Any) -> String {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{secret, Secret};
    use prost::Message;
    let s = Secret::decode(any.value.as_slice()).unwrap();
    let Some(secret::Type::TlsCertificate(t)) = s.r#type else {
        panic!("not a certificate")
    };
    match t.private_key.and_then(|k| k.specifier) {
        Some(data_source::Specifier::InlineBytes(b)) => String::from_utf8(b).unwrap(),
        other => panic!("not inline bytes: {other:?}"),
    }
}

/// The names of the secrets in a SotW response.
fn secret_names(
    r: &envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse,
) -> Vec<String> {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
    use prost::Message;
    r.resources
        .iter()
        .map(|a| Secret::decode(a.value.as_slice()).unwrap().name)
        .collect()
}

#[tokio::test]
async fn secrets_are_served_over_ads_sotw_and_delta_only_to_their_node_and_never_shown() {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let work = tempfile::tempdir().unwrap();
    // `serve --ca-dir` on a mesh without `acm`: the directory is made, and no node pays for it.
    // The port is plaintext here (`--xds-plaintext`) so the test's bare gRPC clients can ask for
    // secrets as any node: what a node is served is the point; who may connect, tests/ca_xds.rs.
    let ca_dir = work.path().join("served-ca");
    let mut cfg = meshplane::app::ServeConfig {
        ca: Some(meshplane::app::CaSettings {
            dir: ca_dir.clone(),
            trust_domain: TD.into(),
            validity: Duration::from_secs(60),
        }),
        ..test_config(dir.path())
    };
    cfg.security.xds_plaintext = true;
    let server = start_config(cfg).await;
    assert!(ca_dir.join("ca.key").is_file() && ca_dir.join("ca.crt").is_file());
    for k in server.pipeline.cache.keys() {
        let snap = server.pipeline.cache.get(&k).unwrap();
        assert!(snap.types[4].resources.is_empty(), "{k} has no acm TLS");
    }
    let ca = Authority::new(
        CaDir::open_or_create(&work.path().join("ca"), TD).unwrap(),
        Duration::from_secs(3600),
    );
    let id = Identity {
        uri: format!("spiffe://{TD}/{NODE}"),
        dns: vec!["web.tls.local".into()],
    };
    let snap = Snapshot::new(resources(free_port(), free_port())).with_secrets(secrets(&ca, &id));
    server.pipeline.cache.set(NODE, Some(Arc::new(snap)));

    let mut c = AdsClient::connect(server.xds_addr, NODE).await;
    c.request(SDS_TYPE, &[IDENTITY_SECRET, TRUST_SECRET], "", "")
        .await;
    let r = c.recv().await;
    assert_eq!(r.type_url, SDS_TYPE);
    assert_eq!(secret_names(&r), [IDENTITY_SECRET, TRUST_SECRET]);
    let key = key_of(&r.resources[0]);
    assert!(key.contains("PRIVATE KEY"));
    c.ack(&r, &[IDENTITY_SECRET, TRUST_SECRET]).await;
    assert!(c.recv_within(Duration::from_millis(300)).await.is_none());

    let mut d = DeltaClient::connect(server.xds_addr, NODE).await;
    d.request(SDS_TYPE, &[IDENTITY_SECRET], &[], "").await;
    let r = d
        .recv_within(Duration::from_secs(5))
        .await
        .expect("delta secrets");
    assert_eq!(r.resources.len(), 1);
    assert_eq!(r.resources[0].name, IDENTITY_SECRET);

    // Another node asking for the same names gets none of them.
    let mut other = AdsClient::connect(server.xds_addr, "mesh/demo/virtualNode/frontend").await;
    other
        .request(SDS_TYPE, &[IDENTITY_SECRET, TRUST_SECRET], "", "")
        .await;
    let r = other.recv().await;
    assert!(r.resources.is_empty(), "{:?}", secret_names(&r));

    // Neither the admin API nor the metrics show the key.
    for path in [
        format!("/resources?node={NODE}"),
        "/nodes".to_string(),
        "/proxies".to_string(),
        "/metrics".to_string(),
    ] {
        let (_, body) = http_get(server.admin_addr, "127.0.0.1", &path, &[])
            .await
            .unwrap();
        assert!(
            !body.contains("PRIVATE KEY") && !body.contains(&key[40..80]),
            "{path}"
        );
    }
    server.shutdown().await;
}

#[test]
fn ca_init_and_ca_issue_write_a_private_ca_and_an_envoys_xds_credentials() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    let work = tempfile::tempdir().unwrap();
    let ca_dir = work.path().join("ca");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_meshplane"))
            .args(args)
            .output()
            .expect("run meshplane")
    };
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = ca_dir.to_str().unwrap();
    // `issue` needs a CA made first.
    let none = run(&[
        "ca",
        "issue",
        "--ca-dir",
        dir,
        "--node-id",
        NODE,
        "--out",
        "x",
    ]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("ca init"));
    let init = run(&["ca", "init", "--ca-dir", dir]);
    assert!(init.status.success(), "{init:?}");
    assert_eq!(mode(&ca_dir), 0o700);
    assert_eq!(mode(&ca_dir.join("ca.key")), 0o600);
    let out = work.path().join("envoy-creds");
    let issue = run(&[
        "ca",
        "issue",
        "--ca-dir",
        dir,
        "--node-id",
        NODE,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(issue.status.success(), "{issue:?}");
    let printed = String::from_utf8_lossy(&issue.stdout).to_string();
    assert!(
        !printed.contains("PRIVATE"),
        "the key is written, not printed"
    );
    for f in ["cert.pem", "key.pem", "ca.pem"] {
        assert!(printed.contains(f), "{printed}");
    }
    assert_eq!(mode(&out.join("key.pem")), 0o600);
    let ca = CaDir::open(&ca_dir, TD).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("ca.pem")).unwrap(),
        ca.ca_pem()
    );
    let cert = std::fs::read_to_string(out.join("cert.pem")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).unwrap();
    let parsed = pem.parse_x509().unwrap();
    let san = parsed.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        format!("{:?}", san.value.general_names),
        format!("[URI(\"spiffe://{TD}/{NODE}\")]")
    );
    let bad = run(&[
        "ca",
        "issue",
        "--ca-dir",
        dir,
        "--node-id",
        "web",
        "--out",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2), "a node id that names no node");
}

/// `snap` as a per-type Envoy on `cluster` sees it: what the build stage's variants make.
fn per_type_variant(snap: &Snapshot, delta: bool, cluster: &str) -> Snapshot {
    use meshplane::translate::sources::for_per_type_services;
    use meshplane::xds::Resource;
    let convert = |t: &TypeSnapshot| {
        TypeSnapshot::new(
            t.resources
                .iter()
                .map(|(n, r)| {
                    let any =
                        for_per_type_services(&r.any, delta, cluster).unwrap_or(r.any.clone());
                    (n.clone(), Arc::new(Resource::new(n.clone(), any)))
                })
                .collect(),
        )
    };
    let types = [0, 1, 2, 3].map(|t| Arc::new(convert(&snap.types[t])));
    Snapshot::from_shared(types).with_secrets(snap.types[4].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_type_envoy_gets_its_secrets_from_the_secret_discovery_service() {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let work = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let ca = Authority::new(
        CaDir::open_or_create(&work.path().join("ca"), TD).unwrap(),
        Duration::from_secs(3600),
    );
    let id = Identity {
        uri: format!("spiffe://{TD}/{NODE}"),
        dns: vec!["web.tls.local".into()],
    };
    let (plain, secure) = (free_port(), free_port());
    let snap = Snapshot::new(resources(plain, secure)).with_secrets(secrets(&ca, &id));
    let key = meshplane::xds::VariantKey {
        delta: false,
        cluster: meshplane::xds::authority::DEFAULT_CLUSTER.into(),
    };
    let variant = Arc::new(per_type_variant(&snap, false, &key.cluster));
    let snap = snap.with_variants(vec![(key, variant)]);
    server.pipeline.cache.set(NODE, Some(Arc::new(snap)));
    let envoy = Envoy::start_with(
        NODE,
        server.xds_addr,
        work.path(),
        meshplane::bootstrap::XdsMode::Xds,
    )
    .await;
    first_secured_response(
        plain,
        "no request got through mTLS over per-type SDS",
        work.path(),
    )
    .await;
    assert!(envoy.stat("sds.meshplane/identity.update_success").await >= 1);
    let modes: Vec<String> = server.registry.list().into_iter().map(|s| s.mode).collect();
    assert!(modes.iter().any(|m| m == "SDS"), "{modes:?}");
    assert!(!modes.iter().any(|m| m.starts_with("ADS")), "{modes:?}");
    drop(envoy);
    server.shutdown().await;
}

/// Waits (30 s at most) for the first request through `plain` to reach the TLS-only app, which
/// answers "secured"; `what` and the Envoy's work dir say where to look when it never does.
async fn first_secured_response(plain: u16, what: &str, work: &std::path::Path) {
    let started = Instant::now();
    loop {
        if let Ok((200, body)) = http_get(([127, 0, 0, 1], plain).into(), "web", "/", &[]).await {
            assert_eq!(body, "secured");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}; see the Envoy log in {}",
            work.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
