//! The ADS gRPC service: one task per stream, fed by the stream's requests and its node's snapshot
//! channel. A stream only ever waits on its own Envoy; publishing never waits on any stream.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, info_span, warn, Instrument};

use super::cache::{SnapshotCache, SnapshotRx};
use super::sotw::{RequestKind, SotwState};
use super::{type_index, type_short};

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Maps an Envoy node id to its cache key; `None` means the id cannot name any node.
pub type NodeKeyFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Counters for the admin API and tests.
#[derive(Debug, Default)]
pub struct XdsMetrics {
    pub streams_open: AtomicU64,
    pub streams_total: AtomicU64,
    pub responses: AtomicU64,
    pub acks: AtomicU64,
    pub nacks: AtomicU64,
    pub stale: AtomicU64,
}

#[derive(Clone)]
pub struct AdsService {
    cache: SnapshotCache,
    node_key: NodeKeyFn,
    shutdown: watch::Receiver<bool>,
    pub metrics: Arc<XdsMetrics>,
}

impl AdsService {
    pub fn new(
        cache: SnapshotCache,
        node_key: NodeKeyFn,
        shutdown: watch::Receiver<bool>,
    ) -> AdsService {
        AdsService {
            cache,
            node_key,
            shutdown,
            metrics: Arc::default(),
        }
    }

    pub fn into_server(self) -> AggregatedDiscoveryServiceServer<AdsService> {
        AggregatedDiscoveryServiceServer::new(self)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(usize::MAX)
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsService {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let inbound = request.into_inner();
        // Small: a stream that does not read holds at most this many responses, then its task waits.
        let (tx, rx) = mpsc::channel(4);
        let this = self.clone();
        let span = info_span!("ads", peer = %peer, node = tracing::field::Empty);
        tokio::spawn(async move { this.run_sotw(inbound, tx).await }.instrument(span));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented(
            "incremental (delta) xDS is not served yet; configure Envoy with api_type: GRPC",
        ))
    }
}

enum Event {
    Request(Box<DiscoveryRequest>),
    Snapshot,
    End,
}

impl AdsService {
    async fn run_sotw(
        self,
        mut inbound: Streaming<DiscoveryRequest>,
        tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    ) {
        let m = self.metrics.clone();
        m.streams_open.fetch_add(1, Ordering::Relaxed);
        m.streams_total.fetch_add(1, Ordering::Relaxed);
        let mut shutdown = self.shutdown.clone();
        let mut state = SotwState::new();
        let mut snapshots: Option<SnapshotRx> = None;
        let mut node_id = String::new();
        loop {
            let event = tokio::select! {
                _ = stopped(&mut shutdown) => Event::End,
                msg = inbound.message() => match msg {
                    Ok(Some(req)) => Event::Request(Box::new(req)),
                    Ok(None) => Event::End,
                    Err(e) => {
                        debug!(error = %e, "stream error");
                        Event::End
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
                Event::Snapshot => {}
                Event::Request(req) => {
                    if snapshots.is_none() {
                        // The node is only guaranteed on a stream's first request.
                        let Some(node) = req.node.as_ref() else {
                            let _ = tx
                                .send(Err(Status::invalid_argument(
                                    "the first request must carry a node",
                                )))
                                .await;
                            break;
                        };
                        node_id = node.id.clone();
                        tracing::Span::current().record("node", node_id.as_str());
                        match (self.node_key)(&node_id) {
                            Some(key) => {
                                snapshots = Some(self.cache.subscribe(&key));
                                info!("stream opened");
                            }
                            None => {
                                warn!("node id does not name a mesh node (expected mesh/<mesh>/virtualNode/<name> or its ARN); nothing will be served");
                                snapshots = Some(watch::channel(None).1);
                            }
                        }
                    }
                    if req.type_url.is_empty() {
                        let _ = tx
                            .send(Err(Status::invalid_argument(
                                "type URL is required for ADS",
                            )))
                            .await;
                        break;
                    }
                    let t = type_index(&req.type_url).map(type_short).unwrap_or("?");
                    match state.on_request(&req) {
                        RequestKind::Ack { version } => {
                            m.acks.fetch_add(1, Ordering::Relaxed);
                            debug!(r#type = t, %version, "ACK");
                        }
                        RequestKind::Nack { version, message } => {
                            m.nacks.fetch_add(1, Ordering::Relaxed);
                            warn!(r#type = t, %version, error = %message, "Envoy rejected the configuration (NACK); it keeps its last accepted version");
                        }
                        RequestKind::Stale => {
                            m.stale.fetch_add(1, Ordering::Relaxed);
                            debug!(r#type = t, nonce = %req.response_nonce, "stale nonce ignored");
                            continue;
                        }
                        RequestKind::UnknownType => {
                            debug!(type_url = %req.type_url, "type not served");
                            continue;
                        }
                        RequestKind::Initial => {
                            debug!(r#type = t, names = req.resource_names.len(), "subscribed")
                        }
                    }
                }
            }
            let snap = snapshots
                .as_mut()
                .and_then(|rx| rx.borrow_and_update().clone());
            for resp in state.responses(snap.as_deref()) {
                debug!(r#type = type_index(&resp.type_url).map(type_short).unwrap_or("?"), version = %resp.version_info, resources = resp.resources.len(), "push");
                m.responses.fetch_add(1, Ordering::Relaxed);
                // Waiting here only delays this stream; stop waiting on shutdown.
                tokio::select! {
                    r = tx.send(Ok(resp)) => if r.is_err() { break },
                    _ = stopped(&mut shutdown) => break,
                }
            }
            if tx.is_closed() || *shutdown.borrow() {
                break;
            }
        }
        m.streams_open.fetch_sub(1, Ordering::Relaxed);
        if !node_id.is_empty() {
            info!("stream closed");
        }
    }
}
