//! Every topology transition under steady traffic, with real Envoy, in all four xDS modes: a new
//! weighted target (new cluster), its removal, a new backend (new cluster and virtual host), its
//! removal, a new listener (new LDS and RDS resources), its removal. Each must reach traffic within
//! the debounce plus milliseconds, never Envoy's 15 s initial-fetch timeout, with zero failed
//! requests on the traffic that keeps flowing. Prints save → traffic times per transition and mode.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshplane::bootstrap::XdsMode;
use support::envoy::{free_port, http_get, Envoy, Upstream};
use support::*;

/// Far below Envoy's 15 s initial-fetch timeout, far above the milliseconds a transition takes: a
/// stall fails the test, a busy CI machine does not.
const LIMIT: Duration = Duration::from_secs(5);
/// Steady traffic after each transition, so failures in its aftermath count too.
const SETTLE: Duration = Duration::from_millis(300);

struct Ports {
    egress: u16,
    client_app: u16,
    client_in: u16,
    apps: [u16; 3],
    ins: [u16; 3],
}

/// A target node; `errors` adds outlier detection, which changes the cluster its clients have.
fn node(name: &str, app: u16, ingress: u16, errors: Option<u32>) -> String {
    let outlier = errors.map_or(String::new(), |n| {
        format!(", outlierDetection: {{maxServerErrors: {n}, interval: {{unit: s, value: 10}}, baseEjectionDuration: {{unit: s, value: 30}}, maxEjectionPercent: 50}}")
    });
    format!(
        "kind: VirtualNode\nmeshName: tr\nvirtualNodeName: {name}\nspec:\n  listeners: [{{portMapping: {{port: {app}, protocol: http}}{outlier}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {ingress}}}\n"
    )
}

/// The client node: `other` adds a second backend, `listener` gives it an ingress listener.
fn client(p: &Ports, other: bool, listener: bool) -> String {
    let mut s = String::from(
        "kind: VirtualNode\nmeshName: tr\nvirtualNodeName: client\nspec:\n  backends:\n    - virtualService: {virtualServiceName: svc.tr.local}\n"
    );
    if other {
        s.push_str("    - virtualService: {virtualServiceName: other.tr.local}\n");
    }
    if listener {
        s.push_str(&format!(
            "  listeners: [{{portMapping: {{port: {}, protocol: http}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n",
            p.client_app
        ));
    }
    s.push_str(&format!(
        "  proxy: {{egressPort: {}, ingressPort: {}}}\n",
        p.egress, p.client_in
    ));
    s
}

fn mesh(p: &Ports, v1_errors: Option<u32>) -> String {
    let mut s = String::from("kind: Mesh\nmeshName: tr\nspec: {egressFilter: {type: DROP_ALL}}\n");
    for (i, name) in ["v1", "v2", "v3"].iter().enumerate() {
        s.push_str("---\n");
        s.push_str(&node(
            name,
            p.apps[i],
            p.ins[i],
            v1_errors.filter(|_| i == 0),
        ));
    }
    s.push_str(
        "---\nkind: VirtualService\nmeshName: tr\nvirtualServiceName: svc.tr.local\nspec: {provider: {virtualRouter: {virtualRouterName: svc}}}\n\
         ---\nkind: VirtualService\nmeshName: tr\nvirtualServiceName: other.tr.local\nspec: {provider: {virtualNode: {virtualNodeName: v3}}}\n",
    );
    s
}

/// The router: v1 alone, or v1 with a canary share to v2.
fn router(v2: u32) -> String {
    let targets = if v2 == 0 {
        "[{virtualNode: v1, weight: 100}]".to_string()
    } else {
        format!(
            "[{{virtualNode: v1, weight: {}}}, {{virtualNode: v2, weight: {v2}}}]",
            100 - v2
        )
    };
    format!(
        "kind: VirtualRouter\nmeshName: tr\nvirtualRouterName: svc\nspec: {{listeners: [{{portMapping: {{port: 80, protocol: http}}}}]}}\n---\nkind: Route\nmeshName: tr\nvirtualRouterName: svc\nrouteName: canary\nspec:\n  httpRoute:\n    match: {{prefix: /}}\n    action: {{weightedTargets: {targets}}}\n"
    )
}

