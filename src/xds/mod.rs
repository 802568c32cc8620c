//! Generic xDS serving: versioned snapshots of encoded resources, a per-node cache, the xDS
//! protocols, and the limits on what clients may hold. Nothing here knows about App Mesh; nodes
//! are opaque keys.

pub mod accept;
pub mod auth;
pub mod authority;
pub mod cache;
pub mod conn;
pub mod consistent;
pub mod delta;
pub mod group;
pub mod grpc;
pub mod limits;
pub mod metrics;
pub mod names;
pub mod outgoing;
pub mod server;
pub mod sotw;
pub mod variants;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;
use xxhash_rust::xxh3::Xxh3;

pub use variants::VariantKey;

pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// How many resource types are served.
pub const TYPE_COUNT: usize = 5;

/// The resource types: clusters, their endpoints, then the listeners and routes that use them
/// (make-before-break order), and the secrets (SDS) clusters' and listeners' TLS refers to, which
/// the protocol machines send as soon as asked, like endpoints. Only nodes whose TLS refers to a
/// secret have any.
pub const TYPE_ORDER: [&str; TYPE_COUNT] = [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET];

/// The index of secrets in [`TYPE_ORDER`].
pub const SDS: usize = 4;

/// Index of a type URL in [`TYPE_ORDER`].
pub fn type_index(type_url: &str) -> Option<usize> {
    TYPE_ORDER.iter().position(|t| *t == type_url)
}

/// Short name for logs: `CDS`, `EDS`, `LDS`, `RDS`, `SDS`.
pub fn type_short(index: usize) -> &'static str {
    ["CDS", "EDS", "LDS", "RDS", "SDS"]
        .get(index)
        .copied()
        .unwrap_or("?")
}

/// What one stream has sent and Envoy has said, for one type (status reports).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeStatus {
    pub requested: bool,
    pub sent: Option<String>,
    pub acked: Option<String>,
    /// Version and Envoy's message of the last NACK, until the next ACK.
    pub nack: Option<(String, String)>,
}

impl TypeStatus {
    /// A fingerprint of a type's status and the version due on its stream: a stream keeps this,
    /// not a copy, to notice what to publish.
    pub fn print(
        requested: bool,
        sent: Option<&str>,
        acked: Option<&str>,
        nack: Option<&(String, String)>,
        due: Option<&str>,
    ) -> u64 {
        // Each part hashed with the fingerprint so far as its seed (xxh3: a few nanoseconds for
        // a version; SipHash over the same parts was 1.5% of the server's CPU at 10,000 streams).
        // An absent part and an empty one differ by the seed step.
        fn part(h: u64, s: Option<&str>) -> u64 {
            match s {
                Some(s) => xxhash_rust::xxh3::xxh3_64_with_seed(s.as_bytes(), h ^ 1),
                None => h.rotate_left(31).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            }
        }
        let mut h = u64::from(requested);
        for s in [
            sent,
            acked,
            nack.map(|n| n.0.as_str()),
            nack.map(|n| n.1.as_str()),
            due,
        ] {
            h = part(h, s);
        }
        h
    }
}

/// One encoded resource. Encoded once and shared (by `Arc`) by every node and stream that gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub name: String,
    pub any: Any,
    /// Content hash of the encoded bytes.
    pub hash: u64,
    /// The hash as the per-resource version delta xDS sends, formatted once for every stream.
    pub version: String,
}

impl Resource {
    pub fn new(name: String, any: Any) -> Resource {
        let hash = xxhash_rust::xxh3::xxh3_64(&any.value);
        Resource {
            name,
            any,
            hash,
            version: format!("{hash:016x}"),
        }
    }
}

/// All resources of one type for one node, with a version derived from their content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeSnapshot {
    pub version: String,
    pub resources: BTreeMap<String, Arc<Resource>>,
    /// The encoded full response, shared by the streams sending it.
    pub bodies: wire::BodyCache,
}

impl TypeSnapshot {
    pub fn new(resources: BTreeMap<String, Arc<Resource>>) -> TypeSnapshot {
        // A content hash, so an unchanged file produces the same version, even after a restart.
        let mut h = Xxh3::new();
        for (name, r) in &resources {
            h.update(name.as_bytes());
            h.update(&[0]);
            h.update(&r.hash.to_le_bytes());
        }
        TypeSnapshot {
            version: format!("{:016x}", h.digest()),
            resources,
            bodies: wire::BodyCache::default(),
        }
    }
}

/// How an Envoy fetches the resources other resources point at (a cluster's endpoints, a listener's
/// routes): over its ADS stream, or over a per-type stream in SotW or delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceMode {
    Ads,
    PerTypeSotw,
    PerTypeDelta,
}

