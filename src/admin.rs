//! The admin HTTP API (loopback by default): the router, and the small handlers of liveness,
//! readiness, the published nodes (`/nodes`), the resources served to one node (`/resources`) and
//! the current load result (`/load`, `LoadReport`). The rest has a module each: `proxies` (the sync
//! state of every connected proxy, `/proxies`), `metrics` (the Prometheus text, `/metrics`) and
//! `page` (the live topology page at `/`).

mod auth;
mod metrics;
mod page;
mod proxies;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::diag::Problem;
use crate::model::ProxyId;
use crate::report::Published;
use crate::xds::server::{Registry, XdsMetrics};

pub use auth::{require_token, OPEN_PATHS};
pub use metrics::render_metrics;
pub use proxies::{
    proxy_page, proxy_reports, ProxyReport, SyncState, TypeReport, NACKED_HEADER, PROXIES_LIMIT,
    TOTAL_HEADER,
};

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
        .route("/metrics", get(metrics::handler))
        .route("/proxies", get(proxies::handler))
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
            "node must be mesh/<mesh>/virtualNode/<name>, mesh/<mesh>/virtualGateway/<name> or an App Mesh ARN\n",
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
