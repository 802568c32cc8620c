//! TCP through real Envoy 1.40 sidecars: a tokio echo server behind three virtual nodes (each with
//! its own sidecar; replies name the instance), and a client sidecar whose app connects to
//! `127.0.0.1:<router port>` for a tcpRoute split 70/30 (measured over many connections), and to a
//! `proxy.tcpEgress` port for a backend provided by a node. Then, under traffic, the route gains a
//! third target: its cluster appears and connections flow to it within seconds, none failing.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::envoy::{free_port, Envoy};
use support::tcp::{ask, echo_server};
use support::*;

/// `n` connections, 8 at a time; the count per instance. Every one must be answered.
async fn split(addr: SocketAddr, n: usize) -> [usize; 3] {
    let mut counts = [0; 3];
    for batch in 0..n.div_ceil(8) {
        let size = 8.min(n - batch * 8);
        let tasks: Vec<_> = (0..size).map(|_| tokio::spawn(ask(addr))).collect();
        for t in tasks {
            let name = t.await.unwrap().expect("a connection through the mesh");
            counts[instance(&name)] += 1;
        }
    }
    counts
}

fn instance(name: &str) -> usize {
    match name {
        "v1" => 0,
        "v2" => 1,
        "v3" => 2,
        other => panic!("unknown instance {other:?}"),
    }
}

/// Asserts `count` out of `n` is within 5 standard deviations of a binomial with share `p`.
fn assert_share(label: &str, count: usize, n: usize, p: f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    let z = (count as f64 - mean) / sd;
    println!(
        "{label}: {count}/{n} = {:.1}% (expected {:.0}%, z = {z:+.2})",
        100.0 * count as f64 / n as f64,
        100.0 * p
    );
    assert!(z.abs() < 5.0, "{label}: {count}/{n} is {z:.1} sd from {p}");
}

struct Ports {
    egress: u16,
    router: u16,
    direct: u16,
    app: [u16; 3],
    ingress: [u16; 3],
}

fn nodes_file(p: &Ports) -> String {
    let mut text = format!(
        "kind: Mesh\nmeshName: tcpe2e\nspec: {{egressFilter: {{type: DROP_ALL}}}}\n---\nkind: VirtualNode\nmeshName: tcpe2e\nvirtualNodeName: client\nspec:\n  backends:\n    - virtualService: {{virtualServiceName: echo.tcp.local}}\n    - virtualService: {{virtualServiceName: direct.tcp.local}}\n  proxy:\n    egressPort: {}\n    tcpEgress: {{direct.tcp.local: {}}}\n",
        p.egress, p.direct
    );
    for v in 0..3 {
        text.push_str(&format!(
            r#"---
kind: VirtualNode
meshName: tcpe2e
virtualNodeName: echo-v{n}
spec:
  listeners:
    - portMapping: {{port: {app}, protocol: tcp}}
      healthCheck: {{protocol: tcp, healthyThreshold: 2, unhealthyThreshold: 2, intervalMillis: 5000, timeoutMillis: 2000}}
      connectionPool: {{tcp: {{maxConnections: 100}}}}
      timeout: {{tcp: {{idle: {{unit: s, value: 30}}}}}}
  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}
  proxy: {{ingressPort: {ingress}}}
"#,
            n = v + 1,
            app = p.app[v],
            ingress = p.ingress[v]
        ));
    }
    text.push_str("---\nkind: VirtualService\nmeshName: tcpe2e\nvirtualServiceName: direct.tcp.local\nspec: {provider: {virtualNode: {virtualNodeName: echo-v2}}}\n---\nkind: VirtualService\nmeshName: tcpe2e\nvirtualServiceName: echo.tcp.local\nspec: {provider: {virtualRouter: {virtualRouterName: echo}}}\n");
    text
}

/// The router and its tcpRoute, with weights for echo-v1, -v2 and -v3 (0: not a target).
fn router_file(port: u16, w: [u32; 3]) -> String {
    let targets: Vec<String> = w
        .iter()
        .enumerate()
        .filter(|(_, w)| **w > 0)
        .map(|(i, w)| format!("{{virtualNode: echo-v{}, weight: {w}}}", i + 1))
        .collect();
    format!(
        "kind: VirtualRouter\nmeshName: tcpe2e\nvirtualRouterName: echo\nspec: {{listeners: [{{portMapping: {{port: {port}, protocol: tcp}}}}]}}\n---\nkind: Route\nmeshName: tcpe2e\nvirtualRouterName: echo\nrouteName: split\nspec:\n  tcpRoute:\n    action: {{weightedTargets: [{}]}}\n    timeout: {{idle: {{unit: s, value: 60}}}}\n",
        targets.join(", ")
    )
}

