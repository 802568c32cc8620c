//! `meshplane load`: simulates many Envoys against any xDS server and measures how fast they
//! converge, and how fast a config change reaches all of them.
//!
//! Each simulated Envoy behaves like Envoy on ADS: wildcard CDS and LDS, then EDS for the EDS
//! clusters and RDS for the route tables those reference, ACKing everything. It speaks only the xDS
//! protocol, so it can be pointed at any control plane.

mod client;
mod edits;
mod report;
mod wire;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};

use client::Shared;
pub use report::LoadReport;
// The mesh generator, for `--edit-dir`: `crate::tools::synth` in the binary, `crate::synth` in
// tests/load.rs, which includes both files by path.
use super::synth;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadMode {
    /// ADS, state of the world (`ads` as `bootstrap --mode` says it).
    #[value(alias = "ads")]
    Sotw,
    /// ADS, incremental (`ads-delta` as `bootstrap --mode` says it).
    #[value(alias = "ads-delta")]
    Delta,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    /// The xDS server, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:18000")]
    pub xds: String,
    /// Simulated Envoys.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Node id of client i; `{i}` becomes i modulo --nodes.
    #[arg(
        long,
        value_name = "NODE",
        default_value = "mesh/synth/virtualNode/client-{i}"
    )]
    pub node_id: String,
    /// Distinct node ids (default: one per client).
    #[arg(long)]
    pub nodes: Option<usize>,
    #[arg(long, value_enum, default_value_t = LoadMode::Sotw)]
    pub mode: LoadMode,
    /// New streams per second.
    #[arg(long, default_value_t = 2000)]
    pub connect_rate: u32,
    /// Share this many HTTP/2 connections between all clients (0: one connection per client).
    #[arg(long, default_value_t = 0)]
    pub connections: usize,
    /// A synthetic mesh directory (`meshplane generate`) whose svc-0 route the tool edits.
    #[arg(long)]
    pub edit_dir: Option<PathBuf>,
    /// Or: a shell command that makes one config change on the server under test.
    #[arg(long)]
    pub edit_cmd: Option<String>,
    /// Config changes to measure after convergence.
    #[arg(long, default_value_t = 5)]
    pub edits: usize,
    /// PID of the server process, for its RSS and CPU time.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// How long to wait for convergence (and for each edit), in whole seconds (e.g. `60s`, `2m`;
    /// a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = whole_seconds)]
    pub timeout: u64,
    /// `table` for people, `json` for scripts.
    #[arg(long, short = 'o', value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
    /// Same as `-o json` (kept for scripts written before `-o`).
    #[arg(long, hide = true)]
    pub json: bool,
}

/// A duration flag (`60s`, `2m`, `500ms`, or bare seconds) rounded up to whole seconds.
fn whole_seconds(s: &str) -> Result<u64, String> {
    let d = meshplane::xds::limits::parse_duration(s)?;
    Ok(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("bad --xds address `{0}`")]
    Address(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("edit failed: {0}")]
    Edit(String),
}

/// Envoy's default HTTP/2 stream and connection window (256 MiB).
const ENVOY_WINDOW: u32 = 256 * 1024 * 1024;

/// Connects `--clients` simulated Envoys at `--connect-rate`, waits for them to converge, measures
/// the edits, prints the report and returns it.
pub async fn run(opts: LoadOptions) -> Result<LoadReport, LoadError> {
    let endpoint = Endpoint::from_shared(format!("http://{}", opts.xds))
        .map_err(|_| LoadError::Address(opts.xds.clone()))?
        .tcp_nodelay(true)
        // Envoy's defaults for its xDS connection: large fixed windows, no BDP pings.
        .initial_stream_window_size(ENVOY_WINDOW)
        .initial_connection_window_size(ENVOY_WINDOW);
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let usage_before = opts.server_pid.and_then(report::proc_usage);
    let tool_before = report::proc_usage(std::process::id());
    let tasks = connect(&opts, &endpoint, &shared, start).await?;
    let timeout = Duration::from_secs(opts.timeout);
    while shared.converged.load(Ordering::Relaxed) < opts.clients && start.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let converged = shared.converged.load(Ordering::Relaxed);
    let all_converged_ms = start.elapsed().as_secs_f64() * 1000.0;
    // Memory per client is read here, before edits leave freed-but-unreturned pages behind.
    let usage_converged = opts.server_pid.and_then(report::proc_usage);
    let tool_converged = report::proc_usage(std::process::id());
    let edits = edits::measure(&opts, &shared, converged).await?;
    let usage_after = opts.server_pid.and_then(report::proc_usage);
    for t in &tasks {
        t.abort();
    }
    let measured = report::Measured {
        converged,
        all_converged_ms,
        edits,
        usage: [usage_before, usage_converged, usage_after],
        tool: [tool_before, tool_converged],
    };
    let report = report::build(&opts, &shared, measured);
    report::print(&report, opts.json || opts.output == "json");
    Ok(report)
}

/// The connect phase: the shared connections (`--connections`), then one client task per
/// `--clients`, started at `--connect-rate`.
async fn connect(
    opts: &LoadOptions,
    endpoint: &Endpoint,
    shared: &Arc<Shared>,
    start: Instant,
) -> Result<Vec<tokio::task::JoinHandle<()>>, LoadError> {
    let nodes = opts.nodes.unwrap_or(opts.clients).max(1);
    let mut pool: Vec<Channel> = Vec::new();
    for _ in 0..opts.connections {
        pool.push(
            endpoint
                .connect()
                .await
                .map_err(|source| LoadError::Connect {
                    addr: opts.xds.clone(),
                    source,
                })?,
        );
    }
    let interval = Duration::from_secs(1) / opts.connect_rate.max(1);
    let mut pace = tokio::time::interval(interval);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(opts.clients);
    for i in 0..opts.clients {
        pace.tick().await;
        let node_id = opts.node_id.replace("{i}", &(i % nodes).to_string());
        let pooled = (!pool.is_empty()).then(|| pool[i % pool.len()].clone());
        tasks.push(client::spawn(
            node_id,
            opts.mode,
            endpoint.clone(),
            pooled,
            shared.clone(),
            start,
        ));
    }
    Ok(tasks)
}
