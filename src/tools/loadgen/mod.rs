//! `meshplane load`: simulates many Envoys against any xDS server and measures how fast they
//! converge, and how fast a config change reaches all of them.
//!
//! Each simulated Envoy behaves like Envoy on ADS: wildcard CDS and LDS, then EDS for the EDS
//! clusters and RDS for the route tables those reference, ACKing everything. It speaks only the xDS
//! protocol, so it can be pointed at any control plane.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::listener::v3::{filter, Listener};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, HttpConnectionManager,
};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use meshplane::xds::{type_index, type_short, CLUSTER, ENDPOINT, LISTENER, ROUTE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadMode {
    Sotw,
    Delta,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    /// The xDS server, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:18000")]
    pub xds: String,
    /// Simulated Envoys.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Node id of client i; `{i}` becomes i modulo --nodes.
    #[arg(long, default_value = "mesh/synth/virtualNode/client-{i}")]
    pub node_id: String,
    /// Distinct node ids (default: one per client).
    #[arg(long)]
    pub nodes: Option<usize>,
    #[arg(long, value_enum, default_value_t = LoadMode::Sotw)]
    pub mode: LoadMode,
    /// New streams per second.
    #[arg(long, default_value_t = 2000)]
    pub connect_rate: u32,
    /// Share this many HTTP/2 connections between all clients (0: one connection per client).
    #[arg(long, default_value_t = 0)]
    pub connections: usize,
    /// A synthetic mesh directory (`meshplane generate`) whose svc-0 route the tool edits.
    #[arg(long)]
    pub edit_dir: Option<PathBuf>,
    /// Or: a shell command that makes one config change on the server under test.
    #[arg(long)]
    pub edit_cmd: Option<String>,
    /// Config changes to measure after convergence.
    #[arg(long, default_value_t = 5)]
    pub edits: usize,
    /// PID of the server process, for its RSS and CPU time.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Seconds to wait for convergence (and for each edit).
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// `table` or `json`, as in the other commands.
    #[arg(long, short = 'o', default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
    /// Same as `-o json` (kept for scripts written before `-o`).
    #[arg(long, hide = true)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("bad --xds address `{0}`")]
    Address(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("edit failed: {0}")]
    Edit(String),
}

/// Counters shared by all simulated clients.
#[derive(Default)]
struct Shared {
    converged: AtomicUsize,
    converge_nanos: Mutex<Vec<u64>>,
    responses: [AtomicU64; 4],
    bytes: [AtomicU64; 4],
    nacks: AtomicU64,
    reconnects: AtomicU64,
    /// Index of the current edit (0: none yet) and when it was made.
    edit: AtomicU64,
    edit_at: Mutex<Option<Instant>>,
    edit_nanos: Mutex<Vec<u64>>,
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub clients: usize,
}

fn percentiles(mut v: Vec<u64>) -> Percentiles {
    v.sort_unstable();
    let at = |q: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[i] as f64 / 1e6
    };
    Percentiles {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        clients: v.len(),
    }
}

#[derive(Debug, Serialize)]
pub struct TypeCounts {
    pub r#type: String,
    pub responses: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub ok: bool,
    pub clients: usize,
    pub mode: String,
    /// From the first connection attempt until the last client converged.
    pub all_converged_ms: f64,
    pub converged: usize,
    /// Per edit: from the change on disk to each client's ACK of the response it caused.
    pub edits: Vec<Percentiles>,
    pub per_type: Vec<TypeCounts>,
    pub nacks: u64,
    pub reconnects: u64,
    pub server_rss_kib: Option<u64>,
    /// Server RSS growth from before the first connection until all converged, per client.
    pub server_rss_per_client_kib: Option<f64>,
    pub server_cpu_seconds: Option<f64>,
}

/// RSS (KiB) and CPU seconds (user + system) of a process, from /proc.
fn proc_usage(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some((rss, ticks / 100.0))
}

