//! Clusters and endpoints: the local app behind a sidecar (ingress) and the nodes it calls (egress).

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    circuit_breakers::Thresholds, cluster, CircuitBreakers, Cluster, OutlierDetection,
};
use envoy_types::pb::envoy::config::core::v3::{
    health_check, HealthCheck, Http2ProtocolOptions, RoutingPriority,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::extensions::clusters::dynamic_forward_proxy::v3::{
    cluster_config, ClusterConfig,
};
use envoy_types::pb::envoy::extensions::common::dynamic_forward_proxy::v3::DnsCacheConfig;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options, HttpProtocolOptions,
};

use super::util::{ads, any, millis, secs, socket, u32v};
use super::{ip, mesh_node, naming, Target};
use crate::model::Mesh;
use crate::spec::{
    DnsResponseType, HttpPool, IpPreference, NodeListener, Protocol, RequestPool, ServiceDiscovery,
};

/// App Mesh leaves circuit breakers wide open unless a connection pool says otherwise.
pub(super) const UNLIMITED: u32 = 2_147_483_647;
/// App Mesh's connect timeout for mesh clusters.
pub(super) const CONNECT_TIMEOUT_MS: u64 = 1000;

/// Name of the DNS cache shared by the allow-all cluster and the egress forward-proxy filter.
pub const DNS_CACHE: &str = "meshplane_egress_dns_cache";

pub(super) fn thresholds(
    max_connections: u32,
    max_pending: u32,
    max_requests: u32,
) -> CircuitBreakers {
    CircuitBreakers {
        thresholds: vec![Thresholds {
            priority: RoutingPriority::Default as i32,
            max_connections: u32v(max_connections),
            max_pending_requests: u32v(max_pending),
            max_requests: u32v(max_requests),
            max_retries: u32v(UNLIMITED),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) fn load_assignment(name: &str, endpoints: &[(String, u32)]) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: endpoints
                .iter()
                .map(|(addr, port)| LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket(addr, *port)),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// HTTP/2 towards the upstream for http2 and grpc listeners.
pub(super) fn protocol_options(
    proto: Protocol,
) -> HashMap<String, envoy_types::pb::google::protobuf::Any> {
    let mut m = HashMap::new();
    if proto.is_h2() {
        let opts = HttpProtocolOptions {
            upstream_protocol_options: Some(http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                http_protocol_options::ExplicitHttpConfig {
                    protocol_config: Some(
                        http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                            Http2ProtocolOptions::default(),
                        ),
                    ),
                },
            )),
            ..Default::default()
        };
        m.insert(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(),
            any(&opts),
        );
    }
    m
}

/// A connection pool's (max connections, max pending requests, max requests), the unset ones
/// unlimited: exactly one of `tcp` (its max connections), `http`, or `http2`/`grpc` is given.
pub(super) fn pool_limits(
    tcp: Option<u32>,
    http: Option<&HttpPool>,
    requests: Option<&RequestPool>,
) -> (u32, u32, u32) {
    if let Some(c) = tcp {
        return (c, UNLIMITED, UNLIMITED);
    }
    if let Some(h) = http {
        return (
            h.max_connections,
            h.max_pending_requests.unwrap_or(UNLIMITED),
            UNLIMITED,
        );
    }
    (
        UNLIMITED,
        UNLIMITED,
        requests.map_or(UNLIMITED, |r| r.max_requests),
    )
}

/// The local app: `127.0.0.1:<portMapping.port>` (`::1` with an IPv6 preference), guarded by the
/// listener's connection pool.
pub fn ingress_cluster(mesh: &Mesh, node: &str, l: &NodeListener) -> Cluster {
    let pm = l.port_mapping;
    let sd = mesh_node(mesh, node).and_then(|n| n.spec.service_discovery.as_ref());
    let local = ip::local_app(ip::preference(mesh, sd));
    let name = naming::ingress_cluster(&mesh.name, node, pm.protocol, pm.port);
    let pool = l.connection_pool.as_ref();
    let (conns, pending, requests) = match pool {
        Some(p) => pool_limits(
            p.tcp.as_ref().map(|t| t.max_connections),
            p.http.as_ref(),
            p.http2.as_ref().or(p.grpc.as_ref()),
        ),
        None => (UNLIMITED, UNLIMITED, UNLIMITED),
    };
    Cluster {
        name: name.clone(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        connect_timeout: Some(millis(CONNECT_TIMEOUT_MS)),
        load_assignment: Some(load_assignment(&name, &[(local.to_string(), pm.port)])),
        circuit_breakers: Some(thresholds(conns, pending, requests)),
        typed_extension_protocol_options: protocol_options(pm.protocol),
        ..Default::default()
    }
}

/// A client's view of one listener of another node, with that listener's health check and outlier
/// detection (App Mesh runs both on the client side). Static discovery comes with its endpoints,
/// which are served over EDS.
pub fn egress_cluster(mesh: &Mesh, target: &Target) -> (Cluster, Option<ClusterLoadAssignment>) {
    let Some(node) = mesh_node(mesh, &target.node) else {
        // The validator guarantees targets exist; an empty cluster keeps the function total.
        return (
            Cluster {
                name: target.node.clone(),
                ..Default::default()
            },
            None,
        );
    };
    let spec = &node.spec;
    let l = &spec.listeners[target.listener];
    let pm = l.port_mapping;
    // Where clients dial it: its ingress port, or the listener's own in the transparent layout.
    let ingress_port = super::transparent::client_port(mesh, spec, target.listener);
    let mut c = Cluster {
        name: naming::egress_cluster(&mesh.name, &target.node, pm.protocol, pm.port),
        connect_timeout: Some(millis(CONNECT_TIMEOUT_MS)),
        circuit_breakers: Some(thresholds(UNLIMITED, UNLIMITED, UNLIMITED)),
        typed_extension_protocol_options: protocol_options(pm.protocol),
        ..Default::default()
    };
    let sd = spec.service_discovery.as_ref();
    let cla = discovery(&mut c, sd, ip::preference(mesh, sd), ingress_port);
    if let Some(hc) = &l.health_check {
        c.health_checks = vec![health_check_for(hc)];
    }
    c.outlier_detection = l.outlier_detection.as_ref().map(outlier_detection);
    (c, cla)
}

/// How a client finds the node's instances: by DNS (Envoy resolves the name: a `dns` hostname, or
/// the name Cloud Map publishes for an `awsCloudMap` service, every instance an endpoint), or
/// from a static list, which is returned as the load assignment to serve over EDS.
fn discovery(
    c: &mut Cluster,
    sd: Option<&ServiceDiscovery>,
    pref: Option<IpPreference>,
    ingress_port: u32,
) -> Option<ClusterLoadAssignment> {
    let sd = sd?;
    let resolved = match (&sd.dns, &sd.aws_cloud_map) {
        (Some(dns), _) => Some((dns.hostname.clone(), dns.response_type, false)),
        (None, Some(cm)) => Some((cm.hostname(), Some(DnsResponseType::Endpoints), true)),
        (None, None) => None,
    };
    if let Some((hostname, response_type, cloud_map)) = resolved {
        let t = match response_type {
            Some(DnsResponseType::Endpoints) => cluster::DiscoveryType::StrictDns,
            _ => cluster::DiscoveryType::LogicalDns,
        };
        c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(t as i32));
        c.dns_lookup_family = ip::dns_lookup_family(pref, cloud_map) as i32;
        c.load_assignment = Some(load_assignment(&c.name, &[(hostname, ingress_port)]));
        None
    } else if let Some(st) = &sd.static_ {
        c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        ));
        c.eds_cluster_config = Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: String::new(),
        });
        let eps: Vec<(String, u32)> = st
            .endpoints
            .iter()
            .map(|e| (e.address.clone(), e.port.unwrap_or(ingress_port)))
            .collect();
        Some(load_assignment(&c.name, &eps))
    } else {
        None
    }
}

