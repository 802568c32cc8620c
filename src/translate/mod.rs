//! Validated mesh model → Envoy v3 resources for one sidecar. Pure functions, no I/O, no gRPC.
//!
//! Sidecar layout (PRODUCT.md §2): listener *i* of a virtual node accepts mesh traffic on
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

use crate::model::{Mesh, MeshModel, ProxyId, ProxyKind};
use crate::spec::EgressFilterType;

pub use route::RouteTable;

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

/// [`translate_node`], reusing (and filling) `memo` for parts shared between nodes.
pub fn translate_node_with(
    model: &MeshModel,
    id: &ProxyId,
    memo: &mut Memo,
) -> Option<NodeResources> {
    let mesh = model.meshes.get(&id.mesh)?;
    if id.kind != ProxyKind::VirtualNode {
        return None;
    }
    let node = mesh.virtual_nodes.get(&id.name)?;
    let spec = &node.spec;
    let mut res = NodeResources::default();

    // Ingress: one listener, local-app cluster and route table per App Mesh listener.
    for (i, l) in spec.listeners.iter().enumerate() {
        res.clusters
            .push(Arc::new(cluster::ingress_cluster(mesh, &id.name, l)));
        let (listener, route) = listener::ingress(mesh, &id.name, spec, i, l);
        res.listeners.push(listener);
        res.routes.extend(route);
    }

    // Egress: a virtual host per backend service, clusters for every node those services reach.
    let allow_all = mesh
        .spec
        .egress_filter
        .as_ref()
        .is_some_and(|f| f.kind == EgressFilterType::AllowAll);
    if !spec.backends.is_empty() || allow_all {
        let backends: Vec<&str> = spec
            .backends
            .iter()
            .filter_map(|b| b.virtual_service.as_ref())
            .map(|v| v.virtual_service_name.as_str())
            .collect();
        let mut sorted = backends.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let mut hosts = Vec::new();
        let mut targets = std::collections::BTreeSet::new();
        for vs in sorted {
            let key = (mesh.name.clone(), vs.to_string());
            let sh = memo
                .hosts
                .entry(key)
                .or_insert_with(|| Arc::new(route::service_hosts(mesh, vs)))
                .clone();
            hosts.extend(sh.hosts.iter().cloned());
            targets.extend(sh.targets.iter().cloned());
        }
        if allow_all {
            hosts.push(Arc::new(route::allow_all_host(mesh)));
            res.clusters
                .push(Arc::new(cluster::allow_all_cluster(&mesh.name)));
        }
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
        res.listeners
            .push(listener::egress(spec.egress_port(), allow_all));
        res.routes.push(RouteTable {
            name: naming::egress_routes(spec.egress_port()),
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

/// Identifies a model entity a node's translation reads: a hash of its kind, mesh and name. Routes
/// count as part of their router. A hash rather than a string: every node records a dozen of these.
pub fn entity_key(kind: crate::spec::Kind, mesh: &str, name: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(kind.native().as_bytes());
    h.update(&[0]);
    h.update(mesh.as_bytes());
    h.update(&[0]);
    h.update(name.as_bytes());
    h.digest()
}

/// Every entity whose change can change `id`'s resources, so a reload can rebuild only the nodes an
/// edit touches.
pub fn dependencies(model: &MeshModel, id: &ProxyId) -> Vec<u64> {
    use crate::spec::Kind;
    let mut deps = vec![entity_key(Kind::Mesh, &id.mesh, &id.mesh)];
    let Some(mesh) = model.meshes.get(&id.mesh) else {
        return deps;
    };
    let node_kind = match id.kind {
        ProxyKind::VirtualNode => Kind::VirtualNode,
        ProxyKind::VirtualGateway => Kind::VirtualGateway,
    };
    deps.push(entity_key(node_kind, &id.mesh, &id.name));
    let Some(node) = mesh.virtual_nodes.get(&id.name) else {
        return deps;
    };
    for b in node
        .spec
        .backends
        .iter()
        .filter_map(|b| b.virtual_service.as_ref())
    {
        deps.push(entity_key(
            Kind::VirtualService,
            &id.mesh,
            &b.virtual_service_name,
        ));
        let Some(vs) = mesh.virtual_services.get(&b.virtual_service_name) else {
            continue;
        };
        let Some(p) = &vs.spec.provider else { continue };
        if let Some(vn) = &p.virtual_node {
            deps.push(entity_key(
                Kind::VirtualNode,
                &id.mesh,
                &vn.virtual_node_name,
            ));
        }
        if let Some(vr) = &p.virtual_router {
            deps.push(entity_key(
                Kind::VirtualRouter,
                &id.mesh,
                &vr.virtual_router_name,
            ));
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
                        deps.push(entity_key(Kind::VirtualNode, &id.mesh, &t.virtual_node));
                    }
                }
            }
        }
    }
    deps.sort();
    deps.dedup();
    deps
}

/// A (virtual node, listener) pair some route sends traffic to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Target {
    pub node: String,
    pub listener: usize,
}

pub(crate) fn mesh_node<'a>(
    mesh: &'a Mesh,
    name: &str,
) -> Option<&'a crate::model::Item<crate::spec::VirtualNodeSpec>> {
    mesh.virtual_nodes.get(name)
}
