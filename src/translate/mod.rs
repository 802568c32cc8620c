//! Validated mesh model → Envoy v3 resources for one sidecar. Pure functions, no I/O, no gRPC.
//!
//! Sidecar layout (docs/contract.md §2): listener *i* of a virtual node accepts mesh traffic on
//! `0.0.0.0:ingressPort+i` and hands it to the app on `127.0.0.1:<port>`; the app sends outbound traffic
//! to `127.0.0.1:egressPort`, routed by Host header to the node's backend virtual services.

mod cluster;
mod listener;
pub mod naming;
mod route;
pub mod sources;
mod util;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::VirtualHost;

use crate::model::{Mesh, MeshModel, ProxyId, ProxyKind};
use crate::spec::EgressFilterType;

pub use route::{RouteTable, ServiceHosts};

/// Everything one sidecar receives, each list sorted by resource name. Parts that are the same for
/// many nodes (another node's cluster, a backend service's virtual hosts) are shared, not copied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeResources {
    pub clusters: Vec<Arc<Cluster>>,
    pub endpoints: Vec<Arc<ClusterLoadAssignment>>,
    pub listeners: Vec<Listener>,
    pub routes: Vec<RouteTable>,
}

/// Results shared between the nodes translated in one pass: a backend service's virtual hosts and
/// a target's cluster are computed once, however many clients use them.
#[derive(Debug, Default)]
pub struct Memo {
    hosts: HashMap<(String, String), Arc<route::ServiceHosts>>,
    clusters: HashMap<(String, Target), SharedCluster>,
}

/// A target's cluster and, for static discovery, its endpoints.
type SharedCluster = (Arc<Cluster>, Option<Arc<ClusterLoadAssignment>>);

/// Translates every virtual node of every mesh.
pub fn translate_all(model: &MeshModel) -> BTreeMap<ProxyId, NodeResources> {
    let mut out = BTreeMap::new();
    for mesh in model.meshes.values() {
        for name in mesh.virtual_nodes.keys() {
            let id = ProxyId {
                mesh: mesh.name.clone(),
                kind: ProxyKind::VirtualNode,
                name: name.clone(),
            };
            if let Some(r) = translate_node(model, &id) {
                out.insert(id, r);
            }
        }
    }
    out
}

/// The resources for one proxy, or `None` when the model does not define it. Virtual gateways are
/// loaded but not translated yet, so they get `None` too.
pub fn translate_node(model: &MeshModel, id: &ProxyId) -> Option<NodeResources> {
    translate_node_with(model, id, &mut Memo::default())
}

/// The parts of a node's resources that depend only on the node itself and its mesh: ingress
/// clusters, listeners and route tables, the egress listener, and what its egress route table is
/// made of. The rest (backend services' virtual hosts, their targets' clusters) is shared between
/// nodes, so an incremental build can keep these parts when only a backend changed.
#[derive(Debug, Clone, Default)]
pub struct OwnResources {
    pub clusters: Vec<Cluster>,
    pub listeners: Vec<Listener>,
    pub routes: Vec<RouteTable>,
    /// Present when the node has an egress listener.
    pub egress: Option<EgressTable>,
}

/// The node-specific frame of the egress route table: its name, the backend virtual services whose
/// hosts fill it (sorted, unique), and the mesh's catch-all host last when egress is ALLOW_ALL.
#[derive(Debug, Clone, Default)]
pub struct EgressTable {
    pub name: String,
    pub backends: Vec<String>,
    pub allow_all_host: Option<Arc<VirtualHost>>,
}

/// The node-specific parts of `id`'s resources, or `None` when the model does not define it (or it
/// is a virtual gateway, which is loaded but not translated yet).
pub fn translate_own(model: &MeshModel, id: &ProxyId) -> Option<OwnResources> {
    let mesh = model.meshes.get(&id.mesh)?;
    if id.kind != ProxyKind::VirtualNode {
        return None;
    }
    let node = mesh.virtual_nodes.get(&id.name)?;
    let spec = &node.spec;
    let mut own = OwnResources::default();

    // Ingress: one listener, local-app cluster and route table per App Mesh listener.
    for (i, l) in spec.listeners.iter().enumerate() {
        own.clusters
            .push(cluster::ingress_cluster(mesh, &id.name, l));
        let (listener, route) = listener::ingress(mesh, &id.name, spec, i, l);
        own.listeners.push(listener);
        own.routes.extend(route);
    }

    let allow_all = mesh
        .spec
        .egress_filter
        .as_ref()
        .is_some_and(|f| f.kind == EgressFilterType::AllowAll);
    if !spec.backends.is_empty() || allow_all {
        let mut backends: Vec<String> = spec
            .backends
            .iter()
            .filter_map(|b| b.virtual_service.as_ref())
            .map(|v| v.virtual_service_name.clone())
            .collect();
        backends.sort_unstable();
        backends.dedup();
        if allow_all {
            own.clusters.push(cluster::allow_all_cluster(&mesh.name));
        }
        own.listeners
            .push(listener::egress(spec.egress_port(), allow_all));
        own.egress = Some(EgressTable {
            name: naming::egress_routes(spec.egress_port()),
            backends,
            allow_all_host: allow_all.then(|| Arc::new(route::allow_all_host(mesh))),
        });
    }
    Some(own)
}

/// The egress virtual hosts of backend service `vs` and the targets they route to; the same for
/// every client of `vs`.
pub fn service_hosts(mesh: &Mesh, vs: &str) -> ServiceHosts {
    route::service_hosts(mesh, vs)
}

