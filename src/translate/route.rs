//! Route tables: the ingress table of each listener, and the egress table with one virtual host per
//! backend virtual service, its routes ordered by App Mesh priority.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::route::v3::{
    header_matcher, query_parameter_matcher, retry_policy, route, route_action, route_match,
    weighted_cluster, HeaderMatcher, QueryParameterMatcher, RetryPolicy, Route, RouteAction,
    RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, RegexMatcher, StringMatcher};
use envoy_types::pb::envoy::r#type::v3::Int64Range;

use super::util::{any, millis, u32v};
use super::{naming, Target};
use std::sync::Arc;

use crate::model::{Item, Mesh};
use crate::spec::{HttpRetryPolicy, HttpRoute, HttpTimeout, NodeListener, RouteSpec};

/// App Mesh's defaults: 15 s per request, 300 s idle; 0 disables.
const DEFAULT_PER_REQUEST_MS: u64 = 15_000;
const DEFAULT_IDLE_MS: u64 = 300_000;

fn timeouts(t: Option<&HttpTimeout>) -> (u64, u64) {
    let per_request = t
        .and_then(|t| t.per_request)
        .map_or(DEFAULT_PER_REQUEST_MS, |d| d.as_millis());
    let idle = t
        .and_then(|t| t.idle)
        .map_or(DEFAULT_IDLE_MS, |d| d.as_millis());
    (per_request, idle)
}

fn prefix_match(prefix: &str) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.into())),
        ..Default::default()
    }
}

fn weighted(
    clusters: Vec<(String, u32)>,
    t: Option<&HttpTimeout>,
    retry: Option<RetryPolicy>,
) -> route::Action {
    let (per_request, idle) = timeouts(t);
    route::Action::Route(RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::WeightedClusters(
            WeightedCluster {
                clusters: clusters
                    .into_iter()
                    .map(|(name, w)| weighted_cluster::ClusterWeight {
                        name,
                        weight: u32v(w),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
        )),
        timeout: Some(millis(per_request)),
        idle_timeout: Some(millis(idle)),
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
    let (per_request, idle) = timeouts(t);
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
                    timeout: Some(millis(per_request)),
                    idle_timeout: Some(millis(idle)),
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
    let mut hosts = Vec::new();
    let Some(vs) = mesh.virtual_services.get(vs_name) else {
        return ServiceHosts::default();
    };
    let provider = vs.spec.provider.as_ref();
    // (port clients dial, routes for that port)
    let mut ports: Vec<(u32, Vec<Route>)> = Vec::new();
    if let Some(vn) = provider.and_then(|p| p.virtual_node.as_ref()) {
        if let Some(node) = mesh.virtual_nodes.get(&vn.virtual_node_name) {
            for (i, l) in node.spec.listeners.iter().enumerate() {
                if !l.port_mapping.protocol.is_http_family() {
                    continue;
                }
                let cluster = naming::egress_cluster(
                    &mesh.name,
                    &vn.virtual_node_name,
                    l.port_mapping.protocol,
                    l.port_mapping.port,
                );
                targets.insert(Target {
                    node: vn.virtual_node_name.clone(),
                    listener: i,
                });
                let route = Route {
                    name: vs_name.to_string(),
                    r#match: Some(prefix_match("/")),
                    action: Some(weighted(
                        vec![(cluster, 100)],
                        None,
                        Some(default_retry_policy()),
                    )),
                    ..Default::default()
                };
                ports.push((l.port_mapping.port, vec![route]));
            }
        }
    } else if let Some(vr) = provider.and_then(|p| p.virtual_router.as_ref()) {
        if let Some(router) = mesh.virtual_routers.get(&vr.virtual_router_name) {
            let mut routes: Vec<(&String, &Item<RouteSpec>)> = router.routes.iter().collect();
            // Lower priority value first; routes without a priority after all that have one.
            routes.sort_by_key(|(name, r)| {
                (r.spec.priority.map_or(u64::MAX, u64::from), (*name).clone())
            });
            for l in &router.spec.listeners {
                let port = l.port_mapping.port;
                let mut out = Vec::new();
                for (name, r) in &routes {
                    let Some(http) = r.spec.http_route.as_ref().or(r.spec.http2_route.as_ref())
                    else {
                        continue;
                    };
                    if http.matcher.port.is_some_and(|p| p != port) {
                        continue;
                    }
                    out.push(http_route(mesh, name, http, &mut targets));
                }
                ports.push((port, out));
            }
        }
    }
    if ports.is_empty() {
        // No provider (or nothing HTTP behind it): the name resolves but has no routes, as in App Mesh.
        hosts.push(Arc::new(VirtualHost {
            name: vs_name.to_string(),
            domains: vec![vs_name.to_string()],
            ..Default::default()
        }));
        return ServiceHosts { hosts, targets };
    }
    let single = ports.len() == 1;
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
        hosts.push(Arc::new(VirtualHost {
            name,
            domains,
            routes,
            ..Default::default()
        }));
    }
    ServiceHosts { hosts, targets }
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
                timeout: Some(millis(DEFAULT_PER_REQUEST_MS)),
                ..Default::default()
            })),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn string_match(p: string_matcher::MatchPattern) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(p),
        ignore_case: false,
    }
}

fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.to_string(),
        ..Default::default()
    }
}