/// Names this client must subscribe to next: EDS clusters from CDS, route tables from LDS.
fn referenced(type_url: &str, resources: &[&Any]) -> Option<(usize, BTreeSet<String>)> {
    match type_url {
        CLUSTER => {
            let names = resources
                .iter()
                .filter_map(|a| Cluster::decode(a.value.as_slice()).ok())
                .filter(|c| {
                    matches!(c.cluster_discovery_type, Some(cluster::ClusterDiscoveryType::Type(t)) if t == cluster::DiscoveryType::Eds as i32)
                })
                .map(|c| match c.eds_cluster_config {
                    Some(e) if !e.service_name.is_empty() => e.service_name,
                    _ => c.name,
                })
                .collect();
            Some((1, names))
        }
        LISTENER => {
            let mut names = BTreeSet::new();
            for l in resources
                .iter()
                .filter_map(|a| Listener::decode(a.value.as_slice()).ok())
            {
                for f in l.filter_chains.iter().flat_map(|c| &c.filters) {
                    let Some(filter::ConfigType::TypedConfig(cfg)) = &f.config_type else {
                        continue;
                    };
                    if cfg.type_url != HttpConnectionManager::type_url() {
                        continue;
                    }
                    if let Ok(h) = HttpConnectionManager::decode(cfg.value.as_slice()) {
                        if let Some(http_connection_manager::RouteSpecifier::Rds(r)) =
                            h.route_specifier
                        {
                            names.insert(r.route_config_name);
                        }
                    }
                }
            }
            Some((3, names))
        }
        _ => None,
    }
}

/// Per-client protocol-independent progress.
struct Progress {
    shared: Arc<Shared>,
    start: Instant,
    versions: [Option<String>; 4],
    wanted: [Option<BTreeSet<String>>; 4],
    got: [bool; 4],
    converged: bool,
    edit_seen: u64,
}

impl Progress {
    /// Records a response; returns new subscriptions to send (type index, names).
    fn on_response(
        &mut self,
        t: usize,
        version: &str,
        resources: &[&Any],
    ) -> Option<(usize, BTreeSet<String>)> {
        let s = &self.shared;
        s.responses[t].fetch_add(1, Ordering::Relaxed);
        s.bytes[t].fetch_add(
            resources.iter().map(|a| a.value.len() as u64).sum(),
            Ordering::Relaxed,
        );
        let changed = self.versions[t].as_deref() != Some(version);
        self.versions[t] = Some(version.to_string());
        self.got[t] = true;
        let mut next = None;
        if changed {
            if let Some((dep, names)) = referenced(TYPE_URLS[t], resources) {
                // Envoy subscribes to EDS/RDS only once something references them.
                let first_and_empty = self.wanted[dep].is_none() && names.is_empty();
                if !first_and_empty && self.wanted[dep].as_ref() != Some(&names) {
                    self.wanted[dep] = Some(names.clone());
                    self.got[dep] = names.is_empty();
                    next = Some((dep, names));
                }
            }
        }
        if !self.converged
            && (0..4).all(|i| self.got[i] || (self.wanted[i].is_none() && (i == 1 || i == 3)))
        {
            self.converged = true;
            s.converged.fetch_add(1, Ordering::Relaxed);
            s.converge_nanos
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.start.elapsed().as_nanos() as u64);
        }
        let edit = s.edit.load(Ordering::Acquire);
        if changed && self.converged && edit > self.edit_seen {
            self.edit_seen = edit;
            if let Some(at) = *s.edit_at.lock().unwrap_or_else(|e| e.into_inner()) {
                s.edit_nanos
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(at.elapsed().as_nanos() as u64);
            }
        }
        next
    }
}

const TYPE_URLS: [&str; 4] = [CLUSTER, ENDPOINT, LISTENER, ROUTE];

async fn run_sotw(channel: Channel, node: Node, p: &mut Progress) -> Result<(), tonic::Status> {
    let (tx, rx) = mpsc::channel(8);
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(usize::MAX);
    let req = |t: usize, names: Vec<String>, version: String, nonce: String| DiscoveryRequest {
        type_url: TYPE_URLS[t].into(),
        resource_names: names,
        version_info: version,
        response_nonce: nonce,
        ..Default::default()
    };
    let mut first = req(0, vec![], String::new(), String::new());
    first.node = Some(node);
    let _ = tx.send(first).await;
    let _ = tx.send(req(2, vec![], String::new(), String::new())).await;
    let mut inbound = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await?
        .into_inner();
    while let Some(resp) = inbound.message().await? {
        let Some(t) = type_index(&resp.type_url) else {
            continue;
        };
        let refs: Vec<&Any> = resp.resources.iter().collect();
        let next = p.on_response(t, &resp.version_info, &refs);
        let names = p.wanted[t]
            .clone()
            .map(|n| n.into_iter().collect())
            .unwrap_or_default();
        let _ = tx
            .send(req(t, names, resp.version_info.clone(), resp.nonce.clone()))
            .await;
        if let Some((dep, names)) = next {
            let nonce = String::new();
            let _ = tx
                .send(req(dep, names.into_iter().collect(), String::new(), nonce))
                .await;
        }
    }
    Ok(())
}

