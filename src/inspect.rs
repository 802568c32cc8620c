//! Readable summaries of the Envoy resources served to a node, for `meshplane config` and the admin
//! API: cluster → discovery and endpoints, listener → route table, virtual host → route match →
//! weighted clusters.

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::{address, socket_address, Address};
use envoy_types::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};
use envoy_types::pb::envoy::config::listener::v3::{filter, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher, query_parameter_matcher, route, route_action, route_match, RouteConfiguration,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, HttpConnectionManager,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, StringMatcher};
use envoy_types::pb::google::protobuf::Duration;
use prost::{Message, Name};
use serde::{Deserialize, Serialize};

use crate::xds::Snapshot;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeView {
    pub node_id: String,
    pub versions: Versions,
    pub clusters: Vec<ClusterView>,
    pub endpoints: Vec<EndpointsView>,
    pub listeners: Vec<ListenerView>,
    pub routes: Vec<RouteConfigView>,
    /// Per type (CDS, EDS, LDS, RDS), each resource's version (a hash of its encoded bytes), so
    /// two views can be compared resource by resource even where the summary shows no difference.
    #[serde(default)]
    pub resource_versions: [std::collections::BTreeMap<String, String>; 4],
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Versions {
    pub clusters: String,
    pub endpoints: String,
    pub listeners: String,
    pub routes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterView {
    pub name: String,
    /// STATIC, STRICT_DNS, LOGICAL_DNS, EDS or the custom cluster type.
    pub discovery: String,
    /// Addresses in the cluster itself (EDS clusters have theirs in `endpoints`).
    pub addresses: Vec<String>,
    pub http2: bool,
    pub health_check: bool,
    pub outlier_detection: bool,
    /// max connections / pending requests / requests / retries of the default priority.
    pub circuit_breakers: Option<[u32; 4]>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointsView {
    pub cluster: String,
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ListenerView {
    pub name: String,
    pub address: String,
    /// The route table an HTTP listener uses.
    pub route_config: Option<String>,
    /// The cluster a TCP listener forwards to (a split: `name weight, ...`).
    pub tcp_cluster: Option<String>,
    /// `plaintext`, `TLS` (every filter chain terminates TLS) or `TLS and plaintext` (some do:
    /// App Mesh's PERMISSIVE).
    #[serde(default)]
    pub tls: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RouteConfigView {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHostView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VirtualHostView {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: Vec<RouteView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RouteView {
    pub name: String,
    /// e.g. `prefix / header x-version=v2 query version=v1`.
    pub r#match: String,
    /// (cluster, weight); a single cluster has weight 100.
    pub clusters: Vec<(String, u32)>,
    /// The route's timeout as Envoy applies it: a route that sets none has Envoy's 15 s.
    pub timeout: Option<String>,
    /// The route's retry policy as Envoy applies it: its own, else its virtual host's.
    pub retry: Option<String>,
}

fn addr(a: &Option<Address>) -> String {
    match a.as_ref().and_then(|a| a.address.as_ref()) {
        Some(address::Address::SocketAddress(s)) => match s.port_specifier {
            Some(socket_address::PortSpecifier::PortValue(p)) => format!("{}:{p}", s.address),
            _ => s.address.clone(),
        },
        _ => String::new(),
    }
}

fn dur(d: &Option<Duration>) -> Option<String> {
    d.as_ref().map(|d| {
        let ms = d.seconds * 1000 + i64::from(d.nanos) / 1_000_000;
        if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    })
}

fn endpoints_of(cla: &ClusterLoadAssignment) -> Vec<String> {
    cla.endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|e| match &e.host_identifier {
            Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => Some(addr(&ep.address)),
            _ => None,
        })
        .collect()
}

fn cluster_view(c: &Cluster) -> ClusterView {
    let discovery = match &c.cluster_discovery_type {
        Some(cluster::ClusterDiscoveryType::Type(t)) => cluster::DiscoveryType::try_from(*t)
            .map(|t| t.as_str_name().to_string())
            .unwrap_or_else(|_| t.to_string()),
        Some(cluster::ClusterDiscoveryType::ClusterType(ct)) => ct.name.clone(),
        None => "STATIC".into(),
    };
    let circuit_breakers = c
        .circuit_breakers
        .as_ref()
        .and_then(|cb| cb.thresholds.first())
        .map(|t| {
            let v = |x: &Option<envoy_types::pb::google::protobuf::UInt32Value>| {
                x.as_ref().map_or(0, |x| x.value)
            };
            [
                v(&t.max_connections),
                v(&t.max_pending_requests),
                v(&t.max_requests),
                v(&t.max_retries),
            ]
        });
    ClusterView {
        name: c.name.clone(),
        discovery,
        addresses: c
            .load_assignment
            .as_ref()
            .map(endpoints_of)
            .unwrap_or_default(),
        http2: !c.typed_extension_protocol_options.is_empty(),
        health_check: !c.health_checks.is_empty(),
        outlier_detection: c.outlier_detection.is_some(),
        circuit_breakers,
    }
}

fn listener_view(l: &Listener) -> ListenerView {
    let mut route_config = None;
    let mut tcp_cluster = None;
    for f in l.filter_chains.iter().flat_map(|c| &c.filters) {
        let Some(filter::ConfigType::TypedConfig(cfg)) = &f.config_type else {
            continue;
        };
        if cfg.type_url == HttpConnectionManager::type_url() {
            if let Ok(hcm) = HttpConnectionManager::decode(cfg.value.as_slice()) {
                if let Some(http_connection_manager::RouteSpecifier::Rds(rds)) = hcm.route_specifier
                {
                    route_config = Some(rds.route_config_name);
                }
            }
        } else if cfg.type_url == TcpProxy::type_url() {
            if let Ok(tcp) = TcpProxy::decode(cfg.value.as_slice()) {
                tcp_cluster = match tcp.cluster_specifier {
                    Some(tcp_proxy::ClusterSpecifier::Cluster(c)) => Some(c),
                    // A tcpRoute split: `name weight, name weight`, as weighted HTTP routes show.
                    Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) => Some(
                        w.clusters
                            .iter()
                            .map(|c| format!("{} {}", c.name, c.weight))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    None => None,
                };
            }
        }
    }
    let with_tls = l
        .filter_chains
        .iter()
        .filter(|c| c.transport_socket.is_some())
        .count();
    let tls = match with_tls {
        0 => "plaintext",
        n if n == l.filter_chains.len() => "TLS",
        _ => "TLS and plaintext",
    };
    ListenerView {
        name: l.name.clone(),
        address: addr(&l.address),
        route_config,
        tcp_cluster,
        tls: tls.to_string(),
    }
}

fn string_match(m: &StringMatcher) -> String {
    match &m.match_pattern {
        Some(string_matcher::MatchPattern::Exact(v)) => format!("={v}"),
        Some(string_matcher::MatchPattern::Prefix(v)) => format!("^={v}"),
        Some(string_matcher::MatchPattern::Suffix(v)) => format!("$={v}"),
        Some(string_matcher::MatchPattern::SafeRegex(r)) => format!("~={}", r.regex),
        Some(string_matcher::MatchPattern::Contains(v)) => format!("*={v}"),
        _ => String::new(),
    }
}

fn route_config_view(rc: &RouteConfiguration) -> RouteConfigView {
    let virtual_hosts = rc
        .virtual_hosts
        .iter()
        .map(|vh| VirtualHostView {
            name: vh.name.clone(),
            domains: vh.domains.clone(),
            routes: vh
                .routes
                .iter()
                .map(|r| {
                    let mut parts = Vec::new();
                    if let Some(m) = &r.r#match {
                        match &m.path_specifier {
                            Some(route_match::PathSpecifier::Prefix(p)) => parts.push(format!("prefix {p}")),
                            Some(route_match::PathSpecifier::Path(p)) => parts.push(format!("path {p}")),
                            Some(route_match::PathSpecifier::SafeRegex(re)) => parts.push(format!("regex {}", re.regex)),
                            _ => {}
                        }
                        for h in &m.headers {
                            let how = match &h.header_match_specifier {
                                Some(header_matcher::HeaderMatchSpecifier::StringMatch(s)) => string_match(s),
                                Some(header_matcher::HeaderMatchSpecifier::PresentMatch(_)) => " present".into(),
                                Some(header_matcher::HeaderMatchSpecifier::RangeMatch(r)) => {
                                    format!(" in [{}, {})", r.start, r.end)
                                }
                                _ => String::new(),
                            };
                            let not = if h.invert_match { "!" } else { "" };
                            parts.push(format!("header {not}{}{how}", h.name));
                        }
                        for q in &m.query_parameters {
                            let how = match &q.query_parameter_match_specifier {
                                Some(query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(s)) => {
                                    string_match(s)
                                }
                                _ => " present".into(),
                            };
                            parts.push(format!("query {}{how}", q.name));
                        }
                    }
                    let (clusters, timeout, retry) = match &r.action {
                        Some(route::Action::Route(a)) => {
                            let clusters = match &a.cluster_specifier {
                                Some(route_action::ClusterSpecifier::Cluster(c)) => vec![(c.clone(), 100)],
                                Some(route_action::ClusterSpecifier::WeightedClusters(w)) => w
                                    .clusters
                                    .iter()
                                    .map(|c| (c.name.clone(), c.weight.as_ref().map_or(0, |w| w.value)))
                                    .collect(),
                                _ => vec![],
                            };
                            let retry = a.retry_policy.as_ref().or(vh.retry_policy.as_ref()).map(|p| {
                                format!("{} x{}", p.retry_on, p.num_retries.as_ref().map_or(1, |n| n.value))
                            });
                            (clusters, dur(&a.timeout).or_else(|| Some("15s".into())), retry)
                        }
                        _ => (vec![], None, None),
                    };
                    RouteView { name: r.name.clone(), r#match: parts.join(" "), clusters, timeout, retry }
                })
                .collect(),
        })
        .collect();
    RouteConfigView {
        name: rc.name.clone(),
        virtual_hosts,
    }
}

impl NodeView {
    /// A node with nothing: what an added node is compared with, or a removed one becomes.
    pub fn empty() -> NodeView {
        NodeView {
            node_id: String::new(),
            versions: Versions {
                clusters: String::new(),
                endpoints: String::new(),
                listeners: String::new(),
                routes: String::new(),
            },
            clusters: Vec::new(),
            endpoints: Vec::new(),
            listeners: Vec::new(),
            routes: Vec::new(),
            resource_versions: Default::default(),
        }
    }
}

/// Summarises everything in `snap` for the node `node_id`.
pub fn node_view(node_id: &str, snap: &Snapshot) -> NodeView {
    let decode = |t: usize| {
        snap.types[t]
            .resources
            .values()
            .map(|r| r.any.value.as_slice())
            .collect::<Vec<_>>()
    };
    NodeView {
        node_id: node_id.to_string(),
        versions: Versions {
            clusters: snap.types[0].version.clone(),
            endpoints: snap.types[1].version.clone(),
            listeners: snap.types[2].version.clone(),
            routes: snap.types[3].version.clone(),
        },
        clusters: decode(0)
            .into_iter()
            .filter_map(|b| Cluster::decode(b).ok())
            .map(|c| cluster_view(&c))
            .collect(),
        endpoints: decode(1)
            .into_iter()
            .filter_map(|b| ClusterLoadAssignment::decode(b).ok())
            .map(|c| EndpointsView {
                endpoints: endpoints_of(&c),
                cluster: c.cluster_name,
            })
            .collect(),
        listeners: decode(2)
            .into_iter()
            .filter_map(|b| Listener::decode(b).ok())
            .map(|l| listener_view(&l))
            .collect(),
        routes: decode(3)
            .into_iter()
            .filter_map(|b| RouteConfiguration::decode(b).ok())
            .map(|r| route_config_view(&r))
            .collect(),
        resource_versions: std::array::from_fn(|t| {
            snap.types[t]
                .resources
                .iter()
                .map(|(n, r)| (n.clone(), r.version.clone()))
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests;
