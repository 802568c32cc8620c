//! The security settings of `meshplane serve` (PRODUCT.md §5): mutual TLS on the xDS port with
//! App Mesh identities ([`SpiffeAuthorizer`]: a certificate's SPIFFE ID names the one node its
//! holder may read), and the admin API's bearer token, required off loopback.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::model::ProxyId;
use crate::xds::auth::{Authorizer, PeerIdentity, XdsTls};

/// The SPIFFE trust domain of meshplane's identities unless `--trust-domain` says otherwise.
pub use crate::ca::DEFAULT_TRUST_DOMAIN;

/// What `serve` requires of its clients.
#[derive(Debug, Clone)]
pub struct Security {
    /// Mutual TLS on the xDS port from files; `None`: from `--ca-dir` if there is one (unless
    /// `xds_plaintext`), else plaintext, where anyone may read any node.
    pub xds_tls: Option<XdsTls>,
    /// `--xds-plaintext`: keep the xDS port plaintext even with `--ca-dir` (a migration aid).
    pub xds_plaintext: bool,
    /// `--xds-tls-host`: names the CA-issued xDS certificate carries besides the listen address
    /// and localhost.
    pub xds_tls_hosts: Vec<String>,
    /// The trust domain of the SPIFFE IDs client certificates must carry.
    pub trust_domain: String,
    /// The admin API's bearer token; required when it listens off loopback.
    pub admin_token: Option<AdminToken>,
}

