//! `meshplane ca init`, `meshplane ca issue` and `meshplane ca rotate`, and the CA flags of `meshplane serve`
//! (docs/contract.md §2, §5).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use meshplane::app::CaSettings;
use meshplane::ca::{self, CaDir};
use meshplane::model::ProxyId;

/// The CA flags of `meshplane serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeCaArgs {
    /// meshplane's own certificate authority (created when absent): serves `acm` certificates and
    /// trust to proxies over SDS on their xDS streams.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    /// The SPIFFE trust domain of the certificates the CA issues.
    #[arg(long, value_name = "NAME", default_value = ca::DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: String,
    /// How long a proxy certificate is valid (renewed at two thirds of it), e.g. `24h`, `90m`.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = ca::parse_validity)]
    pub cert_validity: Duration,
}

impl ServeCaArgs {
    pub fn settings(&self) -> Option<CaSettings> {
        Some(CaSettings {
            dir: self.ca_dir.clone()?,
            trust_domain: self.trust_domain.clone(),
            validity: self.cert_validity,
        })
    }
}

/// Where the CA is and which trust domain it issues in.
#[derive(Debug, Clone, Args)]
pub struct CaDirArgs {
    /// The CA's directory (`serve --ca-dir`).
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// The SPIFFE trust domain the CA was made for.
    #[arg(long, value_name = "NAME", default_value = ca::DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: String,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the CA in DIR (0700; `ca.key` 0600, `ca.crt`); an existing CA is kept as it is.
    Init {
        #[command(flatten)]
        dir: CaDirArgs,
    },
    /// Write an Envoy's certificate for the xDS port into OUT: `cert.pem`, `key.pem` (0600) and
    /// `ca.pem`, naming the node as `spiffe://<trust domain>/mesh/<mesh>/virtualNode/<name>`.
    Issue {
        #[command(flatten)]
        dir: CaDirArgs,
        /// mesh/<mesh>/virtualNode/<name>, mesh/<mesh>/virtualGateway/<name> (or the ARN).
        #[arg(long)]
        node_id: String,
        /// The directory to write into (made 0700 when absent).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// How long the certificate is valid, e.g. `365d`, `24h`.
        #[arg(long, value_name = "DURATION", default_value = "365d", value_parser = ca::parse_validity)]
        validity: Duration,
    },
    /// One step of replacing the CA's root with zero failed requests; a running `serve` follows
    /// within a second. `add`: a new root joins the trust bundle; `switch`: it signs, and every
    /// proxy is re-issued a certificate; `finish`: the old root leaves the bundle. Wait between
    /// steps until `meshplane status` shows every proxy's SDS SYNCED.
    Rotate {
        #[command(flatten)]
        dir: CaDirArgs,
        #[arg(long, value_enum)]
        step: Step,
    },
}

/// The steps of `ca rotate`, in order.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Step {
    Add,
    Switch,
    Finish,
}

pub fn run(cmd: CaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CaCommand::Init { dir } => {
            let ca = CaDir::open_or_create(&dir.ca_dir, &dir.trust_domain)?;
            println!(
                "CA ready in {} (trust domain {}): ca.crt is the trust bundle",
                ca.dir().display(),
                ca.trust_domain()
            );
        }
        CaCommand::Issue {
            dir,
            node_id,
            out,
            validity,
        } => {
            let Some(node) = ProxyId::parse(&node_id) else {
                eprintln!("--node-id must be mesh/<mesh>/virtualNode/<name>, mesh/<mesh>/virtualGateway/<name> or an App Mesh ARN");
                return Ok(ExitCode::from(2));
            };
            let ca = CaDir::open(&dir.ca_dir, &dir.trust_domain)?;
            let creds = ca.client_credentials(&node, validity)?;
            ca::write_credentials(&out, &creds)
                .with_context(|| format!("writing into {}", out.display()))?;
            for p in ca::credential_paths(&out) {
                println!("{}", p.display());
            }
        }
        CaCommand::Rotate { dir, step } => {
            let step = match step {
                Step::Add => ca::RotateStep::Add,
                Step::Switch => ca::RotateStep::Switch,
                Step::Finish => ca::RotateStep::Finish,
            };
            println!("{}", ca::rotate(&dir.ca_dir, &dir.trust_domain, step)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
