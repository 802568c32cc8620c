//! The state-of-the-world protocol state of one ADS stream, as a pure state machine.
//!
//! Requests go in (`on_request`), responses come out (`responses`) given the node's current
//! snapshot. Rules (docs/xds-protocol.md §1): one unacknowledged response per type; a request whose nonce
//! is not the latest we sent is stale and ignored; a NACK keeps the version it rejected from being
//! resent; EDS is answered again after every CDS push, and answered while a CDS response is still
//! unacknowledged (Envoy acknowledges CDS only once new clusters have their endpoints); listeners and
//! routes wait until clusters and endpoints are settled (make-before-break); names requested but
//! missing are remembered. A new stream's first request carries the version the Envoy already
//! holds (it reconnected, perhaps to another replica): when that is the version due, nothing is
//! resent (docs/contract.md "Replicas").

use std::collections::BTreeSet;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;

use std::sync::Arc;

use super::group::{Member, Peers};
use super::names::{self, Names};
use super::outgoing::{Outgoing, Selection};
use super::{type_index, Resource, Snapshot, TypeSnapshot};

const CDS: usize = 0;
const EDS: usize = 1;
const LDS: usize = 2;
const RDS: usize = 3;
use super::SDS;

/// The order types are answered in: secrets right after endpoints, since Envoy warms clusters and
/// listeners until their secrets arrive, and never waiting for listeners and routes.
const SEND_ORDER: [usize; super::TYPE_COUNT] = [CDS, EDS, SDS, LDS, RDS];

/// What a request meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// First request for a type on this stream.
    Initial,
    /// Acknowledges the version we sent.
    Ack { version: String },
    /// Rejects the version we sent; Envoy's message.
    Nack { version: String, message: String },
    /// Carries a nonce other than the latest we sent: ignored.
    Stale,
    /// A type this server does not serve.
    UnknownType,
}

#[derive(Debug, Clone, Default)]
pub struct TypeState {
    requested: bool,
    /// Legacy wildcard (no names ever given) or an explicit `*`.
    wildcard: bool,
    names: Names,
    names_changed: bool,
    /// Once any name was requested, an empty list means "nothing", not wildcard (docs/xds-protocol.md §1.11).
    ever_named: bool,
    sent_version: Option<String>,
    nonce: Option<String>,
    awaiting_ack: bool,
    /// Send even if the version is unchanged (EDS after a CDS push).
    force: bool,
    /// The version the first request of this stream said the Envoy holds, until it is compared
    /// with the first snapshot this type is answered from.
    claimed: Option<String>,
    pub acked_version: Option<String>,
    /// Version and Envoy's message of the last NACK, cleared by the next ACK.
    pub nack: Option<(String, String)>,
}

impl TypeState {
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
}

/// SotW state of one stream.
#[derive(Debug, Default)]
pub struct SotwState {
    pub types: [TypeState; super::TYPE_COUNT],
    next_nonce: u64,
    /// The clusters Envoy was last sent, so removals can wait until nothing routes to them.
    /// In name order; the names are the resources' own (no copies per stream).
    sent_clusters: Vec<Arc<Resource>>,
    /// The last [`SotwState::responses`] held back a change because other streams of the same
    /// Envoy had not settled yet.
    pub held_by_peers: bool,
}

impl SotwState {
    pub fn new() -> SotwState {
        SotwState::default()
    }