impl Default for Security {
    fn default() -> Security {
        Security {
            xds_tls: None,
            xds_plaintext: false,
            xds_tls_hosts: Vec::new(),
            trust_domain: DEFAULT_TRUST_DOMAIN.to_string(),
            admin_token: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("the admin API would listen on {0}, which is not a loopback address, without a token: pass --admin-token or --admin-token-file (or listen on 127.0.0.1)")]
    AdminTokenRequired(SocketAddr),
    #[error(transparent)]
    Tls(#[from] crate::xds::auth::TlsError),
}

impl Security {
    /// Refuses an admin API off loopback without a token: it shows every node's configuration.
    pub fn check_admin(&self, admin: SocketAddr) -> Result<(), SecurityError> {
        if self.admin_token.is_none() && !admin.ip().to_canonical().is_loopback() {
            return Err(SecurityError::AdminTokenRequired(admin));
        }
        Ok(())
    }

    /// The TLS acceptor of the xDS port from its files, if given (their material checked now).
    pub fn xds_acceptor(&self) -> Result<Option<tokio_rustls::TlsAcceptor>, SecurityError> {
        Ok(self.xds_tls.as_ref().map(XdsTls::acceptor).transpose()?)
    }

    /// The authorizer of a port on mutual TLS: a client reads only the node its certificate names.
    pub fn authorizer(&self) -> Arc<dyn Authorizer> {
        Arc::new(SpiffeAuthorizer {
            trust_domain: self.trust_domain.clone(),
        })
    }
}

/// An admin API bearer token. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// A token; `None` if it is empty or holds characters an HTTP header cannot carry.
    pub fn new(token: &str) -> Option<AdminToken> {
        let t = token.trim();
        let printable = t.bytes().all(|b| b.is_ascii_graphic());
        (!t.is_empty() && printable).then(|| AdminToken(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// App Mesh identities over SPIFFE: a certificate whose URI SAN is
/// `spiffe://<trust domain>/mesh/<mesh>/virtualNode/<name>` (or `.../virtualGateway/<name>`) may
/// read that node, under any spelling of its id (plain or ARN), and nothing else.
#[derive(Debug, Clone)]
pub struct SpiffeAuthorizer {
    pub trust_domain: String,
}

impl SpiffeAuthorizer {
    /// The node a SPIFFE ID names, if it is one of this trust domain's App Mesh identities.
    pub fn node_of(&self, uri: &str) -> Option<ProxyId> {
        let rest = strip_prefix_ignore_case(uri, "spiffe://")?;
        let (domain, path) = rest.split_once('/')?;
        if !domain.eq_ignore_ascii_case(&self.trust_domain) {
            return None;
        }
        ProxyId::parse(path).filter(|_| !path.starts_with("arn:"))
    }

    /// The SPIFFE ID of `node` in this trust domain (what `meshplane ca issue` writes).
    pub fn spiffe_id(&self, node: &ProxyId) -> String {
        format!("spiffe://{}/{node}", self.trust_domain)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl Authorizer for SpiffeAuthorizer {
    fn authorize(&self, peer: Option<&PeerIdentity>, node_id: &str) -> Result<(), String> {
        let Some(peer) = peer else {
            return Err("a client certificate is required".to_string());
        };
        let nodes: Vec<ProxyId> = peer.uris.iter().filter_map(|u| self.node_of(u)).collect();
        if nodes.is_empty() {
            return Err(format!(
                "the client certificate carries no identity of trust domain {} (a URI SAN spiffe://{}/mesh/<mesh>/virtualNode/<name> or .../virtualGateway/<name>)",
                self.trust_domain, self.trust_domain
            ));
        }
        match ProxyId::parse(node_id) {
            Some(asked) if nodes.contains(&asked) => Ok(()),
            _ => Err(format!(
                "node id {node_id:?} is not the identity of the client certificate ({})",
                nodes
                    .iter()
                    .map(|n| self.spiffe_id(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uris: &[&str]) -> PeerIdentity {
        PeerIdentity {
            uris: uris.iter().map(|u| u.to_string()).collect(),
        }
    }

    fn authorizer() -> SpiffeAuthorizer {
        SpiffeAuthorizer {
            trust_domain: DEFAULT_TRUST_DOMAIN.into(),
        }
    }

    #[test]
    fn a_certificate_reads_its_own_node_under_any_spelling_of_its_id() {
        let a = authorizer();
        let p = peer(&["spiffe://meshplane.local/mesh/demo/virtualNode/web"]);
        assert_eq!(a.authorize(Some(&p), "mesh/demo/virtualNode/web"), Ok(()));
        let arn = "arn:aws:appmesh:eu-west-1:111122223333:mesh/demo/virtualNode/web";
        assert_eq!(a.authorize(Some(&p), arn), Ok(()));
        let gw = peer(&["spiffe://meshplane.local/mesh/demo/virtualGateway/edge"]);
        assert_eq!(
            a.authorize(Some(&gw), "mesh/demo/virtualGateway/edge"),
            Ok(())
        );
    }

    #[test]
    fn another_node_another_domain_or_no_certificate_is_denied() {
        let a = authorizer();
        let p = peer(&["spiffe://meshplane.local/mesh/demo/virtualNode/web"]);
        let err = a
            .authorize(Some(&p), "mesh/demo/virtualNode/db")
            .unwrap_err();
        assert!(
            err.contains("spiffe://meshplane.local/mesh/demo/virtualNode/web"),
            "{err}"
        );
        // Same name, other kind or mesh.
        assert!(a
            .authorize(Some(&p), "mesh/demo/virtualGateway/web")
            .is_err());
        assert!(a.authorize(Some(&p), "mesh/other/virtualNode/web").is_err());
        assert!(a.authorize(Some(&p), "not a node id").is_err());
        let foreign = peer(&["spiffe://elsewhere.example/mesh/demo/virtualNode/web"]);
        assert!(a
            .authorize(Some(&foreign), "mesh/demo/virtualNode/web")
            .is_err());
        assert!(a
            .authorize(Some(&peer(&[])), "mesh/demo/virtualNode/web")
            .is_err());
        assert!(a.authorize(None, "mesh/demo/virtualNode/web").is_err());
        // An ARN is a node id spelling, not a SPIFFE path.
        let arn = peer(&["spiffe://meshplane.local/arn:aws:appmesh:r:1:mesh/demo/virtualNode/web"]);
        assert!(a
            .authorize(Some(&arn), "mesh/demo/virtualNode/web")
            .is_err());
    }

    #[test]
    fn the_admin_api_needs_a_token_only_off_loopback() {
        let open = Security::default();
        for addr in ["127.0.0.1:18001", "[::1]:18001", "[::ffff:127.0.0.1]:1"] {
            assert!(open.check_admin(addr.parse().unwrap()).is_ok(), "{addr}");
        }
        for addr in ["0.0.0.0:18001", "[::]:18001", "10.0.0.5:18001"] {
            assert!(open.check_admin(addr.parse().unwrap()).is_err(), "{addr}");
        }
        let with_token = Security {
            admin_token: AdminToken::new("s3cret"),
            ..Security::default()
        };
        assert!(with_token.check_admin("0.0.0.0:1".parse().unwrap()).is_ok());
    }

    #[test]
    fn tokens_are_trimmed_never_empty_and_never_printed() {
        assert_eq!(AdminToken::new("  abc\n").unwrap().as_str(), "abc");
        assert!(AdminToken::new(" \n").is_none());
        assert!(AdminToken::new("two words").is_none());
        let t = AdminToken::new("s3cret").unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
        let s = Security {
            admin_token: Some(t),
            ..Security::default()
        };
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
