//! The route table of one gateway listener: the gateway routes of its protocol (and port), in App
//! Mesh's order (priority, then longest prefix, then name), grouped into virtual hosts by their
//! hostname match, each sent to the listener's self-redirect cluster with App Mesh's rewrites.

use std::cmp::Reverse;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValue, HeaderValueOption,
};
use envoy_types::pb::envoy::config::route::v3::{
    route, route_action, route_match, Route, RouteAction, RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;

use super::route::matching::{exact_header, header, query_parameter, regex};
use super::route::RouteTable;
use super::util::millis;
use crate::model::Mesh;
use crate::spec::{
    GatewayListener, GatewayRouteSpec, GatewayRouteTarget, HostnameMatch, HostnameRewrite,
    HttpGatewayRoute, Protocol, Toggle,
};

/// The request header a gateway route with `defaultTargetHostname: DISABLED` names its target
/// service in (App Mesh's own), for the gateway's egress catch-all host to route by; removed there
/// before the request leaves the gateway.
pub const VS_HEADER: &str = "x-app-mesh-virtual-service";

/// One gateway route of the gateway, by name.
pub struct GatewayRouteRef<'a> {
    pub name: &'a str,
    pub spec: &'a GatewayRouteSpec,
}

/// The gateway routes of gateway `gw` in match order: lower priority value first (none after all
/// that have one), then the longest prefix (or path, or gRPC service name), then by name.
pub fn routes_of<'a>(mesh: &'a Mesh, gw: &str) -> Vec<GatewayRouteRef<'a>> {
    let mut routes: Vec<GatewayRouteRef> = mesh
        .gateway_routes
        .iter()
        .filter(|((g, _), _)| g == gw)
        .map(|((_, name), item)| GatewayRouteRef {
            name,
            spec: &item.spec,
        })
        .collect();
    routes.sort_by_key(|r| {
        (
            r.spec.priority.map_or(u64::MAX, u64::from),
            Reverse(specificity(r.spec)),
            r.name,
        )
    });
    routes
}

fn specificity(spec: &GatewayRouteSpec) -> usize {
    if let Some(h) = spec.http_route.as_ref().or(spec.http2_route.as_ref()) {
        let m = &h.matcher;
        let path = m
            .path
            .as_ref()
            .and_then(|p| p.exact.as_ref().or(p.regex.as_ref()));
        return m.prefix.as_ref().or(path).map_or(0, String::len);
    }
    spec.grpc_route
        .as_ref()
        .and_then(|g| g.matcher.service_name.as_ref())
        .map_or(0, String::len)
}

/// A route's hostname match, as the virtual host domain it needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Host {
    Exact(String),
    Suffix(String),
}

impl Host {
    fn of(h: Option<&HostnameMatch>) -> Option<Host> {
        let h = h?;
        match (&h.exact, &h.suffix) {
            (Some(e), _) => Some(Host::Exact(e.to_ascii_lowercase())),
            (None, Some(s)) => Some(Host::Suffix(s.to_ascii_lowercase())),
            (None, None) => None,
        }
    }

    /// Whether a route with hostname match `route` (None: any host) applies to requests that
    /// Envoy sends to this host's virtual host.
    fn takes(&self, route: Option<&Host>) -> bool {
        match (self, route) {
            (_, None) => true,
            (Host::Exact(h), Some(Host::Exact(e))) => h == e,
            (Host::Exact(h), Some(Host::Suffix(s))) => h.len() > s.len() && h.ends_with(s.as_str()),
            (Host::Suffix(_), Some(Host::Exact(_))) => false,
            (Host::Suffix(s), Some(Host::Suffix(s2))) => s.ends_with(s2.as_str()),
        }
    }

    fn domain(&self) -> String {
        match self {
            Host::Exact(h) => h.clone(),
            Host::Suffix(s) => format!("*{s}"),
        }
    }
}

