//! The incremental (delta) xDS protocol state of one stream, as a pure state machine.
//!
//! Per resource, we remember the version the client has (or that we told it a name does not
//! exist), and send only what differs. Rules (docs/xds-protocol.md §1): subscription changes are honoured
//! even with a stale nonce; wildcard is `*` or the legacy empty first request; names in
//! `resource_names_subscribe` are sent even if we think the client has them;
//! `initial_resource_versions` on reconnect means only what differs goes out; deleted and unknown
//! subscribed names go in `removed_resources`. Ordering and flow control match the SotW machine:
//! one unacknowledged response per type, EDS after CDS without waiting for its ACK, listeners and routes after both, and removed
//! clusters only once listeners and routes have moved off them.

use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;

use super::group::{Member, Peers};
use super::names::{self, Names};
use super::outgoing::{Outgoing, Selection};
use super::sotw::RequestKind;
use super::{type_index, Resource, Snapshot, TypeSnapshot};
use diff::{diff_known, diff_since, Diff};
use known::{Held, KnownSet};

const CDS: usize = 0;
const EDS: usize = 1;
const LDS: usize = 2;
const RDS: usize = 3;
use super::SDS;

/// The order types are answered in: secrets right after endpoints, since Envoy warms clusters and
/// listeners until their secrets arrive, and never waiting for listeners and routes.
const SEND_ORDER: [usize; super::TYPE_COUNT] = [CDS, EDS, SDS, LDS, RDS];

#[derive(Debug, Clone, Default)]
pub struct DeltaTypeState {
    requested: bool,
    wildcard: bool,
    names: Names,
    /// What the client has, by name.
    known: KnownSet,
    nonce: Option<String>,
    awaiting_ack: bool,
    /// The type snapshot this stream last fully caught up with (nothing held back). Kept whole,
    /// not as its version: the next change is then found by walking the two snapshots side by
    /// side, shared resources compared by pointer, instead of looking every name up in `known`.
    synced: Option<Arc<TypeSnapshot>>,
    /// Subscriptions or what the client holds changed since `synced`: compare resource by
    /// resource even if the snapshot version is the same. Without this flag, every stream would
    /// diff every type on every change of any one type.
    dirty: bool,
    pub acked_version: Option<String>,
    pub nack: Option<(String, String)>,
    sent_version: Option<String>,
    /// The type snapshot version whose additions and updates all went out (removals may be held).
    delivered: Option<String>,
}

impl DeltaTypeState {
    /// [`super::TypeStatus::print`] of this type's status, with the version `due`.
    pub fn status_print(&self, due: Option<&str>) -> u64 {
        let (sent, acked) = (self.sent_version.as_deref(), self.acked_version.as_deref());
        super::TypeStatus::print(self.requested, sent, acked, self.nack.as_ref(), due)
    }

    pub fn status(&self) -> super::TypeStatus {
        super::TypeStatus {
            requested: self.requested,
            sent: self.sent_version.clone(),
            acked: self.acked_version.clone(),
            nack: self.nack.clone(),
        }
    }

    fn interested(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    /// Whether this stream has fully caught up with type snapshot `version`.
    fn synced_at(&self, version: &str) -> bool {
        self.synced.as_ref().is_some_and(|s| s.version == version)
    }
}

#[derive(Debug, Default)]
pub struct DeltaState {
    pub types: [DeltaTypeState; super::TYPE_COUNT],
    next_nonce: u64,
    /// The last [`DeltaState::responses`] held back a change because other streams of the same
    /// Envoy had not settled yet.
    pub held_by_peers: bool,
}

impl DeltaState {
    pub fn new() -> DeltaState {
        DeltaState::default()
    }

    pub fn on_request(&mut self, req: &DeltaDiscoveryRequest) -> RequestKind {
        let Some(t) = type_index(&req.type_url) else {
            return RequestKind::UnknownType;
        };
        let st = &mut self.types[t];
        let first = !st.requested;
        st.requested = true;
        if first
            || !req.resource_names_subscribe.is_empty()
            || !req.resource_names_unsubscribe.is_empty()
        {
            st.dirty = true;
        }
        if first {
            for (name, version) in &req.initial_resource_versions {
                st.known.claimed(name, Held::of(version));
            }
            if req.resource_names_subscribe.is_empty()
                && req.resource_names_unsubscribe.is_empty()
                && (t == CDS || t == LDS)
            {
                st.wildcard = true; // legacy wildcard
            }
        }
        // Subscription changes count whatever the nonce says.
        if !req.resource_names_subscribe.is_empty() || !req.resource_names_unsubscribe.is_empty() {
            let mut names = (*st.names).clone();
            for name in &req.resource_names_subscribe {
                if name == "*" {
                    st.wildcard = true;
                    continue;
                }
                names.insert(name.clone());
                if !(first && req.initial_resource_versions.contains_key(name)) {
                    st.known.remove(name.as_str()); // must be sent even if we think the client has it
                }
            }
            for name in &req.resource_names_unsubscribe {
                if name == "*" {
                    st.wildcard = false;
                    st.known.retain(|n| names.contains(n));
                    continue;
                }
                names.remove(name);
                // The client dropped it. Still covered by wildcard: it will be sent again.
                st.known.remove(name.as_str());
            }
            st.names = names::intern(names);
        }
        if req.response_nonce.is_empty() {
            return RequestKind::Initial;
        }
        if st.nonce.as_deref() != Some(req.response_nonce.as_str()) {
            return RequestKind::Stale;
        }
        st.awaiting_ack = false;
        let version = st.sent_version.clone().unwrap_or_default();
        match &req.error_detail {
            Some(err) => {
                st.nack = Some((version.clone(), err.message.clone()));
                RequestKind::Nack {
                    version,
                    message: err.message.clone(),
                }
            }
            None => {
                st.acked_version = Some(version.clone());
                st.nack = None;
                RequestKind::Ack { version }
            }
        }
    }

