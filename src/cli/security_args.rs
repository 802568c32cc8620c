//! The security flags (PRODUCT.md §5): `serve`'s mutual TLS on the xDS port and admin token, and
//! the admin address and token of the commands that talk to a running server.

use std::path::{Path, PathBuf};

use anyhow::Context;
use meshplane::app::{AdminToken, Security};
use meshplane::xds::auth::XdsTls;

/// `serve`'s flags for who may read the xDS port and the admin API.
#[derive(Debug, Clone, clap::Args)]
pub struct SecurityArgs {
    /// Certificate chain (PEM) the xDS port presents. With --xds-tls-key and --xds-client-ca, the
    /// port requires mutual TLS and a client reads only the node its certificate names.
    #[arg(long, value_name = "FILE", requires_all = ["xds_tls_key", "xds_client_ca"])]
    pub xds_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --xds-tls-cert.
    #[arg(long, value_name = "FILE", requires_all = ["xds_tls_cert", "xds_client_ca"])]
    pub xds_tls_key: Option<PathBuf>,
    /// CA certificate(s) (PEM) that xDS client certificates must be signed by.
    #[arg(long, value_name = "FILE", requires_all = ["xds_tls_cert", "xds_tls_key"])]
    pub xds_client_ca: Option<PathBuf>,
    /// With --ca-dir, keep the xDS port plaintext instead of mutual TLS from the CA: any client
    /// that names a node can then read its configuration and its private key. For migrating only.
    #[arg(long, requires = "ca_dir", conflicts_with = "xds_tls_cert")]
    pub xds_plaintext: bool,
    /// A DNS name or IP address (repeatable) the xDS certificate --ca-dir issues must carry, besides
    /// the --xds-listen address, localhost, 127.0.0.1 and ::1: where Envoys reach meshplane.
    #[arg(long, value_name = "NAME", requires = "ca_dir", conflicts_with_all = ["xds_tls_cert", "xds_plaintext"])]
    pub xds_tls_host: Vec<String>,
    #[command(flatten)]
    pub admin_token: TokenArgs,
}

/// `--admin-token` / `--admin-token-file`, shared by `serve` and the admin clients.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// Bearer token of the admin API (required when `serve --admin-listen` is not loopback).
    /// Visible to other local users in the process list: prefer --admin-token-file.
    #[arg(long, value_name = "TOKEN", conflicts_with = "admin_token_file")]
    pub admin_token: Option<String>,
    /// File holding the admin API's bearer token (surrounding whitespace ignored).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
}

impl TokenArgs {
    pub fn token(&self) -> anyhow::Result<Option<AdminToken>> {
        let (text, from) = match (&self.admin_token, &self.admin_token_file) {
            (Some(t), _) => (t.clone(), "--admin-token".to_string()),
            (None, Some(f)) => (
                read_token(f)?,
                format!("--admin-token-file {}", f.display()),
            ),
            (None, None) => return Ok(None),
        };
        AdminToken::new(&text).map(Some).with_context(|| {
            format!("{from}: the token must be non-empty printable ASCII without spaces")
        })
    }
}

fn read_token(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --admin-token-file {}", path.display()))
}

impl SecurityArgs {
    /// The settings, with client identities in `trust_domain` (`--trust-domain`, shared with the
    /// CA: spiffe://<trust-domain>/mesh/<mesh>/virtualNode/<name>).
    pub fn security(&self, trust_domain: &str) -> anyhow::Result<Security> {
        let xds_tls = match (&self.xds_tls_cert, &self.xds_tls_key, &self.xds_client_ca) {
            (Some(cert), Some(key), Some(ca)) => Some(XdsTls::from_files(cert, key, ca)?),
            _ => None,
        };
        Ok(Security {
            xds_tls,
            xds_plaintext: self.xds_plaintext,
            xds_tls_hosts: self.xds_tls_host.clone(),
            trust_domain: trust_domain.to_string(),
            admin_token: self.admin_token.token()?,
        })
    }
}

/// Where a running meshplane's admin API is, and its token.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// meshplane's admin address (`serve --admin-listen`).
    #[arg(long = "admin", value_name = "ADDR", default_value = "127.0.0.1:18001")]
    pub addr: String,
    #[command(flatten)]
    pub token: TokenArgs,
}

impl AdminArgs {
    pub fn target(&self) -> anyhow::Result<super::admin_client::Admin> {
        Ok(super::admin_client::Admin {
            addr: self.addr.clone(),
            token: self.token.token()?,
        })
    }
}

/// `bootstrap`'s flags for an xDS port that requires mutual TLS.
#[derive(Debug, Clone, clap::Args)]
pub struct XdsTlsArgs {
    /// Directory (as the Envoy sees it) holding the Envoy's cert.pem, key.pem and ca.pem (what
    /// `meshplane ca issue --out DIR` writes): the xDS cluster then speaks mutual TLS.
    #[arg(long, value_name = "DIR")]
    pub xds_tls: Option<PathBuf>,
    /// The DNS name or IP address meshplane's xDS certificate must carry (default: the host of --xds).
    #[arg(long, value_name = "NAME", requires = "xds_tls")]
    pub xds_tls_server_name: Option<String>,
}

impl XdsTlsArgs {
    /// The files of `--xds-tls`, meshplane's certificate to be checked for `xds_host` by default.
    pub fn files(&self, xds_host: &str) -> Option<meshplane::bootstrap::XdsTlsFiles> {
        Some(meshplane::bootstrap::XdsTlsFiles {
            dir: self.xds_tls.clone()?,
            server_name: (self.xds_tls_server_name.clone()).unwrap_or_else(|| xds_host.to_string()),
        })
    }
}