async fn run_delta(channel: Channel, node: Node, p: &mut Progress) -> Result<(), tonic::Status> {
    let (tx, rx) = mpsc::channel(8);
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(usize::MAX);
    let req =
        |t: usize, sub: Vec<String>, unsub: Vec<String>, nonce: String| DeltaDiscoveryRequest {
            type_url: TYPE_URLS[t].into(),
            resource_names_subscribe: sub,
            resource_names_unsubscribe: unsub,
            response_nonce: nonce,
            ..Default::default()
        };
    let mut first = req(0, vec![], vec![], String::new());
    first.node = Some(node);
    let _ = tx.send(first).await;
    let _ = tx.send(req(2, vec![], vec![], String::new())).await;
    let mut inbound = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await?
        .into_inner();
    // Delta responses carry only changes: keep the full set per type to find references.
    let mut have: [std::collections::BTreeMap<String, Any>; 4] = Default::default();
    while let Some(resp) = inbound.message().await? {
        let Some(t) = type_index(&resp.type_url) else {
            continue;
        };
        for r in &resp.resources {
            if let Some(a) = &r.resource {
                have[t].insert(r.name.clone(), a.clone());
            }
        }
        for n in &resp.removed_resources {
            have[t].remove(n);
        }
        let refs: Vec<&Any> = have[t].values().collect();
        let before = p.wanted[if t == 0 { 1 } else { 3 }].clone();
        let next = p.on_response(t, &resp.system_version_info, &refs);
        let _ = tx.send(req(t, vec![], vec![], resp.nonce.clone())).await;
        if let Some((dep, names)) = next {
            let old = before.unwrap_or_default();
            let sub = names.difference(&old).cloned().collect();
            let unsub = old.difference(&names).cloned().collect();
            let _ = tx.send(req(dep, sub, unsub, String::new())).await;
        }
    }
    Ok(())
}

/// Envoy's default HTTP/2 stream and connection window (256 MiB).
const ENVOY_WINDOW: u32 = 256 * 1024 * 1024;

