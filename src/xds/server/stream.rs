//! One xDS stream, driven by its HTTP/2 response body: each time the body wants its next frame,
//! [`Stream::poll_next`] hands out the next response worked out, or waits for the next event (a
//! request, a new snapshot of the node, a change among the Envoy's other streams, the hold on
//! them running out, the end) and hands it to its handler (requests: [`request`]); after any event
//! that may make something due, [`Stream::respond`] works it out. Everything the stream keeps
//! between events is in [`Stream`].
//!
//! No task and no channel of its own: the body is polled by the HTTP/2 stream's task, only when
//! the client has room for more (back-pressure), so a slow Envoy holds up only its own stream, and
//! a stream whose client went away is dropped with its body (see [`Stream::close`]).

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tonic::Status;
use tracing::{debug, info, warn};

use super::{Protocol, StreamInfo, XdsMetrics, XdsService};
use crate::xds::auth::PeerIdentity;
use crate::xds::cache::Subscription;
use crate::xds::group::{Membership, Peers};
use crate::xds::grpc::{Outbound, Requests, Source};
use crate::xds::metrics::StreamRefusal;
use crate::xds::outgoing::Outgoing;
use crate::xds::variants::Hold;
use crate::xds::{type_index, type_short, Snapshot, SourceMode, TypeStatus, TYPE_COUNT};

