//! `serve --ca-dir` puts the xDS port on mutual TLS from the CA (PRODUCT.md §5), and the user's
//! path onto it works with real Envoy: `meshplane ca issue` for the Envoy's certificate,
//! `meshplane bootstrap --xds-tls` for its bootstrap. Node web's Envoy gets its configuration and
//! carries traffic; an Envoy holding web's certificate asking for db is denied (counted in
//! `meshplane_xds_denied_total`); an Envoy without a client certificate gets no stream. The
//! server's certificate is renewed while serving: new handshakes see a new serial, the Envoy
//! connected before keeps its connection, and an Envoy started afterwards connects.

mod support;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshplane::app::{CaSettings, ServeConfig, Server};
use support::envoy::{ca_bootstrap, free_port, http_get, Envoy, Upstream};
use support::*;

const WEB: &str = "mesh/tls/virtualNode/web";
const DB: &str = "mesh/tls/virtualNode/db";

fn mesh(web_app: u16, web_in: u16, db_in: u16) -> String {
    format!(
        "kind: Mesh\nmeshName: tls\nspec: {{}}\n\
         ---\nkind: VirtualNode\nmeshName: tls\nvirtualNodeName: web\nspec:\n  listeners: [{{portMapping: {{port: {web_app}, protocol: http}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {web_in}}}\n\
         ---\nkind: VirtualNode\nmeshName: tls\nvirtualNodeName: db\nspec:\n  listeners: [{{portMapping: {{port: 5999, protocol: http}}}}]\n  serviceDiscovery: {{dns: {{hostname: db}}}}\n  proxy: {{ingressPort: {db_in}}}\n"
    )
}

/// `serve --ca-dir <work>/ca --cert-validity <validity>`, once its first load is done.
async fn start(dir: &Path, work: &Path, validity: Duration) -> Server {
    let cfg = ServeConfig {
        ca: Some(CaSettings {
            dir: work.join("ca"),
            trust_domain: "meshplane.local".into(),
            validity,
        }),
        ..test_config(dir)
    };
    let server = start_config(cfg).await;
    server
}

/// Initial fetches give up after 2 s, so an Envoy that is refused still starts.
fn patient(yaml: String) -> String {
    yaml.replace(
        "{ ads: {}, resource_api_version: V3 }",
        "{ ads: {}, resource_api_version: V3, initial_fetch_timeout: 2s }",
    )
}

