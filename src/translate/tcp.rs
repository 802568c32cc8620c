//! TCP: the `tcp_proxy` of a node's tcp ingress listener (to the local app), and for clients of a
//! TCP virtual service one egress listener per tcp port of it, on `127.0.0.1:<local port>`
//! (docs/contract.md §2, `proxy.tcpEgress`), its connections split over the route's targets.
//!
//! A service's egress `tcp_proxy` is the same for every client ([`service_tcp`]); where a client
//! listens for it is the client's ([`egress_listener`]).

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, Listener};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};

use super::listener::listener;
use super::util::{any, millis};
use super::{naming, Target};
use crate::model::{Item, Mesh, Router};
use crate::spec::{NodeListener, Protocol, RouteSpec, TcpRoute};

pub(super) const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";

/// A virtual node's own part of its TCP egress listeners (gateways have none).
#[derive(Debug, Clone, Default)]
pub struct TcpFrame {
    /// `proxy.tcpEgress`: backend service → the local port its app connects to.
    pub ports: BTreeMap<String, u32>,
    /// The access logs of the node's TCP egress listeners; a node with some gets listeners of its
    /// own instead of the shared ones.
    pub access_log: Vec<AccessLog>,
    /// The node's `ipPreference`: with one, its TCP egress listeners also bind `[::1]`, as its
    /// other listeners do (so it gets its own, too).
    pub ip_preference: Option<crate::spec::IpPreference>,
}

impl TcpFrame {
    /// Whether the node can use the listeners its backends share (on their own ports, no access
    /// log, IPv4 only).
    pub fn shares_listeners(&self) -> bool {
        self.access_log.is_empty() && self.ip_preference.is_none()
    }
}

/// The node's own egress listener for one tcp port of a backend, on `local_port`: with the
/// frame's access logs, and both address families under an `ipPreference`.
pub fn own_egress_listener(frame: &TcpFrame, local_port: u32, proxy: &TcpProxy) -> Listener {
    let mut l = egress_listener(local_port, proxy, &frame.access_log);
    super::ip::bind_both_families(std::slice::from_mut(&mut l), frame.ip_preference);
    l
}

/// One tcp port of a virtual service, as every client sees it.
#[derive(Debug, Clone)]
pub struct ServiceTcpPort {
    /// The service's listener port: where clients reach it unless `proxy.tcpEgress` says otherwise.
    pub service_port: u32,
    /// Where connections go; `None` when no route (or no target with a weight) applies.
    pub proxy: Option<TcpProxy>,
}

/// The `tcp_proxy` filter: to `clusters` (one, or a weighted split), idle timeout `idle_ms`
/// (Envoy's default of one hour when `None`; 0 disables), with `access_log`.
fn filter(
    stat_prefix: String,
    clusters: Vec<(String, u32)>,
    idle_ms: Option<u64>,
    access_log: Vec<AccessLog>,
) -> TcpProxy {
    // Envoy rejects weight 0 in tcp_proxy weighted clusters (App Mesh keeps it in HTTP routes).
    let mut clusters: Vec<(String, u32)> = clusters.into_iter().filter(|c| c.1 > 0).collect();
    let spec = if clusters.len() == 1 {
        tcp_proxy::ClusterSpecifier::Cluster(clusters.remove(0).0)
    } else {
        tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
            clusters: clusters
                .into_iter()
                .map(|(name, w)| tcp_proxy::weighted_cluster::ClusterWeight {
                    name,
                    weight: w,
                    ..Default::default()
                })
                .collect(),
        })
    };
    TcpProxy {
        stat_prefix,
        cluster_specifier: Some(spec),
        idle_timeout: idle_ms.map(millis),
        access_log,
        ..Default::default()
    }
}

fn as_filter(t: &TcpProxy) -> Filter {
    Filter {
        name: TCP_PROXY.into(),
        config_type: Some(filter::ConfigType::TypedConfig(any(t))),
    }
}

/// The ingress filter of tcp listener `l`: everything to the local app `cluster`, with the
/// listener's `timeout.tcp.idle`.
pub(super) fn ingress_filter(
    stat_prefix: String,
    cluster: String,
    l: &NodeListener,
    access_log: Vec<AccessLog>,
) -> Filter {
    let idle = l
        .timeout
        .as_ref()
        .and_then(|t| t.tcp.as_ref())
        .and_then(|t| t.idle);
    let t = filter(
        stat_prefix,
        vec![(cluster, 1)],
        idle.map(|d| d.as_millis()),
        access_log,
    );
    as_filter(&t)
}

