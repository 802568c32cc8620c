//! The xDS gRPC services: ADS and the per-type CDS/EDS/LDS/RDS/SDS services, each in state-of-the-world
//! and delta flavours, all fed by the same snapshot cache. Each stream ([`stream`]) is its HTTP/2
//! response body, driven by its requests and its node's snapshot channel: a stream only ever waits
//! on its own Envoy, and publishing never waits on any stream. This file owns the services, the registry of
//! open streams and the one place a stream's view of a snapshot is chosen
//! ([`XdsService::snapshot_for`]).

mod protocol;
mod stream;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tracing::info_span;

use super::auth::{Authorizer, PeerIdentity};
use super::authority::cluster_name;
use super::cache::SnapshotCache;
use super::group::Groups;
use super::grpc::{Requests, ResponseBody, XdsGrpc};
use super::limits::ClientLimits;
use super::outgoing::{Outgoing, Selection};
use super::variants::{Demand, Hold, VariantKey, MAX_VARIANTS};
use super::{type_index, type_short, Snapshot, SourceMode};
pub use protocol::Protocol;

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Maps an Envoy node id to its cache key; `None` means the id cannot name any node.
pub type NodeKeyFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub use super::metrics::XdsMetrics;

pub use super::TypeStatus;

/// A connected stream, for status reports.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub id: u64,
    pub node_id: String,
    /// Cache key of the node, when the id names one.
    pub node_key: Option<String>,
    pub peer: String,
    /// `ADS`, `ADS delta`, `CDS`, `CDS delta`, ...
    pub mode: String,
    pub connected_at: SystemTime,
    /// The URI SANs of the client's TLS certificate; `None` on a connection without TLS.
    pub identity: Option<Vec<String>>,
    /// Per type in [`super::TYPE_ORDER`] (secrets last).
    pub types: [TypeStatus; super::TYPE_COUNT],
    /// The versions this stream should converge to (its view of the node's snapshot).
    pub current: [Option<String>; super::TYPE_COUNT],
}