mod request;
mod wait;

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
    inbound: Requests<P::Req>,
    /// Until the first request names the node: when the stream gives up waiting for it.
    first_request: Option<Pin<Box<Sleep>>>,
    /// Responses worked out and not yet handed to the body, in order.
    pending: Option<std::vec::IntoIter<Outgoing>>,
    /// No more events are handled: what is pending, then this status (OK if none), end it.
    over: bool,
    ending: Option<Box<Status>>,
    /// The wait for everything but requests, made when first polled (see [`wait`]).
    wait: Option<wait::Wait<P::Req>>,
    /// The one type a per-type stream serves; `None` over ADS.
    only: Option<&'static str>,
    /// Per-type streams: the claim on the variant whose resources point at per-type services on
    /// the bootstrap's cluster for meshplane (`Err` when too many variants are claimed).
    variant: Result<Option<Hold>, Status>,
    id: u64,
    /// This stream's entry for the registry, until the first request names the node and it
    /// moves there.
    info: Option<Box<StreamInfo>>,
    /// In the registry: its status is published there.
    registered: bool,
    /// Per type, [`TypeStatus::print`] of the status last published (`None`: never).
    ///
    /// [`TypeStatus::print`]: crate::xds::TypeStatus::print
    published: [Option<u64>; TYPE_COUNT],
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
        inbound: Requests<P::Req>,
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
        let first_request = Some(Box::pin(tokio::time::sleep(svc.limits.handshake_timeout)));
        let mut stream = Stream {
            end_of_life,
            shutdown: svc.shutdown.clone(),
            svc,
            inbound,
            first_request,
            pending: None,
            over: false,
            ending: None,
            wait: None,
            only,
            variant,
            id,
            info: Some(Box::new(info)),
            registered: false,
            published: [None; TYPE_COUNT],
            converged: Default::default(),
            view: None,
            state: P::default(),
            snapshots: None,
            membership: None,
            peer_changes: None,
            held_since: None,
            identity: None,
        };
        if let Err(status) = &stream.variant {
            let status = status.clone();
            stream.refuse(status, None);
        }
        stream
    }

    /// The identity the client's TLS certificate carries (none without TLS).
    pub(super) fn with_identity(mut self, identity: Option<Box<PeerIdentity>>) -> Stream<P> {
        if let Some(info) = self.info.as_mut() {
            info.identity = identity.as_ref().map(|p| p.uris.clone());
        }
        self.identity = identity;
        self
    }

    /// The stream's next response (or its final status), once there is one; `None` once it is
    /// over. One event at a time, until the client, a limit or the server ends it.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        loop {
            if let Some(resp) = self.pending.as_mut().and_then(Iterator::next) {
                return Poll::Ready(Some(Outbound::Message(self.encode(resp))));
            }
            self.pending = None;
            if self.over {
                return Poll::Ready(self.ending.take().map(|s| Outbound::End(*s)));
            }
            let event = ready!(self.poll_event(cx));
            // What the stream waits on may have changed (its node named, its view moved on).
            self.wait = None;
            match self.handle(event) {
                Next::Stop => self.end(),
                Next::Wait => {}
                Next::Respond => self.respond(),
            }
        }
    }

    /// What the loop does with `event`.
    fn handle(&mut self, event: Event<P::Req>) -> Next {
        match event {
            Event::End => Next::Stop,
            Event::Aged => {
                info!("stream reached --xds-max-stream-age; closing it so the Envoy reconnects");
                let aged = &self.svc.metrics.streams_aged;
                aged.fetch_add(1, Ordering::Relaxed);
                Next::Stop
            }
            Event::Refuse(status, why) => self.refuse(status, why),
            Event::Snapshot => Next::Respond,
            Event::Request(req) => self.on_request(req),
        }
    }

    /// A limit, or a request that does not decode: the stream ends with its status.
    fn refuse(&mut self, status: Status, why: Option<StreamRefusal>) -> Next {
        if let Some(why) = why {
            warn!(reason = why.label(), error = %status.message(), "stream refused");
            self.svc.metrics.refused(why);
        }
        self.fail(status)
    }

    /// Ends the stream with `status`, once what is pending has gone out.
    fn fail(&mut self, status: Status) -> Next {
        self.ending = Some(Box::new(status));
        self.end();
        Next::Stop
    }

    /// Works out what is due for the node's latest snapshot, then tells the Envoy's other streams
    /// and the registry where this stream stands.
    fn respond(&mut self) {
        // The group as of now is what counts: seen, so the next wait waits for the next change
        // (the wait's clone of the receiver marks only itself).
        if let Some(rx) = self.peer_changes.as_mut() {
            rx.borrow_and_update();
        }
        let snap = self.snapshot_for_stream();
        let peers = self.peers();
        let responses = self.state.responses(snap.as_deref(), &peers);
        if self.state.held_by_peers() {
            self.held_since.get_or_insert_with(Instant::now);
        } else {
            self.held_since = None;
        }
        self.view = snap;
        self.pending = Some(responses.into_iter());
        if let (Some(m), Some(t)) = (&self.membership, self.only.and_then(type_index)) {
            m.update(self.state.member(t));
        }
        self.publish_status();
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

    /// `resp` on the wire, counted as it goes.
    fn encode(&self, resp: Outgoing) -> crate::xds::wire::Encoded {
        let t = resp.type_index;
        debug!(r#type = type_short(t), version = %resp.version, resources = resp.count(), "push");
        let m = &self.svc.metrics;
        XdsMetrics::count(&m.responses, &m.responses_by_type, Some(t), 1);
        let bytes = resp.bytes() as u64;
        XdsMetrics::count(&m.response_bytes, &m.bytes_by_type, Some(t), bytes);
        resp.encode()
    }

    /// Updates the registry's entry, for status reports: the types whose status or due version
    /// changed since the last call, under the shared lock only when one did. It runs after every
    /// request and push, so the stream keeps a fingerprint per type rather than a copy of what
    /// it published (copying every version to compare was a twentieth of a push's CPU).
    fn publish_status(&mut self) {
        if !self.registered {
            return;
        }
        let mut changed: [Option<(TypeStatus, Option<String>)>; TYPE_COUNT] = Default::default();
        for (t, changed) in changed.iter_mut().enumerate() {
            // The version this stream should converge to: its view of the node's snapshot.
            let due = self.view.as_ref().map(|s| s.types[t].version.as_str());
            let print = Some(self.state.status_print(t, due));
            if self.published[t] != print {
                self.published[t] = print;
                *changed = Some((self.state.status(t), due.map(str::to_string)));
            }
        }
        if changed.iter().all(Option::is_none) {
            return;
        }
        if let Some(e) = self.svc.registry.lock().get_mut(&self.id) {
            for (t, c) in changed.into_iter().enumerate() {
                if let Some((status, due)) = c {
                    e.types[t] = status;
                    e.current[t] = due;
                }
            }
        }
    }

    /// No more events: the stream is over once what is pending has gone out.
    fn end(&mut self) {
        if !self.over {
            self.over = true;
            self.close();
        }
    }

    /// The stream is over (its events, or its body dropped, when the client went away): out of
    /// the registry and the counts.
    fn close(&mut self) {
        // First: it holds clones of the receivers (the cache counts a node's receivers).
        self.wait = None;
        if self.registered {
            self.svc.registry.lock().remove(&self.id);
        }
        // Lets go of the node's cache entry, if this was the last stream of an undefined node.
        drop(self.snapshots.take());
        self.svc
            .metrics
            .streams_open
            .fetch_sub(1, Ordering::Relaxed);
        if self.registered {
            info!("stream closed");
        }
        // Leaves the Envoy's group, so its other streams stop waiting on this one.
        drop(self.membership.take());
        drop(self.peer_changes.take());
    }
}

impl<P: Protocol> Source for Stream<P> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        Stream::poll_next(self, cx)
    }
}

impl<P: Protocol> Drop for Stream<P> {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests;
