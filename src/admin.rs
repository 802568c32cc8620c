//! The admin HTTP API (loopback by default): liveness, readiness, Prometheus metrics, the status of
//! every connected proxy, the resources served to a node, the current load result, and the live
//! topology page at `/` (`page`).

mod page;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::diag::Problem;
use crate::model::ProxyId;
use crate::report::Published;
use crate::xds::server::{Registry, StreamInfo, TypeStatus, XdsMetrics};
use crate::xds::type_short;

#[derive(Clone)]
struct AdminState {
    pipeline: Published,
    metrics: Arc<XdsMetrics>,
    registry: Arc<Registry>,
}

pub fn router(pipeline: Published, metrics: Arc<XdsMetrics>, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(page::handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/proxies", get(proxies))
        .route("/nodes", get(nodes))
        .route("/resources", get(resources))
        .route("/load", get(load))
        .with_state(AdminState {
            pipeline,
            metrics,
            registry,
        })
}

/// Ready only once a valid configuration is published, so reconnecting Envoys never get an empty mesh.
async fn readyz(State(s): State<AdminState>) -> (StatusCode, &'static str) {
    if s.pipeline.status().ready {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no valid configuration loaded yet\n",
        )
    }
}

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
}

impl ProxyReport {
    /// The worst state over the types this proxy uses.
    pub fn state(&self) -> SyncState {
        let states: Vec<SyncState> = self.types.values().map(|t| t.state).collect();
        for s in [SyncState::Nacked, SyncState::Stale, SyncState::Synced] {
            if states.contains(&s) {
                return s;
            }
        }
        SyncState::NotSent
    }
}

