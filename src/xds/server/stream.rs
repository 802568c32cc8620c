//! One xDS stream's task. The loop waits for the next event (a request, a new snapshot of the
//! node, a change among the Envoy's other streams, the hold on them running out, the end) and
//! hands it to its handler (requests: [`request`]); after any event that may make something due,
//! [`Stream::respond`] sends it. Everything the stream keeps between events is in [`Stream`].
//!
//! The stream only ever waits on its own Envoy: sending waits for room in the client's small
//! queue (back-pressure) and delays only this task, and every wait gives way to shutdown.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};
use tonic::Status;
use tracing::{debug, info, warn};

use super::{stopped, Protocol, StreamInfo, XdsMetrics, XdsService};
use crate::xds::auth::PeerIdentity;
use crate::xds::cache::Subscription;
use crate::xds::group::{Membership, Peers};
use crate::xds::grpc::{Outbound, Requests};
use crate::xds::metrics::StreamRefusal;
use crate::xds::outgoing::Outgoing;
use crate::xds::variants::Hold;
use crate::xds::{type_index, type_short, Snapshot, SourceMode, TYPE_COUNT};

mod request;

/// How long a per-type stream waits for the other streams of its Envoy before it sends anyway:
/// ordering is worth milliseconds, never a stuck configuration (a cluster Envoy rejected never
/// gets an endpoint stream, for instance).
const PEER_HOLD_MAX: Duration = Duration::from_secs(3);

/// `age` plus a random 0-10 %, so the Envoys that connected together (after a replica restart)
/// do not all reconnect together. Seeded by the process's random hasher keys and the stream id.
fn jittered(age: Duration, id: u64) -> Duration {
    use std::hash::BuildHasher;
    let r = std::collections::hash_map::RandomState::new().hash_one(id);
    age + age.mul_f64((r % 10_001) as f64 / 100_000.0)
}

/// Where a stream's responses go: the response body writes them to the client in order.
pub(super) type Responses = mpsc::Sender<Box<Outbound>>;

/// Ends a stream with `status`; gives up if the client does not take it before shutdown.
async fn fail(tx: &Responses, status: Status, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tx.send(Box::new(Outbound::End(status))) => {}
        _ = stopped(shutdown) => {}
    }
}

enum Event<R> {
    Request(Box<R>),
    /// The stream reached `--xds-max-stream-age`.
    Aged,
    /// The node's snapshot, or the Envoy's other streams, changed (or the hold on them ran out).
    Snapshot,
    End,
    /// The stream ends with this status: a limit (counted), or a request that does not decode.
    Refuse(Status, Option<StreamRefusal>),
}

/// What the loop does once a handler is done with an event.
enum Next {
    /// Something may be due: work it out and send it.
    Respond,
    /// Nothing to send; wait for the next event.
    Wait,
    /// The stream is over.
    Stop,
}

/// Everything one stream keeps between events.
pub(super) struct Stream<P: Protocol> {
    svc: XdsService,
    tx: Responses,
    /// The one type a per-type stream serves; `None` over ADS.
    only: Option<&'static str>,
    /// Per-type streams: the claim on the variant whose resources point at per-type services on
    /// the bootstrap's cluster for meshplane (`Err` when too many variants are claimed).
    variant: Result<Option<Hold>, Status>,
    /// This stream's entry in the registry, as last published.
    info: StreamInfo,
    /// Per type, the last version whose convergence time was recorded, so each counts once.
    converged: [Option<String>; crate::xds::TYPE_COUNT],
    /// The snapshot the last responses were worked out from.
    view: Option<Arc<Snapshot>>,
    shutdown: watch::Receiver<bool>,
    state: P,
    /// The node's snapshots; `None` until the first request says which node this is.
    snapshots: Option<Subscription>,
    /// Per-type streams only: the Envoy's other streams, and since when they hold this one up.
    membership: Option<Membership>,
    peer_changes: Option<watch::Receiver<u64>>,
    held_since: Option<Instant>,
    /// When the stream closes to let its Envoy reconnect, perhaps to another replica.
    end_of_life: Option<Instant>,
    /// The client's certificate identity, until the first request is authorized with it.
    identity: Option<Box<PeerIdentity>>,
}