fn exact_header(name: &str, value: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
            string_match(string_matcher::MatchPattern::Exact(value.into())),
        )),
        ..Default::default()
    }
}

fn http_route(mesh: &Mesh, name: &str, r: &HttpRoute, targets: &mut BTreeSet<Target>) -> Route {
    let m = &r.matcher;
    let path_specifier = match (&m.prefix, &m.path) {
        (Some(p), _) => route_match::PathSpecifier::Prefix(p.clone()),
        (None, Some(p)) => match (&p.exact, &p.regex) {
            (Some(e), _) => route_match::PathSpecifier::Path(e.clone()),
            (None, Some(re)) => route_match::PathSpecifier::SafeRegex(regex(re)),
            (None, None) => route_match::PathSpecifier::Prefix("/".into()),
        },
        (None, None) => route_match::PathSpecifier::Prefix("/".into()),
    };
    let mut headers = Vec::new();
    if let Some(method) = &m.method {
        headers.push(exact_header(":method", method));
    }
    if let Some(scheme) = &m.scheme {
        headers.push(exact_header(":scheme", scheme));
    }
    for h in &m.headers {
        use header_matcher::HeaderMatchSpecifier as S;
        use string_matcher::MatchPattern as P;
        let spec = match &h.matcher {
            None => S::PresentMatch(true),
            Some(mm) => {
                if let Some(v) = &mm.exact {
                    S::StringMatch(string_match(P::Exact(v.clone())))
                } else if let Some(v) = &mm.prefix {
                    S::StringMatch(string_match(P::Prefix(v.clone())))
                } else if let Some(v) = &mm.suffix {
                    S::StringMatch(string_match(P::Suffix(v.clone())))
                } else if let Some(v) = &mm.regex {
                    S::StringMatch(string_match(P::SafeRegex(regex(v))))
                } else if let Some(rg) = mm.range {
                    S::RangeMatch(Int64Range {
                        start: rg.start,
                        end: rg.end,
                    })
                } else {
                    S::PresentMatch(true)
                }
            }
        };
        headers.push(HeaderMatcher {
            name: h.name.clone(),
            header_match_specifier: Some(spec),
            invert_match: h.invert.unwrap_or(false),
            ..Default::default()
        });
    }
    let query_parameters = m
        .query_parameters
        .iter()
        .map(|q| QueryParameterMatcher {
            name: q.name.clone(),
            query_parameter_match_specifier: Some(
                match q.matcher.as_ref().and_then(|mm| mm.exact.clone()) {
                    Some(v) => query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(
                        string_match(string_matcher::MatchPattern::Exact(v)),
                    ),
                    None => {
                        query_parameter_matcher::QueryParameterMatchSpecifier::PresentMatch(true)
                    }
                },
            ),
        })
        .collect();
    let mut clusters = Vec::new();
    for t in &r.action.weighted_targets {
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
    let retry = Some(
        r.retry_policy
            .as_ref()
            .map_or_else(default_retry_policy, retry_policy),
    );
    Route {
        name: name.to_string(),
        r#match: Some(RouteMatch {
            path_specifier: Some(path_specifier),
            headers,
            query_parameters,
            ..Default::default()
        }),
        action: Some(weighted(clusters, r.timeout.as_ref(), retry)),
        ..Default::default()
    }
}

fn previous_hosts() -> retry_policy::RetryHostPredicate {
    retry_policy::RetryHostPredicate {
        name: "envoy.retry_host_predicates.previous_hosts".into(),
        config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(
            any(&PreviousHostsPredicate::default()),
        )),
    }
}

/// App Mesh's retry events in Envoy's terms. server-error and gateway-error include resets, as in
/// App Mesh; the status codes are listed exactly rather than using Envoy's broader `5xx`.
pub fn retry_policy(rp: &HttpRetryPolicy) -> RetryPolicy {
    let mut on = BTreeSet::new();
    let mut codes = BTreeSet::new();
    for e in &rp.http_retry_events {
        match e.as_str() {
            "server-error" => {
                codes.extend([500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511]);
                on.insert("reset");
            }
            "gateway-error" => {
                codes.extend([502, 503, 504]);
                on.insert("reset");
            }
            "client-error" => {
                codes.insert(409);
            }
            "stream-error" => {
                on.insert("refused-stream");
            }
            _ => {}
        }
    }
    for e in &rp.tcp_retry_events {
        if e == "connection-error" {
            on.insert("connect-failure");
        }
    }
    if !codes.is_empty() {
        on.insert("retriable-status-codes");
    }
    RetryPolicy {
        retry_on: on.into_iter().collect::<Vec<_>>().join(","),
        num_retries: u32v(rp.max_retries),
        per_try_timeout: Some(millis(rp.per_retry_timeout.as_millis())),
        retriable_status_codes: codes.into_iter().collect(),
        retry_host_predicate: vec![previous_hosts()],
        host_selection_retry_max_attempts: 5,
        ..Default::default()
    }
}

/// The retry policy App Mesh applied where none is configured: 2 retries on 503, resets, connect
/// failures and refused streams.
pub fn default_retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: "connect-failure,refused-stream,reset,retriable-status-codes".into(),
        num_retries: u32v(2),
        retriable_status_codes: vec![503],
        retry_host_predicate: vec![previous_hosts()],
        host_selection_retry_max_attempts: 5,
        ..Default::default()
    }
}