/// Every open stream, by id. Each stream owns its entry and removes it when it ends.
#[derive(Debug, Default)]
pub struct Registry {
    streams: Mutex<BTreeMap<u64, StreamInfo>>,
    next_id: AtomicU64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, StreamInfo>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn list(&self) -> Vec<StreamInfo> {
        self.lock().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The xDS server: every service shares the cache, the node-id mapping, the metrics and the registry.
#[derive(Clone)]
pub struct XdsService {
    cache: SnapshotCache,
    node_key: NodeKeyFn,
    /// The per-type variants open streams need; the build stage makes them.
    demand: Demand,
    shutdown: watch::Receiver<bool>,
    limits: Arc<ClientLimits>,
    pub metrics: Arc<XdsMetrics>,
    pub registry: Arc<Registry>,
    /// The per-type streams of each Envoy, which order their types between them.
    groups: Arc<Groups>,
    /// Who may read which node; `None`: anyone may read any.
    authorizer: Option<Arc<dyn Authorizer>>,
}

impl XdsService {
    pub fn new(
        cache: SnapshotCache,
        node_key: NodeKeyFn,
        demand: Demand,
        shutdown: watch::Receiver<bool>,
        limits: ClientLimits,
    ) -> XdsService {
        XdsService {
            cache,
            node_key,
            demand,
            shutdown,
            limits: Arc::new(limits),
            metrics: Arc::default(),
            registry: Arc::default(),
            groups: Arc::default(),
            authorizer: None,
        }
    }

    /// Every stream and fetch must pass `authorizer` for the node it names (see [`super::auth`]).
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> XdsService {
        self.authorizer = Some(authorizer);
        self
    }

    /// Adds every xDS service (ADS and the five per-type ones) to a tonic router.
    pub fn add_to(self, server: tonic::transport::Server) -> tonic::transport::server::Router {
        let max = self.limits.max_request_bytes;
        let svc = Arc::new(self);
        let mut server = server;
        server
            .add_service(XdsGrpc::<0>::new(svc.clone(), max))
            .add_service(XdsGrpc::<1>::new(svc.clone(), max))
            .add_service(XdsGrpc::<2>::new(svc.clone(), max))
            .add_service(XdsGrpc::<3>::new(svc.clone(), max))
            .add_service(XdsGrpc::<4>::new(svc.clone(), max))
            .add_service(XdsGrpc::<5>::new(svc, max))
    }

    /// A new stream of protocol `P` (serving type `only`, or every type over ADS), as the body
    /// of its response: polling the body is what drives the stream.
    pub(super) fn open<P: Protocol>(
        &self,
        request: Request<Requests<P::Req>>,
        only: Option<&'static str>,
    ) -> ResponseBody {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let cluster = cluster_name(request.extensions());
        let identity = PeerIdentity::of(&request).map(Box::new);
        let inbound = request.into_inner();
        let mode = match (only, P::DELTA) {
            (None, false) => "ADS".to_string(),
            (None, true) => "ADS delta".to_string(),
            (Some(t), delta) => {
                let short = type_index(t).map(type_short).unwrap_or("?");
                if delta {
                    format!("{short} delta")
                } else {
                    short.to_string()
                }
            }
        };
        let span = info_span!("xds", %peer, %mode, node = tracing::field::Empty);
        let stream = span.in_scope(|| {
            stream::Stream::<P>::new(self.clone(), inbound, only, peer, mode, cluster)
                .with_identity(identity)
        });
        ResponseBody::new(Box::new(stream), span)
    }

    /// Unary fetch: the node's current resources of one type (all, or the requested names), as a
    /// per-type SotW stream of the same Envoy would see them.
    pub(super) async fn fetch(
        &self,
        request: Request<DiscoveryRequest>,
        type_url: &'static str,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let cluster = cluster_name(request.extensions());
        let identity = PeerIdentity::of(&request);
        let req = request.into_inner();
        let node = req
            .node
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("a fetch must carry a node"))?;
        self.limits.check_node_id(&node.id)?;
        self.authorize(identity.as_ref(), &node.id)?;
        let key = (self.node_key)(&node.id)
            .ok_or_else(|| Status::not_found("node id does not name a mesh node"))?;
        if self.cache.get(&key).is_none() {
            return Err(Status::unavailable("no configuration for this node yet"));
        }
        let variant = VariantKey {
            delta: false,
            cluster: cluster.into(),
        };
        let hold = self.demand.hold(variant).ok_or_else(too_many_variants)?;
        let mut snapshots = self.cache.subscribe(&key);
        let ready = async {
            loop {
                let found = snapshots.borrow_and_update().clone();
                if let Some(v) = found.and_then(|s| self.snapshot_for(s, Some(&hold))) {
                    return Some(v);
                }
                snapshots.changed().await.ok()?;
            }
        };
        let snap = tokio::time::timeout(FETCH_VARIANT_WAIT, ready)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| Status::unavailable("no configuration for this node yet"))?;
        let t = type_index(type_url).unwrap_or(0);
        let ts = &snap.types[t];
        let listed = ts
            .resources
            .iter()
            .filter(|(n, _)| req.resource_names.is_empty() || req.resource_names.contains(n))
            .map(|(_, r)| r.clone())
            .collect();
        let out = Outgoing {
            type_index: t,
            version: ts.version.clone(),
            nonce: String::new(),
            resources: Selection::Listed(listed),
            removed: None,
        };
        Ok(Response::new(out.to_sotw()))
    }

    /// The node's snapshot as a stream (or fetch) must see it: ADS streams (no `hold`) get it as
    /// built; per-type ones the variant of the hold's key, `None` until the build stage has made
    /// it. The one place variants are picked.
    fn snapshot_for(&self, snap: Arc<Snapshot>, hold: Option<&Hold>) -> Option<Arc<Snapshot>> {
        match hold {
            None => Some(snap),
            Some(h) => snap.variant(h.key()).cloned(),
        }
    }

    /// Whether the client `peer` may read `node_id` (counted and logged when not).
    fn authorize(&self, peer: Option<&PeerIdentity>, node_id: &str) -> Result<(), Status> {
        super::auth::check(self.authorizer.as_ref(), peer, node_id, &self.metrics)
    }

    /// Claims the per-type variant a stream of `mode` needs; `Err` when too many are held.
    fn hold_variant(&self, mode: SourceMode, cluster: &str) -> Result<Option<Hold>, Status> {
        let delta = match mode {
            SourceMode::Ads => return Ok(None),
            SourceMode::PerTypeSotw => false,
            SourceMode::PerTypeDelta => true,
        };
        let key = VariantKey {
            delta,
            cluster: cluster.into(),
        };
        self.demand
            .hold(key)
            .map(Some)
            .ok_or_else(too_many_variants)
    }
}

/// How long a fetch waits for the build stage to make the variant it needs.
const FETCH_VARIANT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn too_many_variants() -> Status {
    Status::resource_exhausted(format!(
        "more than {MAX_VARIANTS} distinct xDS cluster names are in use by per-type streams"
    ))
}