impl<P: Protocol> Stream<P> {
    /// A new stream, counted as open and given its id (it is registered once it names its node).
    pub(super) fn new(
        svc: XdsService,
        tx: Responses,
        only: Option<&'static str>,
        peer: String,
        mode: String,
        cluster: String,
    ) -> Stream<P> {
        svc.metrics.streams_open.fetch_add(1, Ordering::Relaxed);
        svc.metrics.streams_total.fetch_add(1, Ordering::Relaxed);
        let id = svc.registry.next_id.fetch_add(1, Ordering::Relaxed);
        let info = StreamInfo {
            id,
            node_id: String::new(),
            node_key: None,
            peer,
            mode,
            connected_at: SystemTime::now(),
            identity: None,
            types: Default::default(),
            current: Default::default(),
        };
        let source = match (only, P::DELTA) {
            (None, _) => SourceMode::Ads,
            (Some(_), false) => SourceMode::PerTypeSotw,
            (Some(_), true) => SourceMode::PerTypeDelta,
        };
        let variant = svc.hold_variant(source, &cluster);
        let end_of_life = svc
            .limits
            .xds_max_stream_age
            .map(|age| Instant::now() + jittered(age, id));
        Stream {
            end_of_life,
            shutdown: svc.shutdown.clone(),
            svc,
            tx,
            only,
            variant,
            info,
            converged: Default::default(),
            view: None,
            state: P::default(),
            snapshots: None,
            membership: None,
            peer_changes: None,
            held_since: None,
            identity: None,
        }
    }

    /// The identity the client's TLS certificate carries (none without TLS).
    pub(super) fn with_identity(mut self, identity: Option<Box<PeerIdentity>>) -> Stream<P> {
        self.info.identity = identity.as_ref().map(|p| p.uris.clone());
        self.identity = identity;
        self
    }

    /// The stream's task: one event at a time, until the client, a limit or the server ends it.
    pub(super) async fn run(mut self: Box<Self>, mut inbound: Requests<P::Req>) {
        // A stream is only worth its memory once it says which node it is.
        let first_request = tokio::time::sleep(self.svc.limits.handshake_timeout);
        tokio::pin!(first_request);
        if let Err(status) = &self.variant {
            let status = status.clone();
            self.refuse(status, None).await;
            return (*self).close();
        }
        // Each step's future is boxed while it runs: a stream spends its life waiting, and its
        // task would otherwise reserve room for the largest step (~3 KiB) for that whole life.
        loop {
            let event = Box::pin(self.next_event(&mut inbound, first_request.as_mut())).await;
            let next = match event {
                Event::End => Next::Stop,
                Event::Aged => {
                    info!(
                        "stream reached --xds-max-stream-age; closing it so the Envoy reconnects"
                    );
                    self.svc
                        .metrics
                        .streams_aged
                        .fetch_add(1, Ordering::Relaxed);
                    Next::Stop
                }
                Event::Refuse(status, why) => Box::pin(self.refuse(status, why)).await,
                Event::Snapshot => Next::Respond,
                Event::Request(req) => Box::pin(self.on_request(req)).await,
            };
            match next {
                Next::Stop => break,
                Next::Wait => continue,
                Next::Respond => {
                    if !Box::pin(self.respond()).await {
                        break;
                    }
                }
            }
        }
        (*self).close();
    }

