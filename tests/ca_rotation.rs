//! Rotating meshplane's CA root under steady traffic with real Envoy, the documented way: the
//! three steps of `meshplane ca rotate` (run as the binary) on the `--ca-dir` of a running
//! `serve`, which notices each within a second. Two kinds of traffic run throughout, counted:
//!
//! - the acm mesh of tests/acm_mesh.rs, from mesh files only: web's sidecar → api's sidecar over
//!   TLS, api's certificate and web's trust served by `serve` from the CA;
//! - mutual TLS on one more proxy, whose listener and cluster both present `meshplane/identity`
//!   and check `meshplane/trust` (tests/ca/proxy.rs), its secrets issued from the same directory
//!   by an `Authority` the test holds (the test plays the server's part for that node, which the
//!   mesh does not define).
//!
//! Every Envoy reaches the xDS port with a certificate from `ca issue`; those connections stay up
//! through the rotation, and an Envoy started after it, with a certificate issued under the new
//! root, connects.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshplane::app::{CaSettings, Server};
use meshplane::ca::{Authority, CaDir, Identity, IDENTITY_SECRET, TRUST_SECRET};
use meshplane::model::ProxyId;
use meshplane::xds::{Snapshot, TypeSnapshot, SDS};
use support::envoy::{free_port, http_get, Envoy, Upstream};
use support::*;

#[path = "ca/proxy.rs"]
mod proxy;

const NODE: &str = "mesh/tls/virtualNode/web";
const TD: &str = "meshplane.local";
const API: &str = "mesh/acm/virtualNode/api";
const WEB: &str = "mesh/acm/virtualNode/web";

fn mesh(api_app: u16, api_in: u16, web_egress: u16) -> String {
    format!(
        "kind: Mesh\nmeshName: acm\n---\n\
kind: VirtualNode\nmeshName: acm\nvirtualNodeName: api\nspec:\n  listeners:\n    - portMapping: {{port: {api_app}, protocol: http}}\n      tls:\n        mode: STRICT\n        certificate: {{acm: {{certificateArn: \"arn:aws:acm:eu-west-1:111122223333:certificate/api\"}}}}\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {api_in}}}\n---\n\
kind: VirtualService\nmeshName: acm\nvirtualServiceName: api.acm.local\nspec: {{provider: {{virtualNode: {{virtualNodeName: api}}}}}}\n---\n\
kind: VirtualNode\nmeshName: acm\nvirtualNodeName: late\nspec: {{}}\n---\n\
kind: VirtualNode\nmeshName: acm\nvirtualNodeName: web\nspec:\n  backends:\n    - virtualService:\n        virtualServiceName: api.acm.local\n        clientPolicy:\n          tls:\n            validation:\n              trust: {{acm: {{certificateAuthorityArns: [\"arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/root\"]}}}}\n              subjectAlternativeNames: {{match: {{exact: [api.acm.local]}}}}\n  proxy: {{egressPort: {web_egress}}}\n"
    )
}

/// The test node's secrets from `ca`, as the build stage gets them.
fn secrets(ca: &Authority) -> Arc<TypeSnapshot> {
    let id = Identity {
        uri: format!("spiffe://{TD}/{NODE}"),
        dns: vec!["web.tls.local".into()],
    };
    let identity = ca
        .identity_secret(&ProxyId::parse(NODE).unwrap(), &id)
        .expect("issue");
    Arc::new(TypeSnapshot::new(
        [
            (IDENTITY_SECRET.to_string(), identity),
            (TRUST_SECRET.to_string(), ca.trust_secret()),
        ]
        .into(),
    ))
}

/// Requests one after another to `addr` until `stop`: (sent, failed).
fn traffic(
    addr: SocketAddr,
    host: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let (mut sent, mut failed) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            sent += 1;
            match http_get(addr, host, "/", &[]).await {
                Ok((200, _)) => {}
                other => {
                    failed += 1;
                    eprintln!("failed request to {host}: {other:?}");
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (sent, failed)
    })
}