/// The names of the clusters Envoy has active.
async fn active_clusters(envoy: &Envoy) -> Vec<String> {
    let body = envoy
        .admin_get("/config_dump?resource=dynamic_active_clusters")
        .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["cluster"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// Connections made one after another until `stop`: (time, instance or error) of each.
type Log = Arc<Mutex<Vec<(Instant, Result<String, String>)>>>;

fn traffic(addr: SocketAddr, stop: Arc<AtomicBool>, log: Log) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let r = ask(addr).await;
            log.lock().unwrap().push((Instant::now(), r));
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_split_tcp_egress_and_a_new_target_under_traffic() {
    let p = Ports {
        egress: free_port(),
        router: free_port(),
        direct: free_port(),
        app: [free_port(), free_port(), free_port()],
        ingress: [free_port(), free_port(), free_port()],
    };
    for (port, name) in p.app.iter().zip(["v1", "v2", "v3"]) {
        echo_server(*port, name).await;
    }
    let dir = MeshDir::new();
    dir.write("nodes.yaml", &nodes_file(&p));
    dir.write("router.yaml", &router_file(p.router, [70, 30, 0]));
    let server = start(dir.path()).await;
    assert!(
        server.pipeline.status().last.problems.is_empty(),
        "{:#?}",
        server.pipeline.status().last.problems
    );
    let work = tempfile::tempdir().unwrap();
    let client = Envoy::start(
        "mesh/tcpe2e/virtualNode/client",
        server.xds_addr,
        work.path(),
    )
    .await;
    let mut sidecars = Vec::new();
    for v in 1..=3 {
        let id = format!("mesh/tcpe2e/virtualNode/echo-v{v}");
        sidecars.push(Envoy::start(&id, server.xds_addr, work.path()).await);
    }
    let routed: SocketAddr = ([127, 0, 0, 1], p.router).into();
    let direct: SocketAddr = ([127, 0, 0, 1], p.direct).into();

    let started = Instant::now();
    loop {
        if ask(routed).await.is_ok() && ask(direct).await.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "TCP never flowed through the mesh; see {}",
            work.path().display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "TCP carried through the mesh {} ms after the sidecars started",
        started.elapsed().as_millis()
    );

    // The router's 70/30 split, on the router's port.
    let n = 1000;
    let counts = split(routed, n).await;
    assert_eq!(counts[2], 0, "echo-v3 is not a target yet");
    assert_share("tcpRoute 70/30, share to echo-v2", counts[1], n, 0.30);
    // The node-provided backend, at the port `proxy.tcpEgress` gives it.
    assert_eq!(split(direct, 100).await, [0, 100, 0], "tcpEgress port");

    // Under traffic, echo-v3 becomes a target.
    let v3_cluster = "cds_egress_tcpe2e_echo-v3_tcp_".to_string() + &p.app[2].to_string();
    assert!(!active_clusters(&client).await.contains(&v3_cluster));
    let stop = Arc::new(AtomicBool::new(false));
    let log: Log = Default::default();
    let load: Vec<_> = (0..4)
        .map(|_| traffic(routed, stop.clone(), log.clone()))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let saved = Instant::now();
    dir.write_and_rename("router.yaml", &router_file(p.router, [40, 30, 30]));
    let first_v3 = loop {
        let seen = log
            .lock()
            .unwrap()
            .iter()
            .find(|(at, r)| *at > saved && r.as_deref() == Ok("v3"))
            .map(|(at, _)| *at - saved);
        if let Some(d) = seen {
            break d;
        }
        assert!(
            saved.elapsed() < Duration::from_secs(10),
            "no connection reached echo-v3 within 10 s of the save"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let log = std::mem::take(&mut *log.lock().unwrap());
    let failed: Vec<&String> = log.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    println!(
        "new target: first connection to echo-v3 {} ms after the save; {} connections during the change, {} failed",
        first_v3.as_millis(),
        log.len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "connections failed during the change: {failed:?}"
    );
    assert!(
        first_v3 < Duration::from_secs(5),
        "the new target took {first_v3:?} (a warming stall?)"
    );
    assert!(active_clusters(&client).await.contains(&v3_cluster));
    let counts = split(routed, n).await;
    assert_share("tcpRoute 40/30/30, share to echo-v3", counts[2], n, 0.30);
    assert_share("tcpRoute 40/30/30, share to echo-v1", counts[0], n, 0.40);

    // Every connection went through the client sidecar's TCP egress listener.
    let through = client
        .stat(&format!("tcp.egress.tcp.{}.downstream_cx_total", p.router))
        .await;
    println!(
        "client sidecar's tcp_proxy on {}: {through} connections",
        p.router
    );
    assert!(
        through >= 2 * n as u64,
        "{through} connections through the sidecar"
    );
    assert_eq!(
        server.metrics.nacks.load(Ordering::Relaxed),
        0,
        "Envoy rejected a push"
    );
    drop(sidecars);
    server.shutdown().await;
}