/// The table of listener `l`: one virtual host per hostname the routes match (with every route that
/// can apply to that host, in order), and `*` with the routes that match any host.
pub fn ingress_table(
    name: String,
    cluster: &str,
    l: &GatewayListener,
    routes: &[GatewayRouteRef],
) -> RouteTable {
    let pm = l.port_mapping;
    let mine: Vec<(Option<Host>, Vec<Route>)> = routes
        .iter()
        .filter_map(|r| envoy_routes(r, pm.protocol, pm.port, cluster))
        .collect();
    let mut hosts: Vec<Host> = mine.iter().filter_map(|(h, _)| h.clone()).collect();
    hosts.sort();
    hosts.dedup();
    let mut virtual_hosts = Vec::new();
    for h in hosts {
        let routes = mine
            .iter()
            .filter(|(rh, _)| h.takes(rh.as_ref()))
            .flat_map(|(_, rs)| rs.iter().cloned())
            .collect();
        virtual_hosts.push(Arc::new(VirtualHost {
            name: h.domain(),
            domains: vec![h.domain()],
            routes,
            ..Default::default()
        }));
    }
    let any: Vec<Route> = mine
        .iter()
        .filter(|(h, _)| h.is_none())
        .flat_map(|(_, rs)| rs.iter().cloned())
        .collect();
    if !any.is_empty() {
        virtual_hosts.push(Arc::new(VirtualHost {
            name: "*".into(),
            domains: vec!["*".into()],
            routes: any,
            ..Default::default()
        }));
    }
    RouteTable {
        name,
        virtual_hosts,
    }
}

/// The Envoy routes of gateway route `r` on a listener of `proto` and `port`, with its hostname
/// match; `None` when it is not for that listener.
fn envoy_routes(
    r: &GatewayRouteRef,
    proto: Protocol,
    port: u32,
    cluster: &str,
) -> Option<(Option<Host>, Vec<Route>)> {
    let s = r.spec;
    let http = match proto {
        Protocol::Http => s.http_route.as_ref(),
        Protocol::Http2 => s.http2_route.as_ref(),
        _ => None,
    };
    if let Some(h) = http {
        if h.matcher.port.is_some_and(|p| p != port) {
            return None;
        }
        let host = Host::of(h.matcher.hostname.as_ref());
        let routes = http_routes(r.name, h, cluster);
        return Some((
            host,
            keep_host(
                routes,
                h.action
                    .rewrite
                    .as_ref()
                    .and_then(|rw| rw.hostname.as_ref()),
                &h.action.target,
            ),
        ));
    }
    let g = s.grpc_route.as_ref().filter(|_| proto == Protocol::Grpc)?;
    if g.matcher.port.is_some_and(|p| p != port) {
        return None;
    }
    let m = &g.matcher;
    let prefix = m
        .service_name
        .as_ref()
        .map_or("/".to_string(), |svc| format!("/{svc}/"));
    let rm = RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix(prefix)),
        headers: m.metadata.iter().map(header).collect(),
        grpc: Some(route_match::GrpcRouteMatchOptions {}),
        ..Default::default()
    };
    let action = forward(cluster, &g.action.target);
    let hostname = g
        .action
        .rewrite
        .as_ref()
        .and_then(|rw| rw.hostname.as_ref());
    Some((
        Host::of(m.hostname.as_ref()),
        keep_host(vec![route(r.name, rm, action)], hostname, &g.action.target),
    ))
}

/// An HTTP gateway route: its match, with App Mesh's prefix handling. A prefix is matched with and
/// without its trailing `/` (as App Mesh's own Envoys show), and rewritten by default to `/`.
fn http_routes(name: &str, h: &HttpGatewayRoute, cluster: &str) -> Vec<Route> {
    let m = &h.matcher;
    let rw = h.action.rewrite.as_ref();
    let mut headers = Vec::new();
    if let Some(method) = &m.method {
        headers.push(exact_header(":method", method));
    }
    headers.extend(m.headers.iter().map(header));
    let base = RouteMatch {
        headers,
        query_parameters: m.query_parameters.iter().map(query_parameter).collect(),
        ..Default::default()
    };
    let with = |path: route_match::PathSpecifier| RouteMatch {
        path_specifier: Some(path),
        ..base.clone()
    };
    let action = forward(cluster, &h.action.target);
    use route_match::PathSpecifier as P;
    if let Some(path) = &m.path {
        let spec = match (&path.exact, &path.regex) {
            (Some(e), _) => P::Path(e.clone()),
            (None, Some(re)) => P::SafeRegex(regex(re)),
            (None, None) => P::Prefix("/".into()),
        };
        let mut a = action;
        if let Some(p) = rw.and_then(|r| r.path.as_ref()) {
            a.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(regex("^.*$")),
                substitution: p.exact.clone(),
            });
        }
        return vec![route(name, with(spec), a)];
    }
    let Some(prefix) = &m.prefix else {
        // A hostname-only match: every path, unchanged.
        return vec![route(name, with(P::Prefix("/".into())), action)];
    };
    let rewrite = match rw.and_then(|r| r.prefix.as_ref()) {
        None => Some("/".to_string()),
        Some(p) => match (p.default_prefix, &p.value) {
            (_, Some(v)) => Some(v.clone()),
            (Some(Toggle::Disabled), None) => None,
            _ => Some("/".to_string()),
        },
    };
    let with_rewrite = |spec: P| {
        let mut a = action.clone();
        if let Some(rw) = &rewrite {
            a.prefix_rewrite = rw.clone();
        }
        route(name, with(spec), a)
    };
    if prefix == "/" {
        return vec![with_rewrite(P::Prefix("/".into()))];
    }
    match prefix.strip_suffix('/') {
        Some(bare) => vec![
            with_rewrite(P::Prefix(prefix.clone())),
            with_rewrite(P::Path(bare.to_string())),
        ],
        None => vec![
            with_rewrite(P::Prefix(format!("{prefix}/"))),
            with_rewrite(P::Prefix(prefix.clone())),
        ],
    }
}