    /// How far this stream has delivered type `t`, for the other streams of its Envoy.
    pub fn member(&self, t: usize) -> Member {
        let st = &self.types[t];
        Member {
            type_index: t,
            settled: (st.requested && !st.awaiting_ack)
                .then(|| st.delivered.clone())
                .flatten(),
            names: (!st.wildcard).then(|| st.names.clone()),
        }
    }

    /// The responses to send now, in make-before-break order. `peers` is what the other streams
    /// of the same Envoy have delivered (nothing over ADS, where this stream carries every type).
    pub fn responses(&mut self, snapshot: Option<&Snapshot>, peers: &Peers) -> Vec<Outgoing> {
        self.held_by_peers = false;
        let Some(snap) = snapshot else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for t in SEND_ORDER {
            if (t == LDS || t == RDS) && self.waits_for_earlier_types(t, snap, peers) {
                break;
            }
            let st = &self.types[t];
            if !st.requested || st.awaiting_ack {
                continue;
            }
            // No wait for the CDS ACK: Envoy holds it until the clusters it warms have endpoints
            // (see the SotW machine).
            let ts = &snap.types[t];
            if !st.dirty && st.synced_at(&ts.version) {
                continue;
            }
            let diff = self.diff(t, ts, self.holds_removals(t, snap, peers));
            let st = &mut self.types[t];
            st.delivered = Some(ts.version.clone());
            if diff.held {
                // What went out is not all of `ts`: the next diff must look at `known`.
                st.dirty = true;
            } else {
                st.synced = Some(ts.clone());
                st.dirty = false;
            }
            if diff.resources.is_empty() && diff.removed.is_empty() {
                if !diff.held && st.nack.is_none() {
                    // The client holds this version already (a reconnect's
                    // `initial_resource_versions`): report it so, though nothing was sent.
                    st.sent_version = Some(ts.version.clone());
                    st.acked_version = Some(ts.version.clone());
                }
                continue;
            }
            out.push(self.emit(t, ts, diff));
        }
        out
    }

    /// Listeners and routes (`t` > EDS) wait until clusters and endpoints are acknowledged here
    /// and settled on the Envoy's other streams. Notes when it is the other streams that hold a
    /// change back.
    fn waits_for_earlier_types(&mut self, t: usize, snap: &Snapshot, peers: &Peers) -> bool {
        if self.types[..t].iter().any(|s| s.awaiting_ack) {
            return true;
        }
        if (0..t).any(|u| !peers.settled(u, snap)) {
            self.held_by_peers = (t..=RDS).any(|u| {
                let st = &self.types[u];
                st.requested && (st.dirty || !st.synced_at(&snap.types[u].version))
            });
            return true;
        }
        false
    }

    /// Removed clusters (and their endpoints) wait while listeners or routes still have changes
    /// to take.
    fn holds_removals(&self, t: usize, snap: &Snapshot, peers: &Peers) -> bool {
        (t == CDS || t == EDS)
            && [LDS, RDS].iter().any(|&d| {
                let ds = &self.types[d];
                let own = ds.requested && !ds.synced_at(&snap.types[d].version);
                own || !peers.settled(d, snap)
            })
    }

    /// What type `t`'s client lacks from `ts`: resources it does not have at their version, and
    /// names to remove (unless `hold_removals`).
    fn diff(&self, t: usize, ts: &TypeSnapshot, hold_removals: bool) -> Diff {
        let st = &self.types[t];
        match (&st.synced, st.dirty) {
            (Some(prev), false) => diff_since(st, prev, ts, hold_removals),
            _ => diff_known(st, ts, hold_removals),
        }
    }

    /// The response carrying `diff` for type `t` at snapshot `version`, with a new nonce: the
    /// client is now taken to hold what it carries, and the type awaits its ACK.
    fn emit(&mut self, t: usize, ts: &Arc<TypeSnapshot>, diff: Diff) -> Outgoing {
        let version = &ts.version;
        let st = &mut self.types[t];
        for r in &diff.resources {
            st.known.sent(r.clone());
        }
        for name in &diff.removed {
            if st.names.contains(name) {
                st.known.gone(name);
            } else {
                st.known.remove(name.as_str());
            }
        }
        self.next_nonce += 1;
        let nonce = self.next_nonce.to_string();
        st.nonce = Some(nonce.clone());
        st.awaiting_ack = true;
        st.sent_version = Some(version.clone());
        if t == CDS {
            // Updated clusters finish warming only on fresh endpoints: forget what EDS sent for them.
            let eds = &mut self.types[EDS];
            for r in &diff.resources {
                eds.known.remove(r.name.as_str());
            }
            eds.dirty = true;
        }
        Outgoing {
            type_index: t,
            version: version.clone(),
            nonce,
            resources: Selection::of(ts, version, diff.resources),
            removed: Some(diff.removed),
        }
    }
}

mod diff;
mod known;
#[cfg(test)]
mod tests;