    /// Waits for whichever event comes first. Every wait here can lose the race without losing
    /// anything: the request, snapshot and group are read again next time.
    async fn next_event(
        &mut self,
        inbound: &mut Requests<P::Req>,
        first_request: Pin<&mut Sleep>,
    ) -> Event<P::Req> {
        let Stream {
            shutdown,
            snapshots,
            peer_changes,
            held_since,
            end_of_life,
            ..
        } = self;
        let unnamed = snapshots.is_none();
        let held_since = *held_since;
        let end_of_life = *end_of_life;
        tokio::select! {
            _ = stopped(shutdown) => Event::End,
            _ = async {
                match end_of_life {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => Event::Aged,
            _ = first_request, if unnamed => Event::Refuse(
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
                    match crate::xds::limits::refusal_of(e) {
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
        }
    }

    /// A limit, or a request that does not decode: the stream ends with its status.
    async fn refuse(&mut self, status: Status, why: Option<StreamRefusal>) -> Next {
        if let Some(why) = why {
            warn!(reason = why.label(), error = %status.message(), "stream refused");
            self.svc.metrics.refused(why);
        }
        fail(&self.tx, status, &mut self.shutdown).await;
        Next::Stop
    }

    /// Sends what is due for the node's latest snapshot, then tells the Envoy's other streams and
    /// the registry where this stream stands. False once the stream is over.
    async fn respond(&mut self) -> bool {
        let snap = self.snapshot_for_stream();
        let peers = self.peers();
        let responses = self.state.responses(snap.as_deref(), &peers);
        if self.state.held_by_peers() {
            self.held_since.get_or_insert_with(Instant::now);
        } else {
            self.held_since = None;
        }
        self.view = snap;
        let open = self.send(responses).await;
        if let (Some(m), Some(t)) = (&self.membership, self.only.and_then(type_index)) {
            m.update(self.state.member(t));
        }
        self.publish_status();
        open && !self.tx.is_closed()
    }

    /// The node's latest snapshot (now seen), as this stream must see it: per-type streams get
    /// resources whose references point at per-type services.
    fn snapshot_for_stream(&mut self) -> Option<Arc<Snapshot>> {
        let snap = self.snapshots.as_mut()?.borrow_and_update().clone()?;
        let hold = self.variant.as_ref().ok()?.as_ref();
        self.svc.snapshot_for(snap, hold)
    }

    /// What the Envoy's other streams have delivered. Nothing to wait for over ADS (this stream
    /// carries every type), nor once they have held this one up for [`PEER_HOLD_MAX`].
    fn peers(&self) -> Peers {
        match (&self.membership, self.held_since) {
            (Some(_), Some(since)) if since.elapsed() >= PEER_HOLD_MAX => {
                warn!("the Envoy's other xDS streams did not settle within {PEER_HOLD_MAX:?}; sending without waiting for them");
                Peers::default()
            }
            (Some(m), _) => m.peers(),
            (None, _) => Peers::default(),
        }
    }

    /// Queues `responses` in order, each counted as it goes. False if the client went away or
    /// the server stopped meanwhile.
    async fn send(&mut self, responses: Vec<Outgoing>) -> bool {
        for resp in responses {
            let t = resp.type_index;
            debug!(r#type = type_short(t), version = %resp.version, resources = resp.count(), "push");
            let m = &self.svc.metrics;
            XdsMetrics::count(&m.responses, &m.responses_by_type, Some(t), 1);
            XdsMetrics::count(
                &m.response_bytes,
                &m.bytes_by_type,
                Some(t),
                resp.bytes() as u64,
            );
            let wire = Box::new(Outbound::Message(resp.encode()));
            // Waiting here only delays this stream; stop waiting on shutdown.
            tokio::select! {
                r = self.tx.send(wire) => if r.is_err() { return false },
                _ = stopped(&mut self.shutdown) => return false,
            }
        }
        true
    }

    /// Updates the registry's entry, for status reports: what changed since the last call, the
    /// shared lock only when something did. Compared in place, since it runs after every request
    /// and push, and copying every version to compare was a twentieth of a push's CPU.
    fn publish_status(&mut self) {
        let info = &mut self.info;
        if info.node_key.is_none() && info.node_id.is_empty() {
            return;
        }
        let mut changed = [false; TYPE_COUNT];
        for (t, changed) in changed.iter_mut().enumerate() {
            if !self.state.status_is(t, &info.types[t]) {
                info.types[t] = self.state.status(t);
                *changed = true;
            }
            // The versions this stream should converge to: its view of the node's snapshot.
            let due = self.view.as_ref().map(|s| s.types[t].version.as_str());
            if info.current[t].as_deref() != due {
                info.current[t] = due.map(str::to_string);
                *changed = true;
            }
        }
        if !changed.contains(&true) {
            return;
        }
        if let Some(e) = self.svc.registry.lock().get_mut(&info.id) {
            for t in (0..TYPE_COUNT).filter(|&t| changed[t]) {
                e.types[t] = info.types[t].clone();
                e.current[t] = info.current[t].clone();
            }
        }
    }

    /// The stream is over: out of the registry and the counts.
    fn close(mut self) {
        self.svc.registry.lock().remove(&self.info.id);
        // Lets go of the node's cache entry, if this was the last stream of an undefined node.
        drop(self.snapshots.take());
        self.svc
            .metrics
            .streams_open
            .fetch_sub(1, Ordering::Relaxed);
        if !self.info.node_id.is_empty() {
            info!("stream closed");
        }
        // Leaves the Envoy's group (its other streams stop waiting on this one) before the
        // response channel closes.
        drop(self.membership.take());
    }
}

#[cfg(test)]
mod tests;