/// Steady traffic to `svc.tr.local` through the client's egress port: counts answers by upstream
/// and keeps every failure.
struct Traffic {
    stop: Arc<AtomicBool>,
    v1: Arc<AtomicU64>,
    v2: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    /// The transition under way (1-based), so a failure says when it happened.
    phase: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(egress: SocketAddr) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let (v1, v2) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let phase = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, a, b, f) = (stop.clone(), v1.clone(), v2.clone(), failures.clone());
        let ph = phase.clone();
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                match http_get(egress, "svc.tr.local", "/", &[]).await {
                    Ok((200, body)) if body == "v1" => _ = a.fetch_add(1, Ordering::Relaxed),
                    Ok((200, body)) if body == "v2" => _ = b.fetch_add(1, Ordering::Relaxed),
                    other => {
                        let during = ph.load(Ordering::Relaxed);
                        f.lock()
                            .unwrap()
                            .push(format!("transition {during}: {other:?}"))
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        Traffic {
            stop,
            v1,
            v2,
            failures,
            phase,
            task,
        }
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let total = self.v1.load(Ordering::Relaxed) + self.v2.load(Ordering::Relaxed);
        let failures = self.failures.lock().unwrap().clone();
        (total, failures)
    }
}

/// Polls `check` until it holds; returns the time since `since`, or fails after [`LIMIT`].
async fn until<F, Fut>(what: &str, since: Instant, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if check().await {
            let took = since.elapsed();
            // Keep the steady traffic flowing through the aftermath before the next change.
            tokio::time::sleep(SETTLE).await;
            return took;
        }
        assert!(
            since.elapsed() < LIMIT,
            "{what}: not reached within {LIMIT:?} of the save"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn status_of(addr: SocketAddr, host: &str) -> Option<(u16, String)> {
    http_get(addr, host, "/", &[]).await.ok()
}

/// The bootstrap's name for meshplane's cluster: ours, or one a user chose.
const OURS: &str = "meshplane_xds";

async fn transitions(mode: XdsMode) {
    transitions_with(mode, OURS).await
}

async fn transitions_with(mode: XdsMode, xds_cluster: &str) {
    let p = Ports {
        egress: free_port(),
        client_app: free_port(),
        client_in: free_port(),
        apps: [free_port(), free_port(), free_port()],
        ins: [free_port(), free_port(), free_port()],
    };
    let _ups = [
        Upstream::start(p.apps[0], "v1", 0).await,
        Upstream::start(p.apps[1], "v2", 0).await,
        Upstream::start(p.apps[2], "v3", 0).await,
        Upstream::start(p.client_app, "client", 0).await,
    ];
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(&p, None));
    dir.write("client.yaml", &client(&p, false, false));
    dir.write("router.yaml", &router(0));
    let server = start(dir.path()).await;
    let work = tempfile::tempdir().unwrap();
    let xds = server.xds_addr;
    let mut envoys = Vec::new();
    for name in ["client", "v1", "v2", "v3"] {
        let id = format!("mesh/tr/virtualNode/{name}");
        let yaml = support::envoy::bootstrap_yaml(&id, xds, mode).replace(OURS, xds_cluster);
        assert!(
            yaml.contains(&format!("cluster_name: {xds_cluster}")),
            "{yaml}"
        );
        envoys.push(Envoy::start_bootstrap(&id, work.path(), &yaml).await);
    }
    let egress: SocketAddr = ([127, 0, 0, 1], p.egress).into();
    let ingress: SocketAddr = ([127, 0, 0, 1], p.client_in).into();
    let began = Instant::now();
    until("first traffic", began, || async {
        matches!(status_of(egress, "svc.tr.local").await, Some((200, _)))
    })
    .await;

    let traffic = Traffic::start(egress);
    let mut times = Vec::new();

    // 1. A canary step that adds a target: a cluster the client never had.
    traffic.phase.store(times.len() + 1, Ordering::Relaxed);
    let saved = Instant::now();
    dir.write_and_rename("router.yaml", &router(50));
    let v2_before = traffic.v2.load(Ordering::Relaxed);
    let t = until("new weighted target carries traffic", saved, || async {
        traffic.v2.load(Ordering::Relaxed) > v2_before
    })
    .await;
    times.push(("add weighted target", t));

    // 2. The target goes away again: its cluster is removed after the route moved off it.
    traffic.phase.store(times.len() + 1, Ordering::Relaxed);
    let saved = Instant::now();
    dir.write_and_rename("router.yaml", &router(0));
    let t = until("removed target leaves Envoy", saved, || async {
        let dump = envoys[0]
            .admin_get("/config_dump?resource=dynamic_active_clusters")
            .await;
        !dump.contains("cds_egress_tr_v2_")
    })
    .await;
    let v2_after = traffic.v2.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        traffic.v2.load(Ordering::Relaxed),
        v2_after,
        "traffic still reached v2 after its removal"
    );
    times.push(("remove weighted target", t));

    // 3. A new backend: a new cluster and a new virtual host on the egress route table.
    traffic.phase.store(times.len() + 1, Ordering::Relaxed);
    let saved = Instant::now();
    dir.write_and_rename("client.yaml", &client(&p, true, false));
    let t = until("new backend answers", saved, || async {
        status_of(egress, "other.tr.local").await == Some((200, "v3".into()))
    })
    .await;
    times.push(("add backend", t));

    // 4. The backend goes away: its host is no longer routed.
    traffic.phase.store(times.len() + 1, Ordering::Relaxed);
    let saved = Instant::now();
    dir.write_and_rename("client.yaml", &client(&p, false, false));
    let t = until("removed backend is gone", saved, || async {
        matches!(status_of(egress, "other.tr.local").await, Some((404, _)))
    })
    .await;
    times.push(("remove backend", t));

    // 5. A new listener: the client node gains an ingress listener (new LDS and RDS resources).
    traffic.phase.store(times.len() + 1, Ordering::Relaxed);
    let saved = Instant::now();
    dir.write_and_rename("client.yaml", &client(&p, false, true));
    let t = until("new listener answers", saved, || async {
        status_of(ingress, "client").await == Some((200, "client".into()))
    })
    .await;
    times.push(("add listener", t));

    // 6. The listener goes away: the port stops answering.
    traffic.phase.store(times.len() + 1, Ordering::Relaxed);
    let saved = Instant::now();
    dir.write_and_rename("client.yaml", &client(&p, false, false));
    let t = until("removed listener is closed", saved, || async {
        status_of(ingress, "client").await.is_none()
    })
    .await;
    times.push(("remove listener", t));

    // 7. A cluster every request uses changes (outlier detection): Envoy warms its new version
    // and needs its endpoints again before it replaces the old one.
    for (n, errors) in [(7, 5), (8, 6)] {
        traffic.phase.store(times.len() + 1, Ordering::Relaxed);
        let saved = Instant::now();
        dir.write_and_rename("mesh.yaml", &mesh(&p, Some(errors)));
        let want = format!("\"consecutive_5xx\": {errors}");
        let t = until("updated cluster is active", saved, || async {
            let dump = envoys[0]
                .admin_get("/config_dump?resource=dynamic_active_clusters")
                .await;
            dump.contains(&want)
        })
        .await;
        times.push((
            if n == 7 {
                "update cluster"
            } else {
                "update it again"
            },
            t,
        ));
    }

    let (total, failures) = traffic.finish().await;
    let line: Vec<String> = times
        .iter()
        .map(|(what, t)| format!("{what} {} ms", t.as_millis()))
        .collect();
    println!(
        "{mode:?} (xDS cluster {xds_cluster}): save -> traffic (50 ms debounce included): {}; steady traffic: {total} requests, {} failed",
        line.join(", "),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} steady requests failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(total > 500, "too little traffic to judge: {total}");
    assert_eq!(server.metrics.nacks.load(Ordering::Relaxed), 0, "NACKs");
    drop(envoys);
    server.shutdown().await;
}

/// The scenarios share the machine's two cores; running them one at a time keeps timings honest.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ads_sotw_transitions_reach_traffic_at_once() {
    let _s = SERIAL.lock().await;
    transitions(XdsMode::Ads).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ads_delta_transitions_reach_traffic_at_once() {
    let _s = SERIAL.lock().await;
    transitions(XdsMode::AdsDelta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_type_sotw_transitions_reach_traffic_at_once() {
    let _s = SERIAL.lock().await;
    transitions(XdsMode::Xds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_type_delta_transitions_reach_traffic_at_once() {
    let _s = SERIAL.lock().await;
    transitions(XdsMode::XdsDelta).await;
}

/// A bootstrap meshplane did not write: its cluster for meshplane has another name, which
/// endpoints and routes must name over per-type streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_type_sotw_with_a_bootstrap_that_names_the_cluster_otherwise() {
    let _s = SERIAL.lock().await;
    transitions_with(XdsMode::Xds, "control-plane").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_type_delta_with_a_bootstrap_that_names_the_cluster_otherwise() {
    let _s = SERIAL.lock().await;
    transitions_with(XdsMode::XdsDelta, "control-plane").await;
}