    pub fn on_request(&mut self, req: &DiscoveryRequest) -> RequestKind {
        let Some(t) = type_index(&req.type_url) else {
            return RequestKind::UnknownType;
        };
        let st = &mut self.types[t];
        let kind = if req.response_nonce.is_empty() {
            RequestKind::Initial
        } else if st.nonce.as_deref() != Some(req.response_nonce.as_str()) {
            return RequestKind::Stale;
        } else if let Some(err) = &req.error_detail {
            let version = st.sent_version.clone().unwrap_or_default();
            st.nack = Some((version.clone(), err.message.clone()));
            RequestKind::Nack {
                version,
                message: err.message.clone(),
            }
        } else {
            st.acked_version = Some(req.version_info.clone());
            st.nack = None;
            RequestKind::Ack {
                version: req.version_info.clone(),
            }
        };
        st.awaiting_ack = false;
        st.requested = true;
        let wildcard = req.resource_names.iter().any(|n| n == "*")
            || (req.resource_names.is_empty() && !st.ever_named && (t == CDS || t == LDS));
        st.ever_named |= !req.resource_names.is_empty();
        let same = names::same(&req.resource_names, &st.names).unwrap_or_else(|| {
            let explicit: BTreeSet<&str> = req
                .resource_names
                .iter()
                .map(String::as_str)
                .filter(|n| *n != "*")
                .collect();
            explicit
                .iter()
                .copied()
                .eq(st.names.iter().map(String::as_str))
        });
        if wildcard != st.wildcard || !same {
            st.wildcard = wildcard;
            let explicit = req.resource_names.iter().filter(|n| *n != "*").cloned();
            st.names = names::intern(explicit.collect());
            st.names_changed = true;
        }
        if kind == RequestKind::Initial {
            // A new stream needs an answer unless it already holds the version due (see `adopt`);
            // a client that lost its state sends no version.
            st.sent_version = None;
            st.claimed = Some(req.version_info.clone()).filter(|v| !v.is_empty());
        }
        kind
    }

    /// How far this stream has delivered type `t`, for the other streams of its Envoy.
    pub fn member(&self, t: usize) -> Member {
        let st = &self.types[t];
        let settled = match st.sent_version.as_deref() {
            // A transitional cluster set (`version+kept`) holds everything of `version`.
            Some(v) if st.requested && !st.awaiting_ack => {
                Some(v.split('+').next().unwrap_or(v).to_string())
            }
            _ => None,
        };
        Member {
            type_index: t,
            settled,
            names: (!st.wildcard).then(|| st.names.clone()),
        }
    }

