//! The two protocol flavours behind one trait, so the stream ([`super::stream`]) is written
//! once for state-of-the-world and delta: the request/response types, and the state machines
//! (`sotw`, `delta`) that map one to the other.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};

use crate::xds::delta::DeltaState;
use crate::xds::group::{Member, Peers};
use crate::xds::outgoing::Outgoing;
use crate::xds::sotw::{RequestKind, SotwState};
use crate::xds::{Snapshot, TypeStatus};

/// A protocol flavour: the request/response types and the state machine that maps one to the other.
pub trait Protocol: Default + Send + 'static {
    /// `Sync` too: a stream's handlers keep a request borrowed while they wait to answer it.
    type Req: prost::Message + Default + Send + Sync + 'static;
    const DELTA: bool;
    fn node(req: &Self::Req) -> Option<&Node>;
    fn type_url(req: &mut Self::Req) -> &mut String;
    fn nonce(req: &Self::Req) -> &str;
    fn on_request(&mut self, req: &Self::Req) -> RequestKind;
    fn responses(&mut self, snap: Option<&Snapshot>, peers: &Peers) -> Vec<Outgoing>;
    /// How far the stream has delivered type `t` (for per-type streams' [`Group`]).
    ///
    /// [`Group`]: crate::xds::group::Group
    fn member(&self, t: usize) -> Member;
    /// The last `responses` held back a change for the other streams of the Envoy.
    fn held_by_peers(&self) -> bool;
    fn status(&self, t: usize) -> TypeStatus;
    /// [`TypeStatus::print`] of `status(t)` and the version `due`, without copying them.
    fn status_print(&self, t: usize, due: Option<&str>) -> u64;
}

impl Protocol for SotwState {
    type Req = DiscoveryRequest;
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
    fn responses(&mut self, snap: Option<&Snapshot>, peers: &Peers) -> Vec<Outgoing> {
        SotwState::responses(self, snap, peers)
    }
    fn member(&self, t: usize) -> Member {
        SotwState::member(self, t)
    }
    fn held_by_peers(&self) -> bool {
        self.held_by_peers
    }
    fn status(&self, t: usize) -> TypeStatus {
        self.types[t].status()
    }
    fn status_print(&self, t: usize, due: Option<&str>) -> u64 {
        self.types[t].status_print(due)
    }
}

impl Protocol for DeltaState {
    type Req = DeltaDiscoveryRequest;
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
    fn responses(&mut self, snap: Option<&Snapshot>, peers: &Peers) -> Vec<Outgoing> {
        DeltaState::responses(self, snap, peers)
    }
    fn member(&self, t: usize) -> Member {
        DeltaState::member(self, t)
    }
    fn held_by_peers(&self) -> bool {
        self.held_by_peers
    }
    fn status(&self, t: usize) -> TypeStatus {
        self.types[t].status()
    }
    fn status_print(&self, t: usize, due: Option<&str>) -> u64 {
        self.types[t].status_print(due)
    }
}