/// The listener's health check, run by the client (as in App Mesh).
fn health_check_for(hc: &crate::spec::HealthCheck) -> HealthCheck {
    let checker = match hc.protocol {
        Protocol::Http | Protocol::Http2 => {
            health_check::HealthChecker::HttpHealthCheck(health_check::HttpHealthCheck {
                path: hc.path.clone().unwrap_or_else(|| "/".into()),
                codec_client_type: if hc.protocol == Protocol::Http2 {
                    envoy_types::pb::envoy::r#type::v3::CodecClientType::Http2 as i32
                } else {
                    envoy_types::pb::envoy::r#type::v3::CodecClientType::Http1 as i32
                },
                ..Default::default()
            })
        }
        Protocol::Grpc => {
            health_check::HealthChecker::GrpcHealthCheck(health_check::GrpcHealthCheck::default())
        }
        Protocol::Tcp => {
            health_check::HealthChecker::TcpHealthCheck(health_check::TcpHealthCheck::default())
        }
    };
    HealthCheck {
        timeout: Some(millis(hc.timeout_millis)),
        interval: Some(millis(hc.interval_millis)),
        // App Mesh checks every intervalMillis; Envoy would wait 60 s between checks until the
        // client first sends traffic to the cluster.
        no_traffic_interval: Some(millis(hc.interval_millis)),
        unhealthy_threshold: u32v(hc.unhealthy_threshold),
        healthy_threshold: u32v(hc.healthy_threshold),
        health_checker: Some(checker),
        ..Default::default()
    }
}

/// The listener's outlier detection, also on the client side.
fn outlier_detection(od: &crate::spec::OutlierDetection) -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: u32v(od.max_server_errors.min(u32::MAX as u64) as u32),
        interval: Some(millis(od.interval.as_millis())),
        base_ejection_time: Some(millis(od.base_ejection_duration.as_millis())),
        max_ejection_percent: u32v(od.max_ejection_percent),
        ..Default::default()
    }
}

/// Unmatched egress under ALLOW_ALL: forwarded to whatever host the request names, resolved by DNS.
pub fn allow_all_cluster(mesh: &str) -> Cluster {
    let cfg = ClusterConfig {
        cluster_implementation_specifier: Some(
            cluster_config::ClusterImplementationSpecifier::DnsCacheConfig(dns_cache()),
        ),
        ..Default::default()
    };
    Cluster {
        name: naming::allow_all_cluster(mesh),
        connect_timeout: Some(millis(CONNECT_TIMEOUT_MS)),
        lb_policy: cluster::LbPolicy::ClusterProvided as i32,
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::ClusterType(
            cluster::CustomClusterType {
                name: "envoy.clusters.dynamic_forward_proxy".into(),
                typed_config: Some(any(&cfg)),
            },
        )),
        circuit_breakers: Some(thresholds(UNLIMITED, UNLIMITED, UNLIMITED)),
        ..Default::default()
    }
}

pub fn dns_cache() -> DnsCacheConfig {
    DnsCacheConfig {
        name: DNS_CACHE.into(),
        dns_lookup_family:
            envoy_types::pb::envoy::config::cluster::v3::cluster::DnsLookupFamily::V4Preferred
                as i32,
        host_ttl: Some(secs(300)),
        ..Default::default()
    }
}
