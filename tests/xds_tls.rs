//! The authenticated xDS port (PRODUCT.md §5): `serve --xds-tls-cert/--xds-tls-key/--xds-client-ca`
//! with certificates made here by rcgen. gRPC-level: a client with the right certificate reads its
//! node; the same certificate asking for another node gets PERMISSION_DENIED (counted in
//! `meshplane_xds_denied_total`); no certificate, or one from another CA, gets no stream. Real
//! Envoy, bootstrapped by `bootstrap --xds-tls DIR`'s renderer: node A's Envoy gets its
//! configuration over mTLS and carries traffic; an Envoy holding A's certificate asking for node B
//! is denied and gets nothing; an Envoy without a client certificate gets no stream. And the
//! `bootstrap --xds-tls` command's output.

mod support;

#[path = "xds_tls/pki.rs"]
mod pki;

/// `bootstrap --xds-tls` and `serve`'s TLS flags, run as the binary.
#[path = "xds_tls/cli.rs"]
mod cli;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_client::ClusterDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use meshplane::app::{Security, ServeConfig, Server};
use meshplane::bootstrap::{render_with_tls, BootstrapParams, XdsMode, XdsTlsFiles};
use pki::{spiffe, write_dir, Ca, Issued};
use support::envoy::{free_port, http_get, Envoy, Upstream};
use support::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const WEB: &str = "mesh/tls/virtualNode/web";
const DB: &str = "mesh/tls/virtualNode/db";

fn mesh(web_app: u16, web_in: u16) -> String {
    format!(
        "kind: Mesh\nmeshName: tls\nspec: {{}}\n\
         ---\nkind: VirtualNode\nmeshName: tls\nvirtualNodeName: web\nspec:\n  listeners: [{{portMapping: {{port: {web_app}, protocol: http}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {web_in}}}\n\
         ---\nkind: VirtualNode\nmeshName: tls\nvirtualNodeName: db\nspec:\n  listeners: [{{portMapping: {{port: 5999, protocol: http}}}}]\n  serviceDiscovery: {{dns: {{hostname: db}}}}\n  proxy: {{ingressPort: {}}}\n",
        free_port()
    )
}

/// A server with mutual TLS on its xDS port, once its first load is done.
async fn start_tls(dir: &Path, ca: &Ca) -> Server {
    let cfg = ServeConfig {
        security: Security {
            xds_tls: Some(ca.xds_tls(&ca.server())),
            ..Security::default()
        },
        ..test_config(dir)
    };
    let server = start_config(cfg).await;
    server
}

