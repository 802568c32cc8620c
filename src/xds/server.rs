//! The xDS gRPC services: ADS and the per-type CDS/EDS/LDS/RDS services, each in state-of-the-world
//! and delta flavours, all fed by the same snapshot cache. One task per stream, driven by the
//! stream's requests and its node's snapshot channel: a stream only ever waits on its own Envoy, and
//! publishing never waits on any stream.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_server::{
    ClusterDiscoveryService, ClusterDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryService;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::endpoint::v3::endpoint_discovery_service_server::{
    EndpointDiscoveryService, EndpointDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_server::{
    ListenerDiscoveryService, ListenerDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::route::v3::route_discovery_service_server::{
    RouteDiscoveryService, RouteDiscoveryServiceServer,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, info_span, warn, Instrument};

use super::authority::{cluster_name, WithAuthority};
use super::cache::{SnapshotCache, Subscription};
use super::delta::DeltaState;
use super::group::{Groups, Member, Membership, Peers};
use super::limits::ClientLimits;
use super::metrics::StreamRefusal;
use super::sotw::{RequestKind, SotwState};
use super::{
    type_index, type_short, Snapshot, SourceMode, VariantFn, CLUSTER, ENDPOINT, LISTENER, ROUTE,
};

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Ends a stream with `status`; gives up if the client does not take it before shutdown.
async fn fail<T>(
    tx: &mpsc::Sender<Box<Result<T, Status>>>,
    status: Status,
    shutdown: &mut watch::Receiver<bool>,
) {
    tokio::select! {
        _ = tx.send(Box::new(Err(status))) => {}
        _ = stopped(shutdown) => {}
    }
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
    pub types: [TypeStatus; 4],
    /// The versions this stream should converge to (its view of the node's snapshot).
    pub current: [Option<String>; 4],
}

/// Every open stream, by id. Each stream task owns its entry and removes it when it ends.
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

/// A protocol flavour: the request/response types and the state machine that maps one to the other.
pub trait Protocol: Default + Send + 'static {
    type Req: Send + 'static;
    type Resp: Send + 'static;
    const DELTA: bool;
    fn node(req: &Self::Req) -> Option<&Node>;
    fn type_url(req: &mut Self::Req) -> &mut String;
    fn nonce(req: &Self::Req) -> &str;
    fn on_request(&mut self, req: &Self::Req) -> RequestKind;
    fn responses(&mut self, snap: Option<&Snapshot>, peers: &Peers) -> Vec<Self::Resp>;
    /// How far the stream has delivered type `t` (for per-type streams' [`Group`]).
    fn member(&self, t: usize) -> Member;
    /// The last `responses` held back a change for the other streams of the Envoy.
    fn held_by_peers(&self) -> bool;
    /// Type URL, version and resource count of a response, for logs and metrics.
    fn describe(resp: &Self::Resp) -> (&str, &str, usize, usize);
    fn status(&self, t: usize) -> TypeStatus;
}

impl Protocol for SotwState {
    type Req = DiscoveryRequest;
    type Resp = DiscoveryResponse;
    const DELTA: bool = false;
    fn node(req: &DiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }
    fn type_url(req: &mut DiscoveryRequest) -> &mut String {
        &mut req.type_url
    }
    fn nonce(req: &DiscoveryRequest) -> &str {
        &req.response_nonce
    }
    fn on_request(&mut self, req: &DiscoveryRequest) -> RequestKind {
        SotwState::on_request(self, req)
    }
    fn responses(&mut self, snap: Option<&Snapshot>, peers: &Peers) -> Vec<DiscoveryResponse> {
        SotwState::responses(self, snap, peers)
    }
    fn member(&self, t: usize) -> Member {
        SotwState::member(self, t)
    }
    fn held_by_peers(&self) -> bool {
        self.held_by_peers
    }
    fn describe(r: &DiscoveryResponse) -> (&str, &str, usize, usize) {
        let bytes = r.resources.iter().map(|a| a.value.len()).sum();
        (&r.type_url, &r.version_info, r.resources.len(), bytes)
    }
    fn status(&self, t: usize) -> TypeStatus {
        self.types[t].status()
    }
}

impl Protocol for DeltaState {
    type Req = DeltaDiscoveryRequest;
    type Resp = DeltaDiscoveryResponse;
    const DELTA: bool = true;
    fn node(req: &DeltaDiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }
    fn type_url(req: &mut DeltaDiscoveryRequest) -> &mut String {
        &mut req.type_url
    }
    fn nonce(req: &DeltaDiscoveryRequest) -> &str {
        &req.response_nonce
    }
    fn on_request(&mut self, req: &DeltaDiscoveryRequest) -> RequestKind {
        DeltaState::on_request(self, req)
    }
    fn responses(&mut self, snap: Option<&Snapshot>, peers: &Peers) -> Vec<DeltaDiscoveryResponse> {
        DeltaState::responses(self, snap, peers)
    }
    fn member(&self, t: usize) -> Member {
        DeltaState::member(self, t)
    }
    fn held_by_peers(&self) -> bool {
        self.held_by_peers
    }
    fn describe(r: &DeltaDiscoveryResponse) -> (&str, &str, usize, usize) {
        let bytes = r
            .resources
            .iter()
            .filter_map(|x| x.resource.as_ref())
            .map(|a| a.value.len())
            .sum();
        (
            &r.type_url,
            &r.system_version_info,
            r.resources.len() + r.removed_resources.len(),
            bytes,
        )
    }
    fn status(&self, t: usize) -> TypeStatus {
        self.types[t].status()
    }
}

/// The xDS server: every service shares the cache, the node-id mapping, the metrics and the registry.
#[derive(Clone)]
pub struct XdsService {
    cache: SnapshotCache,
    node_key: NodeKeyFn,
    variant: VariantFn,
    shutdown: watch::Receiver<bool>,
    limits: Arc<ClientLimits>,
    pub metrics: Arc<XdsMetrics>,
    pub registry: Arc<Registry>,
    /// The per-type streams of each Envoy, which order their types between them.
    groups: Arc<Groups>,
}

/// How long a per-type stream waits for the other streams of its Envoy before it sends anyway:
/// ordering is worth milliseconds, never a stuck configuration (a cluster Envoy rejected never
/// gets an endpoint stream, for instance).
const PEER_HOLD_MAX: std::time::Duration = std::time::Duration::from_secs(3);

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

enum Event<R> {
    Request(Box<R>),
    Snapshot,
    End,
    /// The stream ends with this status: a limit (counted), or a request that does not decode.
    Refuse(Status, Option<StreamRefusal>),
}

impl XdsService {
    pub fn new(
        cache: SnapshotCache,
        node_key: NodeKeyFn,
        variant: VariantFn,
        shutdown: watch::Receiver<bool>,
        limits: ClientLimits,
    ) -> XdsService {
        XdsService {
            cache,
            node_key,
            variant,
            shutdown,
            limits: Arc::new(limits),
            metrics: Arc::default(),
            registry: Arc::default(),
            groups: Arc::default(),
        }
    }

    /// Adds every xDS service to a tonic router.
    pub fn add_to(self, server: tonic::transport::Server) -> tonic::transport::server::Router {
        let max = self.limits.max_request_bytes;
        let mut server = server;
        server
            .add_service(super::grpc::AdsServer::new(self.clone(), max))
            // Per-type streams need the authority: it names the Envoy's cluster for meshplane.
            .add_service(WithAuthority(
                ClusterDiscoveryServiceServer::new(self.clone()).max_decoding_message_size(max),
            ))
            .add_service(WithAuthority(
                EndpointDiscoveryServiceServer::new(self.clone()).max_decoding_message_size(max),
            ))
            .add_service(WithAuthority(
                ListenerDiscoveryServiceServer::new(self.clone()).max_decoding_message_size(max),
            ))
            .add_service(WithAuthority(
                RouteDiscoveryServiceServer::new(self).max_decoding_message_size(max),
            ))
    }

    fn open<P: Protocol>(
        &self,
        request: Request<Streaming<P::Req>>,
        only: Option<&'static str>,
    ) -> ResponseStream<P::Resp> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let cluster = cluster_name(request.extensions());
        let inbound = request.into_inner();
        // Small: a stream that does not read holds at most this many responses, then its task waits.
        // Boxed, because the channel allocates its slots 32 at a time when it is created: 32 inline
        // responses-or-statuses were ~6 KiB per stream, for a queue that rarely holds more than one.
        let (tx, rx) = mpsc::channel::<Box<Result<P::Resp, Status>>>(4);
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
        let this = self.clone();
        tokio::spawn(
            async move { this.run::<P>(inbound, tx, only, peer, mode, cluster).await }
                .instrument(span),
        );
        Box::pin(tokio_stream::StreamExt::map(ReceiverStream::new(rx), |r| {
            *r
        }))
    }

    async fn run<P: Protocol>(
        self,
        mut inbound: Streaming<P::Req>,
        tx: mpsc::Sender<Box<Result<P::Resp, Status>>>,
        only: Option<&'static str>,
        peer: String,
        mode: String,
        cluster: String,
    ) {
        let m = self.metrics.clone();
        m.streams_open.fetch_add(1, Ordering::Relaxed);
        m.streams_total.fetch_add(1, Ordering::Relaxed);
        let id = self.registry.next_id.fetch_add(1, Ordering::Relaxed);
        let mut info = StreamInfo {
            id,
            node_id: String::new(),
            node_key: None,
            peer,
            mode,
            connected_at: SystemTime::now(),
            types: Default::default(),
            current: Default::default(),
        };
        // Per type, the last version whose convergence time was recorded, so each counts once.
        let mut converged: [Option<String>; 4] = Default::default();
        let mut view: Option<Arc<Snapshot>> = None;
        let mut shutdown = self.shutdown.clone();
        let mut state = P::default();
        let mut snapshots: Option<Subscription> = None;
        // A stream is only worth its memory once it says which node it is.
        let first_request = tokio::time::sleep(self.limits.handshake_timeout);
        tokio::pin!(first_request);
        // Per-type streams only: the Envoy's other streams, and since when they hold this one up.
        let mut membership: Option<Membership> = None;
        let mut peer_changes: Option<watch::Receiver<u64>> = None;
        let mut held_since: Option<tokio::time::Instant> = None;
        loop {
            let event = tokio::select! {
                _ = stopped(&mut shutdown) => Event::End,
                _ = &mut first_request, if snapshots.is_none() => Event::Refuse(
                    Status::deadline_exceeded("no request within the handshake timeout"),
                    Some(StreamRefusal::NoFirstRequest),
                ),
                _ = async {
                    match peer_changes.as_mut() {
                        Some(rx) => { let _ = rx.changed().await; }
                        None => std::future::pending().await,
                    }
                } => Event::Snapshot,
                _ = async {
                    match held_since {
                        Some(t) => tokio::time::sleep_until(t + PEER_HOLD_MAX).await,
                        None => std::future::pending().await,
                    }
                } => Event::Snapshot,
                msg = inbound.message() => match msg {
                    Ok(Some(req)) => Event::Request(Box::new(req)),
                    Ok(None) => Event::End,
                    Err(e) => {
                        debug!(error = %e, "stream error");
                        match super::limits::refusal_of(e) {
                            Some((status, why)) => Event::Refuse(status, why),
                            None => Event::End,
                        }
                    }
                },
                changed = async {
                    match snapshots.as_mut() {
                        Some(rx) => rx.changed().await,
                        None => std::future::pending().await,
                    }
                } => match changed {
                    Ok(()) => Event::Snapshot,
                    Err(_) => Event::End,
                },
            };
            match event {
                Event::End => break,
                Event::Refuse(status, why) => {
                    if let Some(why) = why {
                        warn!(reason = why.label(), error = %status.message(), "stream refused");
                        m.refused(why);
                    }
                    fail(&tx, status, &mut shutdown).await;
                    break;
                }
                Event::Snapshot => {}
                Event::Request(mut req) => {
                    if snapshots.is_none() {
                        // The node is only guaranteed on a stream's first request.
                        let Some(node) = P::node(&req) else {
                            let _ = tx
                                .send(Box::new(Err(Status::invalid_argument(
                                    "the first request must carry a node",
                                ))))
                                .await;
                            break;
                        };
                        if let Err(status) = self.limits.check_node_id(&node.id) {
                            m.refused(StreamRefusal::NodeIdTooLong);
                            warn!(bytes = node.id.len(), "stream refused: node id too long");
                            fail(&tx, status, &mut shutdown).await;
                            break;
                        }
                        info.node_id = node.id.clone();
                        tracing::Span::current().record("node", info.node_id.as_str());
                        info.node_key = (self.node_key)(&info.node_id);
                        match &info.node_key {
                            Some(key) => {
                                snapshots = Some(self.cache.subscribe(key));
                                info!("stream opened");
                            }
                            None => {
                                warn!("node id does not name a mesh node (expected mesh/<mesh>/virtualNode/<name> or its ARN); nothing will be served");
                                snapshots = Some(Subscription::detached());
                            }
                        }
                        self.registry.lock().insert(id, info.clone());
                        if only.is_some() {
                            let m = self.groups.join(&info.peer, &info.node_id, id);
                            peer_changes = Some(m.group.subscribe());
                            membership = Some(m);
                        }
                    }
                    let type_url = P::type_url(&mut req);
                    match only {
                        Some(t) if type_url.is_empty() => *type_url = t.to_string(),
                        Some(t) if type_url != t => {
                            let msg = format!("this service serves {t}, not {type_url}");
                            let _ = tx.send(Box::new(Err(Status::invalid_argument(msg)))).await;
                            break;
                        }
                        None if type_url.is_empty() => {
                            let _ = tx
                                .send(Box::new(Err(Status::invalid_argument(
                                    "type URL is required for ADS",
                                ))))
                                .await;
                            break;
                        }
                        _ => {}
                    }
                    let ti = type_index(type_url);
                    let t = ti.map(type_short).unwrap_or("?");
                    match state.on_request(&req) {
                        RequestKind::Ack { version } => {
                            XdsMetrics::count(&m.acks, &m.acks_by_type, ti, 1);
                            debug!(r#type = t, %version, "ACK");
                            if let (Some(ti), Some(v)) = (ti, view.as_ref()) {
                                let acked = state.status(ti).acked;
                                if acked.as_deref() == Some(v.types[ti].version.as_str())
                                    && converged[ti] != acked
                                {
                                    if let Some(origin) = v.origin {
                                        m.convergence.observe(origin.elapsed());
                                    }
                                    converged[ti] = acked;
                                }
                            }
                        }
                        RequestKind::Nack { version, message } => {
                            XdsMetrics::count(&m.nacks, &m.nacks_by_type, ti, 1);
                            warn!(r#type = t, %version, error = %message, "Envoy rejected the configuration (NACK); it keeps its last accepted version");
                        }
                        RequestKind::Stale => {
                            XdsMetrics::count(&m.stale, &m.stale_by_type, ti, 1);
                            debug!(r#type = t, nonce = %P::nonce(&req), "stale nonce");
                            // SotW ignores the request; delta has already applied its subscription change.
                            if !P::DELTA {
                                continue;
                            }
                        }
                        RequestKind::UnknownType => {
                            debug!(r#type = t, "type not served");
                            continue;
                        }
                        RequestKind::Initial => debug!(r#type = t, "subscribed"),
                    }
                }
            }
            let mut snap = snapshots
                .as_mut()
                .and_then(|rx| rx.borrow_and_update().clone());
            // Per-type streams see resources whose references point at per-type services.
            if only.is_some() {
                let mode = if P::DELTA {
                    SourceMode::PerTypeDelta
                } else {
                    SourceMode::PerTypeSotw
                };
                snap = snap.map(|s| s.for_mode(mode, &cluster, &self.variant));
            }
            let peers = match (&membership, held_since) {
                (Some(_), Some(since)) if since.elapsed() >= PEER_HOLD_MAX => {
                    warn!("the Envoy's other xDS streams did not settle within {PEER_HOLD_MAX:?}; sending without waiting for them");
                    Peers::default()
                }
                (Some(m), _) => m.peers(),
                (None, _) => Peers::default(),
            };
            let responses = state.responses(snap.as_deref(), &peers);
            if state.held_by_peers() {
                held_since.get_or_insert_with(tokio::time::Instant::now);
            } else {
                held_since = None;
            }
            let current: [Option<String>; 4] =
                std::array::from_fn(|t| snap.as_ref().map(|s| s.types[t].version.clone()));
            view = snap;
            let mut closed = false;
            for resp in responses {
                let (type_url, version, count, bytes) = P::describe(&resp);
                debug!(r#type = type_index(type_url).map(type_short).unwrap_or("?"), %version, resources = count, "push");
                let ti = type_index(type_url);
                XdsMetrics::count(&m.responses, &m.responses_by_type, ti, 1);
                XdsMetrics::count(&m.response_bytes, &m.bytes_by_type, ti, bytes as u64);
                // Waiting here only delays this stream; stop waiting on shutdown.
                tokio::select! {
                    r = tx.send(Box::new(Ok(resp))) => if r.is_err() { closed = true; break },
                    _ = stopped(&mut shutdown) => { closed = true; break },
                }
            }
            if let (Some(m), Some(t)) = (&membership, only.and_then(type_index)) {
                m.update(state.member(t));
            }
            if info.node_key.is_some() || !info.node_id.is_empty() {
                let types: [TypeStatus; 4] = std::array::from_fn(|t| state.status(t));
                if types != info.types || current != info.current {
                    info.types = types;
                    info.current = current;
                    if let Some(e) = self.registry.lock().get_mut(&id) {
                        e.types = info.types.clone();
                        e.current = info.current.clone();
                    }
                }
            }
            if closed || tx.is_closed() {
                break;
            }
        }
        self.registry.lock().remove(&id);
        // Lets go of the node's cache entry, if this was the last stream of an undefined node.
        drop(snapshots);
        m.streams_open.fetch_sub(1, Ordering::Relaxed);
        if !info.node_id.is_empty() {
            info!("stream closed");
        }
    }

    /// Unary fetch: the node's current resources of one type (all, or the requested names).
    fn fetch(
        &self,
        request: Request<DiscoveryRequest>,
        type_url: &'static str,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let cluster = cluster_name(request.extensions());
        let req = request.into_inner();
        let node = req
            .node
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("a fetch must carry a node"))?;
        self.limits.check_node_id(&node.id)?;
        let key = (self.node_key)(&node.id)
            .ok_or_else(|| Status::not_found("node id does not name a mesh node"))?;
        let snap = self
            .cache
            .get(&key)
            .ok_or_else(|| Status::unavailable("no configuration for this node yet"))?
            .for_mode(SourceMode::PerTypeSotw, &cluster, &self.variant);
        let t = type_index(type_url).unwrap_or(0);
        let ts = &snap.types[t];
        let resources = ts
            .resources
            .iter()
            .filter(|(n, _)| req.resource_names.is_empty() || req.resource_names.contains(n))
            .map(|(_, r)| r.any.clone())
            .collect();
        Ok(Response::new(DiscoveryResponse {
            version_info: ts.version.clone(),
            resources,
            type_url: type_url.into(),
            ..Default::default()
        }))
    }
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for XdsService {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        Ok(Response::new(self.open::<SotwState>(request, None)))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Ok(Response::new(self.open::<DeltaState>(request, None)))
    }
}

/// Implements one per-type discovery service (SotW stream, delta stream, fetch) over the shared cache.
macro_rules! per_type_service {
    ($trait:ident, $type_url:expr, $sotw_ty:ident, $sotw:ident, $delta_ty:ident, $delta:ident, $fetch:ident) => {
        #[tonic::async_trait]
        impl $trait for XdsService {
            type $sotw_ty = ResponseStream<DiscoveryResponse>;
            type $delta_ty = ResponseStream<DeltaDiscoveryResponse>;

            async fn $sotw(
                &self,
                request: Request<Streaming<DiscoveryRequest>>,
            ) -> Result<Response<Self::$sotw_ty>, Status> {
                Ok(Response::new(
                    self.open::<SotwState>(request, Some($type_url)),
                ))
            }

            async fn $delta(
                &self,
                request: Request<Streaming<DeltaDiscoveryRequest>>,
            ) -> Result<Response<Self::$delta_ty>, Status> {
                Ok(Response::new(
                    self.open::<DeltaState>(request, Some($type_url)),
                ))
            }

            async fn $fetch(
                &self,
                request: Request<DiscoveryRequest>,
            ) -> Result<Response<DiscoveryResponse>, Status> {
                self.fetch(request, $type_url)
            }
        }
    };
}

per_type_service!(
    ClusterDiscoveryService,
    CLUSTER,
    StreamClustersStream,
    stream_clusters,
    DeltaClustersStream,
    delta_clusters,
    fetch_clusters
);
per_type_service!(
    EndpointDiscoveryService,
    ENDPOINT,
    StreamEndpointsStream,
    stream_endpoints,
    DeltaEndpointsStream,
    delta_endpoints,
    fetch_endpoints
);
per_type_service!(
    ListenerDiscoveryService,
    LISTENER,
    StreamListenersStream,
    stream_listeners,
    DeltaListenersStream,
    delta_listeners,
    fetch_listeners
);
per_type_service!(
    RouteDiscoveryService,
    ROUTE,
    StreamRoutesStream,
    stream_routes,
    DeltaRoutesStream,
    delta_routes,
    fetch_routes
);
