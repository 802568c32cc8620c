//! Gateway routes: exactly one route type that a listener of the gateway can serve (httpRoute on an
//! http listener, http2Route on http2, grpcRoute on grpc; on the `match.port` listener when given),
//! a priority in range, a match App Mesh accepts (reserved prefixes and service names refused), a
//! defined target virtual service, and rewrites that do not conflict.

use super::route_match::{check_match_method, HTTP_METHODS};
use super::{check_port, range};
use crate::diag::Problem;
use crate::model::Mesh;
use crate::source::Document;
use crate::spec::{
    GatewayRouteSpec, GatewayRouteTarget, GrpcGatewayRoute, HeaderMatch, HostnameMatch,
    HttpGatewayRoute, Kind, Protocol, VirtualGatewaySpec,
};

const RESERVED_PREFIXES: [&str; 2] = ["/aws-appmesh", "/aws-app-mesh"];
const RESERVED_SERVICES: [&str; 2] = ["aws.appmesh", "aws.app-mesh"];

pub(super) fn check_gateway_route(
    doc: &Document,
    mesh: &Mesh,
    gateway: &VirtualGatewaySpec,
    spec: &GatewayRouteSpec,
    out: &mut Vec<Problem>,
) {
    if let Some(p) = spec.priority {
        range(doc, "spec.priority", p.into(), 0, 1000, out);
    }
    let kinds = [
        spec.http_route.is_some(),
        spec.http2_route.is_some(),
        spec.grpc_route.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        out.push(doc.problem(
            "spec",
            "give exactly one of `httpRoute`, `http2Route` or `grpcRoute`",
        ));
    }
    for (r, base, proto) in [
        (&spec.http_route, "spec.httpRoute", Protocol::Http),
        (&spec.http2_route, "spec.http2Route", Protocol::Http2),
    ] {
        if let Some(r) = r {
            check_http(doc, base, r, out);
            check_listener(doc, gateway, base, proto, r.matcher.port, out);
            check_target(doc, mesh, base, &r.action.target, out);
        }
    }
    if let Some(r) = &spec.grpc_route {
        let base = "spec.grpcRoute";
        check_grpc(doc, base, r, out);
        check_listener(doc, gateway, base, Protocol::Grpc, r.matcher.port, out);
        check_target(doc, mesh, base, &r.action.target, out);
    }
}

/// A listener of the gateway must serve the route's protocol: the one on `port`, or any.
fn check_listener(
    doc: &Document,
    gateway: &VirtualGatewaySpec,
    base: &str,
    proto: Protocol,
    port: Option<u32>,
    out: &mut Vec<Problem>,
) {
    let kind = base.trim_start_matches("spec.");
    match port {
        Some(p) => match gateway.listeners.iter().find(|l| l.port_mapping.port == p) {
            None => out.push(doc.problem(
                &format!("{base}.match.port"),
                format!("the virtual gateway has no listener on port {p}"),
            )),
            Some(l) if l.port_mapping.protocol != proto => out.push(doc.problem(
                &format!("{base}.match.port"),
                format!(
                    "the gateway listener on port {p} is {}: a {kind} needs a {} listener",
                    l.port_mapping.protocol.as_str(),
                    proto.as_str()
                ),
            )),
            Some(_) => {}
        },
        None if !gateway
            .listeners
            .iter()
            .any(|l| l.port_mapping.protocol == proto) =>
        {
            out.push(doc.problem(
                base,
                format!(
                    "the virtual gateway has no {} listener to serve a {kind}",
                    proto.as_str()
                ),
            ))
        }
        None => {}
    }
}

fn check_target(
    doc: &Document,
    mesh: &Mesh,
    base: &str,
    t: &GatewayRouteTarget,
    out: &mut Vec<Problem>,
) {
    let vs = &t.virtual_service.virtual_service_name;
    if !mesh.virtual_services.contains_key(vs) {
        out.push(doc.problem(
            &format!("{base}.action.target.virtualService.virtualServiceName"),
            super::not_defined(Kind::VirtualService, vs, &mesh.name),
        ));
    }
    if let Some(p) = t.port {
        check_port(doc, &format!("{base}.action.target.port"), p, out);
    }
    check_target_port(doc, mesh, base, t, out);
}