/// A TLS channel to `server` trusting `ca`, presenting `client` (if any).
async fn channel(
    server: &Server,
    ca: &Ca,
    client: Option<&Issued>,
) -> Result<Channel, tonic::transport::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    if let Some(c) = client {
        tls = tls.identity(Identity::from_pem(&c.cert, &c.key));
    }
    Channel::from_shared(format!("https://127.0.0.1:{}", server.xds_addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// Opens an ADS stream on `channel` as `node_id` asking for clusters: its first answer.
async fn first_answer(channel: Channel, node_id: &str) -> Result<DiscoveryResponse, tonic::Status> {
    let mut client = AggregatedDiscoveryServiceClient::new(channel);
    let first = DiscoveryRequest {
        node: Some(Node {
            id: node_id.into(),
            ..Default::default()
        }),
        type_url: CDS.into(),
        ..Default::default()
    };
    let requests = tokio_stream::iter(vec![first]).chain(tokio_stream::pending());
    let mut stream = client
        .stream_aggregated_resources(requests)
        .await?
        .into_inner();
    match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
        Ok(Ok(Some(r))) => Ok(r),
        Ok(Ok(None)) => Err(tonic::Status::cancelled("stream ended without an answer")),
        Ok(Err(status)) => Err(status),
        Err(_) => Err(tonic::Status::deadline_exceeded("no answer within 10 s")),
    }
}

use tokio_stream::StreamExt as _;

/// The value of an unlabelled family in the server's `/metrics`.
async fn metric(server: &Server, name: &str) -> f64 {
    let (_, body) = http_get(server.admin_addr, "127.0.0.1", "/metrics", &[])
        .await
        .expect("metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
}

#[tokio::test]
async fn a_certificate_reads_its_own_node_and_is_denied_any_other() {
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(free_port(), free_port()));
    let ca = Ca::new("mesh CA");
    let server = start_tls(dir.path(), &ca).await;
    let web = ca.client(&spiffe(WEB));

    let started = std::time::Instant::now();
    let ch = channel(&server, &ca, Some(&web))
        .await
        .expect("mTLS connects");
    let resp = first_answer(ch.clone(), WEB).await.expect("web reads web");
    println!("mTLS connect + first CDS answer: {:?}", started.elapsed());
    let started = std::time::Instant::now();
    first_answer(ch.clone(), WEB)
        .await
        .expect("a second stream");
    println!(
        "another stream on the same connection: {:?}",
        started.elapsed()
    );
    assert_eq!(resp.type_url, CDS);
    assert!(!resp.resources.is_empty(), "web's clusters");
    // The ARN spelling of the same node is the same identity.
    let arn = "arn:aws:appmesh:eu-west-1:111122223333:mesh/tls/virtualNode/web";
    first_answer(ch.clone(), arn)
        .await
        .expect("web reads web by ARN");
    assert_eq!(metric(&server, "meshplane_xds_denied_total").await, 0.0);

    let denied = first_answer(ch.clone(), DB)
        .await
        .expect_err("web reads db");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains(&spiffe(WEB)),
        "{}",
        denied.message()
    );
    let denied = first_answer(ch.clone(), "mesh/tls/virtualGateway/web")
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    // Unary fetches too.
    let mut cds = ClusterDiscoveryServiceClient::new(ch);
    let fetch = |id: &str| DiscoveryRequest {
        node: Some(Node {
            id: id.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(cds.fetch_clusters(fetch(WEB)).await.is_ok());
    let denied = cds.fetch_clusters(fetch(DB)).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(server.metrics.denied.load(Ordering::Relaxed), 3);
    assert_eq!(metric(&server, "meshplane_xds_denied_total").await, 3.0);
    // A denied stream never registers: only web's streams were ever listed.
    assert!(server.registry.list().iter().all(|s| s.node_id != DB));
    server.shutdown().await;
}

#[tokio::test]
async fn no_certificate_or_a_foreign_one_gets_no_stream() {
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(free_port(), free_port()));
    let ca = Ca::new("mesh CA");
    let server = start_tls(dir.path(), &ca).await;

    // TLS without a client certificate: the handshake fails (at connect, or at the first call).
    if let Ok(ch) = channel(&server, &ca, None).await {
        let err = first_answer(ch, WEB)
            .await
            .expect_err("no certificate, no stream");
        assert_ne!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    }
    // A certificate naming the right node, signed by another CA.
    let other = Ca::new("someone else's CA");
    let forged = other.client(&spiffe(WEB));
    if let Ok(ch) = channel(&server, &ca, Some(&forged)).await {
        first_answer(ch, WEB)
            .await
            .expect_err("a foreign CA's certificate");
    }
    // Plaintext.
    let plain = AggregatedDiscoveryServiceClient::connect(format!("http://{}", server.xds_addr));
    if let Ok(Ok(mut c)) = tokio::time::timeout(Duration::from_secs(5), plain).await {
        let reqs = tokio_stream::iter(vec![DiscoveryRequest::default()]);
        assert!(c.stream_aggregated_resources(reqs).await.is_err());
    }
    assert_eq!(server.metrics.streams_total.load(Ordering::Relaxed), 0);
    assert!(server.registry.is_empty());
    // Each refused handshake is counted (no certificate, a foreign one, plaintext).
    let failures = metric(&server, "meshplane_xds_tls_handshake_failures_total").await;
    assert!(failures >= 3.0, "{failures}");
    server.shutdown().await;
}

/// `bootstrap --xds-tls DIR` for `node_id`, Envoy's admin on port 0; its initial fetches give up
/// after 2 s so an Envoy that is refused still starts (and can be asked what it got).
fn bootstrap(node_id: &str, server: &Server, dir: &Path) -> String {
    let params = BootstrapParams {
        mode: XdsMode::Ads,
        node_id: node_id.into(),
        xds_host: "127.0.0.1".into(),
        xds_port: server.xds_addr.port(),
        admin_port: 0,
        admin_address: "127.0.0.1".into(),
    };
    let files = XdsTlsFiles {
        dir: dir.to_path_buf(),
        server_name: "127.0.0.1".into(),
    };
    render_with_tls(&params, Some(&files)).replace(
        "{ ads: {}, resource_api_version: V3 }",
        "{ ads: {}, resource_api_version: V3, initial_fetch_timeout: 2s }",
    )
}

#[tokio::test]
async fn envoy_with_its_certificate_gets_its_config_over_mtls_and_serves_traffic() {
    let (web_app, web_in) = (free_port(), free_port());
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(web_app, web_in));
    let ca = Ca::new("mesh CA");
    let server = start_tls(dir.path(), &ca).await;
    let _app = Upstream::start(web_app, "web-app", 0).await;
    let work = tempfile::tempdir().unwrap();
    let creds = write_dir(&work.path().join("web"), &ca.client(&spiffe(WEB)), &ca);

    let envoy = Envoy::start_bootstrap(WEB, work.path(), &bootstrap(WEB, &server, &creds)).await;
    let ingress = format!("127.0.0.1:{web_in}").parse().unwrap();
    let mut answer = None;
    for _ in 0..300 {
        if let Ok((200, body)) = http_get(ingress, "web", "/", &[]).await {
            answer = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answer.as_deref(),
        Some("web-app"),
        "traffic through web's sidecar"
    );
    assert!(envoy.stat("cluster.meshplane_xds.ssl.handshake").await >= 1);
    assert_eq!(server.metrics.denied.load(Ordering::Relaxed), 0);
    assert_eq!(
        server
            .metrics
            .tls_handshake_failures
            .load(Ordering::Relaxed),
        0
    );
    let streams = server.registry.list();
    assert!(streams.iter().any(|s| s.node_id == WEB), "{streams:?}");
    drop(envoy);
    server.shutdown().await;
}

#[tokio::test]
async fn envoy_holding_one_nodes_certificate_asking_for_another_is_denied() {
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(free_port(), free_port()));
    let ca = Ca::new("mesh CA");
    let server = start_tls(dir.path(), &ca).await;
    let work = tempfile::tempdir().unwrap();
    let web_creds = write_dir(&work.path().join("web"), &ca.client(&spiffe(WEB)), &ca);

    let envoy = Envoy::start_bootstrap(DB, work.path(), &bootstrap(DB, &server, &web_creds)).await;
    let m = server.metrics.clone();
    eventually("the denial", Duration::from_secs(20), move || {
        m.denied.load(Ordering::Relaxed) >= 1
    })
    .await;
    assert!(metric(&server, "meshplane_xds_denied_total").await >= 1.0);
    // TLS worked; the stream was refused, so the Envoy has nothing from meshplane.
    assert!(envoy.stat("cluster.meshplane_xds.ssl.handshake").await >= 1);
    assert_eq!(envoy.stat("control_plane.connected_state").await, 0);
    assert_eq!(envoy.stat("cluster_manager.cds.update_success").await, 0);
    assert_eq!(envoy.stat("listener_manager.lds.update_success").await, 0);
    assert!(server.registry.list().iter().all(|s| s.node_id != DB));
    drop(envoy);
    server.shutdown().await;
}

#[tokio::test]
async fn envoy_without_a_client_certificate_gets_no_stream() {
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(free_port(), free_port()));
    let ca = Ca::new("mesh CA");
    let server = start_tls(dir.path(), &ca).await;
    let work = tempfile::tempdir().unwrap();
    let creds = write_dir(&work.path().join("web"), &ca.client(&spiffe(WEB)), &ca);
    // The same bootstrap with the client certificate taken out.
    let yaml = bootstrap(WEB, &server, &creds);
    let start = yaml
        .find("            tls_certificates:")
        .expect("certificates");
    let end = yaml[start..]
        .find("            validation_context:")
        .unwrap()
        + start;
    let yaml = format!("{}{}", &yaml[..start], &yaml[end..]);
    assert!(!yaml.contains("key.pem"));

    let envoy = Envoy::start_bootstrap(WEB, work.path(), &yaml).await;
    let e = &envoy;
    let mut failures = 0;
    for _ in 0..100 {
        failures = e.stat("cluster.meshplane_xds.ssl.connection_error").await
            + e.stat("cluster.meshplane_xds.upstream_cx_destroy_remote")
                .await;
        if failures >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failures >= 1, "Envoy's xDS connections never failed");
    assert_eq!(envoy.stat("control_plane.connected_state").await, 0);
    assert_eq!(envoy.stat("cluster_manager.cds.update_success").await, 0);
    assert_eq!(server.metrics.streams_total.load(Ordering::Relaxed), 0);
    assert!(server.registry.is_empty());
    assert!(
        server
            .metrics
            .tls_handshake_failures
            .load(Ordering::Relaxed)
            >= 1
    );
    drop(envoy);
    server.shutdown().await;
}
