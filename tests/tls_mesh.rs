//! TLS between real Envoy sidecars, with certificates made in the test (rcgen): STRICT mTLS with
//! file certificates carries traffic; a plaintext client, a client whose certificate names the
//! wrong service and a client expecting another server name are refused, each refusal counted in
//! Envoy's `ssl.*` stats (read from the admin API); PERMISSIVE accepts TLS and plaintext; a virtual
//! gateway takes mTLS from outside (curl) and calls the STRICT service with its own client policy.
//! A second test serves every certificate, key and trust bundle from a small SDS server on a unix
//! socket, standing in for SPIRE, with the Envoys bootstrapped as `meshplane bootstrap --sds-socket`.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use support::envoy::{free_port, http_get, Envoy, Upstream};
use support::*;

/// A test CA and the leaf certificates it signs, as PEM.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "meshplane test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    /// (certificate PEM, key PEM) for `san` (a DNS name).
    fn leaf(&self, san: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec![san.to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes `<name>.pem` and `<name>.key` for `san` into `dir`.
    fn write_leaf(&self, dir: &Path, name: &str, san: &str) {
        let (cert, key) = self.leaf(san);
        std::fs::write(dir.join(format!("{name}.pem")), cert).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key).unwrap();
    }
}

fn node(name: &str, app: u16, ingress: u16, egress: u16, extra: &str) -> String {
    format!(
        "---\nkind: VirtualNode\nmeshName: tls\nvirtualNodeName: {name}\nspec:\n  listeners:\n    - portMapping: {{port: {app}, protocol: http}}\n{extra}  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {ingress}, egressPort: {egress}}}\n"
    )
}

fn service(name: &str, node: &str) -> String {
    format!("---\nkind: VirtualService\nmeshName: tls\nvirtualServiceName: {name}\nspec: {{provider: {{virtualNode: {{virtualNodeName: {node}}}}}}}\n")
}