fn report(s: &StreamInfo, pipeline: &Published) -> ProxyReport {
    let id = ProxyId::parse(&s.node_id);
    let known = s
        .node_key
        .as_ref()
        .is_some_and(|k| pipeline.cache.get(k).is_some());
    let types = (0..4)
        .map(|t| {
            let ts = &s.types[t];
            let r = TypeReport {
                state: SyncState::of(ts, s.current[t].as_deref()),
                sent: ts.sent.clone(),
                acked: ts.acked.clone(),
                nack: ts.nack.as_ref().map(|n| n.1.clone()),
            };
            (type_short(t).to_string(), r)
        })
        .collect();
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
            (0..4).any(|t| SyncState::of(&s.types[t], s.current[t].as_deref()) == SyncState::Nacked)
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
struct ProxiesQuery {
    limit: Option<usize>,
}

async fn proxies(State(s): State<AdminState>, Query(q): Query<ProxiesQuery>) -> Response {
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

#[derive(Debug, Serialize, Deserialize)]
pub struct NodeEntry {
    pub node_id: String,
    pub versions: [String; 4],
}

async fn nodes(State(s): State<AdminState>) -> Json<Vec<NodeEntry>> {
    let cache = &s.pipeline.cache;
    Json(
        cache
            .keys()
            .into_iter()
            .filter_map(|k| {
                cache.get(&k).map(|snap| NodeEntry {
                    versions: snap.versions().map(str::to_owned),
                    node_id: k,
                })
            })
            .collect(),
    )
}

#[derive(Deserialize)]
struct NodeQuery {
    node: String,
}

async fn resources(State(s): State<AdminState>, Query(q): Query<NodeQuery>) -> Response {
    let Some(id) = ProxyId::parse(&q.node) else {
        return (
            StatusCode::BAD_REQUEST,
            "node must be mesh/<mesh>/virtualNode/<name> or an App Mesh ARN\n",
        )
            .into_response();
    };
    match s.pipeline.cache.get(&id.to_string()) {
        Some(snap) => Json(crate::inspect::node_view(&id.to_string(), &snap)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no configuration for {id}\n"),
        )
            .into_response(),
    }
}

/// The current load result, as `GET /load` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadReport {
    pub valid: bool,
    pub ready: bool,
    pub files: Vec<String>,
    pub problems: Vec<ProblemReport>,
    pub warnings: Vec<ProblemReport>,
    pub reloads_accepted: u64,
    pub reloads_rejected: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProblemReport {
    pub file: String,
    pub line: usize,
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ProblemReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

fn problems(ps: &[Problem]) -> Vec<ProblemReport> {
    ps.iter()
        .map(|p| ProblemReport {
            file: p.file.display().to_string(),
            line: p.line,
            path: p.path.clone(),
            message: p.message.clone(),
        })
        .collect()
}

async fn load(State(s): State<AdminState>) -> Json<LoadReport> {
    let st = s.pipeline.status();
    Json(LoadReport {
        valid: st.last.model.is_some(),
        ready: st.ready,
        files: st
            .last
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
        problems: problems(&st.last.problems),
        warnings: problems(&st.last.warnings),
        reloads_accepted: st.reloads_accepted,
        reloads_rejected: st.reloads_rejected,
    })
}

async fn metrics_text(State(s): State<AdminState>) -> impl IntoResponse {
    let body = render_metrics(&s.pipeline, &s.metrics, &s.registry);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Prometheus text exposition of every meshplane metric.
pub fn render_metrics(pipeline: &Published, m: &XdsMetrics, registry: &Registry) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let mut by_mode: BTreeMap<String, u64> = BTreeMap::new();
    for mode in [
        "ADS",
        "ADS delta",
        "CDS",
        "CDS delta",
        "EDS",
        "EDS delta",
        "LDS",
        "LDS delta",
        "RDS",
        "RDS delta",
    ] {
        by_mode.insert(mode.into(), 0);
    }
    for s in registry.list() {
        *by_mode.entry(s.mode).or_default() += 1;
    }
    let modes: Vec<(String, f64)> = by_mode
        .iter()
        .map(|(k, v)| (format!("{{mode=\"{k}\"}}"), *v as f64))
        .collect();
    family(
        "meshplane_connected_proxies",
        "gauge",
        "Open xDS streams by transport mode.",
        &modes,
    );
    let total =
        |v: &std::sync::atomic::AtomicU64| vec![(String::new(), v.load(Ordering::Relaxed) as f64)];
    family(
        "meshplane_xds_streams_total",
        "counter",
        "xDS streams opened.",
        &total(&m.streams_total),
    );
    let per_type = |a: &crate::xds::metrics::PerType| -> Vec<(String, f64)> {
        (0..4)
            .map(|t| {
                (
                    format!("{{type=\"{}\"}}", type_short(t)),
                    a[t].load(Ordering::Relaxed) as f64,
                )
            })
            .collect()
    };
    family(
        "meshplane_xds_pushes_total",
        "counter",
        "xDS responses sent, by resource type.",
        &per_type(&m.responses_by_type),
    );
    family(
        "meshplane_xds_push_bytes_total",
        "counter",
        "Encoded resource bytes sent, by resource type.",
        &per_type(&m.bytes_by_type),
    );
    family(
        "meshplane_xds_acks_total",
        "counter",
        "ACKs received, by resource type.",
        &per_type(&m.acks_by_type),
    );
    family(
        "meshplane_xds_nacks_total",
        "counter",
        "NACKs received, by resource type.",
        &per_type(&m.nacks_by_type),
    );
    family(
        "meshplane_xds_stale_nonces_total",
        "counter",
        "Requests with a stale nonce, by resource type.",
        &per_type(&m.stale_by_type),
    );
    let (accepted, rejected, panics, problems, warnings, valid, nodes) = {
        let st = pipeline.status();
        (
            st.reloads_accepted,
            st.reloads_rejected,
            st.reload_panics,
            st.last.problems.len(),
            st.last.warnings.len(),
            st.last.model.is_some(),
            pipeline.cache.published(),
        )
    };
    family(
        "meshplane_reloads_total",
        "counter",
        "Configuration reloads, by result.",
        &[
            ("{result=\"accepted\"}".into(), accepted as f64),
            ("{result=\"rejected\"}".into(), rejected as f64),
        ],
    );
    family(
        "meshplane_reload_panics_total",
        "counter",
        "Reloads that panicked (a bug; counted as rejected, the last good configuration kept).",
        &[(String::new(), panics as f64)],
    );
    family(
        "meshplane_config_errors",
        "gauge",
        "Problems in the files on disk (0 when valid).",
        &[(String::new(), problems as f64)],
    );
    family(
        "meshplane_config_warnings",
        "gauge",
        "Fields loaded but not translated yet.",
        &[(String::new(), warnings as f64)],
    );
    family(
        "meshplane_config_valid",
        "gauge",
        "1 when the files on disk validate.",
        &[(String::new(), f64::from(u8::from(valid)))],
    );
    family(
        "meshplane_nodes",
        "gauge",
        "Nodes with a published configuration.",
        &[(String::new(), nodes as f64)],
    );
    family(
        "meshplane_cache_entries",
        "gauge",
        "Snapshot cache entries: published nodes, and undefined node ids with an open stream.",
        &[(String::new(), pipeline.cache.len() as f64)],
    );
    m.render_limits(&mut family);
    let (buckets, count, sum) = m.convergence.snapshot();
    let mut samples: Vec<(String, f64)> = buckets
        .iter()
        .map(|(le, c)| (format!("_bucket{{le=\"{le}\"}}"), *c as f64))
        .collect();
    samples.push(("_bucket{le=\"+Inf\"}".into(), count as f64));
    samples.push(("_sum".into(), sum));
    samples.push(("_count".into(), count as f64));
    family(
        "meshplane_convergence_seconds",
        "histogram",
        "From a file change to Envoy's ACK of the version it produced, per proxy and type.",
        &samples,
    );
    out
}