/// The `:authority` of a gRPC request. Envoy sets it to the name of the bootstrap cluster its
/// `envoy_grpc` config source names (unless told otherwise), which is how per-type streams learn
/// what to point endpoints and routes at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsAuthority(pub String);

/// The secrets of a node that has none: one shared empty type snapshot.
fn no_secrets() -> Arc<TypeSnapshot> {
    static EMPTY: std::sync::OnceLock<Arc<TypeSnapshot>> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| Arc::new(TypeSnapshot::new(BTreeMap::new())))
        .clone()
}

/// Everything one node is served, per type in [`TYPE_ORDER`].
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Shared: a node's new snapshot keeps the types an edit did not change.
    pub types: [Arc<TypeSnapshot>; TYPE_COUNT],
    /// When the change that produced this snapshot was first seen (the file save), for convergence
    /// metrics.
    pub origin: Option<std::time::Instant>,
    /// The per-type variants in demand when it was built (see [`variants`]), by key.
    variants: Vec<(VariantKey, Arc<Snapshot>)>,
}

impl PartialEq for Snapshot {
    fn eq(&self, other: &Snapshot) -> bool {
        self.types == other.types
    }
}

impl Snapshot {
    pub fn new(types: [TypeSnapshot; 4]) -> Snapshot {
        Snapshot::from_shared(types.map(Arc::new))
    }

    /// A snapshot of the four configuration types, with no secrets (see [`Snapshot::with_secrets`]).
    pub fn from_shared(types: [Arc<TypeSnapshot>; 4]) -> Snapshot {
        let [c, e, l, r] = types;
        Snapshot {
            types: [c, e, l, r, no_secrets()],
            origin: None,
            variants: Vec::new(),
        }
    }

    /// This snapshot with `secrets` as its SDS type.
    pub fn with_secrets(mut self, secrets: Arc<TypeSnapshot>) -> Snapshot {
        self.types[SDS] = secrets;
        self
    }

    /// This snapshot with its per-type variants, sorted by key.
    pub fn with_variants(mut self, mut variants: Vec<(VariantKey, Arc<Snapshot>)>) -> Snapshot {
        variants.sort_by(|a, b| a.0.cmp(&b.0));
        self.variants = variants;
        self
    }

    /// The variant for per-type streams of `key`, if it was in demand when this was built.
    pub fn variant(&self, key: &VariantKey) -> Option<&Arc<Snapshot>> {
        self.variants
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|i| &self.variants[i].1)
    }

    pub fn variants(&self) -> &[(VariantKey, Arc<Snapshot>)] {
        &self.variants
    }

    /// Whether `other` serves the same bytes to every stream: the same versions, and the same
    /// variants with the same versions.
    pub fn same_content(&self, other: &Snapshot) -> bool {
        fn versions(s: &Snapshot) -> [&str; TYPE_COUNT] {
            s.types.each_ref().map(|t| t.version.as_str())
        }
        versions(self) == versions(other)
            && self.variants.len() == other.variants.len()
            && self
                .variants
                .iter()
                .zip(&other.variants)
                .all(|((ka, a), (kb, b))| ka == kb && versions(a) == versions(b))
    }

    /// The versions of the four configuration types (not the secrets), e.g. for status output.
    pub fn versions(&self) -> [&str; 4] {
        [
            &self.types[0].version,
            &self.types[1].version,
            &self.types[2].version,
            &self.types[3].version,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::TypeStatus;

    #[test]
    fn a_status_print_changes_with_every_part_and_only_then() {
        let nack = ("v1".to_string(), "bad".to_string());
        let other = ("v1".to_string(), "worse".to_string());
        let cases = [
            TypeStatus::print(false, None, None, None, None),
            TypeStatus::print(true, None, None, None, None),
            TypeStatus::print(true, Some("v1"), None, None, None),
            TypeStatus::print(true, None, Some("v1"), None, None),
            TypeStatus::print(true, Some("v1"), Some("v1"), None, None),
            TypeStatus::print(true, Some("v1"), Some(""), None, None),
            TypeStatus::print(true, Some("v1"), None, Some(&nack), None),
            TypeStatus::print(true, Some("v1"), None, Some(&other), None),
            TypeStatus::print(true, Some("v1"), Some("v1"), None, Some("v2")),
            TypeStatus::print(true, Some("v1"), Some("v1"), None, Some("v1")),
        ];
        for (i, a) in cases.iter().enumerate() {
            for b in &cases[i + 1..] {
                assert_ne!(a, b, "case {i}");
            }
        }
        let again = TypeStatus::print(true, Some("v1"), None, Some(&nack), None);
        assert_eq!(again, cases[6]);
    }
}
