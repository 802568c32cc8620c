//! The outbound side of a transparent sidecar: `0.0.0.0:egressPort` takes the app's redirected
//! connections and picks a filter chain by their original destination port. An HTTP-family
//! backend port gets an HTTP connection manager with that port's route table
//! (`rds_egress_http_<port>`: each backend service with that port, answering to its name with and
//! without the port). A TCP backend's port (a tcp listener of its provider node, or of its
//! provider router, split by its tcpRoute) gets a `tcp_proxy` to its targets' clusters. Every
//! chain writes the node's access logs. A destination no backend has: with the mesh's egress filter `ALLOW_ALL`, the
//! default chain passes it through unchanged (`cds_egress_<mesh>_mesh-allow-all`, an ORIGINAL_DST
//! cluster, which also takes unknown Hosts on a backend port; a connection to the egress port
//! itself is closed, not looped); with `DROP_ALL` there is no default chain, so Envoy closes the
//! connection (and an unknown Host on a backend port gets 404).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};

use super::super::cluster::{self as clusters, thresholds, CONNECT_TIMEOUT_MS, UNLIMITED};
use super::super::listener::{hcm, HCM};
use super::super::tcp::service_tcp;
use super::super::util::{any, millis};
use super::super::{access_log, naming, route, EgressTable, OwnResources, PortTable, Target};
use super::{on_port, original_dst_listener};
use crate::model::Mesh;
use crate::spec::VirtualNodeSpec;

/// Adds the egress listener, its per-port tables and the passthrough cluster, when the app has
/// somewhere to go (backends, or anywhere under ALLOW_ALL).
pub(super) fn add_egress(own: &mut OwnResources, mesh: &Mesh, spec: &VirtualNodeSpec) {
    let allow_all = mesh.spec.allows_all_egress();
    let backends = spec.backend_names();
    // Destination port → the backends with an HTTP-family listener on it (sorted).
    let mut http: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for vs in &backends {
        for (port, proto) in mesh.service_ports(vs) {
            let on_port = http.entry(port).or_default();
            if proto.is_http_family() && !on_port.contains(vs) {
                on_port.push(vs.clone());
            }
        }
    }
    http.retain(|_, vss| !vss.is_empty());
    let tcp = tcp_ports(mesh, &backends, &http);
    // App Mesh wrote a node's access log on every listener, this one's chains included.
    let logs = access_log::of(spec.logging.as_ref());
    let port = spec.egress_port();
    let tail = allow_all.then(|| Arc::new(route::allow_all_host(mesh)));
    let mut chains = Vec::new();
    for (port, vss) in http {
        let rds = naming::egress_routes(port);
        let mut h = hcm("egress".into(), rds.clone(), false);
        h.access_log = logs.clone();
        let f = Filter {
            name: HCM.into(),
            config_type: Some(filter::ConfigType::TypedConfig(any(&h))),
        };
        chains.push(on_port(chain(f), port));
        own.port_tables.push(PortTable {
            port,
            table: EgressTable {
                tls: crate::translate::tls::node_policies(spec, &vss),
                name: rds,
                backends: vss,
                tail_host: tail.clone(),
                tail_services: Vec::new(),
            },
        });
    }
    for (dest, to) in tcp {
        let (cs, f) = tcp_backend(mesh, dest, to, &logs);
        for c in cs {
            if !own.clusters.iter().any(|o| o.name == c.name) {
                own.clusters.push(c);
            }
        }
        chains.push(on_port(chain(f), dest));
    }
    let default = allow_all.then(|| chain(passthrough_filter(mesh, &logs)));
    if allow_all {
        own.clusters.push(passthrough_cluster(mesh));
        // A connection made to the egress port itself (an app still using it as its proxy) has
        // that port as its original destination: passing it through would loop back here
        // forever. A chain without filters closes it.
        if !own.port_tables.iter().any(|t| t.port == port) {
            chains.push(on_port(FilterChain::default(), port));
        }
    }
    // The listener's chains follow the backends' ports: an edit of a backend rebuilds them.
    own.built_from = backends;
    if chains.is_empty() && default.is_none() {
        // Nowhere to go (DROP_ALL, no backend port): no listener, the redirected connection is
        // refused, as Envoy would close it.
        return;
    }
    own.listeners.push(original_dst_listener(
        naming::transparent_egress_listener(port),
        port,
        chains,
        default,
        TrafficDirection::Outbound,
    ));
}

