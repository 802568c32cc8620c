//! Operator experience against real Envoy: the admin API (`/healthz`, `/readyz`, `/metrics`,
//! `/proxies`, `/nodes`, `/resources`, `/load`) and the `status` / `config` commands, through a
//! configuration Envoy accepts, one only Envoy can reject (NACK), and the fix.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use meshplane::admin::{LoadReport, ProxyReport, SyncState};
use support::envoy::{bootstrap_yaml, free_port, http_get, Envoy, Upstream};
use support::*;

fn mesh(client_egress: u16, app: u16, ingress: u16, regex: &str) -> String {
    format!(
        r#"kind: Mesh
meshName: ops
---
kind: VirtualNode
meshName: ops
virtualNodeName: client
spec:
  backends: [{{virtualService: {{virtualServiceName: api.ops.local}}}}]
  proxy: {{egressPort: {client_egress}}}
---
kind: VirtualNode
meshName: ops
virtualNodeName: api
spec:
  listeners: [{{portMapping: {{port: {app}, protocol: http}}}}]
  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}
  proxy: {{ingressPort: {ingress}}}
---
kind: VirtualService
meshName: ops
virtualServiceName: api.ops.local
spec: {{provider: {{virtualRouter: {{virtualRouterName: api}}}}}}
---
kind: VirtualRouter
meshName: ops
virtualRouterName: api
spec: {{listeners: [{{portMapping: {{port: 80, protocol: http}}}}]}}
---
kind: Route
meshName: ops
virtualRouterName: api
routeName: items
spec:
  priority: 1
  httpRoute:
    match: {{path: {{regex: '{regex}'}}}}
    action: {{weightedTargets: [{{virtualNode: api, weight: 1}}]}}
---
kind: Route
meshName: ops
virtualRouterName: api
routeName: rest
spec:
  priority: 2
  httpRoute:
    match: {{prefix: /}}
    action: {{weightedTargets: [{{virtualNode: api, weight: 1}}]}}
"#
    )
}

const GOOD_REGEX: &str = "^/items/[0-9]+$";
/// Valid RE2 and valid App Mesh; its compiled program (726 instructions) is within the limit
/// `meshplane bootstrap` gives Envoy, but far beyond Envoy's default of 100, which an Envoy started
/// from a bootstrap of its own keeps: that Envoy rejects the route table (NACK).
const HUGE_REGEX: &str =
    "^/(alpha|beta|gamma|delta|epsilon){1,12}/[a-z0-9]{8,32}(-[a-z0-9]{4,16}){2,6}$";

/// `yaml` (meshplane's bootstrap) without its `layered_runtime`: Envoy's defaults.
fn without_runtime(yaml: &str) -> String {
    let start = yaml.find("layered_runtime:").expect("a runtime layer");
    let end = yaml.find("dynamic_resources:").expect("dynamic resources");
    assert!(start < end);
    format!("{}{}", &yaml[..start], &yaml[end..])
}

