//! Route tables: the ingress table of each listener, and the egress table with one virtual host per
//! backend virtual service, its routes ordered by App Mesh priority. A route's match is built in
//! [`matching`], its retry policy in [`retry`]; the action (weighted clusters, timeouts) here. gRPC
//! routes are built in `super::grpc_route` from the same parts.
//!
//! A service reached on several ports (a router, or a node as provider, with several HTTP-family
//! listeners) gets one virtual host per port: Host `<service>:<port>` picks that port's routes, and
//! the bare `<service>` the first listener's (docs/contract.md §2).

pub(super) mod matching;
mod retry;

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::route::v3::{
    route, route_action, route_match, weighted_cluster, RetryPolicy, Route, RouteAction,
    RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster,
};

use envoy_types::pb::google::protobuf::Duration;

use super::util::{millis, u32v};
use super::{grpc_route, naming, Target};
use std::sync::Arc;

use crate::model::{Item, Mesh, Router};
use crate::spec::{
    HttpRoute, HttpTimeout, NodeListener, PortMapping, Protocol, RouteAction as MeshRouteAction,
    RouteSpec,
};
pub use retry::{
    default_grpc_retry_policy, default_retry_policy, grpc_retry_policy, retry_policy,
    routes_with_policy, share_retry_policy,
};

/// App Mesh's defaults: 15 s per request, 300 s idle; 0 disables.
const DEFAULT_PER_REQUEST_MS: u64 = 15_000;
const DEFAULT_IDLE_MS: u64 = 300_000;

/// Envoy's own: a route without `timeout` has 15 s (`RouteAction.timeout`), and one without
/// `idle_timeout` has the connection manager's `stream_idle_timeout`, 5 min unless set, which
/// meshplane's connection managers never set (`listener::hcm`). The same values reach the same
/// timers (stream flush timeout and overload scaling included), so a route leaves them out.
const ENVOY_ROUTE_TIMEOUT_MS: u64 = 15_000;
const ENVOY_STREAM_IDLE_MS: u64 = 300_000;

/// A route's (timeout, idle timeout) for App Mesh timeouts `t`, each `None` where Envoy's default
/// is the same value.
fn timeouts(t: Option<&HttpTimeout>) -> (Option<Duration>, Option<Duration>) {
    let per_request = t
        .and_then(|t| t.per_request)
        .map_or(DEFAULT_PER_REQUEST_MS, |d| d.as_millis());
    let idle = t
        .and_then(|t| t.idle)
        .map_or(DEFAULT_IDLE_MS, |d| d.as_millis());
    (
        (per_request != ENVOY_ROUTE_TIMEOUT_MS).then(|| millis(per_request)),
        (idle != ENVOY_STREAM_IDLE_MS).then(|| millis(idle)),
    )
}

fn prefix_match(prefix: &str) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.into())),
        ..Default::default()
    }
}

