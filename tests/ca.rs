//! meshplane's own CA with real Envoy: a proxy whose cluster and listener take their certificate
//! and trust from SDS secrets `meshplane/identity` and `meshplane/trust` over its ADS stream gets
//! them from meshplane, completes mutual TLS through itself (the client side checks the server's
//! SPIFFE URI), and keeps serving with zero failed requests while its certificate is replaced
//! every few seconds (Envoy's `sds.meshplane/identity.update_success` counts the pushes).
//!
//! Until the translation of `acm` lands, the proxy's TLS cluster and listeners are written by the
//! test (what `translate::tls` makes of `acm`) and published into the server's cache for a node id
//! the mesh does not define; the certificates come from `ca::Authority`, as the build stage gets
//! them, and are renewed when it says they are due.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::{
    address, config_source, socket_address, transport_socket, Address, AggregatedConfigSource,
    ApiVersion, ConfigSource, SocketAddress, TransportSocket,
};
use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
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
use meshplane::ca::{Authority, CaDir, Identity, IDENTITY_SECRET, TRUST_SECRET};
use meshplane::model::ProxyId;
use meshplane::xds::{Resource, Snapshot, TypeSnapshot};
use support::envoy::{free_port, http_get, Envoy};
use support::*;

const NODE: &str = "mesh/tls/virtualNode/web";
const TD: &str = "meshplane.local";

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
fn resources(plain: u16, secure: u16) -> [TypeSnapshot; 4] {
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

/// The node's secrets, as the build stage gets them from the CA.
fn secrets(ca: &Authority, id: &Identity) -> Arc<TypeSnapshot> {
    let node = ProxyId::parse(NODE).unwrap();
    let identity = ca.identity_secret(&node, id).expect("issue");
    Arc::new(TypeSnapshot::new(
        [
            (IDENTITY_SECRET.to_string(), identity),
            (TRUST_SECRET.to_string(), ca.trust_secret()),
        ]
        .into(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_from_sds_secrets_survives_rotation_with_zero_failed_requests() {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let work = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let validity = Duration::from_secs(3);
    let ca = Authority::new(
        CaDir::open_or_create(&work.path().join("ca"), TD).unwrap(),
        validity,
    );
    let id = Identity {
        uri: format!("spiffe://{TD}/{NODE}"),
        dns: vec!["web.tls.local".into()],
    };
    let (plain, secure) = (free_port(), free_port());
    let base = resources(plain, secure);
    let publish = |s: Arc<TypeSnapshot>| {
        let snap = Snapshot::new(base.clone()).with_secrets(s);
        server.pipeline.cache.set(NODE, Some(Arc::new(snap)));
    };
    publish(secrets(&ca, &id));
    let envoy = Envoy::start(NODE, server.xds_addr, work.path()).await;

    // Traffic: one request at a time through plain → TLS cluster → mTLS listener, counted.
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    loop {
        if let Ok((200, body)) = http_get(([127, 0, 0, 1], plain).into(), "web", "/", &[]).await {
            assert_eq!(body, "secured");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no request got through mTLS; see the Envoy log in {}",
            work.path().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (sent, failed, stop) = (sent.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                match http_get(([127, 0, 0, 1], plain).into(), "web", "/", &[]).await {
                    Ok((200, _)) => {}
                    other => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed request: {other:?}");
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Four renewals, each when the CA says the certificate is due (two thirds of 3 s).
    let mut rotations = 0;
    let first_cert = server.pipeline.cache.get(NODE).unwrap().types[4].clone();
    while rotations < 4 {
        let due = ca.next_renewal().unwrap();
        let wait = due.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::time::sleep(wait).await;
        assert_eq!(ca.due(SystemTime::now()), [ProxyId::parse(NODE).unwrap()]);
        publish(secrets(&ca, &id));
        rotations += 1;
    }
    // Long enough past the last certificate's expiry that any use of an old one would fail.
    tokio::time::sleep(validity + Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    let updates = envoy.stat("sds.meshplane/identity.update_success").await;
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!(
        "rotation under traffic: {rotations} certificate rotations ({validity:?} validity), \
         {sent} requests, {failed} failed, sds.meshplane/identity.update_success = {updates}"
    );
    assert_ne!(
        first_cert.version,
        server.pipeline.cache.get(NODE).unwrap().types[4].version
    );
    assert!(sent > 100, "steady traffic: {sent} requests");
    assert_eq!(failed, 0, "no request may fail while certificates rotate");
    assert!(
        updates > rotations,
        "Envoy took the first certificate and every rotation: {updates}"
    );
    let resp = envoy.admin_get("/certs").await;
    assert!(resp.contains(&format!("spiffe://{TD}/{NODE}")), "{resp}");
    drop(envoy);
    server.shutdown().await;
}

const SDS_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// The private key PEM inside an identity secret.
fn key_of(any: &envoy_types::pb::google::protobuf::Any) -> String {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{secret, Secret};
    use prost::Message;
    let s = Secret::decode(any.value.as_slice()).unwrap();
    let Some(secret::Type::TlsCertificate(t)) = s.r#type else {
        panic!("not a certificate")
    };
    match t.private_key.and_then(|k| k.specifier) {
        Some(data_source::Specifier::InlineBytes(b)) => String::from_utf8(b).unwrap(),
        other => panic!("not inline bytes: {other:?}"),
    }
}

/// The names of the secrets in a SotW response.
fn secret_names(
    r: &envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse,
) -> Vec<String> {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
    use prost::Message;
    r.resources
        .iter()
        .map(|a| Secret::decode(a.value.as_slice()).unwrap().name)
        .collect()
}

#[tokio::test]
async fn secrets_are_served_over_ads_sotw_and_delta_only_to_their_node_and_never_shown() {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let work = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let ca = Authority::new(
        CaDir::open_or_create(&work.path().join("ca"), TD).unwrap(),
        Duration::from_secs(3600),
    );
    let id = Identity {
        uri: format!("spiffe://{TD}/{NODE}"),
        dns: vec!["web.tls.local".into()],
    };
    let snap = Snapshot::new(resources(free_port(), free_port())).with_secrets(secrets(&ca, &id));
    server.pipeline.cache.set(NODE, Some(Arc::new(snap)));

    let mut c = AdsClient::connect(server.xds_addr, NODE).await;
    c.request(SDS_TYPE, &[IDENTITY_SECRET, TRUST_SECRET], "", "")
        .await;
    let r = c.recv().await;
    assert_eq!(r.type_url, SDS_TYPE);
    assert_eq!(secret_names(&r), [IDENTITY_SECRET, TRUST_SECRET]);
    let key = key_of(&r.resources[0]);
    assert!(key.contains("PRIVATE KEY"));
    c.ack(&r, &[IDENTITY_SECRET, TRUST_SECRET]).await;
    assert!(c.recv_within(Duration::from_millis(300)).await.is_none());

    let mut d = DeltaClient::connect(server.xds_addr, NODE).await;
    d.request(SDS_TYPE, &[IDENTITY_SECRET], &[], "").await;
    let r = d
        .recv_within(Duration::from_secs(5))
        .await
        .expect("delta secrets");
    assert_eq!(r.resources.len(), 1);
    assert_eq!(r.resources[0].name, IDENTITY_SECRET);

    // Another node asking for the same names gets none of them.
    let mut other = AdsClient::connect(server.xds_addr, "mesh/demo/virtualNode/frontend").await;
    other
        .request(SDS_TYPE, &[IDENTITY_SECRET, TRUST_SECRET], "", "")
        .await;
    let r = other.recv().await;
    assert!(r.resources.is_empty(), "{:?}", secret_names(&r));

    // Neither the admin API nor the metrics show the key.
    for path in [
        format!("/resources?node={NODE}"),
        "/nodes".to_string(),
        "/proxies".to_string(),
        "/metrics".to_string(),
    ] {
        let (_, body) = http_get(server.admin_addr, "127.0.0.1", &path, &[])
            .await
            .unwrap();
        assert!(
            !body.contains("PRIVATE KEY") && !body.contains(&key[40..80]),
            "{path}"
        );
    }
    server.shutdown().await;
}
