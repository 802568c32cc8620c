//! Generic xDS serving: versioned snapshots of encoded resources, a per-node cache, the xDS
//! protocols, and the limits on what clients may hold. Nothing here knows about App Mesh; nodes
//! are opaque keys.

pub mod accept;
pub mod authority;
pub mod cache;
pub mod conn;
pub mod consistent;
pub mod delta;
pub mod group;
pub mod grpc;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod sotw;

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;
use xxhash_rust::xxh3::Xxh3;

pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

/// The resource types in make-before-break order: clusters, their endpoints, then the listeners and
/// routes that use them.
pub const TYPE_ORDER: [&str; 4] = [CLUSTER, ENDPOINT, LISTENER, ROUTE];

/// Index of a type URL in [`TYPE_ORDER`].
pub fn type_index(type_url: &str) -> Option<usize> {
    TYPE_ORDER.iter().position(|t| *t == type_url)
}

/// Short name for logs: `CDS`, `EDS`, `LDS`, `RDS`.
pub fn type_short(index: usize) -> &'static str {
    ["CDS", "EDS", "LDS", "RDS"]
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

/// Rewrites a snapshot built for ADS into one whose config sources point at per-type services on
/// the named cluster of the Envoy's bootstrap. Supplied by the layer that knows the resources; the
/// xDS layer only picks and caches variants.
pub type VariantFn = Arc<dyn Fn(&Snapshot, SourceMode, &str) -> Snapshot + Send + Sync>;

/// The `:authority` of a gRPC request. Envoy sets it to the name of the bootstrap cluster its
/// `envoy_grpc` config source names (unless told otherwise), which is how per-type streams learn
/// what to point endpoints and routes at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsAuthority(pub String);

/// A per-type variant of a snapshot: its mode, the xDS cluster name it points at, the snapshot.
type Variant = (SourceMode, Arc<str>, Arc<Snapshot>);

/// The variants one snapshot keeps: Envoys of one mesh use one or two cluster names, not more.
const MAX_VARIANTS: usize = 8;

/// Everything one node is served, per type in [`TYPE_ORDER`].
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Shared: a node's new snapshot keeps the types an edit did not change.
    pub types: [Arc<TypeSnapshot>; 4],
    /// When the change that produced this snapshot was first seen (the file save), for convergence
    /// metrics.
    pub origin: Option<std::time::Instant>,
    /// Per-type-service variants by mode and xDS cluster name, built on first use by a per-type
    /// stream and shared after that (at most [`MAX_VARIANTS`]).
    variants: std::sync::Mutex<Vec<Variant>>,
}

impl Clone for Snapshot {
    /// A copy of the resources; its variants are made again on demand.
    fn clone(&self) -> Snapshot {
        Snapshot {
            types: self.types.clone(),
            origin: self.origin,
            variants: Default::default(),
        }
    }
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

    pub fn from_shared(types: [Arc<TypeSnapshot>; 4]) -> Snapshot {
        Snapshot {
            types,
            origin: None,
            variants: Default::default(),
        }
    }

    /// The snapshot as a stream of `mode` must see it, for an Envoy whose bootstrap calls
    /// meshplane's cluster `cluster`.
    pub fn for_mode(
        self: &Arc<Self>,
        mode: SourceMode,
        cluster: &str,
        make: &VariantFn,
    ) -> Arc<Snapshot> {
        if mode == SourceMode::Ads {
            return self.clone();
        }
        let lock = || self.variants.lock().unwrap_or_else(|e| e.into_inner());
        let found = lock()
            .iter()
            .find(|(m, c, _)| *m == mode && &**c == cluster)
            .map(|(_, _, v)| v.clone());
        if let Some(v) = found {
            return v;
        }
        // Built outside the lock: other streams of this snapshot keep reading variants meanwhile.
        let mut v = make(self, mode, cluster);
        v.origin = self.origin;
        let v = Arc::new(v);
        let mut variants = lock();
        if let Some((_, _, existing)) = variants
            .iter()
            .find(|(m, c, _)| *m == mode && &**c == cluster)
        {
            return existing.clone();
        }
        if variants.len() < MAX_VARIANTS {
            variants.push((mode, cluster.into(), v.clone()));
        }
        v
    }

    /// The per-type versions, e.g. for status output.
    pub fn versions(&self) -> [&str; 4] {
        [
            &self.types[0].version,
            &self.types[1].version,
            &self.types[2].version,
            &self.types[3].version,
        ]
    }
}
