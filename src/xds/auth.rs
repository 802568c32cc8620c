//! Who may read what on the xDS port: the port's mutual-TLS settings ([`XdsTls`], PEM bytes), the
//! identity a client's certificate carries ([`PeerIdentity`]: its URI SANs), and the hook that
//! decides whether that identity may read the node a stream names ([`Authorizer`]). What an
//! identity may read is the caller's business: nothing here knows how node ids or SPIFFE paths are
//! spelt. A refusal is PERMISSION_DENIED, counted (`meshplane_xds_denied_total`) and logged with
//! the node id and the certificate's identity; key material is never logged or shown.

use std::fmt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tonic::{Request, Status};
use tracing::warn;

use super::metrics::XdsMetrics;

/// The xDS port's TLS material, as PEM: the server's certificate chain and key, and the CA that
/// client certificates must chain to. Plain bytes, so files, a CA directory or a test can fill it.
#[derive(Clone)]
pub struct XdsTls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Vec<u8>,
}

/// Never prints the key (a `ServeConfig` is printed in debug logs).
impl fmt::Debug for XdsTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdsTls")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .field(
                "client_ca_pem",
                &format_args!("{} bytes", self.client_ca_pem.len()),
            )
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} holds no PEM certificate")]
    NoCertificate(&'static str),
    /// rustls's messages name the problem, never the key's bytes.
    #[error("the xDS TLS settings are not usable: {0}")]
    Config(String),
}

impl XdsTls {
    /// Reads the three PEM files of `serve --xds-tls-cert/--xds-tls-key/--xds-client-ca`.
    pub fn from_files(cert: &Path, key: &Path, client_ca: &Path) -> Result<XdsTls, TlsError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.display().to_string(),
                source,
            })
        };
        Ok(XdsTls {
            cert_pem: read("--xds-tls-cert", cert)?,
            key_pem: read("--xds-tls-key", key)?,
            client_ca_pem: read("--xds-client-ca", client_ca)?,
        })
    }

    /// The rustls acceptor of the xDS port: client certificates required and verified against the
    /// client CA, ALPN `h2`, on the ring provider (whatever else is compiled in). The material is
    /// parsed here, so a bad file stops the start rather than every connection.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &str, e: &dyn fmt::Display| TlsError::Config(format!("{what}: {e}"));
        if !has_pem_cert(&self.cert_pem) {
            return Err(TlsError::NoCertificate("--xds-tls-cert"));
        }
        if !has_pem_cert(&self.client_ca_pem) {
            return Err(TlsError::NoCertificate("--xds-client-ca"));
        }
        let chain = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("--xds-tls-cert", &e))?;
        let key =
            PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| bad("--xds-tls-key", &e))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(&self.client_ca_pem) {
            let ca = ca.map_err(|e| bad("--xds-client-ca", &e))?;
            roots.add(ca).map_err(|e| bad("--xds-client-ca", &e))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .build()
        .map_err(|e| bad("--xds-client-ca", &e))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS versions", &e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| bad("--xds-tls-cert and --xds-tls-key", &e))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

fn has_pem_cert(pem: &[u8]) -> bool {
    String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----")
}

/// What a client proved about itself with its TLS certificate: the URI SANs of its leaf
/// certificate (SPIFFE IDs, for instance). Absent on a connection without TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    pub uris: Vec<String>,
}

impl PeerIdentity {
    /// The identity of a request's TLS client, if the connection is TLS with a client certificate.
    /// A leaf that does not parse yields an identity with no URIs (which no rule should accept).
    pub fn of<T>(request: &Request<T>) -> Option<PeerIdentity> {
        let certs = request.peer_certs()?;
        let leaf = certs.first()?;
        Some(PeerIdentity::from_der(leaf.as_ref()).unwrap_or_default())
    }

    /// The URI SANs of one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<PeerIdentity, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        let uris = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(e.to_string()),
        };
        Ok(PeerIdentity { uris })
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.uris.is_empty() {
            return f.write_str("(no URI SAN)");
        }
        f.write_str(&self.uris.join(","))
    }
}

/// Decides whether a client may read the node a stream (or fetch) names. `peer` is `None` on a
/// connection without TLS. `Err` carries the reason, which the client is told and the log keeps.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, peer: Option<&PeerIdentity>, node_id: &str) -> Result<(), String>;
}

/// Runs `authorizer` (none: everyone may read everything) for a stream or fetch naming `node_id`:
/// a refusal is counted, logged and returned as PERMISSION_DENIED.
pub fn check(
    authorizer: Option<&Arc<dyn Authorizer>>,
    peer: Option<&PeerIdentity>,
    node_id: &str,
    metrics: &XdsMetrics,
) -> Result<(), Status> {
    let Some(a) = authorizer else {
        return Ok(());
    };
    a.authorize(peer, node_id).map_err(|reason| {
        metrics.denied.fetch_add(1, Ordering::Relaxed);
        let identity = peer.map_or_else(|| "(no certificate)".to_string(), |p| p.to_string());
        warn!(node = %node_id, %identity, %reason, "xDS request denied");
        Status::permission_denied(reason)
    })
}

/// Writes `meshplane_xds_denied_total` and `meshplane_xds_tls_handshake_failures_total` through
/// `family(name, kind, help, samples)`.
pub fn render(m: &XdsMetrics, family: &mut impl FnMut(&str, &str, &str, &[(String, f64)])) {
    family(
        "meshplane_xds_denied_total",
        "counter",
        "xDS streams and fetches refused with PERMISSION_DENIED: the client's certificate does not name the node it asked for.",
        &[(String::new(), m.denied.load(Ordering::Relaxed) as f64)],
    );
    family(
        "meshplane_xds_tls_handshake_failures_total",
        "counter",
        "TLS handshakes refused on the xDS port: no client certificate, an untrusted one, plaintext, or too slow.",
        &[(String::new(), m.tls_handshake_failures.load(Ordering::Relaxed) as f64)],
    );
}

pub mod accept;

#[cfg(test)]
mod tests;
