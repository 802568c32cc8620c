//! The proxy configuration of `tests/ca.rs`: what the translation makes of `acm` TLS (a TLS cluster
//! and an mTLS listener taking `meshplane/identity` and `meshplane/trust` over ADS), written out.

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::{
    address, config_source, data_source, socket_address, transport_socket, Address,
    AggregatedConfigSource, ApiVersion, ConfigSource, DataSource, SocketAddress, TransportSocket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    route, route_action, route_match, DirectResponseAction, Route, RouteAction, RouteConfiguration,
    RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, http_filter, HttpConnectionManager, HttpFilter,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    subject_alt_name_matcher::SanType,
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    SubjectAltNameMatcher, UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, StringMatcher};
use meshplane::build::pack;
use meshplane::ca::{IDENTITY_SECRET, TRUST_SECRET};
use meshplane::xds::{Resource, TypeSnapshot};

use super::{NODE, TD};

fn ads() -> Option<ConfigSource> {
    Some(ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        resource_api_version: ApiVersion::V3 as i32,
        ..Default::default()
    })
}

fn socket(port: u32) -> Option<Address> {
    Some(Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: "127.0.0.1".into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    })
}

/// What `acm` TLS becomes: the certificate from `meshplane/identity`, trust from
/// `meshplane/trust`, and (when given) the peer's SPIFFE URI required.
fn tls_context(peer_uri: Option<&str>) -> CommonTlsContext {
    let sds = |name: &str| SdsSecretConfig {
        name: name.into(),
        sds_config: ads(),
    };
    let matchers = peer_uri
        .map(|uri| SubjectAltNameMatcher {
            san_type: SanType::Uri as i32,
            matcher: Some(StringMatcher {
                match_pattern: Some(string_matcher::MatchPattern::Exact(uri.into())),
                ..Default::default()
            }),
            ..Default::default()
        })
        .into_iter()
        .collect();
    CommonTlsContext {
        tls_certificate_sds_secret_configs: vec![sds(IDENTITY_SECRET)],
        validation_context_type: Some(ValidationContextType::CombinedValidationContext(
            CombinedCertificateValidationContext {
                default_validation_context: Some(CertificateValidationContext {
                    match_typed_subject_alt_names: matchers,
                    ..Default::default()
                }),
                validation_context_sds_secret_config: Some(sds(TRUST_SECRET)),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn tls_socket(typed: envoy_types::pb::google::protobuf::Any) -> Option<TransportSocket> {
    Some(TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(typed)),
    })
}

/// An HTTP listener on `port` whose one route either goes to `cluster` or answers 200 itself.
fn http_listener(
    name: &str,
    port: u32,
    cluster: Option<&str>,
    tls: Option<TransportSocket>,
) -> Listener {
    let action = match cluster {
        Some(c) => route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(c.into())),
            ..Default::default()
        }),
        None => route::Action::DirectResponse(DirectResponseAction {
            status: 200,
            body: Some(DataSource {
                specifier: Some(data_source::Specifier::InlineString("secured".into())),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let hcm = HttpConnectionManager {
        stat_prefix: name.into(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::RouteConfig(
            RouteConfiguration {
                name: name.into(),
                virtual_hosts: vec![VirtualHost {
                    name: "all".into(),
                    domains: vec!["*".into()],
                    routes: vec![Route {
                        r#match: Some(RouteMatch {
                            path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                            ..Default::default()
                        }),
                        action: Some(action),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        )),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(
                &Router::default(),
            ))),
            ..Default::default()
        }],
        ..Default::default()
    };
    Listener {
        name: name.into(),
        address: socket(port),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(&hcm))),
            }],
            transport_socket: tls,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The proxy's configuration: plain HTTP on `plain` → a TLS cluster → its own mTLS listener on
/// `secure`, which answers. Both TLS ends use meshplane's secrets.
pub fn resources(plain: u16, secure: u16) -> [TypeSnapshot; 4] {
    let uri = format!("spiffe://{TD}/{NODE}");
    let cluster = Cluster {
        name: "secure".into(),
        connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
            seconds: 1,
            nanos: 0,
        }),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: "secure".into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: socket(secure.into()),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        transport_socket: tls_socket(pack(&UpstreamTlsContext {
            common_tls_context: Some(tls_context(Some(&uri))),
            sni: "web.tls.local".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let down = DownstreamTlsContext {
        common_tls_context: Some(tls_context(None)),
        require_client_certificate: Some(envoy_types::pb::google::protobuf::BoolValue {
            value: true,
        }),
        ..Default::default()
    };
    let listeners = [
        http_listener("plain", plain.into(), Some("secure"), None),
        http_listener("secure", secure.into(), None, tls_socket(pack(&down))),
    ];
    let one = |name: &str, any| {
        let r = Arc::new(Resource::new(name.to_string(), any));
        (name.to_string(), r)
    };
    [
        TypeSnapshot::new([one("secure", pack(&cluster))].into()),
        TypeSnapshot::default(),
        TypeSnapshot::new(listeners.iter().map(|l| one(&l.name, pack(l))).collect()),
        TypeSnapshot::default(),
    ]
}
