//! The xDS port's mutual TLS as `serve` sets it up (PRODUCT.md §5): from the three
//! `--xds-tls-*` files when given, else from `--ca-dir` (the server's certificate issued by the
//! CA, clients' certificates checked against its bundle), renewed at two thirds of its life
//! without a restart: new handshakes get the new certificate, connections made keep theirs.
//! `--xds-plaintext` keeps the port plaintext with `--ca-dir`, loudly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::{AppError, CaSettings, Security};
use crate::ca::{Authority, CaDir, CaError, RENEW_AT};
use crate::xds::auth::accept::SharedAcceptor;
use crate::xds::auth::XdsTls;

/// How long to wait before trying again when renewing the xDS certificate failed.
const RETRY: Duration = Duration::from_secs(10);

/// How often the CA directory is looked at for a root rotation (`meshplane ca rotate`).
pub const CA_CHECK: Duration = Duration::from_secs(1);

/// The names the CA-issued xDS certificate carries: the listen address (unless it is a wildcard),
/// localhost and both loopback addresses, and each `--xds-tls-host`.
pub fn hosts(listen: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if !listen.ip().is_unspecified() {
        out.push(listen.ip().to_canonical().to_string());
    }
    for h in ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .chain(extra.iter().cloned())
    {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// The xDS port's TLS from the CA: a server certificate for `hosts`, valid for `validity`.
pub fn from_ca(ca: &CaDir, hosts: &[String], validity: Duration) -> Result<XdsTls, CaError> {
    let creds = ca.xds_server_credentials(hosts, validity)?;
    Ok(XdsTls {
        cert_pem: creds.cert_pem.clone().into_bytes(),
        key_pem: creds.key_pem().as_bytes().to_vec(),
        client_ca_pem: creds.ca_pem.into_bytes(),
    })
}

/// What the xDS port serves: `None`, plaintext; else the acceptor, and the task that renews its
/// certificate when the CA issued it.
pub struct XdsPort {
    pub acceptor: Option<SharedAcceptor>,
    pub renewal: Option<JoinHandle<()>>,
}

/// The xDS port's TLS for `security` and the CA (if any), the port bound at `xds_addr`.
pub fn setup(
    security: &Security,
    ca: Option<(&Arc<Authority>, &CaSettings)>,
    xds_addr: SocketAddr,
    stop: watch::Receiver<bool>,
) -> Result<XdsPort, AppError> {
    if let Some(files) = security.xds_acceptor()? {
        return Ok(XdsPort {
            acceptor: Some(SharedAcceptor::new(files)),
            renewal: None,
        });
    }
    let Some((authority, settings)) = ca else {
        return Ok(XdsPort {
            acceptor: None,
            renewal: None,
        });
    };
    if security.xds_plaintext {
        // The CA hands each proxy its key over xDS: on a plaintext port, whoever can connect and
        // name a node can read that node's key.
        warn!(
            "--xds-plaintext with --ca-dir: the xDS port is plaintext, and proxies' private keys \
             are served to any client that names their node id"
        );
        return Ok(XdsPort {
            acceptor: None,
            renewal: None,
        });
    }
    let hosts = hosts(xds_addr, &security.xds_tls_hosts);
    let acceptor = from_ca(&authority.ca(), &hosts, settings.validity)?
        .acceptor()
        .map_err(super::SecurityError::from)?;
    info!(?hosts, validity = ?settings.validity, "xDS port on mutual TLS from meshplane's CA");
    let shared = SharedAcceptor::new(acceptor);
    let renewal = spawn_renewal(
        authority.clone(),
        hosts,
        settings.validity,
        shared.clone(),
        stop,
    );
    Ok(XdsPort {
        acceptor: Some(shared),
        renewal: Some(renewal),
    })
}

/// Replaces the xDS certificate at two thirds of its life, and as soon as the CA's root or bundle
/// changes (`meshplane ca rotate`: the pipeline re-reads the directory), until `stop`.
fn spawn_renewal(
    authority: Arc<Authority>,
    hosts: Vec<String>,
    validity: Duration,
    shared: SharedAcceptor,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // The authority replaces its CA whole when the root or bundle changes: the same `Arc`
        // means the same roots.
        let mut issued_with = authority.ca();
        let mut due = Instant::now() + validity.mul_f64(RENEW_AT);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due.min(Instant::now() + CA_CHECK)) => {}
                _ = crate::xds::server::stopped(&mut stop) => return,
            }
            let now_ca = authority.ca();
            let root_changed = !Arc::ptr_eq(&now_ca, &issued_with);
            if Instant::now() < due && !root_changed {
                continue;
            }
            let renewed = from_ca(&now_ca, &hosts, validity)
                .map_err(|e| e.to_string())
                .and_then(|tls| tls.acceptor().map_err(|e| e.to_string()));
            due = match renewed {
                Ok(acceptor) => {
                    shared.replace(acceptor);
                    info!(valid_for = ?validity, root_changed, "renewed the xDS port's certificate");
                    issued_with = now_ca;
                    Instant::now() + validity.mul_f64(RENEW_AT)
                }
                Err(error) => {
                    // The old certificate is still valid for a third of its life: keep trying.
                    warn!(%error, "renewing the xDS port's certificate failed; retrying");
                    Instant::now() + RETRY.min(validity / 10).max(Duration::from_millis(100))
                }
            };
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_names_the_listen_address_loopback_and_extra_hosts() {
        let h = hosts("10.0.0.5:18000".parse().unwrap(), &["mp.internal".into()]);
        assert_eq!(
            h,
            ["10.0.0.5", "localhost", "127.0.0.1", "::1", "mp.internal"]
        );
        let h = hosts("0.0.0.0:18000".parse().unwrap(), &["127.0.0.1".into()]);
        assert_eq!(h, ["localhost", "127.0.0.1", "::1"]);
        let h = hosts("[::ffff:127.0.0.1]:1".parse().unwrap(), &[]);
        assert_eq!(h, ["127.0.0.1", "localhost", "::1"]);
    }

    #[test]
    fn the_ca_issues_a_usable_xds_acceptor() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = CaDir::open_or_create(&tmp.path().join("ca"), "meshplane.local").unwrap();
        let tls = from_ca(
            &ca,
            &hosts("127.0.0.1:1".parse().unwrap(), &[]),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(tls.client_ca_pem, ca.ca_pem().as_bytes());
        assert!(tls.acceptor().is_ok());
        assert!(!format!("{tls:?}").contains("PRIVATE"));
    }
}
