//! gRPC through real Envoy sidecars: a tonic client calls through its own sidecar's egress port
//! (`:authority` naming the virtual service) to a router's `grpcRoute`, split 90/10 over two server
//! nodes, each with its own sidecar and a real tonic server behind it. One server answers
//! UNAVAILABLE every other call; with `grpcRetryEvents: [unavailable]` the client sees no failure,
//! and the client Envoy's `upstream_rq_retry` counts the retries. A second test routes by port: a
//! router and a node with a grpc, an http and an http2 listener each, reached as `svc:port` and
//! bare `svc` (the first listener), App Mesh's `match.port` and weighted target `port`. A third
//! runs a grpc listener's `healthCheck` (gRPC's health protocol) from the client sidecar to the app.

#[path = "grpc_mesh/apps.rs"]
mod apps;
#[path = "grpc_mesh/health.rs"]
mod health;
mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use apps::{call, channel, first_answer, grpc_app, grpc_app_with, http_app, SERVICE};
use support::envoy::{free_port, http_get, Envoy};
use support::*;

/// A server node: one grpc listener on `app`, its sidecar on `ingress`.
fn server_node(name: &str, app: u16, ingress: u16) -> String {
    format!(
        "---\nkind: VirtualNode\nmeshName: rpc\nvirtualNodeName: {name}\nspec:\n  listeners: [{{portMapping: {{port: {app}, protocol: grpc}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {ingress}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_route_splits_90_10_and_retries_unavailable() {
    let (egress, app1, app2, in1, in2) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let v1_calls = grpc_app(app1, 1, true);
    let v2_calls = grpc_app(app2, 2, false);
    let dir = MeshDir::new();
    dir.write(
        "mesh.yaml",
        &format!(
            "kind: Mesh\nmeshName: rpc\n\
             ---\nkind: VirtualNode\nmeshName: rpc\nvirtualNodeName: client\nspec:\n  backends: [{{virtualService: {{virtualServiceName: orders.rpc.local}}}}]\n  proxy: {{egressPort: {egress}}}\n\
             {}{}\
             ---\nkind: VirtualService\nmeshName: rpc\nvirtualServiceName: orders.rpc.local\nspec: {{provider: {{virtualRouter: {{virtualRouterName: orders}}}}}}\n\
             ---\nkind: VirtualRouter\nmeshName: rpc\nvirtualRouterName: orders\nspec: {{listeners: [{{portMapping: {{port: 50051, protocol: grpc}}}}]}}\n\
             ---\nkind: Route\nmeshName: rpc\nvirtualRouterName: orders\nrouteName: canary\nspec:\n  grpcRoute:\n    match: {{serviceName: {SERVICE}}}\n    action:\n      weightedTargets: [{{virtualNode: orders-v1, weight: 90}}, {{virtualNode: orders-v2, weight: 10}}]\n    retryPolicy:\n      maxRetries: 3\n      perRetryTimeout: {{unit: s, value: 2}}\n      grpcRetryEvents: [unavailable]\n",
            server_node("orders-v1", app1, in1),
            server_node("orders-v2", app2, in2),
        ),
    );
    let server = start_clean(dir.path()).await;
    let work = tempfile::tempdir().unwrap();
    let client = Envoy::start("mesh/rpc/virtualNode/client", server.xds_addr, work.path()).await;
    let _v1 = Envoy::start(
        "mesh/rpc/virtualNode/orders-v1",
        server.xds_addr,
        work.path(),
    )
    .await;
    let _v2 = Envoy::start(
        "mesh/rpc/virtualNode/orders-v2",
        server.xds_addr,
        work.path(),
    )
    .await;
    let ch = channel(egress, "orders.rpc.local:50051");
    // Both targets answer before counting starts.
    let began = Instant::now();
    let mut seen = [false; 2];
    while seen != [true, true] {
        let id = first_answer(&ch, "orders.rpc.local", work.path()).await;
        seen[id as usize - 1] = true;
        assert!(began.elapsed() < Duration::from_secs(30), "{seen:?}");
    }
    let (v1_before, v2_before) = (
        v1_calls.load(Ordering::SeqCst),
        v2_calls.load(Ordering::SeqCst),
    );
    let retries_before = client
        .stat(&format!(
            "cluster.cds_egress_rpc_orders-v1_grpc_{app1}.upstream_rq_retry"
        ))
        .await;

    // Sequential calls, so each retry of the flaky server is its next call (which succeeds).
    const CALLS: u64 = 1000;
    let (mut answered, mut failed) = ([0u64; 2], Vec::new());
    for _ in 0..CALLS {
        match call(ch.clone(), SERVICE).await {
            Ok(r) => answered[r.reloads_accepted as usize - 1] += 1,
            Err(e) => failed.push(e.to_string()),
        }
    }
    let share = answered[1] as f64 * 100.0 / CALLS as f64;
    let unavailable = (v1_calls.load(Ordering::SeqCst) - v1_before) - answered[0];
    let retries = client
        .stat(&format!(
            "cluster.cds_egress_rpc_orders-v1_grpc_{app1}.upstream_rq_retry"
        ))
        .await
        - retries_before;
    println!(
        "{CALLS} gRPC calls: orders-v1 {} ({:.1}%), orders-v2 {} ({share:.1}%), failed {}; \
         orders-v1 answered UNAVAILABLE {unavailable} times, client Envoy retried {retries}",
        answered[0],
        100.0 - share,
        answered[1],
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "the client saw failures: {:?}",
        &failed[..failed.len().min(5)]
    );
    // Binomial(1000, 0.1): sd 0.95 points; 7..13 is beyond 3 sd.
    assert!((7.0..=13.0).contains(&share), "orders-v2 got {share:.1}%");
    assert_eq!(v2_calls.load(Ordering::SeqCst) - v2_before, answered[1]);
    assert!(
        unavailable >= answered[0] / 2,
        "{unavailable} of {}",
        answered[0]
    );
    assert_eq!(retries, unavailable, "every UNAVAILABLE was retried once");

    // Another service has no route: Envoy answers UNIMPLEMENTED and no app sees the call.
    let err = call(ch.clone(), "meshplane.admin.v1.Other")
        .await
        .expect_err("no route");
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err}");
}