    /// Whether type `t` has something to send for `snap`.
    fn pending(&self, t: usize, snap: &Snapshot) -> bool {
        let st = &self.types[t];
        st.requested
            && (st.names_changed
                || st.force
                || st.sent_version.as_deref() != Some(snap.types[t].version.as_str()))
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
            if self.adopt(t, snap) {
                continue;
            }
            // EDS never waits for the CDS ACK: over ADS, Envoy withholds that ACK until the clusters
            // it warms have their endpoints, so waiting would stall both until Envoy's 15 s
            // initial-fetch timeout (docs/xds-protocol.md §1.20a). One stream keeps order: endpoints sent
            // after a CDS response reach Envoy after it.
            if let Some((version, selected)) = self.due(t, snap, peers) {
                out.push(self.emit(t, version, selected, &snap.types[t]));
            }
        }
        out
    }

    /// A reconnecting Envoy's first request names the version it holds. Versions are content
    /// hashes, the same on every replica, so when it is the version due the Envoy already has
    /// these resources: take them as sent and acknowledged instead of pushing them again. Not
    /// when a CDS push on this stream owes fresh endpoints (`force`), nor for a transitional
    /// cluster set. The claim is used once, against the first snapshot. True when adopted.
    fn adopt(&mut self, t: usize, snap: &Snapshot) -> bool {
        let Some(claimed) = self.types[t].claimed.take() else {
            return false;
        };
        let ts = &snap.types[t];
        let st = &mut self.types[t];
        if st.force || claimed != ts.version {
            return false;
        }
        if t == CDS {
            self.sent_clusters = ts
                .resources
                .iter()
                .filter(|(name, _)| st.wildcard || st.names.contains(*name))
                .map(|(_, r)| r.clone())
                .collect();
        }
        st.sent_version = Some(claimed.clone());
        st.acked_version = Some(claimed);
        st.names_changed = false;
        true
    }

    /// Listeners and routes (`t` > EDS) wait until clusters and endpoints are settled, on this
    /// stream and on the Envoy's other streams, so a route never points at a cluster Envoy does
    /// not have yet. Notes when it is the other streams that hold a change back.
    fn waits_for_earlier_types(&mut self, t: usize, snap: &Snapshot, peers: &Peers) -> bool {
        if self.types[..t]
            .iter()
            .any(|s| s.awaiting_ack || (s.force && s.requested))
        {
            return true;
        }
        if (0..t).any(|u| !peers.settled(u, snap)) {
            self.held_by_peers = (t..=RDS).any(|u| self.pending(u, snap));
            return true;
        }
        false
    }

    /// The version and resources type `t` owes the client, if anything changed since it was last
    /// sent (the snapshot, the names asked for, or a forced resend).
    fn due(
        &self,
        t: usize,
        snap: &Snapshot,
        peers: &Peers,
    ) -> Option<(String, Vec<Arc<Resource>>)> {
        let st = &self.types[t];
        let ts = &snap.types[t];
        let changed = st.sent_version.as_deref() != Some(ts.version.as_str());
        if !(changed || st.names_changed || st.force) {
            return None;
        }
        let mut version = ts.version.clone();
        let mut selected: Vec<Arc<Resource>> = ts
            .resources
            .iter()
            .filter(|(name, _)| st.wildcard || st.names.contains(*name))
            .map(|(_, r)| r.clone())
            .collect();
        if t == CDS {
            let kept = self.kept_clusters(snap, peers, &selected);
            if !kept.is_empty() {
                version = format!("{}+{}", ts.version, kept.len());
                if st.sent_version.as_deref() == Some(version.as_str())
                    && !st.names_changed
                    && !st.force
                {
                    return None; // already sent this transitional set
                }
                selected.extend(kept);
                selected.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            }
        }
        Some((version, selected))
    }

    /// Make-before-break for removals: while listeners or routes still have to move off a
    /// cluster, keep serving it; drop it once they are acknowledged at their new versions.
    /// The clusters last sent that `selected` no longer has, while that lasts.
    fn kept_clusters(
        &self,
        snap: &Snapshot,
        peers: &Peers,
        selected: &[Arc<Resource>],
    ) -> Vec<Arc<Resource>> {
        let dependents_pending = [LDS, RDS].iter().any(|&d| {
            let ds = &self.types[d];
            let own =
                ds.requested && ds.sent_version.as_deref() != Some(snap.types[d].version.as_str());
            own || !peers.settled(d, snap)
        });
        if !dependents_pending {
            return Vec::new();
        }
        self.sent_clusters
            .iter()
            .filter(|r| {
                selected
                    .binary_search_by(|s| s.name.as_str().cmp(&r.name))
                    .is_err()
            })
            .cloned()
            .collect()
    }

    /// The response carrying `selected` (from `ts`) as `version` of type `t`, with a new nonce;
    /// the type now awaits its ACK.
    fn emit(
        &mut self,
        t: usize,
        version: String,
        selected: Vec<Arc<Resource>>,
        ts: &Arc<TypeSnapshot>,
    ) -> Outgoing {
        if t == CDS {
            self.sent_clusters = selected.clone();
            // Envoy finishes warming an updated cluster only on a fresh EDS response.
            self.types[EDS].force = true;
        }
        let resources = Selection::of(ts, &version, selected);
        self.next_nonce += 1;
        let nonce = self.next_nonce.to_string();
        let st = &mut self.types[t];
        st.sent_version = Some(version.clone());
        st.nonce = Some(nonce.clone());
        st.awaiting_ack = true;
        st.names_changed = false;
        st.force = false;
        Outgoing {
            type_index: t,
            version,
            nonce,
            resources,
            removed: None,
        }
    }
}

#[cfg(test)]
mod tests;
