//! The command line (PRODUCT.md §4): `serve`, `validate`, `bootstrap`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{self, ServeConfig, Server};
use crate::bootstrap::{self, BootstrapParams, XdsMode};

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
    },
    /// Exit 0 when DIR is a valid mesh; otherwise print every problem and exit 1.
    Validate { dir: PathBuf },
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
}

pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { dir } => {
            if !dir.is_dir() {
                anyhow::bail!("{} is not a directory", dir.display());
            }
            let result = app::load(&dir);
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
        Command::Serve {
            config,
            xds_listen,
            admin_listen,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let cfg = ServeConfig {
                    xds_listen,
                    admin_listen,
                    ..ServeConfig::new(config)
                };
                let server = Server::start(cfg).await?;
                wait_for_signal().await?;
                tracing::info!("shutting down");
                server.shutdown().await;
                Ok(ExitCode::SUCCESS)
            })
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
