//! Listeners: one inbound listener per App Mesh listener, one outbound listener for the app.

use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use envoy_types::pb::envoy::extensions::filters::http::dynamic_forward_proxy::v3::{
    filter_config, FilterConfig as DfpFilterConfig,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, http_filter, HttpConnectionManager, HttpFilter, Rds,
};

use super::access_log;
use super::cluster::dns_cache;
use super::util::{ads, any, boolv, socket};
use super::{naming, route};
use crate::model::Mesh;
use crate::spec::{NodeListener, Protocol, VirtualNodeSpec};

pub(super) const HCM: &str = "envoy.filters.network.http_connection_manager";

pub(super) fn hcm(
    stat_prefix: String,
    route_config: String,
    forward_proxy: bool,
) -> HttpConnectionManager {
    let mut http_filters = Vec::new();
    if forward_proxy {
        let cfg = DfpFilterConfig {
            implementation_specifier: Some(filter_config::ImplementationSpecifier::DnsCacheConfig(
                dns_cache(),
            )),
            ..Default::default()
        };
        http_filters.push(HttpFilter {
            name: "envoy.filters.http.dynamic_forward_proxy".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(any(&cfg))),
            ..Default::default()
        });
    }
    http_filters.push(HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(
            any(&Router::default()),
        )),
        ..Default::default()
    });
    HttpConnectionManager {
        codec_type: http_connection_manager::CodecType::Auto as i32,
        stat_prefix,
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_config,
        })),
        http_filters,
        // App Mesh normalised paths on every HTTP listener.
        normalize_path: boolv(true),
        merge_slashes: true,
        path_with_escaped_slashes_action:
            http_connection_manager::PathWithEscapedSlashesAction::KeepUnchanged as i32,
        upgrade_configs: vec![http_connection_manager::UpgradeConfig {
            upgrade_type: "websocket".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) fn listener(
    name: String,
    address: &str,
    port: u32,
    filter: Filter,
    direction: TrafficDirection,
) -> Listener {
    Listener {
        name,
        address: Some(socket(address, port)),
        filter_chains: vec![FilterChain {
            filters: vec![filter],
            ..Default::default()
        }],
        traffic_direction: direction as i32,
        ..Default::default()
    }
}

/// Listener `index` of a node: `0.0.0.0:ingressPort+index` → the local app, plus its route table.
pub fn ingress(
    mesh: &Mesh,
    node: &str,
    spec: &VirtualNodeSpec,
    index: usize,
    l: &NodeListener,
) -> (Listener, Option<route::RouteTable>) {
    let pm = l.port_mapping;
    let port = spec.ingress_port(index);
    let cluster = naming::ingress_cluster(&mesh.name, node, pm.protocol, pm.port);
    let stat_prefix = if spec.listeners.len() > 1 {
        format!("ingress.{}.{}", pm.protocol.as_str(), pm.port)
    } else {
        "ingress".to_string()
    };
    let logs = access_log::of(spec.logging.as_ref());
    let (f, routes) = if pm.protocol == Protocol::Tcp {
        (
            super::tcp::ingress_filter(stat_prefix, cluster, l, logs),
            None,
        )
    } else {
        let rds = naming::ingress_routes(pm.protocol, pm.port);
        let mut h = hcm(stat_prefix, rds.clone(), false);
        h.access_log = logs;
        let f = Filter {
            name: HCM.into(),
            config_type: Some(filter::ConfigType::TypedConfig(any(&h))),
        };
        (f, Some(route::ingress_table(rds, cluster, l)))
    };
    let mut ingress = listener(
        naming::ingress_listener(port),
        "0.0.0.0",
        port,
        f,
        TrafficDirection::Inbound,
    );
    super::tls::secure_listener(&mut ingress, l.tls.as_ref());
    (ingress, routes)
}

/// `127.0.0.1:egressPort`: the app's way out, routed by Host header (`rds_egress_http_<port>`),
/// writing the node's access logs `logs`.
pub fn egress(port: u32, allow_all: bool, logs: Vec<AccessLog>) -> Listener {
    let mut h = hcm("egress".into(), naming::egress_routes(port), allow_all);
    h.access_log = logs;
    let f = Filter {
        name: HCM.into(),
        config_type: Some(filter::ConfigType::TypedConfig(any(&h))),
    };
    listener(
        naming::egress_listener(port),
        "127.0.0.1",
        port,
        f,
        TrafficDirection::Outbound,
    )
}
