//! A real Envoy virtual gateway (`mesh/gw/virtualGateway/edge`, bootstrapped like any sidecar) in
//! front of two services whose nodes have their own sidecars and upstream apps that echo the Host
//! and path they received. Checks hostname exact and suffix matches, prefix and host rewrites as
//! the app sees them, `defaultTargetHostname: DISABLED` (the client's Host kept, the right service
//! still reached, App Mesh's `x-app-mesh-virtual-service` header gone), header and query matches, an 80/20 router split behind the gateway (printed),
//! and a gateway-route edit on disk applied without restarts (save → applied printed). A third test
//! makes real gRPC calls through a grpc gateway listener and `grpcRoute` to a tonic server.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshplane::proto::admin::admin_server::{Admin, AdminServer};
use meshplane::proto::admin::{GetStatusRequest, GetStatusResponse};

use support::envoy::{free_port, http_get, Envoy};
use support::*;
use tokio::net::TcpListener;

/// An app that answers `<name> <Host> <path?query>`, and ` x-app-mesh-virtual-service=<value>` after
/// that if the header reached it.
async fn echo(port: u16, name: &'static str) {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind app");
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| async move {
        let host = req
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let path = req
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string());
        let vs = req
            .headers()
            .get("x-app-mesh-virtual-service")
            .map(|v| format!(" x-app-mesh-virtual-service={}", v.to_str().unwrap_or("?")))
            .unwrap_or_default();
        format!("{name} {host} {path}{vs}")
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

struct Ports {
    gateway: u16,
    egress: u16,
    apps: [u16; 3],
    ins: [u16; 3],
}

const NODES: [&str; 3] = ["shop-v1", "shop-v2", "cart"];

fn mesh(p: &Ports) -> String {
    let mut s = String::from("kind: Mesh\nmeshName: gw\nspec: {egressFilter: {type: DROP_ALL}}\n");
    for (i, name) in NODES.iter().enumerate() {
        s.push_str(&format!(
            "---\nkind: VirtualNode\nmeshName: gw\nvirtualNodeName: {name}\nspec:\n  listeners: [{{portMapping: {{port: {}, protocol: http}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {}}}\n",
            p.apps[i], p.ins[i]
        ));
    }
    s.push_str(
        "---\nkind: VirtualRouter\nmeshName: gw\nvirtualRouterName: shop\nspec: {listeners: [{portMapping: {port: 80, protocol: http}}]}\n\
         ---\nkind: Route\nmeshName: gw\nvirtualRouterName: shop\nrouteName: split\nspec:\n  httpRoute:\n    match: {prefix: /}\n    action: {weightedTargets: [{virtualNode: shop-v1, weight: 80}, {virtualNode: shop-v2, weight: 20}]}\n\
         ---\nkind: VirtualService\nmeshName: gw\nvirtualServiceName: shop.gw.local\nspec: {provider: {virtualRouter: {virtualRouterName: shop}}}\n\
         ---\nkind: VirtualService\nmeshName: gw\nvirtualServiceName: cart.gw.local\nspec: {provider: {virtualNode: {virtualNodeName: cart}}}\n",
    );
    s.push_str(&format!(
        "---\nkind: VirtualGateway\nmeshName: gw\nvirtualGatewayName: edge\nspec:\n  listeners: [{{portMapping: {{port: {}, protocol: http}}}}]\n  proxy: {{egressPort: {}}}\n",
        p.gateway, p.egress
    ));
    s
}

fn gateway_route(name: &str, spec: &str) -> String {
    format!("---\nkind: GatewayRoute\nmeshName: gw\nvirtualGatewayName: edge\ngatewayRouteName: {name}\nspec:\n{spec}")
}

/// The gateway routes; `shop_host_to` is the service `shop.example.com` goes to (the edit).
fn routes(shop_host_to: &str) -> String {
    [
        gateway_route(
            "by-host",
            &format!("  priority: 10\n  httpRoute:\n    match: {{prefix: /, hostname: {{exact: shop.example.com}}}}\n    action: {{target: {{virtualService: {{virtualServiceName: {shop_host_to}}}}}}}\n"),
        ),
        gateway_route(
            "by-suffix",
            "  priority: 10\n  httpRoute:\n    match: {prefix: /, hostname: {suffix: .cart.example.com}}\n    action: {target: {virtualService: {virtualServiceName: cart.gw.local}}}\n",
        ),
        gateway_route(
            "api-rewrite",
            "  priority: 10\n  httpRoute:\n    match: {prefix: /api/, hostname: {exact: api.example.com}}\n    action:\n      target: {virtualService: {virtualServiceName: cart.gw.local}}\n      rewrite: {prefix: {value: /v2/}}\n",
        ),
        gateway_route(
            "keep-host",
            "  priority: 10\n  httpRoute:\n    match: {prefix: /, hostname: {exact: keep.example.com}}\n    action:\n      target: {virtualService: {virtualServiceName: cart.gw.local}}\n      rewrite: {hostname: {defaultTargetHostname: DISABLED}}\n",
        ),
        gateway_route(
            "keep-host-shop",
            "  priority: 10\n  httpRoute:\n    match: {prefix: /shop/, hostname: {exact: keep.example.com}}\n    action:\n      target: {virtualService: {virtualServiceName: shop.gw.local}}\n      rewrite: {prefix: {defaultPrefix: DISABLED}, hostname: {defaultTargetHostname: DISABLED}}\n",
        ),
        gateway_route(
            "by-header",
            "  priority: 1\n  httpRoute:\n    match: {prefix: /, headers: [{name: x-svc, match: {exact: cart}}]}\n    action: {target: {virtualService: {virtualServiceName: cart.gw.local}}}\n",
        ),
        gateway_route(
            "by-query",
            "  priority: 2\n  httpRoute:\n    match: {prefix: /q, queryParameters: [{name: to, match: {exact: cart}}]}\n    action:\n      target: {virtualService: {virtualServiceName: cart.gw.local}}\n      rewrite: {prefix: {defaultPrefix: DISABLED}}\n",
        ),
        gateway_route(
            "default",
            "  priority: 1000\n  httpRoute:\n    match: {prefix: /}\n    action: {target: {virtualService: {virtualServiceName: shop.gw.local}}}\n",
        ),
    ]
    .concat()
}

async fn get(gw: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    match http_get(gw, host, path, headers).await {
        Ok((200, body)) => body,
        other => panic!("GET {host}{path} through the gateway: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_envoy_gateway_routes_into_the_mesh() {
    let p = Ports {
        gateway: free_port(),
        egress: free_port(),
        apps: [free_port(), free_port(), free_port()],
        ins: [free_port(), free_port(), free_port()],
    };
    for (i, name) in NODES.iter().enumerate() {
        echo(p.apps[i], name).await;
    }
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(&p));
    dir.write("routes.yaml", &routes("shop.gw.local"));
    let server = start(dir.path()).await;
    assert!(
        server.pipeline.status().last.problems.is_empty(),
        "{:#?}",
        server.pipeline.status().last.problems
    );
    let work = tempfile::tempdir().unwrap();
    let mut envoys = Vec::new();
    for name in NODES {
        let id = format!("mesh/gw/virtualNode/{name}");
        envoys.push(Envoy::start(&id, server.xds_addr, work.path()).await);
    }
    // The gateway's bootstrap is the one `meshplane bootstrap` prints for its node id.
    envoys.push(Envoy::start("mesh/gw/virtualGateway/edge", server.xds_addr, work.path()).await);
    let gw: SocketAddr = ([127, 0, 0, 1], p.gateway).into();

    let began = Instant::now();
    loop {
        if let Ok((200, _)) = http_get(gw, "shop.example.com", "/", &[]).await {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the gateway never answered; see {}",
            work.path().display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "gateway ready {} ms after its Envoy started",
        began.elapsed().as_millis()
    );

    // Hostname exact: the shop (either version), Host rewritten to the service, path kept.
    let b = get(gw, "shop.example.com", "/hello", &[]).await;
    assert!(
        b.starts_with("shop-v") && b.ends_with(" shop.gw.local /hello"),
        "{b}"
    );
    // Hostname suffix, also with a port in the Host.
    let b = get(gw, "eu.cart.example.com", "/hello", &[]).await;
    assert_eq!(b, "cart cart.gw.local /hello");
    let b = get(gw, "eu.cart.example.com:8080", "/x", &[]).await;
    assert_eq!(b, "cart cart.gw.local /x");
    // Prefix rewrite (value) and host rewrite, as the app sees them.
    let b = get(gw, "api.example.com", "/api/items?id=7", &[]).await;
    assert_eq!(b, "cart cart.gw.local /v2/items?id=7");
    let b = get(gw, "api.example.com", "/api", &[]).await;
    assert_eq!(b, "cart cart.gw.local /v2/");
    // Header match, and its absence.
    let b = get(gw, "other.example.com", "/h", &[("x-svc", "cart")]).await;
    assert_eq!(b, "cart cart.gw.local /h");
    let b = get(gw, "other.example.com", "/h", &[("x-svc", "shop")]).await;
    assert!(b.starts_with("shop-v"), "{b}");
    // Query match (with the default prefix rewrite disabled: the path arrives unchanged).
    let b = get(gw, "other.example.com", "/q?to=cart", &[]).await;
    assert_eq!(b, "cart cart.gw.local /q?to=cart");
    let b = get(gw, "other.example.com", "/q?to=shop", &[]).await;
    assert!(b.starts_with("shop-v"), "{b}");
    // `defaultTargetHostname: DISABLED`: the app sees the client's Host, and the request still
    // reaches the route's target (two targets behind the same Host, by path), with the target
    // named in x-app-mesh-virtual-service on the way and that header removed before the app,
    // whatever the client sent in it.
    let b = get(gw, "keep.example.com", "/k", &[]).await;
    assert_eq!(b, "cart keep.example.com /k");
    let b = get(gw, "keep.example.com", "/shop/k", &[]).await;
    assert!(
        b.starts_with("shop-v") && b.ends_with(" keep.example.com /shop/k"),
        "{b}"
    );
    let spoof = [("x-app-mesh-virtual-service", "shop.gw.local")];
    let b = get(gw, "keep.example.com", "/k", &spoof).await;
    assert_eq!(b, "cart keep.example.com /k");
    // The rewrite default still applies elsewhere: the Host is the target service.
    let b = get(gw, "eu.cart.example.com", "/k", &[]).await;
    assert_eq!(b, "cart cart.gw.local /k");
    // Hostname exact with a port in the Host: the port is not part of the match.
    let b = get(gw, "shop.example.com:1", "/p", &[]).await;
    assert!(
        b.starts_with("shop-v") && b.ends_with(" shop.gw.local /p"),
        "{b}"
    );

    // The router's 80/20 split applies behind the gateway.
    let n = 400;
    let mut v1 = 0;
    for _ in 0..n {
        let b = get(gw, "shop.example.com", "/split", &[]).await;
        if b.starts_with("shop-v1 ") {
            v1 += 1;
        } else {
            assert!(b.starts_with("shop-v2 "), "{b}");
        }
    }
    let share = f64::from(v1) / f64::from(n);
    println!(
        "80/20 split behind the gateway over {n} requests: shop-v1 {v1} ({:.1}%), shop-v2 {} ({:.1}%)",
        share * 100.0,
        n - v1,
        (1.0 - share) * 100.0
    );
    assert!((0.72..=0.88).contains(&share), "shop-v1 got {share}");

    // A gateway-route edit on disk reaches the running gateway, no restart.
    let saved = Instant::now();
    dir.write_and_rename("routes.yaml", &routes("cart.gw.local"));
    loop {
        let b = get(gw, "shop.example.com", "/after-edit", &[]).await;
        if b == "cart cart.gw.local /after-edit" {
            break;
        }
        assert!(b.starts_with("shop-v"), "{b}");
        assert!(
            saved.elapsed() < Duration::from_secs(5),
            "the gateway-route edit did not reach the gateway within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "gateway-route edit: save -> applied at the gateway in {} ms",
        saved.elapsed().as_millis()
    );
    // Same process, a second route table: the edit arrived over RDS.
    let rds = format!(
        "http.ingress.rds.rds_ingress_http_{}.update_success",
        p.gateway
    );
    let updates = envoys[3].stat(&rds).await;
    assert!(updates >= 2, "{rds} = {updates}");
    println!("{rds} = {updates}");
    drop(envoys);
}

/// The golden gateway mesh (two listeners, http and grpc; connection pools; a json access log;
/// every match and rewrite), on free ports: a real Envoy accepts all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_accepts_every_gateway_feature() {
    let (http, grpc, egress) = (free_port(), free_port(), free_port());
    let text = std::fs::read_to_string(repo_path("tests/golden/gateway/mesh/all.yaml"))
        .unwrap()
        .replace("8088", &http.to_string())
        .replace("8089", &grpc.to_string())
        .replace("15011", &egress.to_string());
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("access.log");
    let text = text
        .replace("/dev/stdout", log.to_str().unwrap())
        .replace("{key: status, value: \"%RESPONSE_CODE%\"}", "{key: status, value: \"%RESPONSE_CODE%\"}, {key: route, value: \"%ROUTE_NAME%\"}, {key: flags, value: \"%RESPONSE_FLAGS%\"}, {key: host, value: \"%REQ(:AUTHORITY)%\"}");
    let dir = MeshDir::new();
    dir.write("all.yaml", &text);
    let server = start(dir.path()).await;
    let work = tempfile::tempdir().unwrap();
    // Started from what `meshplane bootstrap --node-id mesh/edge/virtualGateway/ingress` prints.
    let id = "mesh/edge/virtualGateway/ingress";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshplane"))
        .args(["bootstrap", "--node-id", id, "--admin-port", "0", "--xds"])
        .arg(server.xds_addr.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let gw = Envoy::start_bootstrap(id, work.path(), &String::from_utf8(out.stdout).unwrap()).await;
    let want = [
        format!("rds_ingress_http_{http}"),
        format!("rds_ingress_grpc_{grpc}"),
        format!("rds_egress_http_{egress}"),
    ];
    let began = Instant::now();
    loop {
        let dump = gw.routes_dump().await.to_string();
        let listeners = gw.admin_get("/listeners").await;
        let bound = [http, grpc, egress]
            .iter()
            .all(|p| listeners.contains(&format!(":{p}")));
        if bound && want.iter().all(|w| dump.contains(w.as_str())) {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the gateway never got its listeners and routes: {listeners}; see {}",
            work.path().display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for stat in [
        "listener_manager.lds.update_rejected",
        "cluster_manager.cds.update_rejected",
    ] {
        assert_eq!(gw.stat(stat).await, 0, "{stat}");
    }
    assert!(gw.stat("listener_manager.lds.update_success").await >= 1);
    // One request: the json access log (ingress and egress listeners) shows it went by the gateway
    // route and then by the target service's router route. (The shop's nodes have no Envoys here,
    // so what answers it does not matter.)
    let addr: SocketAddr = ([127, 0, 0, 1], http).into();
    let _ = http_get(addr, "shop.example.com", "/", &[]).await.unwrap();
    let began = Instant::now();
    let logged = loop {
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        if logged.lines().count() >= 2 || began.elapsed() > Duration::from_secs(10) {
            break logged;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).expect("json log line"))
        .collect();
    let routes: Vec<&str> = lines.iter().filter_map(|l| l["route"].as_str()).collect();
    assert!(routes.contains(&"shop-by-host"), "{logged}");
    assert!(routes.contains(&"split"), "{logged}");
    assert!(
        lines
            .iter()
            .all(|l| l["host"] == "shop.edge.local" && l["method"] == "GET"),
        "{logged}"
    );
}

/// A gRPC upstream: meshplane's own `meshplane.admin.v1.Admin` service (proto/), answering every
/// `GetStatus` with `reloads_accepted = 4242` and counting the calls it got.
struct RpcApp {
    calls: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl Admin for RpcApp {
    async fn get_status(
        &self,
        req: tonic::Request<GetStatusRequest>,
    ) -> Result<tonic::Response<GetStatusResponse>, tonic::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let tenant = req
            .metadata()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        Ok(tonic::Response::new(GetStatusResponse {
            reloads_accepted: 4242,
            warnings: vec![meshplane::proto::admin::Problem {
                message: tenant,
                ..Default::default()
            }],
            ..Default::default()
        }))
    }
}

/// A unary call of `GetStatus` on `service` (the generated client only knows the real one).
async fn get_status(
    channel: tonic::transport::Channel,
    service: &str,
    tenant: &str,
) -> Result<GetStatusResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path: tonic::codegen::http::uri::PathAndQuery =
        format!("/{service}/GetStatus").parse().unwrap();
    let mut req = tonic::Request::new(GetStatusRequest {});
    req.metadata_mut()
        .insert("x-tenant", tenant.parse().unwrap());
    grpc.unary(
        req,
        path,
        tonic_prost::ProstCodec::<GetStatusRequest, GetStatusResponse>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A gRPC gateway listener and a `grpcRoute` (serviceName and metadata match) to a virtual service
/// whose node has a grpc listener, its own sidecar, and a real tonic server behind it: a real gRPC
/// call through the gateway Envoy succeeds, and a call to another service name (or without the
/// metadata) is not routed (Envoy's no-route, gRPC UNIMPLEMENTED) and never reaches the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_gateway_route_reaches_a_real_grpc_server() {
    let (gateway, egress, app, ingress) = (free_port(), free_port(), free_port(), free_port());
    let calls = Arc::new(AtomicU64::new(0));
    let server_calls = calls.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(AdminServer::new(RpcApp {
                calls: server_calls,
            }))
            .serve(([127, 0, 0, 1], app).into())
            .await
            .expect("grpc app");
    });
    let dir = MeshDir::new();
    dir.write(
        "mesh.yaml",
        &format!(
            "kind: Mesh\nmeshName: rpc\n\
             ---\nkind: VirtualNode\nmeshName: rpc\nvirtualNodeName: status\nspec:\n  listeners: [{{portMapping: {{port: {app}, protocol: grpc}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {ingress}}}\n\
             ---\nkind: VirtualService\nmeshName: rpc\nvirtualServiceName: status.rpc.local\nspec: {{provider: {{virtualNode: {{virtualNodeName: status}}}}}}\n\
             ---\nkind: VirtualGateway\nmeshName: rpc\nvirtualGatewayName: edge\nspec:\n  listeners: [{{portMapping: {{port: {gateway}, protocol: grpc}}}}]\n  proxy: {{egressPort: {egress}}}\n\
             ---\nkind: GatewayRoute\nmeshName: rpc\nvirtualGatewayName: edge\ngatewayRouteName: status-rpc\nspec:\n  grpcRoute:\n    match:\n      serviceName: meshplane.admin.v1.Admin\n      metadata: [{{name: x-tenant, match: {{suffix: -prod}}}}]\n    action: {{target: {{virtualService: {{virtualServiceName: status.rpc.local}}}}}}\n"
        ),
    );
    let server = start(dir.path()).await;
    assert!(
        server.pipeline.status().last.problems.is_empty()
            && server.pipeline.status().last.warnings.is_empty(),
        "{:#?}",
        server.pipeline.status().last
    );
    let work = tempfile::tempdir().unwrap();
    let _sidecar = Envoy::start("mesh/rpc/virtualNode/status", server.xds_addr, work.path()).await;
    let gw = Envoy::start("mesh/rpc/virtualGateway/edge", server.xds_addr, work.path()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{gateway}"))
        .unwrap()
        .connect_lazy();

    let began = Instant::now();
    let answer = loop {
        match get_status(channel.clone(), "meshplane.admin.v1.Admin", "eu-prod").await {
            Ok(r) => break r,
            Err(e) => assert!(
                began.elapsed() < Duration::from_secs(20),
                "no gRPC answer through the gateway: {e}; see {}",
                work.path().display()
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "gRPC through the gateway answered {} ms after its Envoy started",
        began.elapsed().as_millis()
    );
    assert_eq!(answer.reloads_accepted, 4242);
    assert_eq!(
        answer.warnings[0].message, "eu-prod",
        "metadata reaches the app"
    );
    let seen = calls.load(Ordering::SeqCst);

    // Another service name, and the right one without the metadata: not routed.
    for (service, tenant) in [
        ("meshplane.admin.v1.Other", "eu-prod"),
        ("meshplane.admin.v1.Admin", "eu-test"),
    ] {
        let err = get_status(channel.clone(), service, tenant)
            .await
            .expect_err(service);
        assert_eq!(err.code(), tonic::Code::Unimplemented, "{service}: {err}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        seen,
        "the app saw no other call"
    );
    assert_eq!(gw.stat("http.ingress.no_route").await, 2);
    // And the matching call still works on the same connection.
    let again = get_status(channel, "meshplane.admin.v1.Admin", "us-prod")
        .await
        .unwrap();
    assert_eq!(again.warnings[0].message, "us-prod");
    assert_eq!(calls.load(Ordering::SeqCst), seen + 1);
}
