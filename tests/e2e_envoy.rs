//! End-to-end tests with real Envoy 1.40 sidecars: a client sidecar sends real HTTP through its
//! egress port to a router with a 90/10 canary between two virtual nodes, each behind its own
//! sidecar in front of a test HTTP server. Prints the measured split and save-to-applied times.

mod support;

use std::time::{Duration, Instant};

use meshplane::bootstrap::XdsMode;
use support::envoy::{free_port, http_get, Envoy, Upstream};
use support::*;

struct Ports {
    client_egress: u16,
    v1_app: u16,
    v1_in: u16,
    v2_app: u16,
    v2_in: u16,
    flaky_app: u16,
    flaky_in: u16,
}

fn mesh_files(p: &Ports) -> (String, String) {
    let nodes = format!(
        r#"kind: Mesh
meshName: e2e
spec: {{egressFilter: {{type: DROP_ALL}}}}
---
kind: VirtualNode
meshName: e2e
virtualNodeName: client
spec:
  backends:
    - virtualService: {{virtualServiceName: svc.e2e.local}}
    - virtualService: {{virtualServiceName: flaky.e2e.local}}
  proxy: {{egressPort: {client_egress}}}
---
kind: VirtualNode
meshName: e2e
virtualNodeName: v1
spec:
  listeners: [{{portMapping: {{port: {v1_app}, protocol: http}}}}]
  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}
  proxy: {{ingressPort: {v1_in}}}
---
kind: VirtualNode
meshName: e2e
virtualNodeName: v2
spec:
  listeners: [{{portMapping: {{port: {v2_app}, protocol: http}}}}]
  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}
  proxy: {{ingressPort: {v2_in}}}
---
kind: VirtualNode
meshName: e2e
virtualNodeName: flaky
spec:
  listeners: [{{portMapping: {{port: {flaky_app}, protocol: http}}}}]
  serviceDiscovery: {{dns: {{hostname: 127.0.0.1}}}}
  proxy: {{ingressPort: {flaky_in}}}
---
kind: VirtualService
meshName: e2e
virtualServiceName: flaky.e2e.local
spec: {{provider: {{virtualNode: {{virtualNodeName: flaky}}}}}}
---
kind: VirtualService
meshName: e2e
virtualServiceName: svc.e2e.local
spec: {{provider: {{virtualRouter: {{virtualRouterName: svc}}}}}}
"#,
        client_egress = p.client_egress,
        v1_app = p.v1_app,
        v1_in = p.v1_in,
        v2_app = p.v2_app,
        v2_in = p.v2_in,
        flaky_app = p.flaky_app,
        flaky_in = p.flaky_in,
    );
    (nodes, router(90, 10))
}

fn router(w1: u32, w2: u32) -> String {
    format!(
        r#"kind: VirtualRouter
meshName: e2e
virtualRouterName: svc
spec: {{listeners: [{{portMapping: {{port: 80, protocol: http}}}}]}}
---
kind: Route
meshName: e2e
virtualRouterName: svc
routeName: by-header
spec:
  priority: 1
  httpRoute:
    match:
      prefix: /
      headers: [{{name: x-version, match: {{exact: v2}}}}]
    action: {{weightedTargets: [{{virtualNode: v2, weight: 1}}]}}
---
kind: Route
meshName: e2e
virtualRouterName: svc
routeName: by-query
spec:
  priority: 2
  httpRoute:
    match:
      prefix: /
      queryParameters: [{{name: version, match: {{exact: v1}}}}]
    action: {{weightedTargets: [{{virtualNode: v1, weight: 1}}]}}
---
kind: Route
meshName: e2e
virtualRouterName: svc
routeName: by-prefix
spec:
  priority: 3
  httpRoute:
    match: {{prefix: /v2only}}
    action: {{weightedTargets: [{{virtualNode: v2, weight: 1}}]}}
---
kind: Route
meshName: e2e
virtualRouterName: svc
routeName: flaky
spec:
  priority: 4
  httpRoute:
    match: {{prefix: /flaky}}
    action: {{weightedTargets: [{{virtualNode: flaky, weight: 1}}]}}
    retryPolicy:
      maxRetries: 3
      perRetryTimeout: {{unit: ms, value: 1000}}
      httpRetryEvents: [server-error]
---
kind: Route
meshName: e2e
virtualRouterName: svc
routeName: default-retries
spec:
  priority: 5
  httpRoute:
    match: {{prefix: /default-retries}}
    action: {{weightedTargets: [{{virtualNode: flaky, weight: 1}}]}}
---
kind: Route
meshName: e2e
virtualRouterName: svc
routeName: no-503-retries
spec:
  priority: 6
  httpRoute:
    match: {{prefix: /no-503-retries}}
    action: {{weightedTargets: [{{virtualNode: flaky, weight: 1}}]}}
    retryPolicy:
      maxRetries: 1
      perRetryTimeout: {{unit: ms, value: 1000}}
      httpRetryEvents: [client-error]
---
kind: Route
meshName: e2e
virtualRouterName: svc
routeName: canary
spec:
  priority: 10
  httpRoute:
    match: {{prefix: /}}
    action:
      weightedTargets:
        - {{virtualNode: v1, weight: {w1}}}
        - {{virtualNode: v2, weight: {w2}}}
"#
    )
}

