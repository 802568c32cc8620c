//! The admin HTTP API: liveness, readiness, and the current load result.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::app::Pipeline;
use crate::xds::server::XdsMetrics;

#[derive(Clone)]
struct AdminState {
    pipeline: Pipeline,
    metrics: Arc<XdsMetrics>,
}

pub fn router(pipeline: Pipeline, metrics: Arc<XdsMetrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/config", get(config))
        .with_state(AdminState { pipeline, metrics })
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

async fn config(State(s): State<AdminState>) -> Json<Value> {
    let st = s.pipeline.status();
    let list = |ps: &[crate::diag::Problem]| -> Vec<Value> {
        ps.iter()
            .map(|p| json!({"file": p.file, "line": p.line, "path": p.path, "message": p.message}))
            .collect()
    };
    Json(json!({
        "valid": st.last.model.is_some(),
        "ready": st.ready,
        "files": st.last.files,
        "problems": list(&st.last.problems),
        "warnings": list(&st.last.warnings),
        "reloads": {"total": st.reloads, "accepted": st.reloads_accepted, "rejected": st.reloads_rejected},
        "xds": {
            "streams_open": s.metrics.streams_open.load(Ordering::Relaxed),
            "responses": s.metrics.responses.load(Ordering::Relaxed),
            "acks": s.metrics.acks.load(Ordering::Relaxed),
            "nacks": s.metrics.nacks.load(Ordering::Relaxed),
        },
    }))
}
