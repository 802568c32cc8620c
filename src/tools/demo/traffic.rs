//! The demo's traffic: which client calls which service, through a gateway into the client or
//! straight through the client's egress port; waiting for the Envoys to answer, then requests at
//! `--rate` and the split of answers printed once a second.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshplane::model::{Mesh, MeshModel};
use meshplane::spec::{HttpGatewayRoute, Protocol};

use super::http::http_get;

/// The header a request through a gateway names, for the entry node's app, the backend it is to
/// call ([`super::sidecar::start_app`]).
pub(super) const CALL_HEADER: &str = "x-demo-call";

/// One planned call, and the report line it is counted under (`<label>: <who answered> ...`).
pub(super) struct Call {
    /// `client -> service`, or `gateway -> client -> service` for traffic that enters through a
    /// gateway.
    pub(super) label: String,
    /// Sent to `127.0.0.1:<port>`: the client's egress port, or the gateway's listener.
    pub(super) port: u32,
    pub(super) host: String,
    pub(super) path: String,
    pub(super) headers: Vec<(String, String)>,
}

impl Call {
    async fn send(&self) -> std::io::Result<(u16, String)> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port as u16).into();
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        http_get(addr, &self.host, &self.path, &headers).await
    }
}

/// A call for every backend of every node in the model: through a gateway when one of its gateway
/// routes leads to the client node (the client's app then makes the call through its sidecar), else
/// straight to the client's egress port.
pub(super) fn traffic_plan(model: &MeshModel) -> Vec<Arc<Call>> {
    let mut plan = Vec::new();
    for mesh in model.meshes.values() {
        for (name, node) in &mesh.virtual_nodes {
            for b in node
                .spec
                .backends
                .iter()
                .filter_map(|b| b.virtual_service.as_ref())
            {
                let service = &b.virtual_service_name;
                let call = match gateway_entry(mesh, name) {
                    Some((gw, port, host, path)) => Call {
                        label: format!("{gw} -> {name} -> {service}"),
                        port,
                        host,
                        path,
                        headers: vec![(CALL_HEADER.to_string(), service.clone())],
                    },
                    None => Call {
                        label: format!("{name} -> {service}"),
                        port: node.spec.egress_port(),
                        host: service.clone(),
                        path: "/".into(),
                        headers: Vec::new(),
                    },
                };
                plan.push(Arc::new(call));
            }
        }
    }
    plan
}

/// (gateway, listener port, Host, path) of a request that an HTTP gateway route sends to a virtual
/// service provided by node `node`: the first such route (by gateway, then route name) that matches
/// on a prefix or exact path and the hostname only.
fn gateway_entry(mesh: &Mesh, node: &str) -> Option<(String, u32, String, String)> {
    mesh.gateway_routes.iter().find_map(|((gw, _), route)| {
        let h = route.spec.http_route.as_ref()?;
        let vs = &h.action.target.virtual_service.virtual_service_name;
        let provider = mesh.virtual_services.get(vs)?.spec.provider.as_ref()?;
        if provider.virtual_node.as_ref()?.virtual_node_name != node {
            return None;
        }
        let listener = mesh
            .virtual_gateways
            .get(gw)?
            .spec
            .listeners
            .iter()
            .find(|l| {
                l.port_mapping.protocol == Protocol::Http
                    && h.matcher.port.is_none_or(|p| p == l.port_mapping.port)
            })?;
        let (host, path) = request_for(h, listener.port_mapping.port)?;
        Some((gw.clone(), listener.port_mapping.port, host, path))
    })
}

/// A Host and path that `h` matches, when it only matches on those.
fn request_for(h: &HttpGatewayRoute, port: u32) -> Option<(String, String)> {
    let m = &h.matcher;
    if m.method.is_some() || !m.headers.is_empty() || !m.query_parameters.is_empty() {
        return None;
    }
    let path = match (&m.prefix, &m.path) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => p.exact.clone()?,
        (None, None) => "/".into(),
    };
    let host = match &m.hostname {
        None => format!("127.0.0.1:{port}"),
        Some(hm) => match (&hm.exact, &hm.suffix) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => format!("www{s}"),
            (None, None) => return None,
        },
    };
    Some((host, path))
}

/// Lets the sidecars connect and warm up before counting answers: waits (15 s at most) until every
/// planned call is answered with a 200.
pub(super) async fn warm_up(plan: &[Arc<Call>]) {
    let warm = Instant::now();
    for call in plan {
        while warm.elapsed() < Duration::from_secs(15) && !matches!(call.send().await, Ok((200, _)))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sends traffic until stopped or `duration`, printing the split of each call every second.
pub(super) async fn drive(plan: &[Arc<Call>], rate: u32, duration: Option<Duration>) {
    type Tally = Arc<Mutex<BTreeMap<String, BTreeMap<String, u64>>>>;
    let tally: Tally = Arc::default();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    let mut report = tokio::time::interval(Duration::from_secs(1));
    report.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for call in plan {
                    let (call, tally) = (call.clone(), tally.clone());
                    tokio::spawn(async move {
                        let who = match call.send().await {
                            Ok((200, body)) => body.trim().to_string(),
                            Ok((status, _)) => format!("HTTP {status}"),
                            Err(_) => "no answer".to_string(),
                        };
                        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                        *t.entry(call.label.clone()).or_default().entry(who).or_default() += 1;
                    });
                }
            }
            _ = report.tick() => {
                let snapshot = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
                for (label, answers) in snapshot {
                    let total: u64 = answers.values().sum();
                    let parts: Vec<String> = answers
                        .iter()
                        .map(|(who, n)| format!("{who} {:>3.0}% ({n})", 100.0 * *n as f64 / total.max(1) as f64))
                        .collect();
                    println!("[{:>4}s] {label}: {}", started.elapsed().as_secs(), parts.join("  "));
                }
                if duration.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
            }
        }
    }
}
