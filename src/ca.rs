//! meshplane's own certificate authority, standing in for ACM and ACM PCA (docs/contract.md §2,
//! §5). It lives in one directory (`--ca-dir`):
//!
//! | file | what | mode |
//! |---|---|---|
//! | `ca.key` | the CA's private key (PKCS#8 PEM, ECDSA P-256) | 0600 |
//! | `ca.crt` | the CA's certificate (PEM), which signs; the trust bundle unless `bundle.crt` is there | 0644 |
//! | `bundle.crt` | during a root rotation: the trust bundle (`ca.crt` and the other root) | 0644 |
//! | `next.key`, `next.crt` | during a root rotation: the new root, before it signs | 0600, 0644 |
//! | `.lock` | taken while the CA is created, so two servers sharing the dir make one CA | 0600 |
//!
//! The directory is made 0700 when absent. The CA's certificate carries the trust domain as a
//! SPIFFE URI (`spiffe://<trust domain>`), so a directory is never used with another one by
//! mistake. Keys are only ever held in memory, written to `ca.key`, or handed out as asked
//! (`meshplane ca issue --out`, and SDS to the proxy a certificate is for); no `Debug` output
//! shows one. `files` owns the directory, `issue` the certificates, `rotate` the root's replacement, `names` what a node's
//! certificate names, `authority` the per-node certificates served over SDS and their rotation,
//! `served` what a served certificate says (for the admin API; never its key).

mod authority;
mod files;
mod issue;
mod names;
mod rotate;
mod served;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use authority::{Authority, IDENTITY_SECRET, RENEW_AT, TRUST_SECRET};
pub use files::{credential_paths, write_credentials};
pub use issue::{Credentials, Identity};
pub use names::{node_identity, spiffe_uri, Namer};
pub use rotate::{rotate, RotateStep};
pub use served::{served_certificate, ServedCertificate};

/// The trust domain of SPIFFE identities when `--trust-domain` is not given.
pub const DEFAULT_TRUST_DOMAIN: &str = "meshplane.local";

/// How long a proxy certificate served over SDS is valid when `--cert-validity` is not given. It
/// is replaced at two thirds of that ([`RENEW_AT`]).
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// Why the CA could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("issuing a certificate: {0}")]
    Issue(#[from] rcgen::Error),
    #[error("`{0}` is not a trust domain (lower-case letters, digits, `.`, `-` and `_`)")]
    TrustDomain(String),
}

/// A CA directory, loaded: the CA's key and certificate and the trust domain it issues in.
pub struct CaDir {
    dir: PathBuf,
    trust_domain: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
    /// Every root proxies trust: `ca_pem`, and during a rotation the other root.
    bundle_pem: String,
}

impl std::fmt::Debug for CaDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CaDir")
            .field("dir", &self.dir)
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl CaDir {
    /// The CA in `dir`, created (directory, key, certificate) when the directory has none yet.
    pub fn open_or_create(dir: &Path, trust_domain: &str) -> Result<CaDir, CaError> {
        check_trust_domain(trust_domain)?;
        files::open_or_create(dir, trust_domain)
    }

    /// The CA in `dir`, which must exist (`meshplane ca init` or `serve --ca-dir` made it).
    pub fn open(dir: &Path, trust_domain: &str) -> Result<CaDir, CaError> {
        check_trust_domain(trust_domain)?;
        files::open(dir, trust_domain)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The CA's certificate (PEM): what signs.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The trust bundle (PEM): what every proxy and the xDS port trust. The CA's certificate,
    /// and while a root rotation is under way the other root too (`meshplane ca rotate`).
    pub fn bundle_pem(&self) -> &str {
        &self.bundle_pem
    }

    /// The xDS server's own certificate and key, and the CA its clients' certificates must chain
    /// to, for serving xDS over mutual TLS (`serve --ca-dir`). Issued anew on every call and held
    /// in memory only, valid for `validity`; the certificate names `hosts` (DNS names or IP
    /// addresses: where Envoys reach the server) and `spiffe://<trust domain>/meshplane/xds`.
    pub fn xds_server_credentials(
        &self,
        hosts: &[String],
        validity: Duration,
    ) -> Result<Credentials, CaError> {
        let id = Identity {
            uri: format!("spiffe://{}/meshplane/xds", self.trust_domain),
            dns: hosts.to_vec(),
        };
        issue::leaf(self, &id, validity, issue::Usage::Server)
    }

    /// A certificate for the Envoy of `node_id` to present to the xDS server (`meshplane ca
    /// issue`): the node's SPIFFE URI, nothing else.
    pub fn client_credentials(
        &self,
        node: &crate::model::ProxyId,
        validity: Duration,
    ) -> Result<Credentials, CaError> {
        let id = Identity {
            uri: names::spiffe_uri(&self.trust_domain, node),
            dns: Vec::new(),
        };
        issue::leaf(self, &id, validity, issue::Usage::Client)
    }

    /// A certificate for a proxy's data-path TLS: `id`'s names, valid for `validity`, usable as
    /// server and as client (mTLS between sidecars).
    pub fn issue(&self, id: &Identity, validity: Duration) -> Result<Credentials, CaError> {
        issue::leaf(self, id, validity, issue::Usage::Both)
    }
}

/// A SPIFFE trust domain: what the spec allows (lower case letters, digits, `.`, `-`, `_`).
fn check_trust_domain(td: &str) -> Result<(), CaError> {
    let ok = !td.is_empty()
        && td.len() <= 255
        && td
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CaError::TrustDomain(td.to_string()))
    }
}

/// A validity such as `24h`, `90d`, `10m`, `30s` or `500ms` (the `--cert-validity` and `ca issue
/// --validity` flags).
pub fn parse_validity(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let hours = |n: &str, per: u64| {
        n.parse::<u64>()
            .map(|n| Duration::from_secs(n.saturating_mul(per)))
            .map_err(|_| format!("`{s}` is not a duration (e.g. 24h, 90d, 10m)"))
    };
    let d = if let Some(n) = s.strip_suffix('h') {
        hours(n, 3600)?
    } else if let Some(n) = s.strip_suffix('d') {
        hours(n, 24 * 3600)?
    } else {
        crate::xds::limits::parse_duration(s)?
    };
    if d < Duration::from_secs(1) {
        return Err(format!(
            "`{s}`: a certificate must be valid for at least 1s"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests;