/// The cluster specifier of weighted `clusters`: one cluster alone (with a weight, so Envoy
/// would accept it as a split) is that cluster, which routes every request the same way.
fn cluster_specifier(mut clusters: Vec<(String, u32)>) -> route_action::ClusterSpecifier {
    if let [(_, w)] = clusters.as_slice() {
        if *w > 0 {
            let (name, _) = clusters.remove(0);
            return route_action::ClusterSpecifier::Cluster(name);
        }
    }
    route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
        clusters: clusters
            .into_iter()
            .map(|(name, w)| weighted_cluster::ClusterWeight {
                name,
                weight: u32v(w),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

pub(super) fn weighted(
    clusters: Vec<(String, u32)>,
    t: Option<&HttpTimeout>,
    retry: Option<RetryPolicy>,
) -> route::Action {
    let (timeout, idle_timeout) = timeouts(t);
    route::Action::Route(RouteAction {
        cluster_specifier: Some(cluster_specifier(clusters)),
        timeout,
        idle_timeout,
        retry_policy: retry,
        ..Default::default()
    })
}

/// The inbound table of one listener: everything to the local app, with the listener's timeouts.
pub fn ingress_table(name: String, cluster: String, l: &NodeListener) -> RouteTable {
    let t = l
        .timeout
        .as_ref()
        .and_then(|t| t.http.as_ref().or(t.http2.as_ref()).or(t.grpc.as_ref()));
    let (timeout, idle_timeout) = timeouts(t);
    RouteTable {
        name,
        virtual_hosts: vec![Arc::new(VirtualHost {
            name: "ingress".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                name: "ingress".into(),
                r#match: Some(prefix_match("/")),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster)),
                    timeout,
                    idle_timeout,
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        })],
    }
}

/// A route table whose virtual hosts may be shared with other nodes' tables (a backend service's
/// virtual host is the same for every client that calls it).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTable {
    pub name: String,
    pub virtual_hosts: Vec<Arc<VirtualHost>>,
}

impl RouteTable {
    pub fn to_proto(&self) -> RouteConfiguration {
        RouteConfiguration {
            name: self.name.clone(),
            virtual_hosts: self.virtual_hosts.iter().map(|v| (**v).clone()).collect(),
            ..Default::default()
        }
    }
}

/// The virtual hosts of one backend virtual service and the (node, listener) targets they route to.
#[derive(Debug, Default)]
pub struct ServiceHosts {
    pub hosts: Vec<Arc<VirtualHost>>,
    pub targets: BTreeSet<Target>,
}

/// The egress virtual hosts for clients of `vs_name`: one per port clients dial.
pub fn service_hosts(mesh: &Mesh, vs_name: &str) -> ServiceHosts {
    let mut targets = BTreeSet::new();
    let Some(vs) = mesh.virtual_services.get(vs_name) else {
        return ServiceHosts::default();
    };
    let provider = vs.spec.provider.as_ref();
    let ports = if let Some(vn) = provider.and_then(|p| p.virtual_node.as_ref()) {
        node_ports(mesh, vs_name, &vn.virtual_node_name, &mut targets)
    } else if let Some(vr) = provider.and_then(|p| p.virtual_router.as_ref()) {
        mesh.virtual_routers
            .get(&vr.virtual_router_name)
            .map(|router| router_ports(mesh, router, &mut targets))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    ServiceHosts {
        hosts: virtual_hosts(vs_name, ports),
        targets,
    }
}

/// (port clients dial, routes for that port)
type PortRoutes = Vec<(u32, Vec<Route>)>;

/// A virtual node as provider: each HTTP-family listener is one port, all of it to that listener.
fn node_ports(
    mesh: &Mesh,
    vs_name: &str,
    node_name: &str,
    targets: &mut BTreeSet<Target>,
) -> PortRoutes {
    let Some(node) = mesh.virtual_nodes.get(node_name) else {
        return Vec::new();
    };
    let mut ports = Vec::new();
    for (i, l) in node.spec.listeners.iter().enumerate() {
        if !l.port_mapping.protocol.is_http_family() {
            continue;
        }
        let pm = l.port_mapping;
        let cluster = naming::egress_cluster(&mesh.name, node_name, pm.protocol, pm.port);
        targets.insert(Target {
            node: node_name.to_string(),
            listener: i,
        });
        // App Mesh's default retry policy also retries gRPC's UNAVAILABLE.
        let retry = if pm.protocol == Protocol::Grpc {
            default_grpc_retry_policy()
        } else {
            default_retry_policy()
        };
        let route = Route {
            name: vs_name.to_string(),
            r#match: Some(prefix_match("/")),
            action: Some(weighted(vec![(cluster, 100)], None, Some(retry))),
            ..Default::default()
        };
        ports.push((pm.port, vec![route]));
    }
    ports
}

/// A virtual router as provider: each router listener is one port, with the routes that apply to
/// it.
fn router_ports(mesh: &Mesh, router: &Router, targets: &mut BTreeSet<Target>) -> PortRoutes {
    let mut routes: Vec<(&String, &Item<RouteSpec>)> = router.routes.iter().collect();
    // Lower priority value first; routes without a priority after all that have one.
    routes.sort_by_key(|(name, r)| (r.spec.priority.map_or(u64::MAX, u64::from), (*name).clone()));
    let mut ports = Vec::new();
    for l in &router.spec.listeners {
        let pm = l.port_mapping;
        let out = routes
            .iter()
            .filter_map(|(name, r)| listener_route(mesh, pm, name, &r.spec, targets))
            .collect();
        ports.push((pm.port, out));
    }
    ports
}

/// What route `spec` adds to the router listener `pm`: the route of the listener's protocol
/// (httpRoute on http, http2Route on http2, grpcRoute on grpc, as App Mesh pairs them), when its
/// `match.port` is absent or this listener's.
fn listener_route(
    mesh: &Mesh,
    pm: PortMapping,
    name: &str,
    spec: &RouteSpec,
    targets: &mut BTreeSet<Target>,
) -> Option<Route> {
    let here = |port: Option<u32>| port.is_none_or(|p| p == pm.port);
    let http = match pm.protocol {
        Protocol::Http => spec.http_route.as_ref(),
        Protocol::Http2 => spec.http2_route.as_ref(),
        Protocol::Grpc => {
            let g = spec.grpc_route.as_ref().filter(|g| here(g.matcher.port))?;
            return Some(grpc_route::grpc_route(mesh, name, g, targets));
        }
        Protocol::Tcp => None,
    };
    let h = http.filter(|h| here(h.matcher.port))?;
    Some(http_route(mesh, name, h, targets))
}

/// One virtual host per port. The first also answers to the bare name; with one port, the host is
/// named after the service alone.
fn virtual_hosts(vs_name: &str, ports: PortRoutes) -> Vec<Arc<VirtualHost>> {
    if ports.is_empty() {
        // No provider (or nothing HTTP behind it): the name resolves but has no routes, as in App Mesh.
        return vec![Arc::new(VirtualHost {
            name: vs_name.to_string(),
            domains: vec![vs_name.to_string()],
            ..Default::default()
        })];
    }
    let single = ports.len() == 1;
    let mut hosts = Vec::new();
    for (i, (port, routes)) in ports.into_iter().enumerate() {
        let mut domains = Vec::new();
        if i == 0 {
            domains.push(vs_name.to_string());
        }
        domains.push(format!("{vs_name}:{port}"));
        let name = if single {
            vs_name.to_string()
        } else {
            format!("{vs_name}:{port}")
        };
        let mut host = VirtualHost {
            name,
            domains,
            routes,
            ..Default::default()
        };
        share_retry_policy(&mut host);
        hosts.push(Arc::new(host));
    }
    hosts
}

/// The catch-all virtual host of a mesh whose egress filter is ALLOW_ALL.
pub fn allow_all_host(mesh: &Mesh) -> VirtualHost {
    VirtualHost {
        name: "mesh-allow-all".into(),
        domains: vec!["*".into()],
        routes: vec![Route {
            name: "mesh-allow-all".into(),
            r#match: Some(prefix_match("/")),
            action: Some(route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                    naming::allow_all_cluster(&mesh.name),
                )),
                // App Mesh's 15 s: Envoy's default route timeout.
                ..Default::default()
            })),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// One App Mesh HTTP route: its match, and its weighted targets (each noted in `targets`) with
/// the route's timeouts and retry policy.
fn http_route(mesh: &Mesh, name: &str, r: &HttpRoute, targets: &mut BTreeSet<Target>) -> Route {
    let clusters = weighted_targets(mesh, &r.action, targets);
    let retry = Some(
        r.retry_policy
            .as_ref()
            .map_or_else(default_retry_policy, retry_policy),
    );
    Route {
        name: name.to_string(),
        r#match: Some(matching::route_match(&r.matcher)),
        action: Some(weighted(clusters, r.timeout.as_ref(), retry)),
        ..Default::default()
    }
}

/// The egress clusters of a route's weighted targets, with their weights; targets that name no
/// node or listener are skipped.
pub(super) fn weighted_targets(
    mesh: &Mesh,
    action: &MeshRouteAction,
    targets: &mut BTreeSet<Target>,
) -> Vec<(String, u32)> {
    let mut clusters = Vec::new();
    for t in &action.weighted_targets {
        let Some(node) = mesh.virtual_nodes.get(&t.virtual_node) else {
            continue;
        };
        let Some(idx) = node.spec.listener_index(t.port) else {
            continue;
        };
        let pm = node.spec.listeners[idx].port_mapping;
        targets.insert(Target {
            node: t.virtual_node.clone(),
            listener: idx,
        });
        clusters.push((
            naming::egress_cluster(&mesh.name, &t.virtual_node, pm.protocol, pm.port),
            t.weight,
        ));
    }
    clusters
}

#[cfg(test)]
mod tests;
