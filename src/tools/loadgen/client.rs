//! One simulated Envoy: its ADS stream (SotW or delta), what it subscribes to as responses arrive,
//! when it has converged and when it has seen an edit, counted in the counters all clients share.
//!
//! Like Envoy on ADS: wildcard CDS and LDS, then EDS for the EDS clusters and RDS for the route
//! tables those reference, ACKing everything.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::listener::v3::{filter, Listener};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, HttpConnectionManager,
};
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use meshplane::xds::{type_index, CLUSTER, ENDPOINT, LISTENER, ROUTE};
use prost::bytes::Bytes;
use prost::{Message, Name};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use super::wire::{self, Any};
use super::LoadMode;

/// Counters shared by all simulated clients.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) converged: AtomicUsize,
    pub(super) converge_nanos: Mutex<Vec<u64>>,
    pub(super) responses: [AtomicU64; 4],
    pub(super) bytes: [AtomicU64; 4],
    pub(super) nacks: AtomicU64,
    pub(super) reconnects: AtomicU64,
    /// Index of the current edit (0: none yet) and when it was made.
    pub(super) edit: AtomicU64,
    pub(super) edit_at: Mutex<Option<Instant>>,
    pub(super) edit_nanos: Mutex<Vec<u64>>,
}

/// Names this client must subscribe to next: EDS clusters from CDS, route tables from LDS.
fn referenced(type_url: &str, resources: &[&Any]) -> Option<(usize, BTreeSet<String>)> {
    match type_url {
        CLUSTER => {
            let names = resources
                .iter()
                .filter_map(|a| Cluster::decode(a.value.clone()).ok())
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
                .filter_map(|a| Listener::decode(a.value.clone()).ok())
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

const SOTW: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// Opens ADS method `method` on `channel`: requests from `rx` (boxed, so the channel's slots stay
/// small), responses decoded as `R`.
async fn open<Q, R>(
    channel: Channel,
    method: &'static str,
    rx: mpsc::Receiver<Box<Q>>,
) -> Result<tonic::Streaming<R>, tonic::Status>
where
    Q: Message + Send + Sync + 'static,
    R: Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let requests = ReceiverStream::new(rx).map(|q| *q);
    let codec = tonic_prost::ProstCodec::<Q, R>::default();
    let path = PathAndQuery::from_static(method);
    let response = grpc.streaming(tonic::Request::new(requests), path, codec);
    Ok(response.await?.into_inner())
}

async fn run_sotw(channel: Channel, node: Node, p: &mut Progress) -> Result<(), tonic::Status> {
    let (tx, rx) = mpsc::channel(8);
    let req = |t: usize, names: Vec<Bytes>, version: String, nonce: String| {
        Box::new(wire::Request {
            type_url: TYPE_URLS[t].into(),
            resource_names: names,
            version_info: version,
            response_nonce: nonce,
            node: None,
        })
    };
    let mut first = req(0, vec![], String::new(), String::new());
    first.node = Some(node);
    let _ = tx.send(first).await;
    let _ = tx.send(req(2, vec![], String::new(), String::new())).await;
    let mut inbound = open::<_, wire::Response>(channel, SOTW, rx).await?;
    // The names each ACK repeats, made once per subscription change.
    let mut names: [Vec<Bytes>; 4] = Default::default();
    while let Some(resp) = inbound.message().await? {
        let Some(t) = type_index(&resp.type_url) else {
            continue;
        };
        let refs: Vec<&Any> = resp.resources.iter().collect();
        let next = p.on_response(t, &resp.version_info, &refs);
        let ack = req(t, names[t].clone(), resp.version_info, resp.nonce);
        let _ = tx.send(ack).await;
        if let Some((dep, wanted)) = next {
            names[dep] = wanted.into_iter().map(Bytes::from).collect();
            let subscribe = req(dep, names[dep].clone(), String::new(), String::new());
            let _ = tx.send(subscribe).await;
        }
    }
    Ok(())
}

async fn run_delta(channel: Channel, node: Node, p: &mut Progress) -> Result<(), tonic::Status> {
    let (tx, rx) = mpsc::channel(8);
    let req = |t: usize, sub: Vec<String>, unsub: Vec<String>, nonce: String| {
        Box::new(DeltaDiscoveryRequest {
            type_url: TYPE_URLS[t].into(),
            resource_names_subscribe: sub,
            resource_names_unsubscribe: unsub,
            response_nonce: nonce,
            ..Default::default()
        })
    };
    let mut first = req(0, vec![], vec![], String::new());
    first.node = Some(node);
    let _ = tx.send(first).await;
    let _ = tx.send(req(2, vec![], vec![], String::new())).await;
    let mut inbound = open::<_, wire::DeltaResponse>(channel, DELTA, rx).await?;
    // Delta responses carry only changes: keep the full set per type to find references.
    let mut have: [std::collections::BTreeMap<String, Any>; 4] = Default::default();
    while let Some(resp) = inbound.message().await? {
        let Some(t) = type_index(&resp.type_url) else {
            continue;
        };
        for r in resp.resources {
            if let Some(a) = r.resource {
                have[t].insert(r.name, a);
            }
        }
        for n in &resp.removed_resources {
            have[t].remove(n);
        }
        let refs: Vec<&Any> = have[t].values().collect();
        let before = p.wanted[if t == 0 { 1 } else { 3 }].clone();
        let next = p.on_response(t, &resp.system_version_info, &refs);
        let _ = tx.send(req(t, vec![], vec![], resp.nonce)).await;
        if let Some((dep, names)) = next {
            let old = before.unwrap_or_default();
            let sub = names.difference(&old).cloned().collect();
            let unsub = old.difference(&names).cloned().collect();
            let _ = tx.send(req(dep, sub, unsub, String::new())).await;
        }
    }
    Ok(())
}

/// Starts simulated Envoy `node_id`: on its own connection, or on `pooled` when connections are
/// shared. It reconnects (counted) whenever its stream fails, until the server ends the stream.
pub(super) fn spawn(
    node_id: String,
    mode: LoadMode,
    endpoint: Endpoint,
    pooled: Option<Channel>,
    shared: Arc<Shared>,
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
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
    })
}