/// Three listeners on one node (grpc, http, http2) and a router with a grpc, an http and an http2
/// listener whose routes (grpcRoute, httpRoute, http2Route) pick their listener by `match.port` and
/// their target's by weighted target `port`. A client reaches each port as `<service>:<port>`, and
/// the bare `<service>` is the first listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_listeners_are_routed_by_port() {
    let (egress, grpc_port, http_port, h2_port, ingress) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let calls = grpc_app(grpc_port, 7, false);
    // The http2 listener's app: another tonic server (HTTP/2 without TLS).
    grpc_app(h2_port, 8, false);
    http_app(http_port, "multi-http").await;
    let dir = MeshDir::new();
    dir.write(
        "mesh.yaml",
        &format!(
            "kind: Mesh\nmeshName: rpc\n\
             ---\nkind: VirtualNode\nmeshName: rpc\nvirtualNodeName: client\nspec:\n  backends: [{{virtualService: {{virtualServiceName: front.rpc.local}}}}, {{virtualService: {{virtualServiceName: multi.rpc.local}}}}]\n  proxy: {{egressPort: {egress}}}\n\
             ---\nkind: VirtualNode\nmeshName: rpc\nvirtualNodeName: multi\nspec:\n  listeners: [{{portMapping: {{port: {grpc_port}, protocol: grpc}}}}, {{portMapping: {{port: {http_port}, protocol: http}}}}, {{portMapping: {{port: {h2_port}, protocol: http2}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {ingress}}}\n\
             ---\nkind: VirtualService\nmeshName: rpc\nvirtualServiceName: multi.rpc.local\nspec: {{provider: {{virtualNode: {{virtualNodeName: multi}}}}}}\n\
             ---\nkind: VirtualService\nmeshName: rpc\nvirtualServiceName: front.rpc.local\nspec: {{provider: {{virtualRouter: {{virtualRouterName: front}}}}}}\n\
             ---\nkind: VirtualRouter\nmeshName: rpc\nvirtualRouterName: front\nspec: {{listeners: [{{portMapping: {{port: 7001, protocol: grpc}}}}, {{portMapping: {{port: 7002, protocol: http}}}}, {{portMapping: {{port: 7003, protocol: http2}}}}]}}\n\
             ---\nkind: Route\nmeshName: rpc\nvirtualRouterName: front\nrouteName: rpc\nspec:\n  grpcRoute:\n    match: {{serviceName: {SERVICE}, port: 7001}}\n    action: {{weightedTargets: [{{virtualNode: multi, weight: 1, port: {grpc_port}}}]}}\n\
             ---\nkind: Route\nmeshName: rpc\nvirtualRouterName: front\nrouteName: web\nspec:\n  httpRoute:\n    match: {{prefix: /, port: 7002}}\n    action: {{weightedTargets: [{{virtualNode: multi, weight: 1, port: {http_port}}}]}}\n\
             ---\nkind: Route\nmeshName: rpc\nvirtualRouterName: front\nrouteName: h2\nspec:\n  http2Route:\n    match: {{prefix: /, port: 7003}}\n    action: {{weightedTargets: [{{virtualNode: multi, weight: 1, port: {h2_port}}}]}}\n"
        ),
    );
    let server = start_clean(dir.path()).await;
    let work = tempfile::tempdir().unwrap();
    let _client = Envoy::start("mesh/rpc/virtualNode/client", server.xds_addr, work.path()).await;
    let _multi = Envoy::start("mesh/rpc/virtualNode/multi", server.xds_addr, work.path()).await;
    let egress_addr = std::net::SocketAddr::from(([127, 0, 0, 1], egress));

    // gRPC: the router's grpc port, the bare name (its first listener), and the node's grpc
    // listener by port and bare.
    let by_port = [
        "front.rpc.local:7001".to_string(),
        "front.rpc.local".to_string(),
        format!("multi.rpc.local:{grpc_port}"),
        "multi.rpc.local".to_string(),
    ];
    for authority in &by_port {
        let id = first_answer(&channel(egress, authority), authority, work.path()).await;
        assert_eq!(id, 7, "{authority}");
    }
    assert!(calls.load(Ordering::SeqCst) >= by_port.len() as u64);
    // HTTP/2: the router's http2 port (its http2Route) and the node's http2 listener.
    for authority in [
        "front.rpc.local:7003".to_string(),
        format!("multi.rpc.local:{h2_port}"),
    ] {
        let id = first_answer(&channel(egress, &authority), &authority, work.path()).await;
        assert_eq!(id, 8, "{authority}");
    }

    // HTTP: the router's http port and the node's http listener reach the http app.
    for host in [
        "front.rpc.local:7002".to_string(),
        format!("multi.rpc.local:{http_port}"),
    ] {
        let (status, body) = http_get(egress_addr, &host, "/hello", &[]).await.unwrap();
        assert_eq!(
            (status, body.as_str()),
            (200, "multi-http /hello"),
            "{host}"
        );
    }
    // The bare router name is its first (grpc) listener: its gRPC route does not take plain HTTP.
    let (status, _) = http_get(egress_addr, "front.rpc.local", "/hello", &[])
        .await
        .unwrap();
    assert_eq!(status, 404, "bare name, plain HTTP");
    // A port the service is not on has no virtual host.
    let (status, _) = http_get(egress_addr, "front.rpc.local:7009", "/hello", &[])
        .await
        .unwrap();
    assert_eq!(status, 404, "unknown port");
}

