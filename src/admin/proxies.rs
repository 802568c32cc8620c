//! The proxies' side of the admin API: each connected stream's per-type sync state (`SyncState`,
//! `ProxyReport`), the ordered, limited page of them that `GET /proxies` returns (with the total and
//! NACKED counts in response headers), and that handler. `meshplane status` and the topology page read
//! the same reports. A report also says who the proxy proved to be (its xDS client certificate's URI
//! SANs, on a port with mutual TLS) and, for a proxy served secrets, the certificate it is served (names,
//! serial, expiry: never the key) and where SDS stands.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::AdminState;
use crate::ca::{served_certificate, ServedCertificate, IDENTITY_SECRET};
use crate::model::ProxyId;
use crate::report::Published;
use crate::xds::server::{Registry, StreamInfo, TypeStatus};
use crate::xds::{type_short, Snapshot, SDS, TYPE_COUNT};

/// The configuration types a report's `types` shows (CDS, EDS, LDS, RDS); secrets are `sds`.
const CONFIG_TYPES: usize = 4;

/// Where one resource type of one proxy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncState {
    /// Envoy acknowledged the newest version.
    #[serde(rename = "SYNCED")]
    Synced,
    /// A newer version exists than the one Envoy acknowledged (or it is on its way).
    #[serde(rename = "STALE")]
    Stale,
    /// Envoy rejected the last version sent.
    #[serde(rename = "NACKED")]
    Nacked,
    /// Nothing of this type was sent (not requested, or nothing to send yet).
    #[serde(rename = "NOT SENT")]
    NotSent,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "SYNCED",
            SyncState::Stale => "STALE",
            SyncState::Nacked => "NACKED",
            SyncState::NotSent => "NOT SENT",
        }
    }

    pub fn of(ts: &TypeStatus, current: Option<&str>) -> SyncState {
        if !ts.requested || ts.sent.is_none() {
            SyncState::NotSent
        } else if ts.nack.is_some() {
            SyncState::Nacked
        } else if ts.acked.is_some() && ts.acked == ts.sent && ts.sent.as_deref() == current {
            SyncState::Synced
        } else {
            SyncState::Stale
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TypeReport {
    pub state: SyncState,
    pub sent: Option<String>,
    pub acked: Option<String>,
    /// Envoy's message for the last NACK.
    pub nack: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProxyReport {
    pub node_id: String,
    pub mesh: Option<String>,
    pub node: Option<String>,
    /// False when the node id names nothing in the loaded mesh.
    pub known: bool,
    pub peer: String,
    pub mode: String,
    /// Seconds since the Unix epoch.
    pub connected_since: u64,
    /// CDS, EDS, LDS, RDS.
    pub types: BTreeMap<String, TypeReport>,
    /// The URI SANs of the proxy's xDS client certificate; absent on a plaintext xDS port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xds_identity: Option<Vec<String>>,
    /// SDS on this stream, when the proxy is served secrets (or asked for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sds: Option<TypeReport>,
    /// The certificate of its `meshplane/identity` secret, from meshplane's CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<ServedCertificate>,
}

impl ProxyReport {
    /// The worst state over the types this proxy uses, secrets included.
    pub fn state(&self) -> SyncState {
        let states: Vec<SyncState> = self
            .types
            .values()
            .chain(self.sds.iter())
            .map(|t| t.state)
            .collect();
        for s in [SyncState::Nacked, SyncState::Stale, SyncState::Synced] {
            if states.contains(&s) {
                return s;
            }
        }
        SyncState::NotSent
    }
}

fn type_report(s: &StreamInfo, t: usize) -> TypeReport {
    let ts = &s.types[t];
    TypeReport {
        state: SyncState::of(ts, s.current[t].as_deref()),
        sent: ts.sent.clone(),
        acked: ts.acked.clone(),
        nack: ts.nack.as_ref().map(|n| n.1.clone()),
    }
}

/// SDS's state, if the node has secrets or the stream asked for some; the identity certificate.
fn secrets(
    s: &StreamInfo,
    snap: Option<&Snapshot>,
) -> (Option<TypeReport>, Option<ServedCertificate>) {
    let served = snap.map(|n| &n.types[SDS].resources);
    let has = served.is_some_and(|r| !r.is_empty());
    let sds = (has || s.types[SDS].requested).then(|| type_report(s, SDS));
    let certificate = served
        .and_then(|r| r.get(IDENTITY_SECRET))
        .and_then(|r| served_certificate(&r.any));
    (sds, certificate)
}

fn report(s: &StreamInfo, pipeline: &Published) -> ProxyReport {
    let id = ProxyId::parse(&s.node_id);
    let snap = s.node_key.as_ref().and_then(|k| pipeline.cache.get(k));
    let known = snap.is_some();
    let types = (0..CONFIG_TYPES)
        .map(|t| (type_short(t).to_string(), type_report(s, t)))
        .collect();
    let (sds, certificate) = secrets(s, snap.as_deref());
    ProxyReport {
        node_id: s.node_id.clone(),
        mesh: id.as_ref().map(|i| i.mesh.clone()),
        node: id.as_ref().map(|i| i.name.clone()),
        known,
        peer: s.peer.clone(),
        mode: s.mode.clone(),
        connected_since: s
            .connected_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        types,
        xds_identity: s.identity.clone(),
        sds,
        certificate,
    }
}

/// Every connected stream that has identified its node.
pub fn proxy_reports(pipeline: &Published, registry: &Registry) -> Vec<ProxyReport> {
    proxy_page(pipeline, registry, usize::MAX).0
}

/// How many proxies `GET /proxies` (and `meshplane status`) lists unless asked for another
/// `?limit=`: a page a person can read and a response of a few hundred KB, with 20,000 streams open.
pub const PROXIES_LIMIT: usize = 1000;
/// Response header of `GET /proxies`: how many proxies there are in all.
pub const TOTAL_HEADER: &str = "x-total-count";
/// Response header of `GET /proxies`: how many of them (listed or not) are NACKED.
pub const NACKED_HEADER: &str = "x-nacked-count";

/// The first `limit` proxies in (node id, mode, peer) order, how many there are in all, and how
/// many are NACKED. Only the listed ones are turned into reports.
pub fn proxy_page(
    pipeline: &Published,
    registry: &Registry,
    limit: usize,
) -> (Vec<ProxyReport>, usize, usize) {
    let mut streams: Vec<StreamInfo> = registry
        .list()
        .into_iter()
        .filter(|s| !s.node_id.is_empty())
        .collect();
    let nacked = streams
        .iter()
        .filter(|s| {
            (0..TYPE_COUNT)
                .any(|t| SyncState::of(&s.types[t], s.current[t].as_deref()) == SyncState::Nacked)
        })
        .count();
    let total = streams.len();
    let order = |a: &StreamInfo, b: &StreamInfo| {
        (&a.node_id, &a.mode, &a.peer).cmp(&(&b.node_id, &b.mode, &b.peer))
    };
    if limit < total {
        streams.select_nth_unstable_by(limit, order);
        streams.truncate(limit);
    }
    streams.sort_by(order);
    let page = streams.iter().map(|s| report(s, pipeline)).collect();
    (page, total, nacked)
}

#[derive(Deserialize)]
pub(super) struct ProxiesQuery {
    limit: Option<usize>,
}

pub(super) async fn handler(
    State(s): State<AdminState>,
    Query(q): Query<ProxiesQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(PROXIES_LIMIT);
    let (page, total, nacked) = proxy_page(&s.pipeline, &s.registry, limit);
    (
        [
            (TOTAL_HEADER, total.to_string()),
            (NACKED_HEADER, nacked.to_string()),
        ],
        Json(page),
    )
        .into_response()
}