/// What the egress listener routes a request of target `t` by: the service's name, with the port
/// when the target names one (`<vs>:<port>`, a domain of that port's virtual host).
pub fn target_host(t: &GatewayRouteTarget) -> String {
    let vs = &t.virtual_service.virtual_service_name;
    match t.port {
        Some(p) => format!("{vs}:{p}"),
        None => vs.clone(),
    }
}

fn keeps_host(h: Option<&HostnameRewrite>) -> bool {
    h.and_then(|h| h.default_target_hostname) == Some(Toggle::Disabled)
}

/// `defaultTargetHostname: DISABLED`, App Mesh's way: the Host is left as the client sent it and
/// the target is named in [`VS_HEADER`] instead (replacing any value the client sent), which the
/// gateway's egress catch-all host routes by ([`host_keeping_targets`]).
fn keep_host(
    mut routes: Vec<Route>,
    h: Option<&HostnameRewrite>,
    t: &GatewayRouteTarget,
) -> Vec<Route> {
    if !keeps_host(h) {
        return routes;
    }
    for r in &mut routes {
        if let Some(route::Action::Route(a)) = &mut r.action {
            a.host_rewrite_specifier = None;
        }
        r.request_headers_to_add.push(HeaderValueOption {
            header: Some(HeaderValue {
                key: VS_HEADER.into(),
                value: target_host(t),
                ..Default::default()
            }),
            append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            ..Default::default()
        });
    }
    routes
}

/// The targets of the gateway's routes that keep the client's Host, as (the [`VS_HEADER`] value
/// their routes set, the target service); sorted, unique.
pub fn host_keeping_targets(routes: &[GatewayRouteRef]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = routes
        .iter()
        .filter_map(|r| {
            let s = r.spec;
            let (hostname, target) = match (&s.http_route, &s.http2_route, &s.grpc_route) {
                (Some(h), _, _) | (None, Some(h), _) => (
                    h.action
                        .rewrite
                        .as_ref()
                        .and_then(|rw| rw.hostname.as_ref()),
                    &h.action.target,
                ),
                (None, None, Some(g)) => (
                    g.action
                        .rewrite
                        .as_ref()
                        .and_then(|rw| rw.hostname.as_ref()),
                    &g.action.target,
                ),
                (None, None, None) => return None,
            };
            keeps_host(hostname).then(|| {
                (
                    target_host(target),
                    target.virtual_service.virtual_service_name.clone(),
                )
            })
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// To the self-redirect cluster, the Host rewritten to the target service (App Mesh's default,
/// `defaultTargetHostname: ENABLED`) so the egress listener routes it as that service's clients
/// are routed ([`keep_host`] undoes the rewrite for `DISABLED`). No timeout here: the target's
/// route timeouts apply on the egress side.
fn forward(cluster: &str, t: &GatewayRouteTarget) -> RouteAction {
    let host = target_host(t);
    RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
        host_rewrite_specifier: Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(host)),
        timeout: Some(millis(0)),
        ..Default::default()
    }
}

fn route(name: &str, m: RouteMatch, a: RouteAction) -> Route {
    Route {
        name: name.to_string(),
        r#match: Some(m),
        action: Some(route::Action::Route(a)),
        ..Default::default()
    }
}