/// A grpc listener's `healthCheck` with `protocol: grpc`: the client's sidecar runs gRPC's health
/// protocol against the node (through its sidecar, to the app's `grpc.health.v1.Health`) every
/// `intervalMillis` (also before the client's first request), and takes the node out at the first
/// NOT_SERVING answer (Envoy counts `unhealthyThreshold` for failed checks, but an answer that says
/// unhealthy is final; `membership_healthy` drops to 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_checks_reach_the_app() {
    let (egress, app, ingress) = (free_port(), free_port(), free_port());
    let health = health::Health::default();
    health.serving.store(true, Ordering::SeqCst);
    grpc_app_with(app, 3, false, Some(health.clone()));
    let dir = MeshDir::new();
    dir.write(
        "mesh.yaml",
        &format!(
            "kind: Mesh\nmeshName: rpc\n\
             ---\nkind: VirtualNode\nmeshName: rpc\nvirtualNodeName: client\nspec:\n  backends: [{{virtualService: {{virtualServiceName: svc.rpc.local}}}}]\n  proxy: {{egressPort: {egress}}}\n\
             ---\nkind: VirtualNode\nmeshName: rpc\nvirtualNodeName: svc\nspec:\n  listeners:\n    - portMapping: {{port: {app}, protocol: grpc}}\n      healthCheck: {{protocol: grpc, healthyThreshold: 2, unhealthyThreshold: 2, intervalMillis: 5000, timeoutMillis: 2000}}\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {ingress}}}\n\
             ---\nkind: VirtualService\nmeshName: rpc\nvirtualServiceName: svc.rpc.local\nspec: {{provider: {{virtualNode: {{virtualNodeName: svc}}}}}}\n"
        ),
    );
    let server = start(dir.path()).await;
    let work = tempfile::tempdir().unwrap();
    let _svc = Envoy::start("mesh/rpc/virtualNode/svc", server.xds_addr, work.path()).await;
    let client = Envoy::start("mesh/rpc/virtualNode/client", server.xds_addr, work.path()).await;
    let cluster = format!("cluster.cds_egress_rpc_svc_grpc_{app}");
    assert_eq!(
        first_answer(
            &channel(egress, "svc.rpc.local"),
            "svc.rpc.local",
            work.path()
        )
        .await,
        3
    );
    let began = Instant::now();
    while client
        .stat(&format!("{cluster}.health_check.success"))
        .await
        == 0
    {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "no successful gRPC health check; see {}",
            work.path().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        health.checks.load(Ordering::SeqCst) >= 1,
        "the app was asked"
    );
    assert_eq!(
        client.stat(&format!("{cluster}.membership_healthy")).await,
        1
    );

    health.serving.store(false, Ordering::SeqCst);
    let asked = health.checks.load(Ordering::SeqCst);
    let began = Instant::now();
    while client.stat(&format!("{cluster}.membership_healthy")).await != 0 {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "NOT_SERVING did not take the node out; see {}",
            work.path().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "NOT_SERVING took the node out after {} ms ({} more check; interval 5 s)",
        began.elapsed().as_millis(),
        health.checks.load(Ordering::SeqCst) - asked
    );
    assert!(
        client
            .stat(&format!("{cluster}.health_check.failure"))
            .await
            >= 1
    );
    assert!(health.checks.load(Ordering::SeqCst) > asked);
}

