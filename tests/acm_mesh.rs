//! App Mesh's ACM TLS, end to end through meshplane's own CA: a mesh whose `api` listener takes
//! its certificate from `acm.certificateArn` and whose `web` client trusts
//! `acm.certificateAuthorityArns`, served by `serve --ca-dir`, carries real traffic over TLS
//! between two real Envoy sidecars. Nothing but the mesh files and the CA directory: the
//! translation names the SDS secrets, the CA issues them, and both Envoys fetch them over their
//! own ADS streams. A client policy that asks for a name the certificate lacks lets nothing through.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meshplane::app::{CaSettings, Server};
use support::envoy::{free_port, http_get, Envoy, Upstream};
use support::*;

fn mesh(api_app: u16, api_in: u16, web_egress: u16) -> String {
    format!(
        "kind: Mesh\nmeshName: acm\n---\n\
kind: VirtualNode\nmeshName: acm\nvirtualNodeName: api\nspec:\n  listeners:\n    - portMapping: {{port: {api_app}, protocol: http}}\n      tls:\n        mode: STRICT\n        certificate: {{acm: {{certificateArn: \"arn:aws:acm:eu-west-1:111122223333:certificate/api\"}}}}\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {api_in}}}\n---\n\
kind: VirtualService\nmeshName: acm\nvirtualServiceName: api.acm.local\nspec: {{provider: {{virtualNode: {{virtualNodeName: api}}}}}}\n---\n\
kind: VirtualNode\nmeshName: acm\nvirtualNodeName: web\nspec:\n  backends:\n    - virtualService:\n        virtualServiceName: api.acm.local\n        clientPolicy:\n          tls:\n            validation:\n              trust: {{acm: {{certificateAuthorityArns: [\"arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/root\"]}}}}\n              subjectAlternativeNames: {{match: {{exact: [api.acm.local]}}}}\n  proxy: {{egressPort: {web_egress}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acm_certificates_and_trust_are_served_by_meshplanes_ca() {
    let (api_app, api_in, web_egress) = (free_port(), free_port(), free_port());
    let api = Upstream::start(api_app, "api", 0).await;
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(api_app, api_in, web_egress));
    let work = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.ca = Some(CaSettings {
        dir: work.path().join("ca"),
        trust_domain: "meshplane.local".into(),
        validity: Duration::from_secs(3600),
    });
    let server = start_config(cfg).await;
    let problems = &server.pipeline.status().last.problems;
    assert!(problems.is_empty(), "{problems:#?}");

    // Each Envoy reaches the xDS port, on mutual TLS from the CA, as a user's would: with its
    // certificate from `meshplane ca issue` and its bootstrap from `bootstrap --xds-tls`.
    let ca_dir = work.path().join("ca");
    let (x, w) = (server.xds_addr, work.path());
    let api_envoy = Envoy::start_ca("mesh/acm/virtualNode/api", x, &ca_dir, w).await;
    let web_envoy = Envoy::start_ca("mesh/acm/virtualNode/web", x, &ca_dir, w).await;
    let egress: SocketAddr = ([127, 0, 0, 1], web_egress).into();
    let began = Instant::now();
    let answer = loop {
        match http_get(egress, "api.acm.local", "/", &[]).await {
            Ok((200, body)) => break body,
            other => {
                assert!(
                    began.elapsed() < Duration::from_secs(30),
                    "web never reached api over TLS: {other:?}; see {}",
                    work.path().display()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    println!(
        "web -> api over TLS from meshplane's CA after {} ms",
        began.elapsed().as_millis()
    );
    assert_eq!(answer, "api");
    for _ in 0..20 {
        let (status, _) = http_get(egress, "api.acm.local", "/", &[]).await.unwrap();
        assert_eq!(status, 200);
    }
    // Both sides did TLS: the api's listener accepted handshakes, web's cluster made them, and
    // both Envoys took their secrets from meshplane over SDS.
    let accepted = api_envoy
        .stat(&format!("listener.0.0.0.0_{api_in}.ssl.handshake"))
        .await;
    let made = web_envoy
        .stat(&format!(
            "cluster.cds_egress_acm_api_http_{api_app}.ssl.handshake"
        ))
        .await;
    let api_identity = api_envoy
        .stat("sds.meshplane/identity.update_success")
        .await;
    let web_trust = web_envoy.stat("sds.meshplane/trust.update_success").await;
    println!("api listener handshakes {accepted}, web cluster handshakes {made}, api identity updates {api_identity}, web trust updates {web_trust}");
    assert!(accepted >= 1 && made >= 1, "{accepted} {made}");
    assert!(
        api_identity >= 1 && web_trust >= 1,
        "{api_identity} {web_trust}"
    );
    assert!(api.requests.load(std::sync::atomic::Ordering::Relaxed) >= 21);
    proxies_show_identities_and_certificates(&server).await;

    // web now wants a name api's certificate does not carry: its handshakes fail, nothing passes.
    let wrong = mesh(api_app, api_in, web_egress).replace("[api.acm.local]", "[api.wrong.local]");
    dir.write("mesh.yaml", &wrong);
    let began = Instant::now();
    loop {
        match http_get(egress, "api.acm.local", "/", &[]).await {
            Ok((200, _)) => assert!(
                began.elapsed() < Duration::from_secs(10),
                "requests still pass with a SAN the certificate lacks"
            ),
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..5 {
        let answer = http_get(egress, "api.acm.local", "/", &[]).await;
        assert!(!matches!(answer, Ok((200, _))), "{answer:?}");
    }
    server.shutdown().await;
}

/// `/proxies` and `meshplane status` show each proxy's xDS client identity, and for api the
/// certificate it is served (URI, serial, expiry) and SDS acked; never a key.
async fn proxies_show_identities_and_certificates(server: &Server) {
    use meshplane::admin::{ProxyReport, SyncState};
    const API: &str = "mesh/acm/virtualNode/api";
    const WEB: &str = "mesh/acm/virtualNode/web";
    let (status, body) = http_get(server.admin_addr, "127.0.0.1", "/proxies", &[])
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        !body.contains("PRIVATE KEY") && !body.contains("key_pem"),
        "{body}"
    );
    let proxies: Vec<ProxyReport> = serde_json::from_str(&body).unwrap();
    let find = |id: &str| proxies.iter().find(|p| p.node_id == id).expect(id).clone();
    let (api, web) = (find(API), find(WEB));
    let spiffe = |id: &str| format!("spiffe://meshplane.local/{id}");
    assert_eq!(api.xds_identity, Some(vec![spiffe(API)]));
    assert_eq!(web.xds_identity, Some(vec![spiffe(WEB)]));
    let cert = api.certificate.as_ref().expect("api's served certificate");
    assert_eq!(cert.uri.as_deref(), Some(spiffe(API).as_str()));
    assert!(cert.dns.contains(&"api.acm.local".to_string()), "{cert:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        cert.not_after > now && cert.not_after <= now + 3600 + 5,
        "{cert:?}"
    );
    let sds = api.sds.as_ref().expect("api's SDS state");
    assert_eq!(sds.state, SyncState::Synced, "{sds:?}");
    assert_eq!(sds.sent, sds.acked);
    // web is served the trust bundle only: SDS, no certificate.
    assert!(web.certificate.is_none() && web.sds.is_some(), "{web:?}");
    let admin = server.admin_addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_meshplane"))
            .args(["status", "--admin", &admin])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(out.status.success(), "{out:?}");
    let line = text
        .lines()
        .skip_while(|l| !l.starts_with("certificates:"))
        .find(|l| l.starts_with(API))
        .unwrap_or_else(|| panic!("no certificate line for api:\n{text}"));
    assert!(
        line.contains(&cert.serial) && line.contains(&spiffe(API)),
        "{line}"
    );
    assert!(!text.contains("PRIVATE"));
}