/// Destination port → the `tcp_proxy` of a backend's tcp port and the targets it sends to: all
/// of the port to its provider node's tcp listener, or split by its router's tcpRoute, as the
/// explicit layout routes it ([`service_tcp`]). Only ports no HTTP-family backend has (the port
/// picks the protocol; among TCP backends on one port, the first by name).
fn tcp_ports(
    mesh: &Mesh,
    backends: &[String],
    http: &BTreeMap<u32, Vec<String>>,
) -> BTreeMap<u32, (TcpProxy, BTreeSet<Target>)> {
    let mut tcp = BTreeMap::new();
    for vs in backends {
        let (ports, targets) = service_tcp(mesh, vs);
        for p in ports {
            let Some(proxy) = p.proxy else {
                continue;
            };
            if !http.contains_key(&p.service_port) {
                tcp.entry(p.service_port)
                    .or_insert_with(|| (proxy, targets.clone()));
            }
        }
    }
    tcp
}

/// The clusters a `tcp_proxy` names.
fn proxy_clusters(t: &TcpProxy) -> Vec<&str> {
    match &t.cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::Cluster(c)) => vec![c.as_str()],
        Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) => {
            w.clusters.iter().map(|c| c.name.as_str()).collect()
        }
        None => Vec::new(),
    }
}

/// A TCP backend on destination port `port`: the clusters of its targets (static endpoints
/// inline: the builder serves EDS only for the targets of backends' virtual hosts) and its
/// `tcp_proxy`, writing the node's access logs `logs`.
fn tcp_backend(
    mesh: &Mesh,
    port: u32,
    (proxy, targets): (TcpProxy, BTreeSet<Target>),
    logs: &[AccessLog],
) -> (Vec<Cluster>, Filter) {
    let named = proxy_clusters(&proxy);
    let mut out = Vec::new();
    for target in &targets {
        let (mut c, cla) = clusters::egress_cluster(mesh, target);
        if !named.contains(&c.name.as_str()) {
            continue;
        }
        if let Some(cla) = cla {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Static as i32,
            ));
            c.eds_cluster_config = None;
            c.load_assignment = Some(cla);
        }
        out.push(c);
    }
    let tcp = TcpProxy {
        stat_prefix: format!("egress.tcp.{port}"),
        access_log: logs.to_vec(),
        ..proxy
    };
    let f = Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(any(&tcp))),
    };
    (out, f)
}

fn chain(f: Filter) -> FilterChain {
    FilterChain {
        filters: vec![f],
        ..Default::default()
    }
}

/// Any other destination, as it is (ALLOW_ALL).
fn passthrough_filter(mesh: &Mesh, logs: &[AccessLog]) -> Filter {
    let tcp = TcpProxy {
        access_log: logs.to_vec(),
        stat_prefix: "egress.passthrough".into(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(
            naming::allow_all_cluster(&mesh.name),
        )),
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(any(&tcp))),
    }
}

/// `cds_egress_<mesh>_mesh-allow-all` as App Mesh's transparent sidecars had it: to the
/// connection's original destination.
fn passthrough_cluster(mesh: &Mesh) -> Cluster {
    Cluster {
        name: naming::allow_all_cluster(&mesh.name),
        connect_timeout: Some(millis(CONNECT_TIMEOUT_MS)),
        lb_policy: cluster::LbPolicy::ClusterProvided as i32,
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::OriginalDst as i32,
        )),
        circuit_breakers: Some(thresholds(UNLIMITED, UNLIMITED, UNLIMITED)),
        ..Default::default()
    }
}
