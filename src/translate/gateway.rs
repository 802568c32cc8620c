//! A virtual gateway's own resources, in App Mesh's data-path shape: per gateway listener an
//! ingress listener on `0.0.0.0:<portMapping.port>` whose route table holds the gateway routes
//! (built in `gateway_route`), sending to a STATIC self-redirect cluster at
//! `127.0.0.1:<egress port>` with the Host rewritten to the target virtual service; and the
//! gateway's egress listener on that port, whose route table is filled with the target services'
//! virtual hosts exactly as a sidecar with those backends gets them (by the builder, from the
//! shared per-service parts), plus a catch-all host for the routes that keep the client's Host
//! ([`default_backend`]). So routers, weights, retries, timeouts, health checks and outlier
//! detection of the targets apply behind the gateway for free.

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter};
use envoy_types::pb::envoy::config::route::v3::VirtualHost;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, HttpConnectionManager,
};
use std::sync::Arc;

use super::cluster::{load_assignment, pool_limits, protocol_options, thresholds, UNLIMITED};
use super::listener::{hcm, listener, HCM};
use super::route::matching::exact_header;
use super::util::{any, millis};
use super::{gateway_route, naming, EgressTable, OwnResources};
use crate::model::Mesh;
use crate::spec::{GatewayListener, VirtualGatewaySpec};

/// App Mesh's name for the gateway's egress catch-all host.
const DEFAULT_BACKEND: &str = "default_backend";

/// App Mesh's connect timeout for the self-redirect cluster (a loopback hop).
const SELF_REDIRECT_CONNECT_MS: u64 = 250;

/// Everything gateway `name` is served that does not come from its target services.
pub fn gateway_own(mesh: &Mesh, name: &str, spec: &VirtualGatewaySpec) -> OwnResources {
    let egress = spec.egress_port();
    let routes = gateway_route::routes_of(mesh, name);
    let log = super::access_log::of(spec.logging.as_ref());
    let mut own = OwnResources::default();
    let multi = spec.listeners.len() > 1;
    for l in &spec.listeners {
        let pm = l.port_mapping;
        let cluster = naming::self_redirect_cluster(
            &mesh.name,
            name,
            multi.then_some(pm.port),
            pm.protocol,
            egress,
        );
        own.clusters.push(self_redirect(cluster.clone(), egress, l));
        let rds = naming::ingress_routes(pm.protocol, pm.port);
        let stat = if multi {
            format!("ingress.{}.{}", pm.protocol.as_str(), pm.port)
        } else {
            "ingress".to_string()
        };
        let mut h = hcm(stat, rds.clone(), false);
        // Host matches compare names, whatever port the client dialled.
        h.strip_port_mode = Some(http_connection_manager::StripPortMode::StripAnyHostPort(
            true,
        ));
        h.access_log.extend(log.clone());
        let mut ingress = listener(
            naming::ingress_listener(pm.port),
            "0.0.0.0",
            pm.port,
            hcm_filter(&h),
            TrafficDirection::Inbound,
        );
        super::tls::secure_listener(&mut ingress, l.tls.as_ref());
        own.listeners.push(ingress);
        own.routes
            .push(gateway_route::ingress_table(rds, &cluster, l, &routes));
    }
    let mut h = hcm("egress".into(), naming::egress_routes(egress), false);
    h.access_log.extend(log);
    own.listeners.push(listener(
        naming::egress_listener(egress),
        "127.0.0.1",
        egress,
        hcm_filter(&h),
        TrafficDirection::Outbound,
    ));
    let mut backends: Vec<String> = routes
        .iter()
        .filter_map(|r| r.spec.target())
        .map(|t| t.virtual_service.virtual_service_name.clone())
        .collect();
    backends.sort_unstable();
    backends.dedup();
    let keeping = gateway_route::host_keeping_targets(&routes);
    let mut tail_services: Vec<String> = keeping.iter().map(|(_, vs)| vs.clone()).collect();
    tail_services.dedup();
    own.egress = Some(EgressTable {
        name: naming::egress_routes(egress),
        tls: super::tls::gateway_policies(spec, &backends),
        backends,
        tail_host: (!keeping.is_empty()).then(|| Arc::new(default_backend(mesh, &keeping))),
        tail_services,
    });
    own
}

/// The catch-all host of the gateway's egress table (domains `*`, after the services' hosts), for
/// the requests of gateway routes that keep the client's Host (`defaultTargetHostname: DISABLED`):
/// per target, the routes of the virtual host its Host would have been rewritten to (as
/// [`super::service_hosts`] makes them for every client), each also matching the target in
/// [`gateway_route::VS_HEADER`] and removing that header before the request goes upstream. The
/// header values are distinct, so the targets' routes never shadow one another.
fn default_backend(mesh: &Mesh, targets: &[(String, String)]) -> VirtualHost {
    let mut routes = Vec::new();
    for (value, vs) in targets {
        let sh = super::service_hosts(mesh, vs);
        let Some(host) = sh.hosts.iter().find(|h| h.domains.contains(value)) else {
            continue;
        };
        // Out of their host, the routes take its shared retry policy with them.
        for mut r in super::route::routes_with_policy(host) {
            let m = r.r#match.get_or_insert_with(Default::default);
            m.headers
                .push(exact_header(gateway_route::VS_HEADER, value));
            r.request_headers_to_remove
                .push(gateway_route::VS_HEADER.into());
            routes.push(r);
        }
    }
    let mut host = VirtualHost {
        name: DEFAULT_BACKEND.into(),
        domains: vec!["*".into()],
        routes,
        ..Default::default()
    };
    super::route::share_retry_policy(&mut host);
    host
}

fn hcm_filter(h: &HttpConnectionManager) -> Filter {
    Filter {
        name: HCM.into(),
        config_type: Some(filter::ConfigType::TypedConfig(any(h))),
    }
}

/// `127.0.0.1:<egress port>`, guarded by the listener's connection pool; HTTP/2 for http2 and grpc
/// listeners, so the request keeps its protocol into the egress listener.
fn self_redirect(name: String, egress: u32, l: &GatewayListener) -> Cluster {
    let pool = l.connection_pool.as_ref();
    let (conns, pending, requests) = match pool {
        Some(p) => pool_limits(None, p.http.as_ref(), p.http2.as_ref().or(p.grpc.as_ref())),
        None => (UNLIMITED, UNLIMITED, UNLIMITED),
    };
    Cluster {
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        connect_timeout: Some(millis(SELF_REDIRECT_CONNECT_MS)),
        load_assignment: Some(load_assignment(&name, &[("127.0.0.1".to_string(), egress)])),
        circuit_breakers: Some(thresholds(conns, pending, requests)),
        typed_extension_protocol_options: protocol_options(l.port_mapping.protocol),
        name,
        ..Default::default()
    }
}
