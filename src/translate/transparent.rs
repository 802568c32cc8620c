//! App Mesh's own sidecar layout (`proxy.mode: transparent`, docs/contract.md §2): iptables
//! redirects the node's listener ports to `0.0.0.0:ingressPort` and everything else the app sends
//! to `0.0.0.0:egressPort`; both listeners restore the original destination
//! (`envoy.filters.listener.original_dst`) and pick a filter chain by its port. Inbound: one chain
//! per listener port, to the local app exactly as the explicit layout hands it over. Outbound: see
//! [`egress`]. Clients reach such a node at `<discovery address>:<listener port>` ([`client_port`]).

mod egress;

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{
    listener_filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use envoy_types::pb::envoy::config::route::v3::VirtualHost;
use envoy_types::pb::envoy::extensions::filters::listener::original_dst::v3::OriginalDst;

use super::util::{any, socket, u32v};
use super::{cluster, listener, naming, OwnResources};
use crate::model::Mesh;
use crate::spec::{ProxyMode, VirtualNodeSpec};

/// Whether `spec` (a node of `mesh`) uses the transparent layout.
pub fn is_transparent(mesh: &Mesh, spec: &VirtualNodeSpec) -> bool {
    spec.proxy_mode(&mesh.spec) == ProxyMode::Transparent
}

/// The port clients dial for listener `index` of `spec`: its Envoy's ingress port in the explicit
/// layout, the listener's own port in the transparent one (iptables takes it from there).
pub fn client_port(mesh: &Mesh, spec: &VirtualNodeSpec, index: usize) -> u32 {
    match spec.listeners.get(index) {
        Some(l) if is_transparent(mesh, spec) => l.port_mapping.port,
        _ => spec.ingress_port(index),
    }
}

/// Everything transparent node `name` is served that does not come from its backends.
pub(super) fn node_own(mesh: &Mesh, name: &str, spec: &VirtualNodeSpec) -> OwnResources {
    let mut own = OwnResources::default();
    let mut chains = Vec::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        own.clusters.push(cluster::ingress_cluster(mesh, name, l));
        // The explicit layout's listener for this port, its filters moved into a chain of the
        // shared ingress listener: same stats, timeouts and route table.
        let (explicit, route) = listener::ingress(mesh, name, spec, i, l);
        own.routes.extend(route);
        let port = l.port_mapping.port;
        chains.extend(explicit.filter_chains.into_iter().map(|c| on_port(c, port)));
    }
    if !chains.is_empty() {
        let port = spec.ingress_port(0);
        own.listeners.push(original_dst_listener(
            naming::ingress_listener(port),
            port,
            chains,
            None,
            TrafficDirection::Inbound,
        ));
    }
    egress::add_egress(&mut own, mesh, spec);
    own
}

/// `chain`, taken only by connections whose original destination port is `port`.
fn on_port(mut chain: FilterChain, port: u32) -> FilterChain {
    chain.filter_chain_match = Some(FilterChainMatch {
        destination_port: u32v(port),
        ..Default::default()
    });
    chain
}

/// A listener on `0.0.0.0:port` for redirected connections: the original destination restored,
/// `chains` matched on its port, `default` for any other port (none: the connection is closed).
fn original_dst_listener(
    name: String,
    port: u32,
    chains: Vec<FilterChain>,
    default: Option<FilterChain>,
    direction: TrafficDirection,
) -> Listener {
    Listener {
        name,
        address: Some(socket("0.0.0.0", port)),
        filter_chains: chains,
        default_filter_chain: default,
        listener_filters: vec![ListenerFilter {
            name: "envoy.filters.listener.original_dst".into(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(any(
                &OriginalDst::default(),
            ))),
            ..Default::default()
        }],
        traffic_direction: direction as i32,
        ..Default::default()
    }
}

/// Backend `vs`'s virtual hosts (one per port) as the per-port tables of a transparent client hold
/// them: `(port, host answering to vs and vs:port)`, `None` for a host that already is that (a
/// service on one port: no copy). The port table has one host per service, so the bare name means
/// that port there (an HTTP client leaves the port out on port 80).
pub fn port_hosts(vs: &str, hosts: &[Arc<VirtualHost>]) -> Vec<(u32, Option<VirtualHost>)> {
    let prefix = format!("{vs}:");
    hosts
        .iter()
        .filter_map(|h| {
            let port: u32 = h
                .domains
                .iter()
                .find_map(|d| d.strip_prefix(&prefix)?.parse().ok())?;
            let domains = [vs.to_string(), format!("{vs}:{port}")];
            if h.name == vs && h.domains == domains {
                return Some((port, None));
            }
            let mut h = (**h).clone();
            h.name = vs.to_string();
            h.domains = domains.to_vec();
            Some((port, Some(h)))
        })
        .collect()
}

#[cfg(test)]
mod tests;