/// Sends `n` requests (8 at a time) and returns how many answered `v1` and `v2`; every one must be a 200.
async fn split(
    egress: std::net::SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> (usize, usize) {
    split_with(egress, host, path, headers, n, 8).await
}

async fn split_with(
    egress: std::net::SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    n: usize,
    concurrency: usize,
) -> (usize, usize) {
    let mut v1 = 0;
    let mut v2 = 0;
    let mut left = n;
    while left > 0 {
        let batch = left.min(concurrency);
        left -= batch;
        let mut tasks = Vec::new();
        for _ in 0..batch {
            let host = host.to_string();
            let path = path.to_string();
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            tasks.push(tokio::spawn(async move {
                let h: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                http_get(egress, &host, &path, &h).await
            }));
        }
        for t in tasks {
            let (status, body) = t
                .await
                .unwrap()
                .expect("request through the client sidecar");
            assert_eq!(status, 200, "request {path} via {host} failed: {body}");
            match body.as_str() {
                "v1" => v1 += 1,
                "v2" => v2 += 1,
                other => panic!("unexpected body {other:?}"),
            }
        }
    }
    (v1, v2)
}

/// Asserts `count` out of `n` is within 5 standard deviations of a binomial with share `p`.
fn assert_share(label: &str, count: usize, n: usize, p: f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    let z = (count as f64 - mean) / sd;
    println!(
        "{label}: {count}/{n} = {:.2}% (expected {:.0}%, z = {z:+.2})",
        100.0 * count as f64 / n as f64,
        100.0 * p
    );
    assert!(
        z.abs() < 5.0,
        "{label}: {count}/{n} is {z:.1} standard deviations from {p}"
    );
}

/// Polls the client's `/config_dump` until the canary weights are `w1`/`w2`; returns the time taken.
async fn wait_for_weights(client: &Envoy, since: Instant, w1: u32, w2: u32) -> Duration {
    loop {
        let dump = client.routes_dump().await.to_string();
        if canary_weights(&dump) == Some((w1, w2)) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "Envoy never applied weights {w1}/{w2}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn canary_weights(dump: &str) -> Option<(u32, u32)> {
    let v: serde_json::Value = serde_json::from_str(dump).ok()?;
    // `/config_dump?resource=dynamic_route_configs` lists one DynamicRouteConfig per entry.
    for cfg in v["configs"].as_array()? {
        for vh in cfg["route_config"]["virtual_hosts"].as_array()? {
            for r in vh["routes"].as_array().into_iter().flatten() {
                if r["name"] == "canary" {
                    let cl = r["route"]["weighted_clusters"]["clusters"].as_array()?;
                    let w = |i: usize| cl.get(i)?["weight"].as_u64().map(|w| w as u32);
                    return Some((w(0)?, w(1)?));
                }
            }
        }
    }
    None
}

/// The scenarios share the machine's two cores; running them one at a time keeps timings honest.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ads_sotw_canary_routing_retries_and_live_edits() {
    scenario(XdsMode::Ads).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ads_delta_canary_routing_retries_and_live_edits() {
    scenario(XdsMode::AdsDelta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_type_sotw_canary_routing_retries_and_live_edits() {
    scenario(XdsMode::Xds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_type_delta_canary_routing_retries_and_live_edits() {
    scenario(XdsMode::XdsDelta).await;
}

/// Names of the dynamic resources in one section of Envoy's `/config_dump`, found at `pointer`
/// inside each entry.
async fn dumped_names(envoy: &Envoy, resource: &str, pointer: &str) -> Vec<String> {
    let body = envoy
        .admin_get(&format!("/config_dump?resource={resource}"))
        .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<String> = v["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c.pointer(pointer)
                .and_then(|n| n.as_str())
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// Envoy's `/config_dump` holds exactly the clusters, listeners and routes meshplane served the node.
async fn assert_dump_matches_served(
    server: &meshplane::app::Server,
    envoy: &Envoy,
    node_key: &str,
) {
    let snap = server
        .pipeline
        .cache
        .get(node_key)
        .expect("node has a snapshot");
    let served: Vec<Vec<String>> = (0..4)
        .map(|t| snap.types[t].resources.keys().cloned().collect())
        .collect();
    let started = Instant::now();
    loop {
        let dumped = vec![
            dumped_names(envoy, "dynamic_active_clusters", "/cluster/name").await,
            served[1].clone(), // endpoints are checked through traffic, not the dump
            dumped_names(envoy, "dynamic_listeners", "/active_state/listener/name").await,
            dumped_names(envoy, "dynamic_route_configs", "/route_config/name").await,
        ];
        if dumped == served {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "Envoy's config_dump never matched what meshplane served:\n dumped {dumped:?}\n served {served:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn scenario(mode: XdsMode) {
    let _serial = SERIAL.lock().await;
    let envoy = support::envoy::envoy_bin();
    println!("== xDS mode {mode:?}; envoy: {}", envoy.display());
    let p = Ports {
        client_egress: free_port(),
        v1_app: free_port(),
        v1_in: free_port(),
        v2_app: free_port(),
        v2_in: free_port(),
        flaky_app: free_port(),
        flaky_in: free_port(),
    };
    let _v1 = Upstream::start(p.v1_app, "v1", 0).await;
    let _v2 = Upstream::start(p.v2_app, "v2", 0).await;
    // Every second request fails with 503: hidden by the retry policies.
    let flaky = Upstream::start(p.flaky_app, "v1", 2).await;

    let dir = MeshDir::new();
    let (nodes, router_yaml) = mesh_files(&p);
    dir.write("nodes.yaml", &nodes);
    dir.write("router.yaml", &router_yaml);
    let server = start(dir.path()).await;
    let work = tempfile::tempdir().unwrap();
    let client = Envoy::start_with(
        "mesh/e2e/virtualNode/client",
        server.xds_addr,
        work.path(),
        mode,
    )
    .await;
    let _e1 = Envoy::start_with(
        "mesh/e2e/virtualNode/v1",
        server.xds_addr,
        work.path(),
        mode,
    )
    .await;
    let _e2 = Envoy::start_with(
        "mesh/e2e/virtualNode/v2",
        server.xds_addr,
        work.path(),
        mode,
    )
    .await;
    let _ef = Envoy::start_with(
        "arn:aws:appmesh:eu-west-1:111122223333:mesh/e2e/virtualNode/flaky",
        server.xds_addr,
        work.path(),
        mode,
    )
    .await;
    let egress: std::net::SocketAddr = ([127, 0, 0, 1], p.client_egress).into();

    // Wait until the whole path works (sidecars warm their clusters and listeners).
    let started = Instant::now();
    loop {
        if let Ok((200, _)) = http_get(egress, "svc.e2e.local", "/", &[]).await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "traffic never flowed through the mesh"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "mesh carried traffic {} ms after the sidecars started",
        started.elapsed().as_millis()
    );

    // 90/10 canary, measured.
    let n = 2000;
    let (_, v2) = split(egress, "svc.e2e.local", "/", &[], n).await;
    assert_dump_matches_served(&server, &client, "mesh/e2e/virtualNode/client").await;
    let modes: Vec<String> = server
        .registry
        .list()
        .iter()
        .map(|s| s.mode.clone())
        .collect();
    println!("streams open: {modes:?}");
    assert_share("canary 90/10, share to v2", v2, n, 0.10);
    // The Host header may carry the router's port.
    let (_, v2) = split(egress, "svc.e2e.local:80", "/", &[], 400).await;
    assert_share(
        "canary 90/10 via svc.e2e.local:80, share to v2",
        v2,
        400,
        0.10,
    );

    // Header, query parameter and prefix matches.
    assert_eq!(
        split(egress, "svc.e2e.local", "/", &[("x-version", "v2")], 100).await,
        (0, 100)
    );
    assert_eq!(
        split(egress, "svc.e2e.local", "/any?version=v1", &[], 100).await,
        (100, 0)
    );
    assert_eq!(
        split(egress, "svc.e2e.local", "/v2only/x", &[], 100).await,
        (0, 100)
    );

    // A flaky upstream (every second request fails) is hidden by retries: the route's policy and
    // App Mesh's default for a virtual-node provider. One at a time, so every retry is the request
    // right after a failure.
    let (ok, _) = split_with(egress, "svc.e2e.local", "/flaky", &[], 100, 1).await;
    assert_eq!(ok, 100);
    let (ok, _) = split_with(egress, "flaky.e2e.local", "/", &[], 100, 1).await;
    assert_eq!(ok, 100);
    let failures = flaky.failures.load(std::sync::atomic::Ordering::Relaxed);
    println!("flaky upstream: {failures} failures hidden from 200 requests");
    assert!(
        failures >= 50,
        "the upstream should have failed about half the time, failed {failures}"
    );

    // The router's routes without a policy of their own share App Mesh's default once, on the
    // virtual host: such a route still retries the 503s...
    let (ok, _) = split_with(egress, "svc.e2e.local", "/default-retries", &[], 100, 1).await;
    assert_eq!(ok, 100);
    // ...while a route with its own policy has that one alone (client-error: no 503 retried).
    let mut failed = 0;
    for _ in 0..100 {
        let (status, _) = http_get(egress, "svc.e2e.local", "/no-503-retries", &[])
            .await
            .expect("request through the client sidecar");
        failed += usize::from(status == 503);
    }
    println!("a route whose own policy retries no 503: {failed} of 100 failed");
    assert!((40..=60).contains(&failed), "{failed} of 100 failed");

    // Editing the weights on disk changes the split without restarting anything.
    let mut applied = Vec::new();
    for (w1, w2) in [(50, 50), (80, 20), (50, 50)] {
        let saved = Instant::now();
        dir.write_and_rename("router.yaml", &router(w1, w2));
        applied.push(wait_for_weights(&client, saved, w1, w2).await);
    }
    let ms: Vec<u128> = applied.iter().map(|d| d.as_millis()).collect();
    println!("file save -> Envoy applied (config_dump), ms: {ms:?} (includes 50 ms debounce)");
    let (_, v2) = split(egress, "svc.e2e.local", "/", &[], n).await;
    assert_share("after edit to 50/50, share to v2", v2, n, 0.50);
    assert_dump_matches_served(&server, &client, "mesh/e2e/virtualNode/client").await;

    // An invalid edit changes nothing for Envoy.
    let before = client.routes_dump().await;
    let rejected = server.pipeline.status().reloads_rejected;
    dir.write("router.yaml", &router(900, 50));
    eventually(
        "the invalid edit to be rejected",
        Duration::from_secs(10),
        || server.pipeline.status().reloads_rejected > rejected,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        client.routes_dump().await,
        before,
        "Envoy's routes changed after an invalid edit"
    );
    let (_, v2) = split(egress, "svc.e2e.local", "/", &[], 400).await;
    assert_share("after the invalid edit, still 50/50", v2, 400, 0.50);

    // Nothing Envoy rejected along the way.
    assert_eq!(
        server
            .metrics
            .nacks
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    server.shutdown().await;
}

/// Mesh `egressFilter: ALLOW_ALL`: a host that is not a backend is still reachable through the
/// egress port (dynamic forward proxy), while DROP_ALL (every other test here) answers 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_all_egress_reaches_hosts_outside_the_mesh() {
    let _serial = SERIAL.lock().await;
    let (egress, outside) = (free_port(), free_port());
    let _outside = Upstream::start(outside, "v1", 0).await;
    let dir = MeshDir::new();
    dir.write(
        "mesh.yaml",
        &format!(
            "kind: Mesh\nmeshName: open\nspec: {{egressFilter: {{type: ALLOW_ALL}}}}\n---\nkind: VirtualNode\nmeshName: open\nvirtualNodeName: app\nspec:\n  proxy: {{egressPort: {egress}}}\n"
        ),
    );
    let server = start(dir.path()).await;
    let work = tempfile::tempdir().unwrap();
    let _app = Envoy::start("mesh/open/virtualNode/app", server.xds_addr, work.path()).await;
    let egress_addr: std::net::SocketAddr = ([127, 0, 0, 1], egress).into();
    let host = format!("127.0.0.1:{outside}");
    let started = Instant::now();
    loop {
        match http_get(egress_addr, &host, "/", &[]).await {
            Ok((200, body)) => {
                assert_eq!(body, "v1");
                break;
            }
            other => assert!(
                started.elapsed() < Duration::from_secs(20),
                "never forwarded: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Switching the mesh to DROP_ALL removes the catch-all: the same request now gets 404.
    dir.write(
        "mesh.yaml",
        &dir.read("mesh.yaml").replace("ALLOW_ALL", "DROP_ALL"),
    );
    let started = Instant::now();
    loop {
        let (status, _) = http_get(egress_addr, &host, "/", &[])
            .await
            .unwrap_or((0, String::new()));
        if status == 404 || status == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "DROP_ALL never took effect (status {status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}
