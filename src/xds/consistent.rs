//! Whether a snapshot holds together: every endpoints and route-table name its clusters and
//! listeners refer to exists, and every cluster its routes and TCP proxies name exists. Envoy
//! would otherwise wait for a resource that never comes (15 s, then serve without it) or answer
//! 503 for a missing cluster. Checked on every snapshot tests build and in debug builds of the
//! server; a release server trusts its build stage.

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::listener::v3::{filter, Listener};
use envoy_types::pb::envoy::config::route::v3::{route, route_action, RouteConfiguration};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, HttpConnectionManager,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use prost::{Message, Name};

use super::Snapshot;

/// A name one resource refers to that the snapshot lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dangling {
    /// `CDS`, `LDS` or `RDS` and the name of the resource that refers.
    pub from: String,
    /// The type short name (`EDS`, `RDS`, `CDS`) and the missing name.
    pub missing: String,
}

impl std::fmt::Display for Dangling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} refers to {}, which is not in the snapshot",
            self.from, self.missing
        )
    }
}

impl Snapshot {
    /// Every reference inside this snapshot that does not resolve (empty: consistent). Resources
    /// that do not decode count as dangling too.
    pub fn dangling(&self) -> Vec<Dangling> {
        let mut out = Vec::new();
        let mut need = |from: String, t: usize, name: &str| {
            if !self.types[t].resources.contains_key(name) {
                let missing = format!("{} `{name}`", super::type_short(t));
                out.push(Dangling { from, missing });
            }
        };
        for (name, r) in &self.types[0].resources {
            match Cluster::decode(r.any.value.as_slice()) {
                Ok(c) => {
                    if let Some(eds) = eds_name(&c) {
                        need(format!("CDS `{name}`"), 1, eds);
                    }
                }
                Err(_) => need(format!("CDS `{name}` (undecodable)"), 0, ""),
            }
        }
        for (name, r) in &self.types[2].resources {
            let refs = Listener::decode(r.any.value.as_slice())
                .map(|l| listener_refs(&l))
                .unwrap_or_else(|_| vec![(0, String::new())]);
            for (t, n) in refs {
                need(format!("LDS `{name}`"), t, &n);
            }
        }
        for (name, r) in &self.types[3].resources {
            let clusters = RouteConfiguration::decode(r.any.value.as_slice())
                .map(|rc| route_clusters(&rc))
                .unwrap_or_else(|_| vec![String::new()]);
            for c in clusters {
                need(format!("RDS `{name}`"), 0, &c);
            }
        }
        out
    }

    /// `Ok` when [`Snapshot::dangling`] finds nothing, else every problem on one line each.
    pub fn consistent(&self) -> Result<(), String> {
        let d = self.dangling();
        if d.is_empty() {
            return Ok(());
        }
        Err(d
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// The endpoints name an EDS cluster fetches.
fn eds_name(c: &Cluster) -> Option<&str> {
    let eds = cluster::DiscoveryType::Eds as i32;
    if c.cluster_discovery_type != Some(cluster::ClusterDiscoveryType::Type(eds)) {
        return None;
    }
    let service = c
        .eds_cluster_config
        .as_ref()
        .map(|e| e.service_name.as_str());
    Some(service.filter(|s| !s.is_empty()).unwrap_or(&c.name))
}

/// What a listener's filters refer to: (type index, name) of route tables and clusters.
fn listener_refs(l: &Listener) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let filters = l.filter_chains.iter().chain(&l.default_filter_chain);
    for f in filters.flat_map(|c| &c.filters) {
        let Some(filter::ConfigType::TypedConfig(cfg)) = &f.config_type else {
            continue;
        };
        if cfg.type_url == HttpConnectionManager::type_url() {
            let Ok(hcm) = HttpConnectionManager::decode(cfg.value.as_slice()) else {
                out.push((2, String::new()));
                continue;
            };
            match hcm.route_specifier {
                Some(http_connection_manager::RouteSpecifier::Rds(rds)) => {
                    out.push((3, rds.route_config_name));
                }
                Some(http_connection_manager::RouteSpecifier::RouteConfig(rc)) => {
                    out.extend(route_clusters(&rc).into_iter().map(|c| (0, c)));
                }
                _ => {}
            }
        } else if cfg.type_url == TcpProxy::type_url() {
            match TcpProxy::decode(cfg.value.as_slice()).map(|t| t.cluster_specifier) {
                Ok(Some(tcp_proxy::ClusterSpecifier::Cluster(c))) => out.push((0, c)),
                Ok(Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w))) => {
                    out.extend(w.clusters.into_iter().map(|c| (0, c.name)));
                }
                Ok(None) => {}
                Err(_) => out.push((2, String::new())),
            }
        }
    }
    out
}

/// The clusters a route table's routes send traffic to.
fn route_clusters(rc: &RouteConfiguration) -> Vec<String> {
    let mut out = Vec::new();
    for r in rc.virtual_hosts.iter().flat_map(|v| &v.routes) {
        let Some(route::Action::Route(a)) = &r.action else {
            continue;
        };
        match &a.cluster_specifier {
            Some(route_action::ClusterSpecifier::Cluster(c)) => out.push(c.clone()),
            Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
                out.extend(w.clusters.iter().map(|c| c.name.clone()));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use envoy_types::pb::envoy::config::route::v3::Route;
    use envoy_types::pb::envoy::config::route::v3::{RouteAction, VirtualHost};

    use super::*;
    use crate::xds::{Resource, TypeSnapshot};

    fn res<M: Message + Name>(name: &str, m: &M) -> (String, Arc<Resource>) {
        let any = envoy_types::pb::google::protobuf::Any {
            type_url: M::type_url(),
            value: m.encode_to_vec(),
        };
        (name.to_string(), Arc::new(Resource::new(name.into(), any)))
    }

    fn snapshot(clusters: &[&str], table_to: &str) -> Snapshot {
        let eds = cluster::DiscoveryType::Eds as i32;
        let cds = clusters
            .iter()
            .map(|n| {
                let c = Cluster {
                    name: n.to_string(),
                    cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(eds)),
                    ..Default::default()
                };
                res(n, &c)
            })
            .collect::<BTreeMap<_, _>>();
        let route = Route {
            action: Some(route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(table_to.into())),
                ..Default::default()
            })),
            ..Default::default()
        };
        let rc = RouteConfiguration {
            name: "rt".into(),
            virtual_hosts: vec![VirtualHost {
                routes: vec![route],
                ..Default::default()
            }],
            ..Default::default()
        };
        let eds = [res(
            "a",
            &envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment {
                cluster_name: "a".into(),
                ..Default::default()
            },
        )];
        Snapshot::new([
            TypeSnapshot::new(cds),
            TypeSnapshot::new(eds.into_iter().collect()),
            TypeSnapshot::default(),
            TypeSnapshot::new([res("rt", &rc)].into_iter().collect()),
        ])
    }

    #[test]
    fn a_snapshot_whose_names_resolve_is_consistent() {
        assert_eq!(snapshot(&["a"], "a").consistent(), Ok(()));
    }

    #[test]
    fn missing_endpoints_and_clusters_are_named() {
        let d = snapshot(&["a", "b"], "c").dangling();
        let text: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            text,
            [
                "CDS `b` refers to EDS `b`, which is not in the snapshot",
                "RDS `rt` refers to CDS `c`, which is not in the snapshot",
            ]
        );
    }
}