/// The cluster (and, for static discovery, endpoints) clients use to reach `target`.
pub fn target_cluster(mesh: &Mesh, target: &Target) -> (Cluster, Option<ClusterLoadAssignment>) {
    cluster::egress_cluster(mesh, target)
}

/// [`translate_node`], reusing (and filling) `memo` for parts shared between nodes.
pub fn translate_node_with(
    model: &MeshModel,
    id: &ProxyId,
    memo: &mut Memo,
) -> Option<NodeResources> {
    let own = translate_own(model, id)?;
    let mesh = model.meshes.get(&id.mesh)?;
    let mut res = NodeResources {
        clusters: own.clusters.into_iter().map(Arc::new).collect(),
        endpoints: Vec::new(),
        listeners: own.listeners,
        routes: own.routes,
    };

    // Egress: a virtual host per backend service, clusters for every node those services reach.
    if let Some(egress) = own.egress {
        let mut hosts = Vec::new();
        let mut targets = std::collections::BTreeSet::new();
        for vs in &egress.backends {
            let key = (mesh.name.clone(), vs.clone());
            let sh = memo
                .hosts
                .entry(key)
                .or_insert_with(|| Arc::new(route::service_hosts(mesh, vs)))
                .clone();
            hosts.extend(sh.hosts.iter().cloned());
            targets.extend(sh.targets.iter().cloned());
        }
        hosts.extend(egress.allow_all_host);
        for target in targets {
            let key = (mesh.name.clone(), target);
            let (c, cla) = memo
                .clusters
                .entry(key)
                .or_insert_with_key(|(_, t)| {
                    let (c, cla) = cluster::egress_cluster(mesh, t);
                    (Arc::new(c), cla.map(Arc::new))
                })
                .clone();
            res.clusters.push(c);
            res.endpoints.extend(cla);
        }
        res.routes.push(RouteTable {
            name: egress.name,
            virtual_hosts: hosts,
        });
    }

    res.clusters.sort_by(|a, b| a.name.cmp(&b.name));
    res.clusters.dedup_by(|a, b| a.name == b.name);
    res.endpoints
        .sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    res.endpoints
        .dedup_by(|a, b| a.cluster_name == b.cluster_name);
    res.listeners.sort_by(|a, b| a.name.cmp(&b.name));
    res.routes.sort_by(|a, b| a.name.cmp(&b.name));
    Some(res)
}

pub use crate::spec::entity_key;

/// Every entity whose change can change `id`'s resources, so a reload can rebuild only the nodes an
/// edit touches.
pub fn dependencies(model: &MeshModel, id: &ProxyId) -> Vec<u64> {
    let mut deps = own_dependencies(id).to_vec();
    if let Some(node) = model
        .meshes
        .get(&id.mesh)
        .filter(|_| id.kind == ProxyKind::VirtualNode)
        .and_then(|m| m.virtual_nodes.get(&id.name).map(|n| (m, n)))
    {
        let (mesh, node) = node;
        for b in node
            .spec
            .backends
            .iter()
            .filter_map(|b| b.virtual_service.as_ref())
        {
            deps.extend(service_dependencies(mesh, &b.virtual_service_name));
        }
    }
    deps.sort_unstable();
    deps.dedup();
    deps
}

/// The entities [`translate_own`] reads: the node and its mesh.
pub fn own_dependencies(id: &ProxyId) -> [u64; 2] {
    use crate::spec::Kind;
    let node_kind = match id.kind {
        ProxyKind::VirtualNode => Kind::VirtualNode,
        ProxyKind::VirtualGateway => Kind::VirtualGateway,
    };
    [
        entity_key(Kind::Mesh, &id.mesh, &id.mesh),
        entity_key(node_kind, &id.mesh, &id.name),
    ]
}

/// The entities [`service_hosts`] (and the clusters of its targets) read for backend `vs`: the
/// mesh, the service, its provider node or router (with its routes), and every node a route sends
/// traffic to. Sorted and unique.
pub fn service_dependencies(mesh: &Mesh, vs_name: &str) -> Vec<u64> {
    use crate::spec::Kind;
    let m = mesh.name.as_str();
    let mut deps = vec![
        entity_key(Kind::Mesh, m, m),
        entity_key(Kind::VirtualService, m, vs_name),
    ];
    let provider = mesh
        .virtual_services
        .get(vs_name)
        .and_then(|vs| vs.spec.provider.as_ref());
    if let Some(p) = provider {
        if let Some(vn) = &p.virtual_node {
            deps.push(entity_key(Kind::VirtualNode, m, &vn.virtual_node_name));
        }
        if let Some(vr) = &p.virtual_router {
            deps.push(entity_key(Kind::VirtualRouter, m, &vr.virtual_router_name));
            if let Some(r) = mesh.virtual_routers.get(&vr.virtual_router_name) {
                for route in r.routes.values() {
                    let http = route
                        .spec
                        .http_route
                        .as_ref()
                        .or(route.spec.http2_route.as_ref());
                    for t in http
                        .map(|h| h.action.weighted_targets.as_slice())
                        .unwrap_or_default()
                    {
                        deps.push(entity_key(Kind::VirtualNode, m, &t.virtual_node));
                    }
                }
            }
        }
    }
    deps.sort_unstable();
    deps.dedup();
    deps
}

/// A (virtual node, listener) pair some route sends traffic to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub node: String,
    pub listener: usize,
}

pub(crate) fn mesh_node<'a>(
    mesh: &'a Mesh,
    name: &str,
) -> Option<&'a crate::model::Item<crate::spec::VirtualNodeSpec>> {
    mesh.virtual_nodes.get(name)
}
