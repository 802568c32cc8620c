//! Validated mesh model → Envoy v3 resources for one sidecar. Pure functions, no I/O, no gRPC.
//!
//! Sidecar layout (docs/contract.md §2): listener *i* of a virtual node accepts mesh traffic on
//! `0.0.0.0:ingressPort+i` and hands it to the app on `127.0.0.1:<port>`; the app sends outbound traffic
//! to `127.0.0.1:egressPort`, routed by Host header to the node's backend virtual services, and
//! reaches a TCP backend at `127.0.0.1:<its port>` (or `proxy.tcpEgress`), a `tcp_proxy` (`tcp`). A
//! node with `proxy.mode: transparent` gets App Mesh's iptables layout instead ([`transparent`]).

mod access_log;
mod cluster;
mod gateway;
mod gateway_route;
mod grpc_route;
mod ip;
mod listener;
pub mod naming;
mod route;
pub mod sources;
mod tcp;
pub mod tls;
pub mod transparent;
mod util;

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::VirtualHost;

use crate::model::{Mesh, MeshModel, ProxyId, ProxyKind};

pub use route::{RouteTable, ServiceHosts};
pub use tcp::{
    egress_listener as tcp_egress_listener, own_egress_listener as own_tcp_egress_listener,
    ServiceTcpPort, TcpFrame,
};

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
    /// A virtual node's part of its TCP egress listeners; the rest is its TCP backends'.
    pub tcp: Option<TcpFrame>,
    /// The transparent layout's egress tables, one per destination port (`transparent`).
    pub port_tables: Vec<PortTable>,
    /// Backend services the own parts are built from (the transparent egress listener's chains
    /// follow their ports): an edit of one of them changes the node's own parts.
    pub built_from: Vec<String>,
}

/// An egress route table of the transparent layout: for destination port `port`, the hosts its
/// backends have on that port ([`transparent::port_hosts`]).
#[derive(Debug, Clone, Default)]
pub struct PortTable {
    pub port: u32,
    pub table: EgressTable,
}

/// The node-specific frame of the egress route table: its name, the backend virtual services whose
/// hosts fill it (sorted, unique), and a catch-all host last: the mesh's when egress is ALLOW_ALL,
/// or a gateway's for its routes that keep the client's Host.
#[derive(Debug, Clone, Default)]
pub struct EgressTable {
    pub name: String,
    pub backends: Vec<String>,
    pub tail_host: Option<Arc<VirtualHost>>,
    /// The services the tail host is built from (sorted, unique): an edit of one of them changes
    /// the node's own parts.
    pub tail_services: Vec<String>,
    /// The backends whose client policy originates TLS, with that policy (sorted by backend).
    pub tls: Vec<(String, Arc<crate::spec::ClientTls>)>,
}

/// The node-specific parts of `id`'s resources, or `None` when the model does not define it. For a
/// virtual gateway: its ingress listeners, route tables and self-redirect clusters, and an egress
/// table whose backends are its gateway routes' target services (`gateway`).
pub fn translate_own(model: &MeshModel, id: &ProxyId) -> Option<OwnResources> {
    let mesh = model.meshes.get(&id.mesh)?;
    if id.kind == ProxyKind::VirtualGateway {
        let gw = mesh.virtual_gateways.get(&id.name)?;
        let mut own = gateway::gateway_own(mesh, &id.name, &gw.spec);
        ip::bind_both_families(&mut own.listeners, ip::mesh_preference(mesh));
        return Some(own);
    }
    let node = mesh.virtual_nodes.get(&id.name)?;
    let spec = &node.spec;
    if transparent::is_transparent(mesh, spec) {
        return Some(transparent::node_own(mesh, &id.name, spec));
    }
    let mut own = OwnResources::default();

    // Ingress: one listener, local-app cluster and route table per App Mesh listener.
    for (i, l) in spec.listeners.iter().enumerate() {
        own.clusters
            .push(cluster::ingress_cluster(mesh, &id.name, l));
        let (listener, route) = listener::ingress(mesh, &id.name, spec, i, l);
        own.listeners.push(listener);
        own.routes.extend(route);
    }

    let allow_all = mesh.spec.allows_all_egress();
    if !spec.backends.is_empty() || allow_all {
        let backends = spec.backend_names();
        if allow_all {
            own.clusters.push(cluster::allow_all_cluster(&mesh.name));
        }
        let logs = access_log::of(spec.logging.as_ref());
        own.listeners
            .push(listener::egress(spec.egress_port(), allow_all, logs));
        own.egress = Some(EgressTable {
            name: naming::egress_routes(spec.egress_port()),
            tail_host: allow_all.then(|| Arc::new(route::allow_all_host(mesh))),
            tail_services: Vec::new(),
            tls: tls::node_policies(spec, &backends),
            backends,
        });
        own.tcp = Some(TcpFrame {
            ports: spec
                .proxy
                .as_ref()
                .map(|p| p.tcp_egress.clone())
                .unwrap_or_default(),
            // The node's access log is on its TCP egress listeners too.
            access_log: access_log::of(spec.logging.as_ref()),
            ip_preference: ip::preference(mesh, spec.service_discovery.as_ref()),
        });
    }
    let pref = ip::preference(mesh, spec.service_discovery.as_ref());
    ip::bind_both_families(&mut own.listeners, pref);
    Some(own)
}

/// The egress virtual hosts of backend service `vs` and the targets they route to; the same for
/// every client of `vs`.
pub fn service_hosts(mesh: &Mesh, vs: &str) -> ServiceHosts {
    route::service_hosts(mesh, vs)
}

/// The tcp ports of backend service `vs` with their `tcp_proxy`s and the targets they send
/// connections to; the same for every client of `vs`.
pub fn service_tcp(
    mesh: &Mesh,
    vs: &str,
) -> (Vec<ServiceTcpPort>, std::collections::BTreeSet<Target>) {
    tcp::service_tcp(mesh, vs)
}

/// The cluster (and, for static discovery, endpoints) clients use to reach `target`.
pub fn target_cluster(mesh: &Mesh, target: &Target) -> (Cluster, Option<ClusterLoadAssignment>) {
    cluster::egress_cluster(mesh, target)
}

/// The cluster a client with client policy `tls` for the backend uses to reach `target`: the
/// same as [`target_cluster`], with TLS when the policy covers the target's port.
pub fn target_cluster_tls(
    mesh: &Mesh,
    target: &Target,
    tls: &crate::spec::ClientTls,
) -> (Cluster, Option<ClusterLoadAssignment>) {
    let (mut c, cla) = cluster::egress_cluster(mesh, target);
    tls::secure_cluster(&mut c, mesh, target, tls);
    (c, cla)
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
