//! The Prometheus text exposition at `GET /metrics`: every meshplane metric family, in a fixed order
//! (streams, per-type xDS counters, configuration and cache, the xDS server's limits, convergence).
//! Names, help texts and label sets are part of what dashboards and alerts are written against.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AdminState;
use crate::report::Published;
use crate::xds::metrics::PerType;
use crate::xds::server::{Registry, XdsMetrics};
use crate::xds::type_short;

/// One sample: its label set (`{k="v"}`, a suffix such as `_bucket{le="1"}`, or empty) and value.
type Sample = (String, f64);

pub(super) async fn handler(State(s): State<AdminState>) -> impl IntoResponse {
    let body = render_metrics(&s.pipeline, &s.metrics, &s.registry);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Prometheus text exposition of every meshplane metric.
pub fn render_metrics(pipeline: &Published, m: &XdsMetrics, registry: &Registry) -> String {
    let mut out = String::new();
    streams(&mut out, m, registry);
    per_type(&mut out, m);
    config(&mut out, pipeline);
    m.render_limits(&mut |name, kind, help, samples| family(&mut out, name, kind, help, samples));
    crate::xds::auth::render(m, &mut |name, kind, help, samples| {
        family(&mut out, name, kind, help, samples)
    });
    convergence(&mut out, m);
    out
}

/// Appends one family: its HELP and TYPE lines, then one line per sample.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[Sample]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// An unlabelled sample.
fn one(v: f64) -> [Sample; 1] {
    [(String::new(), v)]
}

/// Every transport mode, so that a mode without streams is exported as 0 rather than missing.
const MODES: [&str; 10] = [
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
];

/// Open streams by mode, and streams opened.
fn streams(out: &mut String, m: &XdsMetrics, registry: &Registry) {
    let mut by_mode: BTreeMap<String, u64> = MODES.iter().map(|k| (k.to_string(), 0)).collect();
    for s in registry.list() {
        *by_mode.entry(s.mode).or_default() += 1;
    }
    let modes: Vec<Sample> = by_mode
        .iter()
        .map(|(k, v)| (format!("{{mode=\"{k}\"}}"), *v as f64))
        .collect();
    family(
        out,
        "meshplane_connected_proxies",
        "gauge",
        "Open xDS streams by transport mode.",
        &modes,
    );
    family(
        out,
        "meshplane_xds_streams_total",
        "counter",
        "xDS streams opened.",
        &one(load(&m.streams_total)),
    );
    family(
        out,
        "meshplane_xds_streams_aged_total",
        "counter",
        "xDS streams closed at --xds-max-stream-age, so their Envoys reconnect.",
        &one(load(&m.streams_aged)),
    );
}

fn load(v: &AtomicU64) -> f64 {
    v.load(Ordering::Relaxed) as f64
}

/// The counters kept per resource type: responses, bytes, ACKs, NACKs, stale nonces.
fn per_type(out: &mut String, m: &XdsMetrics) {
    let families: [(&str, &str, &PerType); 5] = [
        (
            "meshplane_xds_pushes_total",
            "xDS responses sent, by resource type.",
            &m.responses_by_type,
        ),
        (
            "meshplane_xds_push_bytes_total",
            "Encoded resource bytes sent, by resource type.",
            &m.bytes_by_type,
        ),
        (
            "meshplane_xds_acks_total",
            "ACKs received, by resource type.",
            &m.acks_by_type,
        ),
        (
            "meshplane_xds_nacks_total",
            "NACKs received, by resource type.",
            &m.nacks_by_type,
        ),
        (
            "meshplane_xds_stale_nonces_total",
            "Requests with a stale nonce, by resource type.",
            &m.stale_by_type,
        ),
    ];
    for (name, help, counters) in families {
        let samples: Vec<Sample> = (0..4)
            .map(|t| {
                (
                    format!("{{type=\"{}\"}}", type_short(t)),
                    load(&counters[t]),
                )
            })
            .collect();
        family(out, name, "counter", help, &samples);
    }
}

/// Reloads, the state of the files on disk, and the snapshot cache.
fn config(out: &mut String, pipeline: &Published) {
    let st = pipeline.status();
    let (problems, warnings) = (st.last.problems.len(), st.last.warnings.len());
    let valid = st.last.model.is_some();
    family(
        out,
        "meshplane_reloads_total",
        "counter",
        "Configuration reloads, by result.",
        &[
            ("{result=\"accepted\"}".into(), st.reloads_accepted as f64),
            ("{result=\"rejected\"}".into(), st.reloads_rejected as f64),
        ],
    );
    family(
        out,
        "meshplane_reload_panics_total",
        "counter",
        "Reloads that panicked (a bug; counted as rejected, the last good configuration kept).",
        &one(st.reload_panics as f64),
    );
    let gauges: [(&str, &str, f64); 5] = [
        (
            "meshplane_config_errors",
            "Problems in the files on disk (0 when valid).",
            problems as f64,
        ),
        (
            "meshplane_config_warnings",
            "Fields loaded but not translated yet.",
            warnings as f64,
        ),
        (
            "meshplane_config_valid",
            "1 when the files on disk validate.",
            f64::from(u8::from(valid)),
        ),
        (
            "meshplane_nodes",
            "Nodes with a published configuration.",
            pipeline.cache.published() as f64,
        ),
        (
            "meshplane_cache_entries",
            "Snapshot cache entries: published nodes, and undefined node ids with an open stream.",
            pipeline.cache.len() as f64,
        ),
    ];
    for (name, help, v) in gauges {
        family(out, name, "gauge", help, &one(v));
    }
}

/// The histogram of file change to ACK.
fn convergence(out: &mut String, m: &XdsMetrics) {
    let (buckets, count, sum) = m.convergence.snapshot();
    let mut samples: Vec<Sample> = buckets
        .iter()
        .map(|(le, c)| (format!("_bucket{{le=\"{le}\"}}"), *c as f64))
        .collect();
    samples.push(("_bucket{le=\"+Inf\"}".into(), count as f64));
    samples.push(("_sum".into(), sum));
    samples.push(("_count".into(), count as f64));
    family(
        out,
        "meshplane_convergence_seconds",
        "histogram",
        "From a file change to Envoy's ACK of the version it produced, per proxy and type.",
        &samples,
    );
}
