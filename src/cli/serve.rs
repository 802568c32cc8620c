//! `meshplane serve`: run the server until SIGINT or SIGTERM, then drain and exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use meshplane::app::{ServeConfig, Server};
use meshplane::xds::limits::parse_duration;

use super::{ca, LimitArgs, SecurityArgs};

/// `serve`'s flags.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directory of App Mesh YAML/JSON files (read recursively).
    #[arg(long, value_name = "DIR")]
    pub config: PathBuf,
    /// Where to serve xDS (gRPC).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:18000")]
    pub xds_listen: SocketAddr,
    /// Where to serve the admin HTTP API (`meshplane status --admin ADDR` reads it).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:18001")]
    pub admin_listen: SocketAddr,
    /// Quiet time that ends a burst of file changes before one reload (e.g. `100ms`). Shorter
    /// pushes sooner; longer keeps a slow multi-file write (a git checkout) from being seen
    /// half done.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub debounce: std::time::Duration,
    /// `--debounce` in milliseconds: the first spelling, kept for existing scripts.
    #[arg(long, hide = true, value_name = "MS", conflicts_with = "debounce")]
    pub debounce_ms: Option<u64>,
    #[command(flatten)]
    pub limits: meshplane::xds::limits::ClientLimits,
    #[command(flatten)]
    pub load_limits: LimitArgs,
    #[command(flatten)]
    pub reload: meshplane::app::ReloadSettings,
    /// A field that is loaded but not translated into Envoy configuration makes the files
    /// invalid (the last valid configuration keeps serving), instead of a warning.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub ca: Box<ca::ServeCaArgs>,
    #[command(flatten)]
    pub security: Box<SecurityArgs>,
}

impl ServeArgs {
    /// The server's configuration from the flags.
    pub fn config(self) -> anyhow::Result<ServeConfig> {
        Ok(ServeConfig {
            xds_listen: self.xds_listen,
            admin_listen: self.admin_listen,
            debounce: self
                .debounce_ms
                .map_or(self.debounce, std::time::Duration::from_millis)
                .max(std::time::Duration::from_millis(1)),
            limits: self.limits,
            load_limits: self.load_limits.into(),
            reload: self.reload,
            strict: self.strict,
            security: self.security.security(&self.ca.trust_domain)?,
            ca: self.ca.settings(),
            ..ServeConfig::new(self.config)
        })
    }
}

pub fn run(cfg: ServeConfig) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(async move {
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

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
