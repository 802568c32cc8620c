//! The request handler of a stream: the first request names the node, every request must be for
//! a type the stream serves, and the protocol state says what it meant (counted and logged).

use std::ops::ControlFlow;

use tonic::Status;
use tracing::{debug, info, warn};

use super::{Next, Stream};
use crate::xds::cache::Subscription;
use crate::xds::metrics::StreamRefusal;
use crate::xds::server::{Protocol, XdsMetrics};
use crate::xds::sotw::RequestKind;
use crate::xds::{type_index, type_short};

impl<P: Protocol> Stream<P> {
    /// A request: the first one names the node; each must be for a type this stream serves; the
    /// protocol state then says what it meant.
    pub(super) fn on_request(&mut self, mut req: Box<P::Req>) -> Next {
        if self.snapshots.is_none() && self.identify(&req).is_break() {
            return Next::Stop;
        }
        if self.check_type(&mut req).is_break() {
            return Next::Stop;
        }
        let ti = type_index(P::type_url(&mut req));
        let kind = self.state.on_request(&req);
        self.on_kind(kind, ti, &req)
    }

    /// The first request says which node this is: subscribe to its snapshots, register the
    /// stream, and (per-type streams) join the Envoy's group.
    fn identify(&mut self, req: &P::Req) -> ControlFlow<()> {
        // The node is only guaranteed on a stream's first request.
        let Some(node) = P::node(req) else {
            self.fail(Status::invalid_argument(
                "the first request must carry a node",
            ));
            return ControlFlow::Break(());
        };
        if let Err(status) = self.svc.limits.check_node_id(&node.id) {
            self.svc.metrics.refused(StreamRefusal::NodeIdTooLong);
            warn!(bytes = node.id.len(), "stream refused: node id too long");
            self.fail(status);
            return ControlFlow::Break(());
        }
        let identity = self.identity.take();
        if let Err(status) = self.svc.authorize(identity.as_deref(), &node.id) {
            self.fail(status);
            return ControlFlow::Break(());
        }
        self.first_request = None;
        let Some(mut info) = self.info.take() else {
            return ControlFlow::Continue(()); // named already
        };
        info.node_id = node.id.clone();
        tracing::Span::current().record("node", info.node_id.as_str());
        info.node_key = (self.svc.node_key)(&info.node_id);
        match &info.node_key {
            Some(key) => {
                self.snapshots = Some(self.svc.cache.subscribe(key));
                info!("stream opened");
            }
            None => {
                warn!("node id does not name a mesh node (expected mesh/<mesh>/virtualNode/<name>, mesh/<mesh>/virtualGateway/<name> or its ARN); nothing will be served");
                self.snapshots = Some(Subscription::detached());
            }
        }
        if self.only.is_some() {
            let m = self.svc.groups.join(&info.peer, &info.node_id, info.id);
            self.peer_changes = Some(m.group.subscribe());
            self.membership = Some(m);
        }
        self.svc.registry.lock().insert(info.id, *info);
        self.registered = true;
        ControlFlow::Continue(())
    }

    /// A per-type stream serves its one type (an empty type URL means that one); over ADS every
    /// request names its type. Anything else ends the stream.
    fn check_type(&mut self, req: &mut P::Req) -> ControlFlow<()> {
        let type_url = P::type_url(req);
        let refusal = match self.only {
            Some(t) if type_url.is_empty() => {
                *type_url = t.to_string();
                return ControlFlow::Continue(());
            }
            Some(t) if type_url != t => format!("this service serves {t}, not {type_url}"),
            None if type_url.is_empty() => "type URL is required for ADS".to_string(),
            _ => return ControlFlow::Continue(()),
        };
        self.fail(Status::invalid_argument(refusal));
        ControlFlow::Break(())
    }

    /// Counts and logs what the protocol state made of a request of type `ti`. A stale SotW
    /// request and a type not served change nothing, so there is nothing to send.
    fn on_kind(&mut self, kind: RequestKind, ti: Option<usize>, req: &P::Req) -> Next {
        let m = &self.svc.metrics;
        let t = ti.map(type_short).unwrap_or("?");
        match kind {
            RequestKind::Ack { version } => {
                XdsMetrics::count(&m.acks, &m.acks_by_type, ti, 1);
                debug!(r#type = t, %version, "ACK");
                self.record_convergence(ti);
            }
            RequestKind::Nack { version, message } => {
                XdsMetrics::count(&m.nacks, &m.nacks_by_type, ti, 1);
                warn!(r#type = t, %version, error = %message, "Envoy rejected the configuration (NACK); it keeps its last accepted version");
            }
            RequestKind::Stale => {
                XdsMetrics::count(&m.stale, &m.stale_by_type, ti, 1);
                debug!(r#type = t, nonce = %P::nonce(req), "stale nonce");
                // SotW ignores the request; delta has already applied its subscription change.
                if !P::DELTA {
                    return Next::Wait;
                }
            }
            RequestKind::UnknownType => {
                debug!(r#type = t, "type not served");
                return Next::Wait;
            }
            RequestKind::Initial => debug!(r#type = t, "subscribed"),
        }
        Next::Respond
    }

    /// An ACK of the version this stream converges to: how long the change took from the file
    /// save to this Envoy, counted once per version.
    fn record_convergence(&mut self, ti: Option<usize>) {
        let (Some(ti), Some(v)) = (ti, self.view.as_ref()) else {
            return;
        };
        let acked = self.state.status(ti).acked;
        if acked.as_deref() == Some(v.types[ti].version.as_str()) && self.converged[ti] != acked {
            if let Some(origin) = v.origin {
                self.svc.metrics.convergence.observe(origin.elapsed());
            }
            self.converged[ti] = acked;
        }
    }
}
