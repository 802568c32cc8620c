//! The demo's traffic: which client calls which service through which egress port, waiting for the
//! sidecars to answer, then requests at `--rate` and the split of answers printed once a second.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshplane::model::MeshModel;

use super::http::http_get;

/// (client node, egress port, backend service) for every backend in the model.
pub(super) fn traffic_plan(model: &MeshModel) -> Vec<(String, u32, String)> {
    let mut plan = Vec::new();
    for mesh in model.meshes.values() {
        for (name, node) in &mesh.virtual_nodes {
            for b in node
                .spec
                .backends
                .iter()
                .filter_map(|b| b.virtual_service.as_ref())
            {
                plan.push((
                    name.clone(),
                    node.spec.egress_port(),
                    b.virtual_service_name.clone(),
                ));
            }
        }
    }
    plan
}

/// Lets the sidecars connect and warm up before counting answers: waits (15 s at most) until every
/// planned call is answered with a 200.
pub(super) async fn warm_up(plan: &[(String, u32, String)]) {
    let warm = Instant::now();
    for (_, port, service) in plan {
        let addr: SocketAddr = ([127, 0, 0, 1], *port as u16).into();
        while warm.elapsed() < Duration::from_secs(15)
            && !matches!(http_get(addr, service, "/", &[]).await, Ok((200, _)))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sends traffic until stopped or `duration`, printing the split of each (client, service) every second.
pub(super) async fn drive(plan: &[(String, u32, String)], rate: u32, duration: Option<Duration>) {
    type Tally = Arc<Mutex<BTreeMap<(String, String), BTreeMap<String, u64>>>>;
    let tally: Tally = Arc::default();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    let mut report = tokio::time::interval(Duration::from_secs(1));
    report.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for (client, port, service) in plan {
                    let (client, port, service, tally) = (client.clone(), *port, service.clone(), tally.clone());
                    tokio::spawn(async move {
                        let addr: SocketAddr = ([127, 0, 0, 1], port as u16).into();
                        let who = match http_get(addr, &service, "/", &[]).await {
                            Ok((200, body)) => body.trim().to_string(),
                            Ok((status, _)) => format!("HTTP {status}"),
                            Err(_) => "no answer".to_string(),
                        };
                        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                        *t.entry((client, service)).or_default().entry(who).or_default() += 1;
                    });
                }
            }
            _ = report.tick() => {
                let snapshot = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
                for ((client, service), answers) in snapshot {
                    let total: u64 = answers.values().sum();
                    let parts: Vec<String> = answers
                        .iter()
                        .map(|(who, n)| format!("{who} {:>3.0}% ({n})", 100.0 * *n as f64 / total.max(1) as f64))
                        .collect();
                    println!("[{:>4}s] {client} -> {service}: {}", started.elapsed().as_secs(), parts.join("  "));
                }
                if duration.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
            }
        }
    }
}