/// App Mesh's rule for `target.port`: the provider of the target service must listen on it, and
/// it is required when the provider has several listeners (which one is meant is otherwise not
/// said). A service whose provider is missing or not yet defined is reported elsewhere.
fn check_target_port(
    doc: &Document,
    mesh: &Mesh,
    base: &str,
    t: &GatewayRouteTarget,
    out: &mut Vec<Problem>,
) {
    let vs = &t.virtual_service.virtual_service_name;
    let Some(ports) = provider_ports(mesh, vs) else {
        return;
    };
    let field = format!("{base}.action.target.port");
    match t.port {
        Some(p) if !ports.is_empty() && !ports.contains(&p) => out.push(doc.problem(
            &field,
            format!(
                "the provider of virtual service {vs} has no listener on port {p} (it listens on {})",
                join(&ports)
            ),
        )),
        None if ports.len() > 1 => out.push(doc.problem(
            &format!("{base}.action.target"),
            format!(
                "the provider of virtual service {vs} has several listeners ({}): give `port`",
                join(&ports)
            ),
        )),
        _ => {}
    }
}

/// The listener ports of the virtual node or router that provides `vs`, when both are defined.
fn provider_ports(mesh: &Mesh, vs: &str) -> Option<Vec<u32>> {
    let provider = mesh.virtual_services.get(vs)?.spec.provider.as_ref()?;
    if let Some(n) = &provider.virtual_node {
        let node = mesh.virtual_nodes.get(&n.virtual_node_name)?;
        return Some(
            node.spec
                .listeners
                .iter()
                .map(|l| l.port_mapping.port)
                .collect(),
        );
    }
    let r = provider.virtual_router.as_ref()?;
    let router = mesh.virtual_routers.get(&r.virtual_router_name)?;
    Some(
        router
            .spec
            .listeners
            .iter()
            .map(|l| l.port_mapping.port)
            .collect(),
    )
}