/// The golden gRPC mesh (tests/golden/grpc/mesh: every grpcRoute match, retry and timeout, an
/// http2Route, a router on three ports, grpc and http2 health checks), its client on free ports: a
/// real Envoy accepts all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_accepts_every_grpc_golden_feature() {
    let (ingress, egress) = (free_port(), free_port());
    let backends = "    - virtualService: {virtualServiceName: catalog.rpc.local}\n";
    let text = std::fs::read_to_string(repo_path("tests/golden/grpc/mesh/all.yaml")).unwrap();
    assert!(text.contains(backends));
    let text = text.replacen(
        backends,
        &format!("{backends}  proxy: {{ingressPort: {ingress}, egressPort: {egress}}}\n"),
        1,
    );
    let dir = MeshDir::new();
    dir.write("all.yaml", &text);
    let server = start(dir.path()).await;
    let work = tempfile::tempdir().unwrap();
    let client = Envoy::start("mesh/rpc/virtualNode/client", server.xds_addr, work.path()).await;
    let began = Instant::now();
    loop {
        let dump = client.routes_dump().await.to_string();
        let listeners = client.admin_get("/listeners").await;
        let all = [
            "add-item",
            "/shop.Orders/Add",
            "any-grpc",
            "web-h2",
            "web-http",
        ]
        .iter()
        .all(|w| dump.contains(w));
        if all && listeners.contains(&format!(":{egress}")) {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the client never got its routes: {listeners}; see {}",
            work.path().display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for stat in [
        "listener_manager.lds.update_rejected",
        "cluster_manager.cds.update_rejected",
    ] {
        assert_eq!(client.stat(stat).await, 0, "{stat}");
    }
    let clusters = client.admin_get("/clusters").await;
    assert!(
        clusters.contains("cds_egress_rpc_orders-v1_grpc_50051")
            && clusters.contains("cds_egress_rpc_orders-v1_http2_8443"),
        "{clusters}"
    );
}