async fn get_json<T: serde::de::DeserializeOwned>(admin: std::net::SocketAddr, path: &str) -> T {
    let (status, body) = http_get(admin, "127.0.0.1", path, &[]).await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

async fn wait_for_state(
    admin: std::net::SocketAddr,
    node: &str,
    t: &str,
    want: SyncState,
) -> ProxyReport {
    let started = Instant::now();
    loop {
        let proxies: Vec<ProxyReport> = get_json(admin, "/proxies").await;
        if let Some(p) = proxies.iter().find(|p| p.node_id == node) {
            if p.types[t].state == want {
                return p.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{node} {t} never became {want:?}: {proxies:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the CLI off the runtime's threads: the in-process server must keep answering meanwhile.
async fn cli(args: &[&str]) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_meshplane"))
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_goes_synced_nacked_synced_with_real_envoy() {
    let (egress, app, ingress) = (free_port(), free_port(), free_port());
    let _api = Upstream::start(app, "v1", 0).await;
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(egress, app, ingress, GOOD_REGEX));
    let server = start(dir.path()).await;
    let admin = server.admin_addr;
    let admin_s = admin.to_string();

    // Liveness and readiness.
    assert_eq!(
        http_get(admin, "x", "/healthz", &[]).await.unwrap(),
        (200, "ok\n".into())
    );
    assert_eq!(
        http_get(admin, "x", "/readyz", &[]).await.unwrap(),
        (200, "ready\n".into())
    );

    let work = tempfile::tempdir().unwrap();
    // The client's Envoy runs from a bootstrap without meshplane's runtime layer (as one written
    // by hand would be): only that Envoy can reject what validation accepts.
    let node = "mesh/ops/virtualNode/client";
    let bootstrap = bootstrap_yaml(node, server.xds_addr, meshplane::bootstrap::XdsMode::Ads);
    let client = Envoy::start_bootstrap(node, work.path(), &without_runtime(&bootstrap)).await;
    let _api_envoy = Envoy::start("mesh/ops/virtualNode/api", server.xds_addr, work.path()).await;
    for t in ["CDS", "EDS", "LDS", "RDS"] {
        if t != "EDS" {
            wait_for_state(admin, node, t, SyncState::Synced).await;
        }
    }
    let p = wait_for_state(admin, node, "RDS", SyncState::Synced).await;
    assert_eq!(
        (
            p.mesh.as_deref(),
            p.node.as_deref(),
            p.mode.as_str(),
            p.known
        ),
        (Some("ops"), Some("client"), "ADS", true)
    );
    let egress_addr: std::net::SocketAddr = ([127, 0, 0, 1], egress).into();
    assert_eq!(
        http_get(egress_addr, "api.ops.local", "/items/42", &[])
            .await
            .unwrap()
            .0,
        200
    );

    let (code, table) = cli(&["status", "--admin", &admin_s]).await;
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("configuration: valid"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(node) && l.contains("SYNCED")),
        "{table}"
    );
    // A node defined with no sidecar for it is listed as such.
    dir.write(
        "idle.yaml",
        "kind: VirtualNode\nmeshName: ops\nvirtualNodeName: idle\nspec: {}\n",
    );
    let idle = "mesh/ops/virtualNode/idle";
    let mut v = serde_json::Value::Null;
    for _ in 0..200 {
        let (_, json) = cli(&["status", "--admin", &admin_s, "-o", "json"]).await;
        v = serde_json::from_str(&json).unwrap();
        if v["not_connected"] == serde_json::json!([idle]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(v["not_connected"], serde_json::json!([idle]), "{v}");
    let (_, table) = cli(&["status", "--admin", &admin_s]).await;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(idle) && l.contains("NOT CONNECTED")),
        "{table}"
    );

    // A configuration only that Envoy rejects: it NACKs the route table and keeps the old one.
    let before = client.routes_dump().await;
    dir.write("mesh.yaml", &mesh(egress, app, ingress, HUGE_REGEX));
    let p = wait_for_state(admin, node, "RDS", SyncState::Nacked).await;
    let msg = p.types["RDS"].nack.clone().unwrap_or_default();
    println!("Envoy's NACK: {msg}");
    assert!(msg.to_lowercase().contains("program size"), "{msg}");
    assert_eq!(
        client.routes_dump().await,
        before,
        "Envoy keeps its last accepted routes"
    );
    assert_eq!(
        http_get(egress_addr, "api.ops.local", "/items/42", &[])
            .await
            .unwrap()
            .0,
        200
    );
    let (code, table) = cli(&["status", "--admin", &admin_s]).await;
    assert_eq!(code, 1, "a NACKED proxy makes `status` fail:\n{table}");
    assert!(
        table.contains("NACKED") && table.contains("program size"),
        "{table}"
    );
    let (code, json) = cli(&["status", "--admin", &admin_s, "--output", "json"]).await;
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["types"]["RDS"]["state"] == "NACKED"));

    // The fix is picked up and the proxy is in sync again.
    dir.write(
        "mesh.yaml",
        &mesh(egress, app, ingress, "^/items/[0-9]{1,6}$"),
    );
    wait_for_state(admin, node, "RDS", SyncState::Synced).await;
    assert_eq!(cli(&["status", "--admin", &admin_s]).await.0, 0);

    // What the node was served, as tables and as JSON.
    let (code, out) = cli(&["config", node, "--admin", &admin_s]).await;
    assert_eq!(code, 0, "{out}");
    for want in [
        "LISTENER",
        "lds_egress_127.0.0.1_",
        "rds_egress_http_",
        "api.ops.local",
        "regex ^/items/[0-9]{1,6}$",
        "cds_egress_ops_api_http_",
        "EDS",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(out.contains("RETRIES") && out.contains("TIMEOUT"), "{out}");
    assert!(out.contains("TLS") && out.contains("plaintext"), "{out}");
    // Short names work when they name one node.
    let (code, short) = cli(&["config", "client", "--admin", &admin_s]).await;
    assert_eq!(
        (code, &short),
        (0, &out),
        "`config client` is `config {node}`"
    );
    assert_eq!(
        cli(&["config", "ops/client", "--admin", &admin_s]).await.0,
        0
    );
    assert_eq!(cli(&["config", "nobody", "--admin", &admin_s]).await.0, 1);
    let (code, out) = cli(&["config", node, "--admin", &admin_s, "--output", "json"]).await;
    assert_eq!(code, 0);
    let view: meshplane::inspect::NodeView = serde_json::from_str(&out).unwrap();
    assert_eq!(view.clusters.len(), 1);
    assert_eq!(
        view.endpoints[0].endpoints,
        vec![format!("127.0.0.1:{ingress}")]
    );
    assert_eq!(
        cli(&["config", "mesh/ops/virtualNode/nobody", "--admin", &admin_s])
            .await
            .0,
        1
    );

    // Metrics.
    let (_, metrics) = http_get(admin, "x", "/metrics", &[]).await.unwrap();
    for want in [
        "meshplane_connected_proxies{mode=\"ADS\"} 2",
        "meshplane_xds_nacks_total{type=\"RDS\"} 1",
        // The first load, the NACKed regex, its fix, and idle.yaml.
        "meshplane_reloads_total{result=\"accepted\"} 4",
        "meshplane_config_valid 1",
        "meshplane_convergence_seconds_bucket{le=\"+Inf\"}",
        "# TYPE meshplane_convergence_seconds histogram",
    ] {
        assert!(metrics.contains(want), "missing {want:?} in:\n{metrics}");
    }
    let count: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("meshplane_convergence_seconds_count "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        count >= 1.0,
        "convergence observed for the accepted edit: {count}"
    );
    println!(
        "{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("meshplane_convergence"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Nodes and the load result.
    let nodes: Vec<serde_json::Value> = get_json(admin, "/nodes").await;
    assert_eq!(nodes.len(), 3, "api, client and idle");
    let load: LoadReport = get_json(admin, "/load").await;
    assert!(load.valid && load.problems.is_empty());
    drop(client);
    server.shutdown().await;
}

#[tokio::test]
async fn an_invalid_directory_is_not_ready_and_reports_its_problems() {
    let dir = MeshDir::new();
    dir.write(
        "bad.yaml",
        "kind: VirtualNode\nmeshName: nowhere\nvirtualNodeName: x\n",
    );
    let server = start(dir.path()).await;
    let admin = server.admin_addr;
    let (status, _) = http_get(admin, "x", "/readyz", &[]).await.unwrap();
    assert_eq!(status, 503);
    let load: LoadReport = get_json(admin, "/load").await;
    assert!(!load.valid);
    assert_eq!(
        load.problems[0].to_string(),
        "bad.yaml:2: meshName: mesh `nowhere` is not defined (every mesh needs its Mesh document)"
    );
    let (code, out) = cli(&["status", "--admin", &admin.to_string()]).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("INVALID") && out.contains("bad.yaml:2"),
        "{out}"
    );
    let (_, metrics) = http_get(admin, "x", "/metrics", &[]).await.unwrap();
    assert!(
        metrics.contains("meshplane_config_valid 0")
            && metrics.contains("meshplane_config_errors 1"),
        "{metrics}"
    );
    server.shutdown().await;
}

/// The golden gateway mesh (tests/golden/gateway/mesh): its gateway is listed, resolved, served and
/// counted like a virtual node by `status`, `config`, `/nodes`, `/proxies`, `/resources` and
/// `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_are_seen_like_nodes() {
    let dir = MeshDir::copy_of(&repo_path("tests/golden/gateway/mesh"));
    let server = start(dir.path()).await;
    let admin = server.admin_addr;
    let admin_s = admin.to_string();
    let gw = "mesh/edge/virtualGateway/ingress";

    let nodes: Vec<meshplane::admin::NodeEntry> = get_json(admin, "/nodes").await;
    let ids: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
    assert!(ids.contains(&gw), "{ids:?}");
    assert_eq!(ids.len(), 4, "three nodes and the gateway: {ids:?}");

    // Defined, nobody connected: listed as NOT CONNECTED, like a node.
    let (code, json) = cli(&["status", "--admin", &admin_s, "-o", "json"]).await;
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let missing: Vec<&str> = v["not_connected"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    assert!(missing.contains(&gw), "{v}");
    let (_, table) = cli(&["status", "--admin", &admin_s]).await;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(gw) && l.contains("NOT CONNECTED")),
        "{table}"
    );

    // What the gateway is served: its listeners on 0.0.0.0:<port> and its egress on
    // 127.0.0.1:<egressPort>, whichever way it is named.
    let (code, out) = cli(&["config", gw, "--admin", &admin_s]).await;
    assert_eq!(code, 0, "{out}");
    for want in [
        "0.0.0.0:8088",
        "0.0.0.0:8089",
        "127.0.0.1:15011",
        "rds_ingress_http_8088",
        "rds_ingress_grpc_8089",
        "rds_egress_http_15011",
        "shop.example.com",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    for short in [
        "ingress",
        "edge/ingress",
        "arn:aws:appmesh:eu-west-1:123456789012:mesh/edge/virtualGateway/ingress",
    ] {
        let (code, again) = cli(&["config", short, "--admin", &admin_s]).await;
        assert_eq!(
            (code, &again),
            (0, &out),
            "`config {short}` is `config {gw}`"
        );
    }
    let (code, out) = cli(&["config", gw, "--admin", &admin_s, "-o", "json"]).await;
    assert_eq!(code, 0);
    let view: meshplane::inspect::NodeView = serde_json::from_str(&out).unwrap();
    assert_eq!(view.node_id, gw);
    assert_eq!(view.listeners.len(), 3, "{view:#?}");
    let (status, _) = http_get(admin, "x", &format!("/resources?node={gw}"), &[])
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, body) = http_get(
        admin,
        "x",
        "/resources?node=mesh/edge/virtualGateway/nobody",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(status, 404, "{body}");

    // A gateway proxy connects: /proxies and `status` list it as a known proxy, synced once it
    // acknowledges, and it is no longer NOT CONNECTED.
    let mut ads = AdsClient::connect(server.xds_addr, gw).await;
    ads.request(CDS, &[], "", "").await;
    let cds = ads.recv().await;
    ads.ack(&cds, &[]).await;
    ads.request(LDS, &[], "", "").await;
    let lds = ads.recv().await;
    assert_eq!(
        names_of(&lds).len(),
        3,
        "two gateway listeners and the egress"
    );
    ads.ack(&lds, &[]).await;
    let p = wait_for_state(admin, gw, "LDS", SyncState::Synced).await;
    assert_eq!(
        (p.mesh.as_deref(), p.node.as_deref(), p.known),
        (Some("edge"), Some("ingress"), true)
    );
    let (code, table) = cli(&["status", "--admin", &admin_s]).await;
    assert_eq!(code, 0, "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(gw) && l.contains("SYNCED") && !l.contains("NOT CONNECTED")),
        "{table}"
    );
    let (_, metrics) = http_get(admin, "x", "/metrics", &[]).await.unwrap();
    for want in [
        "meshplane_connected_proxies{mode=\"ADS\"} 1",
        "meshplane_nodes 4",
    ] {
        assert!(metrics.contains(want), "missing {want:?} in:\n{metrics}");
    }
    drop(ads);
    server.shutdown().await;
}