/// The value of an unlabelled family in the server's `/metrics`.
async fn metric(server: &Server, name: &str) -> f64 {
    let (_, body) = http_get(server.admin_addr, "127.0.0.1", "/metrics", &[])
        .await
        .expect("metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
}

async fn get_200(addr: std::net::SocketAddr, host: &str, within: Duration) -> String {
    let began = Instant::now();
    loop {
        if let Ok((200, body)) = http_get(addr, host, "/", &[]).await {
            return body;
        }
        assert!(
            began.elapsed() < within,
            "no 200 from {addr} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoys_on_serve_ca_dir_read_only_their_own_node_and_need_a_certificate() {
    let (web_app, web_in) = (free_port(), free_port());
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(web_app, web_in, free_port()));
    let work = tempfile::tempdir().unwrap();
    let server = start(dir.path(), work.path(), Duration::from_secs(3600)).await;
    let ca_dir = work.path().join("ca");
    let _app = Upstream::start(web_app, "web-app", 0).await;

    let web = Envoy::start_ca(WEB, server.xds_addr, &ca_dir, work.path()).await;
    let ingress = ([127, 0, 0, 1], web_in).into();
    assert_eq!(
        get_200(ingress, "web", Duration::from_secs(30)).await,
        "web-app"
    );
    assert!(web.stat("cluster.meshplane_xds.ssl.handshake").await >= 1);
    assert_eq!(server.metrics.denied.load(Ordering::Relaxed), 0);

    // web's certificate (from `ca issue`), a bootstrap that names db.
    let as_db = ca_bootstrap(WEB, server.xds_addr, &ca_dir, work.path())
        .replace(&format!("\"{WEB}\""), &format!("\"{DB}\""));
    assert!(as_db.contains(&format!("id: \"{DB}\"")) && as_db.contains("cert.pem"));
    let impostor = Envoy::start_bootstrap(DB, work.path(), &patient(as_db)).await;
    let m = server.metrics.clone();
    eventually("the denial", Duration::from_secs(20), move || {
        m.denied.load(Ordering::Relaxed) >= 1
    })
    .await;
    let denied = metric(&server, "meshplane_xds_denied_total").await;
    assert!(denied >= 1.0, "{denied}");
    assert!(impostor.stat("cluster.meshplane_xds.ssl.handshake").await >= 1);
    assert_eq!(impostor.stat("control_plane.connected_state").await, 0);
    assert_eq!(impostor.stat("cluster_manager.cds.update_success").await, 0);
    assert!(server.registry.list().iter().all(|s| s.node_id != DB));
    drop(impostor);

    // The same bootstrap without its client certificate: no handshake, no stream.
    let yaml = patient(ca_bootstrap(DB, server.xds_addr, &ca_dir, work.path()));
    let start = yaml
        .find("            tls_certificates:")
        .expect("certificates");
    let end = start
        + yaml[start..]
            .find("            validation_context:")
            .unwrap();
    let bare = format!("{}{}", &yaml[..start], &yaml[end..]);
    assert!(!bare.contains("key.pem"));
    let streams_before = server.metrics.streams_total.load(Ordering::Relaxed);
    let anonymous = Envoy::start_bootstrap(DB, work.path(), &bare).await;
    let m = server.metrics.clone();
    eventually("a refused handshake", Duration::from_secs(20), move || {
        m.tls_handshake_failures.load(Ordering::Relaxed) >= 1
    })
    .await;
    assert_eq!(anonymous.stat("control_plane.connected_state").await, 0);
    assert_eq!(
        anonymous.stat("cluster_manager.cds.update_success").await,
        0
    );
    assert_eq!(
        server.metrics.streams_total.load(Ordering::Relaxed),
        streams_before
    );
    let failures = metric(&server, "meshplane_xds_tls_handshake_failures_total").await;
    println!(
        "web served over mTLS from --ca-dir; impostor denials {denied}, refused handshakes {failures}"
    );
    // web was never disturbed.
    assert_eq!(
        get_200(ingress, "web", Duration::from_secs(5)).await,
        "web-app"
    );
    drop((web, anonymous));
    server.shutdown().await;
}

/// The serial of the certificate the xDS port presents to a new TLS client holding `creds`.
async fn server_serial(server: &Server, creds: &Path) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(creds.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_file_iter(creds.join("cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(creds.join("key.pem")).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(server.xds_addr)
        .await
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake with the CA's xDS certificate");
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    cert.raw_serial_as_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xds_certificate_is_renewed_while_serving_and_connected_envoys_keep_theirs() {
    let (web_app, web_in, db_in) = (free_port(), free_port(), free_port());
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(web_app, web_in, db_in));
    let work = tempfile::tempdir().unwrap();
    let validity = Duration::from_secs(4);
    let server = start(dir.path(), work.path(), validity).await;
    let ca_dir = work.path().join("ca");
    let _app = Upstream::start(web_app, "web-app", 0).await;
    let web = Envoy::start_ca(WEB, server.xds_addr, &ca_dir, work.path()).await;
    let ingress = ([127, 0, 0, 1], web_in).into();
    get_200(ingress, "web", Duration::from_secs(30)).await;
    let creds = work.path().join(format!("{}.xds", WEB.replace('/', "_")));
    let first = server_serial(&server, &creds).await;

    // Renewed at two thirds of 4 s: a new handshake sees another certificate.
    let began = Instant::now();
    let mut serials = vec![first.clone()];
    while began.elapsed() < Duration::from_secs(9) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = server_serial(&server, &creds).await;
        if serials.last() != Some(&s) {
            serials.push(s);
        }
    }
    println!("xDS certificate serials over 9 s at validity 4 s: {serials:?}");
    assert!(serials.len() >= 3, "renewed at most once: {serials:?}");
    // web's Envoy kept the connection it made under the first certificate, and still works.
    assert_eq!(web.stat("cluster.meshplane_xds.upstream_cx_total").await, 1);
    assert_eq!(web.stat("control_plane.connected_state").await, 1);
    assert_eq!(
        get_200(ingress, "web", Duration::from_secs(5)).await,
        "web-app"
    );
    // An Envoy started now handshakes with the renewed certificate and gets its node.
    let db = Envoy::start_ca(DB, server.xds_addr, &ca_dir, work.path()).await;
    let m = server.registry.clone();
    eventually("db's stream", Duration::from_secs(20), move || {
        m.list().iter().any(|s| s.node_id == DB)
    })
    .await;
    let began = Instant::now();
    while db.stat("cluster_manager.cds.update_success").await == 0 {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "db got no clusters"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        server
            .metrics
            .tls_handshake_failures
            .load(Ordering::Relaxed),
        0
    );
    drop((web, db));
    server.shutdown().await;
}
