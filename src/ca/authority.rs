//! The certificates a server hands its proxies over SDS: per node, one certificate with its key
//! (the `meshplane/identity` secret) kept until two thirds of its life or until the node's names
//! change, and one trust bundle for all (`meshplane/trust`). The build stage asks for a node's
//! secrets; the reload task asks when the next certificate is due and which nodes to rebuild
//! then, so a rotation re-publishes only the nodes whose certificates it replaced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    secret, CertificateValidationContext, Secret, TlsCertificate,
};
use prost::{Message, Name};

use super::{files, CaDir, CaError, Identity};
use crate::model::ProxyId;
use crate::xds::Resource;

/// The SDS secrets the CA serves, under the names the translation gives `acm.certificateArn` (the
/// proxy's own certificate chain and key) and `acm.certificateAuthorityArns` (the CA bundle, as a
/// validation context).
pub use crate::translate::tls::{IDENTITY_SECRET, TRUST_SECRET};

/// When, as a fraction of its validity, a certificate is replaced: early enough that a proxy
/// whose stream is down for a while still has a valid one.
pub const RENEW_AT: f64 = 2.0 / 3.0;

/// One node's current certificate.
struct Held {
    identity: Identity,
    secret: Arc<Resource>,
    renew_at: SystemTime,
}

/// The CA as last read from its directory, and its trust bundle as a secret.
struct Current {
    ca: Arc<CaDir>,
    trust: Arc<Resource>,
}

impl Current {
    fn new(ca: CaDir) -> Current {
        let trust = Secret {
            name: TRUST_SECRET.into(),
            r#type: Some(secret::Type::ValidationContext(
                CertificateValidationContext {
                    trusted_ca: Some(inline(ca.bundle_pem())),
                    ..Default::default()
                },
            )),
        };
        Current {
            trust: Arc::new(Resource::new(TRUST_SECRET.into(), pack(&trust))),
            ca: Arc::new(ca),
        }
    }
}

/// meshplane's CA as a server uses it: its directory (re-read when a root rotation changes it),
/// and the certificates it issued, by node.
pub struct Authority {
    current: RwLock<Current>,
    validity: Duration,
    held: Mutex<HashMap<ProxyId, Held>>,
    /// The CA directory's files as they were when last read ([`Authority::reload`]).
    read: Mutex<files::Stamp>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("ca", &self.ca())
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Proxy certificates from `ca`, each valid for `validity`.
    pub fn new(ca: CaDir, validity: Duration) -> Authority {
        Authority {
            read: Mutex::new(files::stamp(ca.dir())),
            current: RwLock::new(Current::new(ca)),
            validity,
            held: Mutex::default(),
        }
    }

    /// The CA as last read.
    pub fn ca(&self) -> Arc<CaDir> {
        // Replaced whole: a poisoned lock still holds a consistent value.
        let c = self.current.read().unwrap_or_else(|e| e.into_inner());
        c.ca.clone()
    }

    /// Reads the CA's directory again. When its signing root or its bundle changed (a step of
    /// `meshplane ca rotate`), takes them, and every certificate issued is due now. Whether it
    /// changed; an error (a step half done, a broken file) keeps the CA as it was.
    /// Called every second: the files are read only when their sizes or times changed.
    pub fn reload(&self) -> Result<bool, CaError> {
        let now = self.ca();
        let stamp = files::stamp(now.dir());
        // Single-value updates: a poisoned lock still holds a consistent value.
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        if *read == stamp {
            return Ok(false);
        }
        let fresh = CaDir::open(now.dir(), now.trust_domain())?;
        // Taken before reading: a change made meanwhile shows as another change next time.
        *read = stamp;
        drop(read);
        if fresh.ca_pem() == now.ca_pem() && fresh.bundle_pem() == now.bundle_pem() {
            return Ok(false);
        }
        let roots = fresh.bundle_pem().matches("BEGIN CERTIFICATE").count();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Current::new(fresh);
        for h in self.lock().values_mut() {
            h.renew_at = UNIX_EPOCH;
        }
        tracing::info!(dir = %now.dir().display(), trusted_roots = roots, "the CA directory changed (root rotation): new trust bundle, every certificate re-issued");
        Ok(true)
    }

    pub fn validity(&self) -> Duration {
        self.validity
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ProxyId, Held>> {
        // Single-entry updates: a poisoned map is still consistent.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The trust bundle secret, the same for every node.
    pub fn trust_secret(&self) -> Arc<Resource> {
        let c = self.current.read().unwrap_or_else(|e| e.into_inner());
        c.trust.clone()
    }

    /// `id`'s identity secret: the one it has, unless that is due for renewal or names other
    /// names than `identity`; else a new certificate (logged without its key).
    pub fn identity_secret(
        &self,
        id: &ProxyId,
        identity: &Identity,
    ) -> Result<Arc<Resource>, CaError> {
        let now = SystemTime::now();
        if let Some(h) = self.lock().get(id) {
            if h.identity == *identity && now < h.renew_at {
                return Ok(h.secret.clone());
            }
        }
        let creds = self.ca().issue(identity, self.validity)?;
        let secret = Secret {
            name: IDENTITY_SECRET.into(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: Some(inline(&creds.cert_pem)),
                private_key: Some(inline(creds.key_pem())),
                ..Default::default()
            })),
        };
        let secret = Arc::new(Resource::new(IDENTITY_SECRET.into(), pack(&secret)));
        let renew_at = now + self.validity.mul_f64(RENEW_AT);
        tracing::debug!(node = %id, uri = %identity.uri, dns = ?identity.dns, valid_for = ?self.validity, "issued a proxy certificate");
        self.lock().insert(
            id.clone(),
            Held {
                identity: identity.clone(),
                secret: secret.clone(),
                renew_at,
            },
        );
        Ok(secret)
    }

    /// Forgets `id`'s certificate (the node no longer uses one).
    pub fn forget(&self, id: &ProxyId) {
        self.lock().remove(id);
    }

    /// When the next certificate is due for renewal.
    pub fn next_renewal(&self) -> Option<SystemTime> {
        self.lock().values().map(|h| h.renew_at).min()
    }

    /// The nodes whose certificates are due at `now`.
    pub fn due(&self, now: SystemTime) -> Vec<ProxyId> {
        let mut due: Vec<ProxyId> = self
            .lock()
            .iter()
            .filter(|(_, h)| h.renew_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        due.sort();
        due
    }

    /// The nodes holding a certificate whose names `current` (the node's names in the model now,
    /// `None` once it is gone) no longer gives it; the gone ones are forgotten.
    pub fn stale(&self, mut current: impl FnMut(&ProxyId) -> Option<Identity>) -> Vec<ProxyId> {
        let mut held = self.lock();
        let mut stale = Vec::new();
        held.retain(|id, h| match current(id) {
            None => false,
            Some(now) => {
                if now != h.identity {
                    stale.push(id.clone());
                }
                true
            }
        });
        stale.sort();
        stale
    }

    /// How many nodes hold a certificate.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn inline(pem: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(pem.as_bytes().to_vec())),
        ..Default::default()
    }
}

fn pack<M: Message + Name>(m: &M) -> envoy_types::pb::google::protobuf::Any {
    crate::build::pack(m)
}