/// A client's egress listener for one tcp port of a backend: `127.0.0.1:<local_port>`.
pub fn egress_listener(local_port: u32, proxy: &TcpProxy, access_log: &[AccessLog]) -> Listener {
    let t = TcpProxy {
        stat_prefix: format!("egress.tcp.{local_port}"),
        access_log: access_log.to_vec(),
        ..proxy.clone()
    };
    listener(
        naming::egress_listener(local_port),
        "127.0.0.1",
        local_port,
        as_filter(&t),
        TrafficDirection::Outbound,
    )
}

/// Every tcp port of `vs` with where its connections go, and the targets they go to.
pub fn service_tcp(mesh: &Mesh, vs: &str) -> (Vec<ServiceTcpPort>, BTreeSet<Target>) {
    let mut targets = BTreeSet::new();
    let mut ports = Vec::new();
    let provider = mesh
        .virtual_services
        .get(vs)
        .and_then(|s| s.spec.provider.as_ref());
    let node = provider.and_then(|p| p.virtual_node.as_ref());
    let router = provider
        .and_then(|p| p.virtual_router.as_ref())
        .and_then(|r| mesh.virtual_routers.get(&r.virtual_router_name));
    for service_port in mesh.tcp_service_ports(vs) {
        let to = if let Some(n) = node {
            node_port(mesh, &n.virtual_node_name, service_port, &mut targets)
        } else if let Some(r) = router {
            router_port(mesh, r, service_port, &mut targets)
        } else {
            None
        };
        let proxy = to.map(|(clusters, idle)| filter(String::new(), clusters, idle, Vec::new()));
        ports.push(ServiceTcpPort {
            service_port,
            proxy,
        });
    }
    (ports, targets)
}

/// (clusters with weights, idle timeout in ms)
type TcpTo = (Vec<(String, u32)>, Option<u64>);

/// A virtual node as provider: all of the port to its tcp listener on that port.
fn node_port(mesh: &Mesh, node: &str, port: u32, targets: &mut BTreeSet<Target>) -> Option<TcpTo> {
    let spec = &mesh.virtual_nodes.get(node)?.spec;
    let i = spec
        .listeners
        .iter()
        .position(|l| l.port_mapping.port == port && l.port_mapping.protocol == Protocol::Tcp)?;
    targets.insert(Target {
        node: node.to_string(),
        listener: i,
    });
    let cluster = naming::egress_cluster(&mesh.name, node, Protocol::Tcp, port);
    Some((vec![(cluster, 100)], None))
}

/// A virtual router as provider: the first tcp route for the port, in App Mesh priority order
/// (a tcp listener carries no request to match on, so one route decides).
fn router_port(
    mesh: &Mesh,
    router: &Router,
    port: u32,
    targets: &mut BTreeSet<Target>,
) -> Option<TcpTo> {
    let route = router
        .routes
        .iter()
        .filter_map(|(name, r): (&String, &Item<RouteSpec>)| {
            Some((name, r.spec.tcp_route.as_ref()?, r.spec.priority))
        })
        .filter(|(_, t, _)| t.port().is_none_or(|p| p == port))
        .min_by_key(|(name, _, priority)| (priority.map_or(u64::MAX, u64::from), *name))
        .map(|(_, t, _)| t)?;
    let clusters = route_clusters(mesh, route, targets);
    if clusters.iter().all(|c| c.1 == 0) {
        return None;
    }
    let idle = route
        .timeout
        .as_ref()
        .and_then(|t| t.idle)
        .map(|d| d.as_millis());
    Some((clusters, idle))
}

/// The egress clusters of a tcp route's weighted targets (each with weight noted in `targets`).
fn route_clusters(mesh: &Mesh, r: &TcpRoute, targets: &mut BTreeSet<Target>) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for t in &r.action.weighted_targets {
        let Some(node) = mesh.virtual_nodes.get(&t.virtual_node) else {
            continue;
        };
        let Some(idx) = node.spec.listener_index(t.port) else {
            continue;
        };
        let pm = node.spec.listeners[idx].port_mapping;
        if t.weight > 0 {
            targets.insert(Target {
                node: t.virtual_node.clone(),
                listener: idx,
            });
        }
        out.push((
            naming::egress_cluster(&mesh.name, &t.virtual_node, pm.protocol, pm.port),
            t.weight,
        ));
    }
    out
}