pub async fn run(opts: LoadOptions) -> Result<LoadReport, LoadError> {
    let endpoint = Endpoint::from_shared(format!("http://{}", opts.xds))
        .map_err(|_| LoadError::Address(opts.xds.clone()))?
        .tcp_nodelay(true)
        // Envoy's defaults for its xDS connection: large fixed windows, no BDP pings.
        .initial_stream_window_size(ENVOY_WINDOW)
        .initial_connection_window_size(ENVOY_WINDOW);
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let usage_before = opts.server_pid.and_then(proc_usage);
    let nodes = opts.nodes.unwrap_or(opts.clients).max(1);
    let pool: Vec<Channel> = {
        let mut v = Vec::new();
        for _ in 0..opts.connections {
            v.push(
                endpoint
                    .connect()
                    .await
                    .map_err(|source| LoadError::Connect {
                        addr: opts.xds.clone(),
                        source,
                    })?,
            );
        }
        v
    };
    let interval = Duration::from_secs(1) / opts.connect_rate.max(1);
    let mut pace = tokio::time::interval(interval);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(opts.clients);
    for i in 0..opts.clients {
        pace.tick().await;
        let node_id = opts.node_id.replace("{i}", &(i % nodes).to_string());
        let shared = shared.clone();
        let endpoint = endpoint.clone();
        let pooled = (!pool.is_empty()).then(|| pool[i % pool.len()].clone());
        let mode = opts.mode;
        tasks.push(tokio::spawn(async move {
            let node = Node {
                id: node_id,
                cluster: "meshplane-load".into(),
                ..Default::default()
            };
            let mut p = Progress {
                shared: shared.clone(),
                start,
                versions: Default::default(),
                wanted: Default::default(),
                got: [false; 4],
                converged: false,
                edit_seen: 0,
            };
            loop {
                let channel = match &pooled {
                    Some(c) => c.clone(),
                    None => match endpoint.connect().await {
                        Ok(c) => c,
                        Err(_) => {
                            shared.reconnects.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    },
                };
                let result = match mode {
                    LoadMode::Sotw => run_sotw(channel, node.clone(), &mut p).await,
                    LoadMode::Delta => run_delta(channel, node.clone(), &mut p).await,
                };
                if result.is_ok() {
                    return; // the server ended the stream: it is shutting down
                }
                shared.reconnects.fetch_add(1, Ordering::Relaxed);
                p.versions = Default::default();
                p.wanted = Default::default();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    let timeout = Duration::from_secs(opts.timeout);
    while shared.converged.load(Ordering::Relaxed) < opts.clients && start.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let converged = shared.converged.load(Ordering::Relaxed);
    let all_converged_ms = start.elapsed().as_secs_f64() * 1000.0;
    // Memory per client is read here, before edits leave freed-but-unreturned pages behind.
    let usage_converged = opts.server_pid.and_then(proc_usage);

    let mut edits = Vec::new();
    let editing = opts.edit_dir.is_some() || opts.edit_cmd.is_some();
    for k in 1..=(if editing { opts.edits } else { 0 }) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        shared
            .edit_nanos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *shared.edit_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        shared.edit.store(k as u64, Ordering::Release);
        if let Some(dir) = &opts.edit_dir {
            super::synth::edit_weights(dir, k as u64)
                .map_err(|e| LoadError::Edit(e.to_string()))?;
        } else if let Some(cmd) = &opts.edit_cmd {
            let ok = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .status()
                .map_err(|e| LoadError::Edit(e.to_string()))?;
            if !ok.success() {
                return Err(LoadError::Edit(format!("`{cmd}` exited with {ok}")));
            }
        }
        let began = Instant::now();
        while shared
            .edit_nanos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
            < converged
            && began.elapsed() < timeout
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Late responders in the same edit still count: give them a moment.
        tokio::time::sleep(Duration::from_millis(100)).await;
        edits.push(percentiles(
            shared
                .edit_nanos
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        ));
    }
    let usage_after = opts.server_pid.and_then(proc_usage);
    for t in &tasks {
        t.abort();
    }
    let per_type = (0..4)
        .map(|t| TypeCounts {
            r#type: type_short(t).into(),
            responses: shared.responses[t].load(Ordering::Relaxed),
            bytes: shared.bytes[t].load(Ordering::Relaxed),
        })
        .collect();
    let report = LoadReport {
        ok: converged == opts.clients && edits.iter().all(|e| e.clients == converged),
        clients: opts.clients,
        mode: format!("{:?}", opts.mode).to_lowercase(),
        all_converged_ms,
        converged,
        edits,
        per_type,
        nacks: shared.nacks.load(Ordering::Relaxed),
        reconnects: shared.reconnects.load(Ordering::Relaxed),
        server_rss_kib: usage_after.map(|u| u.0),
        server_rss_per_client_kib: match (usage_before, usage_converged) {
            (Some(b), Some(a)) => Some((a.0 as f64 - b.0 as f64) / opts.clients as f64),
            _ => None,
        },
        server_cpu_seconds: match (usage_before, usage_after) {
            (Some(b), Some(a)) => Some(a.1 - b.1),
            _ => None,
        },
    };
    print_report(&report, opts.json || opts.output == "json");
    Ok(report)
}

fn print_report(r: &LoadReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
        return;
    }
    println!(
        "clients: {} ({}), converged: {} in {:.0} ms",
        r.clients, r.mode, r.converged, r.all_converged_ms
    );
    for (i, e) in r.edits.iter().enumerate() {
        println!(
            "edit {}: save -> ACK p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} clients)",
            i + 1,
            e.p50_ms,
            e.p99_ms,
            e.max_ms,
            e.clients
        );
    }
    for t in &r.per_type {
        println!("{}: {} responses, {} bytes", t.r#type, t.responses, t.bytes);
    }
    println!("NACKs: {}, reconnects: {}", r.nacks, r.reconnects);
    if let (Some(rss), Some(per), Some(cpu)) = (
        r.server_rss_kib,
        r.server_rss_per_client_kib,
        r.server_cpu_seconds,
    ) {
        println!("server: RSS {rss} KiB ({per:.1} KiB per client), CPU {cpu:.2} s");
    }
}