fn join(ports: &[u32]) -> String {
    ports
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_http(doc: &Document, base: &str, r: &HttpGatewayRoute, out: &mut Vec<Problem>) {
    let mp = format!("{base}.match");
    let m = &r.matcher;
    match (&m.prefix, &m.path) {
        (Some(_), Some(_)) => {
            out.push(doc.problem(&mp, "give either `prefix` or `path`, not both"))
        }
        (None, None) if m.hostname.is_none() => {
            out.push(doc.problem(&mp, "give one of `prefix`, `path` or `hostname`"))
        }
        (Some(prefix), None) => check_prefix(doc, &format!("{mp}.prefix"), prefix, out),
        (None, Some(path)) => super::route_match::check_path_match(doc, &mp, path, out),
        (None, None) => {}
    }
    if let Some(h) = &m.hostname {
        check_hostname(doc, &format!("{mp}.hostname"), h, out);
    }
    if let Some(method) = &m.method {
        if !HTTP_METHODS.contains(&method.as_str()) {
            out.push(doc.problem(
                &format!("{mp}.method"),
                format!(
                    "unknown method `{method}`, expected one of {}",
                    HTTP_METHODS.join(", ")
                ),
            ));
        }
    }
    check_headers(doc, &format!("{mp}.headers"), &m.headers, out);
    super::route_match::check_query_parameters(doc, &mp, &m.query_parameters, out);
    check_rewrite(doc, base, r, out);
}

fn check_prefix(doc: &Document, path: &str, prefix: &str, out: &mut Vec<Problem>) {
    if !prefix.starts_with('/') {
        out.push(doc.problem(path, "must start with `/`"));
    }
    if RESERVED_PREFIXES.iter().any(|r| prefix.starts_with(r)) {
        out.push(doc.problem(
            path,
            format!("`{prefix}` is reserved by App Mesh (`/aws-appmesh*`, `/aws-app-mesh*`)"),
        ));
    }
}

/// Exactly one of `exact` or `suffix`, 1 to 253 characters.
fn check_hostname(doc: &Document, path: &str, h: &HostnameMatch, out: &mut Vec<Problem>) {
    match (&h.exact, &h.suffix) {
        (Some(v), None) | (None, Some(v)) => {
            if v.is_empty() || v.len() > 253 {
                out.push(doc.problem(path, "must be 1 to 253 characters"));
            }
        }
        _ => out.push(doc.problem(path, "give exactly one of `exact` or `suffix`")),
    }
}

/// Header (or gRPC metadata) matches: at most 10, names 1 to 50 characters.
fn check_headers(doc: &Document, path: &str, headers: &[HeaderMatch], out: &mut Vec<Problem>) {
    if headers.len() > 10 {
        out.push(doc.problem(path, "at most 10 matches"));
    }
    for (i, h) in headers.iter().enumerate() {
        let hp = format!("{path}[{i}]");
        if h.name.is_empty() || h.name.len() > 50 {
            out.push(doc.problem(&format!("{hp}.name"), "must be 1 to 50 characters"));
        }
        if let Some(mm) = &h.matcher {
            check_match_method(doc, &format!("{hp}.match"), mm, out);
        }
    }
}

/// A prefix rewrite needs a prefix match and is either `defaultPrefix` or a `value` that starts and
/// ends with `/`; a path rewrite needs a path match; not both.
fn check_rewrite(doc: &Document, base: &str, r: &HttpGatewayRoute, out: &mut Vec<Problem>) {
    let Some(rw) = &r.action.rewrite else { return };
    let rp = format!("{base}.action.rewrite");
    if rw.prefix.is_some() && rw.path.is_some() {
        out.push(doc.problem(&rp, "give either a `prefix` or a `path` rewrite, not both"));
    }
    if let Some(p) = &rw.prefix {
        if r.matcher.prefix.is_none() {
            out.push(doc.problem(
                &format!("{rp}.prefix"),
                "a prefix rewrite needs a `match.prefix`",
            ));
        }
        match (&p.default_prefix, &p.value) {
            (Some(_), Some(_)) => out.push(doc.problem(
                &format!("{rp}.prefix"),
                "give either `defaultPrefix` or `value`, not both",
            )),
            (None, None) => out.push(doc.problem(
                &format!("{rp}.prefix"),
                "give one of `defaultPrefix` or `value`",
            )),
            (None, Some(v)) if !(v.starts_with('/') && v.ends_with('/')) => {
                out.push(doc.problem(&format!("{rp}.prefix.value"), "must start and end with `/`"))
            }
            _ => {}
        }
    }
    if let Some(p) = &rw.path {
        if r.matcher.path.is_none() {
            out.push(doc.problem(&format!("{rp}.path"), "a path rewrite needs a `match.path`"));
        }
        if !p.exact.starts_with('/') {
            out.push(doc.problem(&format!("{rp}.path.exact"), "must start with `/`"));
        }
    }
}

fn check_grpc(doc: &Document, base: &str, r: &GrpcGatewayRoute, out: &mut Vec<Problem>) {
    let mp = format!("{base}.match");
    let m = &r.matcher;
    if m.service_name.is_none() && m.hostname.is_none() {
        out.push(doc.problem(&mp, "give `serviceName` or `hostname`"));
    }
    if let Some(s) = &m.service_name {
        if s.is_empty() {
            out.push(doc.problem(&format!("{mp}.serviceName"), "must not be empty"));
        }
        if RESERVED_SERVICES.iter().any(|r| s.starts_with(r)) {
            out.push(doc.problem(
                &format!("{mp}.serviceName"),
                format!("`{s}` is reserved by App Mesh (`aws.appmesh*`, `aws.app-mesh*`)"),
            ));
        }
    }
    if let Some(h) = &m.hostname {
        check_hostname(doc, &format!("{mp}.hostname"), h, out);
    }
    check_headers(doc, &format!("{mp}.metadata"), &m.metadata, out);
}
