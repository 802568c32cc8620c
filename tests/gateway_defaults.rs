//! App Mesh's defaults behind a real Envoy gateway: a request that enters through a virtual gateway
//! gets what the target service's router gives a sidecar client — its route's `perRequest` timeout,
//! App Mesh's default 15 s timeout where the route sets none, and App Mesh's default retry of a
//! 503 — and the gateway route's default prefix rewrite (`/slow/x` reaches the app as `/x`).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::envoy::{free_port, http_get, Envoy, Upstream};
use support::*;
use tokio::net::TcpListener;

/// An app that answers `/sleep/<ms>...` after sleeping that long, anything else at once, with the
/// path it received.
async fn sleepy(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind app");
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        let path = uri.path().to_string();
        let ms = path
            .split('/')
            .skip_while(|s| *s != "sleep")
            .nth(1)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        format!("slow {path}")
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

struct Ports {
    gateway: u16,
    egress: u16,
    apps: [u16; 2],
    ins: [u16; 2],
}

fn mesh(p: &Ports) -> String {
    let mut s = String::from("kind: Mesh\nmeshName: gwd\n");
    for (i, name) in ["slow", "flaky"].iter().enumerate() {
        s.push_str(&format!(
            "---\nkind: VirtualNode\nmeshName: gwd\nvirtualNodeName: {name}\nspec:\n  listeners: [{{portMapping: {{port: {}, protocol: http}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {}}}\n",
            p.apps[i], p.ins[i]
        ));
    }
    s.push_str(
        "---\nkind: VirtualRouter\nmeshName: gwd\nvirtualRouterName: slow\nspec: {listeners: [{portMapping: {port: 80, protocol: http}}]}\n\
         ---\nkind: Route\nmeshName: gwd\nvirtualRouterName: slow\nrouteName: short\nspec:\n  priority: 1\n  httpRoute:\n    match: {prefix: /short}\n    action: {weightedTargets: [{virtualNode: slow, weight: 1}]}\n    timeout: {perRequest: {unit: ms, value: 1000}}\n\
         ---\nkind: Route\nmeshName: gwd\nvirtualRouterName: slow\nrouteName: default\nspec:\n  priority: 2\n  httpRoute:\n    match: {prefix: /}\n    action: {weightedTargets: [{virtualNode: slow, weight: 1}]}\n\
         ---\nkind: VirtualService\nmeshName: gwd\nvirtualServiceName: slow.gwd.local\nspec: {provider: {virtualRouter: {virtualRouterName: slow}}}\n\
         ---\nkind: VirtualService\nmeshName: gwd\nvirtualServiceName: flaky.gwd.local\nspec: {provider: {virtualNode: {virtualNodeName: flaky}}}\n",
    );
    s.push_str(&format!(
        "---\nkind: VirtualGateway\nmeshName: gwd\nvirtualGatewayName: edge\nspec:\n  listeners: [{{portMapping: {{port: {}, protocol: http}}}}]\n  proxy: {{egressPort: {}}}\n",
        p.gateway, p.egress
    ));
    for (name, vs) in [("slow", "slow.gwd.local"), ("flaky", "flaky.gwd.local")] {
        s.push_str(&format!(
            "---\nkind: GatewayRoute\nmeshName: gwd\nvirtualGatewayName: edge\ngatewayRouteName: {name}\nspec:\n  httpRoute:\n    match: {{prefix: /{name}/}}\n    action: {{target: {{virtualService: {{virtualServiceName: {vs}}}}}}}\n"
        ));
    }
    s
}

/// `GET path` through the gateway: the status and how long it took.
async fn timed(gw: SocketAddr, path: &str) -> (u16, String, Duration) {
    let began = Instant::now();
    let (status, body) = http_get(gw, "www.example.com", path, &[])
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (status, body, began.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_retries_of_the_target_apply_behind_a_gateway() {
    let p = Ports {
        gateway: free_port(),
        egress: free_port(),
        apps: [free_port(), free_port()],
        ins: [free_port(), free_port()],
    };
    sleepy(p.apps[0]).await;
    // Every second request fails with a 503.
    let flaky = Upstream::start(p.apps[1], "flaky", 2).await;
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(&p));
    let server = start(dir.path()).await;
    let problems = &server.pipeline.status().last.problems;
    assert!(problems.is_empty(), "{problems:#?}");
    let work = tempfile::tempdir().unwrap();
    let _slow = Envoy::start("mesh/gwd/virtualNode/slow", server.xds_addr, work.path()).await;
    let _flaky = Envoy::start("mesh/gwd/virtualNode/flaky", server.xds_addr, work.path()).await;
    let edge = Envoy::start("mesh/gwd/virtualGateway/edge", server.xds_addr, work.path()).await;
    let gw: SocketAddr = ([127, 0, 0, 1], p.gateway).into();
    let began = Instant::now();
    while !matches!(
        http_get(gw, "www.example.com", "/slow/ready", &[]).await,
        Ok((200, _))
    ) {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the gateway never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The default prefix rewrite: the app sees the path without the gateway route's prefix.
    let (status, body, _) = timed(gw, "/slow/hello").await;
    assert_eq!((status, body.as_str()), (200, "slow /hello"));

    // App Mesh's default 15 s request timeout (no timeout on the route), waited for in the
    // background while the rest runs.
    let default_timeout = tokio::spawn(timed(gw, "/slow/sleep/17000"));

    // The router's 1 s perRequest timeout applies to a request from the gateway...
    let (status, _, took) = timed(gw, "/slow/short/sleep/3000").await;
    println!(
        "perRequest 1 s behind the gateway: {status} after {} ms",
        took.as_millis()
    );
    assert_eq!(status, 504);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    // ...and a request within it is answered.
    let (status, body, _) = timed(gw, "/slow/short/sleep/200").await;
    assert_eq!((status, body.as_str()), (200, "slow /short/sleep/200"));

    // App Mesh's default retry policy retries a 503: the client sees none of the app's failures.
    let mut failed = 0;
    for _ in 0..40 {
        let (status, _, _) = timed(gw, "/flaky/x").await;
        failed += u32::from(status != 200);
    }
    let retries = edge
        .stat(&format!(
            "cluster.cds_egress_gwd_flaky_http_{}.upstream_rq_retry",
            p.apps[1]
        ))
        .await;
    let app_failures = flaky.failures.load(std::sync::atomic::Ordering::Relaxed);
    println!("flaky behind the gateway: 40 requests, {failed} failed, app answered 503 {app_failures} times, gateway retried {retries}");
    assert_eq!(failed, 0);
    assert!(app_failures >= 15, "{app_failures}");
    assert!(
        retries >= app_failures,
        "the gateway's Envoy retried {retries}"
    );

    let (status, _, took) = default_timeout.await.unwrap();
    println!(
        "no route timeout behind the gateway: {status} after {} ms",
        took.as_millis()
    );
    assert_eq!(status, 504);
    assert!(
        took >= Duration::from_millis(14_500) && took < Duration::from_millis(16_500),
        "{took:?}"
    );
}