async fn first_200(addr: SocketAddr, host: &str) {
    let began = Instant::now();
    while !matches!(http_get(addr, host, "/", &[]).await, Ok((200, _))) {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{host} never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many roots the trust bundle the server serves `node` holds.
fn served_roots(server: &Server, node: &str) -> usize {
    let snap = server.pipeline.cache.get(node).expect(node);
    let trust = snap.types[SDS].resources.get(TRUST_SECRET).cloned();
    trust.map_or(0, |t| {
        String::from_utf8_lossy(&t.any.value)
            .matches("BEGIN CERTIFICATE")
            .count()
    })
}

fn rotate(ca_dir: &std::path::Path, step: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshplane"))
        .args(["ca", "rotate", "--ca-dir"])
        .arg(ca_dir)
        .args(["--step", step])
        .output()
        .unwrap();
    assert!(out.status.success(), "ca rotate --step {step}: {out:?}");
}

/// Waits until `serve` serves web a bundle of `roots` roots after `step`, and the Envoys have the
/// push (`before`: their SDS update counters before the step).
async fn follow(
    server: &Server,
    api: &Envoy,
    web: &Envoy,
    step: &str,
    roots: usize,
    before: (u64, u64),
) {
    let (before_web, before_api) = before;
    let s = server.pipeline.clone();
    eventually(
        &format!("serve to follow {step}"),
        Duration::from_secs(10),
        move || {
            let snap = s.cache.get(WEB).unwrap();
            let t = &snap.types[SDS].resources[TRUST_SECRET];
            String::from_utf8_lossy(&t.any.value)
                .matches("BEGIN CERTIFICATE")
                .count()
                == roots
        },
    )
    .await;
    // Every Envoy has the push before the next step (what `meshplane status` shows as SYNCED).
    let began = Instant::now();
    loop {
        let web_now = web.stat("sds.meshplane/trust.update_success").await;
        let api_now = api.stat("sds.meshplane/identity.update_success").await;
        // add and finish change the bundle; switch the certificates (the bundle stays).
        let pushed = match step {
            "switch" => api_now > before_api,
            _ => web_now > before_web,
        };
        if pushed {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "Envoys never got {step}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_rotates_in_three_steps_under_traffic_with_zero_failed_requests() {
    let (api_app, api_in, web_egress) = (free_port(), free_port(), free_port());
    let _api = Upstream::start(api_app, "api", 0).await;
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(api_app, api_in, web_egress));
    let work = tempfile::tempdir().unwrap();
    let ca_dir = work.path().join("ca");
    let mut cfg = test_config(dir.path());
    cfg.ca = Some(CaSettings {
        dir: ca_dir.clone(),
        trust_domain: TD.into(),
        validity: Duration::from_secs(3600),
    });
    let server = start_config(cfg).await;

    // The hand-published mTLS node, from the same directory.
    let ca = Authority::new(CaDir::open(&ca_dir, TD).unwrap(), Duration::from_secs(3600));
    let (plain, secure) = (free_port(), free_port());
    let base = proxy::resources(plain, secure);
    let publish = |s: Arc<TypeSnapshot>| {
        let snap = Snapshot::new(base.clone()).with_secrets(s);
        server.pipeline.cache.set(NODE, Some(Arc::new(snap)));
    };
    publish(secrets(&ca));

    let (x, w) = (server.xds_addr, work.path());
    let api = Envoy::start_ca(API, x, &ca_dir, w).await;
    let web = Envoy::start_ca(WEB, x, &ca_dir, w).await;
    let mtls = Envoy::start_ca(NODE, x, &ca_dir, w).await;
    let egress: SocketAddr = ([127, 0, 0, 1], web_egress).into();
    let looped: SocketAddr = ([127, 0, 0, 1], plain).into();
    first_200(egress, "api.acm.local").await;
    first_200(looped, "web").await;
    let api_cert = |s: &Server| {
        let snap = s.pipeline.cache.get(API).unwrap();
        snap.types[SDS].resources[IDENTITY_SECRET].clone()
    };
    let first_api_cert = api_cert(&server);
    assert_eq!(served_roots(&server, WEB), 1);

    let stop = Arc::new(AtomicBool::new(false));
    let acm_traffic = traffic(egress, "api.acm.local", stop.clone());
    let mtls_traffic = traffic(looped, "web", stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;

    for (step, roots) in [("add", 2), ("switch", 2), ("finish", 1)] {
        let before_web = web.stat("sds.meshplane/trust.update_success").await;
        let before_api = api.stat("sds.meshplane/identity.update_success").await;
        rotate(&ca_dir, step);
        assert!(ca.reload().unwrap(), "the directory changed at {step}");
        publish(secrets(&ca));
        follow(&server, &api, &web, step, roots, (before_web, before_api)).await;
        println!("step {step}: serve follows, trust bundle of {roots} root(s) pushed");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (acm_sent, acm_failed) = acm_traffic.await.unwrap();
    let (mtls_sent, mtls_failed) = mtls_traffic.await.unwrap();
    println!(
        "root rotation under traffic: web->api TLS {acm_sent} requests, {acm_failed} failed; \
         mTLS {mtls_sent} requests, {mtls_failed} failed"
    );
    assert!(acm_sent > 100 && mtls_sent > 100, "steady traffic");
    assert_eq!(
        acm_failed + mtls_failed,
        0,
        "no request may fail while the root rotates"
    );
    assert_ne!(
        api_cert(&server).any,
        first_api_cert.any,
        "api re-issued under the new root"
    );
    assert_eq!(served_roots(&server, WEB), 1);

    // The Envoys kept the xDS connection they made under the old root.
    for e in [&api, &web, &mtls] {
        assert_eq!(e.stat("cluster.meshplane_xds.upstream_cx_total").await, 1);
    }
    // An Envoy with a certificate issued now (new root, new bundle as ca.pem) connects: the port's
    // certificate is the new root's and its client CA the new bundle. Its node is defined (with
    // nothing to serve): an unknown node is sent nothing, and its Envoy would only turn LIVE after
    // two initial-fetch timeouts (CDS, then LDS: 30 s), the limit `start_ca` waits.
    let late = "mesh/acm/virtualNode/late";
    let _late = Envoy::start_ca(late, x, &ca_dir, w).await;
    let r = server.registry.clone();
    eventually(
        "the late Envoy's stream",
        Duration::from_secs(20),
        move || r.list().iter().any(|s| s.node_id == late),
    )
    .await;
    assert_eq!(
        server
            .metrics
            .tls_handshake_failures
            .load(Ordering::Relaxed),
        0
    );
    drop((api, web, mtls));
    server.shutdown().await;
}
