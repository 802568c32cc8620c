//! The shop mesh of issue #12 with real Envoys (tests/shop_mesh/mesh, gateway aside): the test
//! calls `web`'s sidecar, and the web app (tests/shop_mesh/web.rs) calls, each through its own
//! sidecar, a gRPC `orders` service behind a router's grpcRoute (a real tonic server), a TCP `db`
//! behind a router's tcpRoute (an echo server), and a `catalog` node discovered by Cloud Map, whose
//! name `catalog.shop.localhost` Envoy's c-ares resolver answers with loopback. Every call must be
//! served; `meshplane validate --strict` accepts the same files as written.

// The shop uses the gRPC apps but not all their helpers.
#[allow(dead_code)]
#[path = "grpc_mesh/apps.rs"]
mod apps;
#[path = "grpc_mesh/health.rs"]
mod health;
mod support;
#[path = "shop_mesh/web.rs"]
mod web;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::envoy::{free_port, http_get, Envoy};
use support::tcp::echo_server;
use support::*;
use web::{web_app, Egress};

/// The fixture's ports, in the order [`Ports::from_free`] gives them free replacements.
const FIXTURE_PORTS: [u16; 9] = [
    18080, 18000, 18001, 18051, 18050, 18433, 18432, 18431, 18090,
];
/// The catalog's ingress port (listed apart: the test reads it back from Envoy's clusters).
const CATALOG_INGRESS: u16 = 18091;

#[test]
fn validate_strict_accepts_the_shop_mesh() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshplane"))
        .args(["validate", "--strict"])
        .arg(repo_path("tests/shop_mesh/mesh"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{out:?}");
    assert!(!stdout.contains("warning"), "{stdout}");
}

/// The fixture with each of its ports replaced by a free one; the free ports by fixture port.
fn shop_files() -> (String, Vec<(u16, u16)>) {
    let mut text = std::fs::read_to_string(repo_path("tests/shop_mesh/mesh/shop.yaml")).unwrap();
    let mut ports = Vec::new();
    for fixed in FIXTURE_PORTS.iter().chain([&CATALOG_INGRESS]) {
        let free = free_port();
        let from = format!(": {fixed}");
        assert!(text.contains(&from), "{fixed} is in the fixture");
        text = text.replace(&from, &format!(": {free}"));
        ports.push((*fixed, free));
    }
    (text, ports)
}

fn port(ports: &[(u16, u16)], fixed: u16) -> u16 {
    ports.iter().find(|(f, _)| *f == fixed).unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shop_call_is_served_through_the_sidecars() {
    let (text, ports) = shop_files();
    let p = |fixed| port(&ports, fixed);
    let orders_calls = apps::grpc_app(p(18051), 42, false);
    echo_server(p(18432), "db").await;
    apps::http_app(p(18090), "catalog").await;
    let egress = Egress {
        http: p(18001),
        db: p(18433),
    };
    web_app(p(18080), egress).await;
    let dir = MeshDir::new();
    dir.write("shop.yaml", &text);
    let server = start_clean(dir.path()).await;
    let work = tempfile::tempdir().unwrap();
    let mut sidecars = Vec::new();
    for node in ["web", "orders", "db", "catalog"] {
        let id = format!("mesh/shop/virtualNode/{node}");
        sidecars.push(Envoy::start(&id, server.xds_addr, work.path()).await);
    }
    let front = SocketAddr::from(([127, 0, 0, 1], p(18000)));
    let want = "orders 42 | db db | catalog /items";
    let began = Instant::now();
    let what = format!("the shop's first answer; see {}", work.path().display());
    let mut first = None;
    eventually_async(&what, Duration::from_secs(30), async || {
        first = http_get(front, "web.shop.local", "/checkout", &[])
            .await
            .ok();
        matches!(&first, Some((200, _)))
    })
    .await;
    assert_eq!(first, Some((200, want.to_string())));
    println!(
        "the shop answered through 4 sidecars {} ms after the last was ready",
        began.elapsed().as_millis()
    );

    // Once configured, every checkout (three calls each) is served.
    let before = orders_calls.load(Ordering::SeqCst);
    const CHECKOUTS: u64 = 200;
    for i in 0..CHECKOUTS {
        let r = http_get(front, "web.shop.local", "/checkout", &[]).await;
        assert_eq!(r.ok(), Some((200, want.to_string())), "checkout {i}");
    }
    assert_eq!(orders_calls.load(Ordering::SeqCst) - before, CHECKOUTS);
    println!(
        "{CHECKOUTS} checkouts, {} calls, none failed",
        3 * CHECKOUTS
    );

    // The catalog's endpoint is the name Cloud Map publishes, resolved to the catalog's sidecar.
    let clusters = sidecars[0].admin_get("/clusters").await;
    let endpoint = format!(
        "127.0.0.1:{}::hostname::catalog.shop.localhost",
        p(CATALOG_INGRESS)
    );
    assert!(clusters.contains(&endpoint), "{clusters}");
}