async fn until_ok(via: SocketAddr, host: &str, what: &str, work: &Path) -> String {
    let began = Instant::now();
    loop {
        if let Ok((200, body)) = http_get(via, host, "/", &[]).await {
            return body;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{what} never answered 200; see {}",
            work.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls an Envoy counter until it is at least 1.
async fn counted(envoy: &Envoy, stat: &str) -> u64 {
    let began = Instant::now();
    loop {
        let n = envoy.stat(stat).await;
        if n > 0 {
            return n;
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "{stat} stayed 0 on {}",
            envoy.node_id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Ports {
    app: [u16; 2],
    ingress: [u16; 2],
    egress: [u16; 4],
    /// The gateway's listener and egress ports.
    gateway: [u16; 2],
}

/// api: STRICT mTLS, clients must be `web.tls.local`. open: PERMISSIVE. web: the right client.
/// rogue: a client certificate for `rogue.tls.local`, and for open a server name it will not get.
fn strict_mesh(p: &Ports, certs: &Path) -> String {
    let c = |n: &str| certs.join(n).display().to_string();
    let cert = |n: &str| {
        format!(
            "certificate: {{file: {{certificateChain: {}, privateKey: {}}}}}",
            c(&format!("{n}.pem")),
            c(&format!("{n}.key"))
        )
    };
    let trust = format!("trust: {{file: {{certificateChain: {}}}}}", c("ca.pem"));
    let api_tls = format!(
        "      tls:\n        mode: STRICT\n        {}\n        validation: {{{trust}, subjectAlternativeNames: {{match: {{exact: [web.tls.local, edge.tls.local]}}}}}}\n",
        cert("api")
    );
    // The gateway terminates TLS from outside (mTLS) and calls api with its own certificate.
    let edge = format!(
        "---\nkind: VirtualGateway\nmeshName: tls\nvirtualGatewayName: edge\nspec:\n  listeners:\n    - portMapping: {{port: {}, protocol: http}}\n      tls: {{mode: STRICT, {}, validation: {{{trust}}}}}\n  backendDefaults: {{clientPolicy: {{tls: {{{}, validation: {{{trust}, subjectAlternativeNames: {{match: {{exact: [api.tls.local]}}}}}}}}}}}}\n  proxy: {{egressPort: {}}}\n---\nkind: GatewayRoute\nmeshName: tls\nvirtualGatewayName: edge\ngatewayRouteName: all\nspec: {{httpRoute: {{match: {{prefix: /}}, action: {{target: {{virtualService: {{virtualServiceName: api.tls.local}}}}}}}}}}\n",
        p.gateway[0],
        cert("edge"),
        cert("edge"),
        p.gateway[1]
    );
    let open_tls = format!("      tls: {{mode: PERMISSIVE, {}}}\n", cert("open"));
    let client = |who: &str, open_san: &str| {
        format!(
            "---\nkind: VirtualNode\nmeshName: tls\nvirtualNodeName: {who}\nspec:\n  backendDefaults: {{clientPolicy: {{tls: {{{}, validation: {{{trust}}}}}}}}}\n  backends:\n    - virtualService: {{virtualServiceName: api.tls.local}}\n    - virtualService:\n        virtualServiceName: open.tls.local\n        clientPolicy: {{tls: {{{}, validation: {{{trust}, subjectAlternativeNames: {{match: {{exact: [{open_san}]}}}}}}}}}}\n  proxy: {{egressPort: {}}}\n",
            cert(who),
            cert(who),
            if who == "web" { p.egress[2] } else { p.egress[3] },
        )
    };
    [
        "kind: Mesh\nmeshName: tls\nspec: {egressFilter: {type: DROP_ALL}}\n".to_string(),
        node("api", p.app[0], p.ingress[0], p.egress[0], &api_tls),
        node("open", p.app[1], p.ingress[1], p.egress[1], &open_tls),
        service("api.tls.local", "api"),
        service("open.tls.local", "open"),
        client("web", "open.tls.local"),
        client("rogue", "not-open.tls.local"),
        edge,
    ]
    .concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mtls_carries_traffic_and_refuses_the_wrong_clients() {
    let p = Ports {
        app: [free_port(), free_port()],
        ingress: [free_port(), free_port()],
        egress: [free_port(), free_port(), free_port(), free_port()],
        gateway: [free_port(), free_port()],
    };
    let _apps = [
        Upstream::start(p.app[0], "api", 0).await,
        Upstream::start(p.app[1], "open", 0).await,
    ];
    let certs = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    std::fs::write(certs.path().join("ca.pem"), ca.issuer.pem()).unwrap();
    for name in ["api", "open", "web", "rogue", "edge"] {
        ca.write_leaf(certs.path(), name, &format!("{name}.tls.local"));
    }
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &strict_mesh(&p, certs.path()));
    let server = start(dir.path()).await;
    let problems = &server.pipeline.status().last.problems;
    assert!(problems.is_empty(), "{problems:#?}");
    let work = tempfile::tempdir().unwrap();
    let mut envoys = Vec::new();
    for name in ["api", "open", "web", "rogue"] {
        let id = format!("mesh/tls/virtualNode/{name}");
        envoys.push(Envoy::start(&id, server.xds_addr, work.path()).await);
    }
    let id = "mesh/tls/virtualGateway/edge";
    envoys.push(Envoy::start(id, server.xds_addr, work.path()).await);
    let [api, open, web, rogue, edge] = &envoys[..] else {
        unreachable!()
    };
    let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let api_listener = format!("listener.0.0.0.0_{}.ssl", p.ingress[0]);
    let open_listener = format!("listener.0.0.0.0_{}.ssl", p.ingress[1]);

    // STRICT mTLS carries traffic: web → api through both sidecars.
    let body = until_ok(at(p.egress[2]), "api.tls.local", "web → api", work.path()).await;
    assert_eq!(body, "api");
    let handshakes = counted(api, &format!("{api_listener}.handshake")).await;
    println!("web → api over mTLS: 200 after {handshakes} TLS handshake(s) on api's listener");

    // A plaintext client is refused by the STRICT listener.
    let plain = http_get(at(p.ingress[0]), "api.tls.local", "/", &[]).await;
    assert!(!matches!(plain, Ok((200, _))), "plaintext got {plain:?}");
    let errors = counted(api, &format!("{api_listener}.connection_error")).await;
    println!("plaintext → api refused ({plain:?}); {api_listener}.connection_error = {errors}");

    // A client whose certificate names another service is refused by api's SAN check.
    let r = http_get(at(p.egress[3]), "api.tls.local", "/", &[]).await;
    assert!(matches!(r, Ok((503, _))), "rogue → api got {r:?}");
    let san = counted(api, &format!("{api_listener}.fail_verify_san")).await;
    println!("rogue → api refused ({r:?}); {api_listener}.fail_verify_san = {san}");

    // PERMISSIVE accepts TLS (web, whose sidecar originates it) and plaintext.
    let body = until_ok(at(p.egress[2]), "open.tls.local", "web → open", work.path()).await;
    assert_eq!(body, "open");
    let tls = counted(open, &format!("{open_listener}.handshake")).await;
    let plain = http_get(at(p.ingress[1]), "open.tls.local", "/", &[]).await;
    assert!(matches!(&plain, Ok((200, b)) if b == "open"), "{plain:?}");
    println!("PERMISSIVE open: TLS ({tls} handshake(s)) and plaintext both 200");

    // A client expecting another server name refuses open's certificate itself.
    let r = http_get(at(p.egress[3]), "open.tls.local", "/", &[]).await;
    assert!(matches!(r, Ok((503, _))), "rogue → open got {r:?}");
    let cluster = format!("cluster.cds_egress_tls_open_http_{}.ssl", p.app[1]);
    let refused = counted(rogue, &format!("{cluster}.fail_verify_san")).await;
    println!(
        "rogue → open refused by rogue's own SAN check: {cluster}.fail_verify_san = {refused}"
    );
    assert_eq!(web.stat(&format!("{cluster}.fail_verify_san")).await, 0);

    // A gateway: mTLS from outside (curl with a client certificate), its own mTLS to api.
    let curl = |with_cert: bool| {
        let c = |n: &str| certs.path().join(n);
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "--max-time", "5", "--cacert"])
            .arg(c("ca.pem"));
        if with_cert {
            cmd.arg("--cert")
                .arg(c("web.pem"))
                .arg("--key")
                .arg(c("web.key"));
        }
        cmd.arg("--resolve")
            .arg(format!("edge.tls.local:{}:127.0.0.1", p.gateway[0]))
            .arg(format!("https://edge.tls.local:{}/", p.gateway[0]));
        let out = cmd.output().expect("curl (apt-get install curl)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let began = Instant::now();
    while curl(true) != (true, "api".to_string()) {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the gateway never answered over mTLS: {:?}; see {}",
            curl(true),
            work.path().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gw_listener = format!("listener.0.0.0.0_{}.ssl", p.gateway[0]);
    let gw_tls = counted(edge, &format!("{gw_listener}.handshake")).await;
    let upstream = format!("cluster.cds_egress_tls_api_http_{}.ssl.handshake", p.app[0]);
    let up_tls = counted(edge, &upstream).await;
    assert!(
        !curl(false).0,
        "the gateway took a client without a certificate"
    );
    let no_cert = counted(edge, &format!("{gw_listener}.fail_verify_no_cert")).await;
    let plain = http_get(at(p.gateway[0]), "edge.tls.local", "/", &[]).await;
    assert!(!matches!(plain, Ok((200, _))), "plaintext got {plain:?}");
    println!(
        "gateway: curl with a client certificate → api 200 ({gw_tls} listener, {up_tls} upstream handshake(s)); without one refused (fail_verify_no_cert = {no_cert}); plaintext refused"
    );
}

#[path = "tls_mesh/sds.rs"]
mod sds;

/// Serves `agent` on the unix socket `path`.
fn serve_sds(path: &Path, agent: sds::Agent) {
    use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryServiceServer;
    let listener = tokio::net::UnixListener::bind(path).expect("bind the SDS socket");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if tx.send(Ok::<_, std::io::Error>(stream)).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(SecretDiscoveryServiceServer::new(agent))
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sds_secrets_come_from_the_local_agent_socket() {
    let (app, ingress, egress) = (free_port(), free_port(), [free_port(), free_port()]);
    let _app = Upstream::start(app, "api", 0).await;
    let ca = Ca::new();
    let secrets = [
        sds::certificate("spiffe://tls/api", ca.leaf("api.tls.local")),
        sds::certificate("spiffe://tls/web", ca.leaf("web.tls.local")),
        sds::trust("spiffe://tls", &ca.issuer.pem()),
    ];
    let agent = sds::Agent {
        secrets: Arc::new(secrets.into_iter().map(|s| (s.name.clone(), s)).collect()),
        asked: Arc::new(Mutex::new(Vec::new())),
    };
    let work = tempfile::tempdir().unwrap();
    let socket = work.path().join("agent.sock");
    serve_sds(&socket, agent.clone());

    let trust = "trust: {sds: {secretName: 'spiffe://tls'}}";
    let api_tls = format!("      tls: {{mode: STRICT, certificate: {{sds: {{secretName: 'spiffe://tls/api'}}}}, validation: {{{trust}, subjectAlternativeNames: {{match: {{exact: [web.tls.local]}}}}}}}}\n");
    let mesh = [
        "kind: Mesh\nmeshName: tls\nspec: {egressFilter: {type: DROP_ALL}}\n".to_string(),
        node("api", app, ingress, egress[0], &api_tls),
        service("api.tls.local", "api"),
        format!("---\nkind: VirtualNode\nmeshName: tls\nvirtualNodeName: web\nspec:\n  backends: [{{virtualService: {{virtualServiceName: api.tls.local}}}}]\n  backendDefaults: {{clientPolicy: {{tls: {{certificate: {{sds: {{secretName: 'spiffe://tls/web'}}}}, validation: {{{trust}, subjectAlternativeNames: {{match: {{exact: [api.tls.local]}}}}}}}}}}}}\n  proxy: {{egressPort: {}}}\n", egress[1]),
    ]
    .concat();
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh);
    let server = start(dir.path()).await;
    let problems = &server.pipeline.status().last.problems;
    assert!(problems.is_empty(), "{problems:#?}");
    let mut envoys = Vec::new();
    for name in ["api", "web"] {
        let id = format!("mesh/tls/virtualNode/{name}");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshplane"))
            .args(["bootstrap", "--node-id", &id, "--admin-port", "0", "--xds"])
            .arg(server.xds_addr.to_string())
            .arg("--sds-socket")
            .arg(&socket)
            .output()
            .expect("meshplane bootstrap");
        assert!(out.status.success(), "{out:?}");
        let yaml = String::from_utf8(out.stdout).unwrap();
        envoys.push(Envoy::start_bootstrap(&id, work.path(), &yaml).await);
    }
    let began = Instant::now();
    let via = SocketAddr::from(([127, 0, 0, 1], egress[1]));
    let body = until_ok(via, "api.tls.local", "web → api over SDS", work.path()).await;
    assert_eq!(body, "api");
    let listener = format!("listener.0.0.0.0_{ingress}.ssl.handshake");
    let handshakes = counted(&envoys[0], &listener).await;
    let mut asked = agent.asked.lock().unwrap().clone();
    asked.sort();
    asked.dedup();
    assert_eq!(
        asked,
        ["spiffe://tls", "spiffe://tls/api", "spiffe://tls/web"]
    );
    println!(
        "SDS: secrets {asked:?} fetched over {}; web → api 200 over mTLS ({handshakes} handshake(s)) {} ms after both Envoys were ready",
        socket.display(),
        began.elapsed().as_millis()
    );
}
