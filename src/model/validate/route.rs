//! Routes of virtual routers: exactly one route kind, a priority in range, the route kind matching
//! the protocol of the router listener it is for, and for HTTP and HTTP/2 routes their match (in
//! `route_match`), weighted targets and retry policy (gRPC routes in `route_grpc`, TCP routes in
//! `tcp_route`).

use super::{range, route_grpc, route_match};
use crate::diag::Problem;
use crate::model::Mesh;
use crate::source::Document;
use crate::spec::{
    HttpRetryPolicy, HttpRoute, Kind, Protocol, RouteSpec, VirtualRouterSpec, WeightedTarget,
};

const HTTP_RETRY_EVENTS: [&str; 4] = [
    "server-error",
    "gateway-error",
    "client-error",
    "stream-error",
];

pub(super) fn check_route(
    doc: &Document,
    mesh: &Mesh,
    router: &VirtualRouterSpec,
    spec: &RouteSpec,
    out: &mut Vec<Problem>,
) {
    if let Some(p) = spec.priority {
        range(doc, "spec.priority", p.into(), 0, 1000, out);
    }
    let kinds: Vec<&str> = [
        (spec.http_route.is_some(), "httpRoute"),
        (spec.http2_route.is_some(), "http2Route"),
        (spec.grpc_route.is_some(), "grpcRoute"),
        (spec.tcp_route.is_some(), "tcpRoute"),
    ]
    .into_iter()
    .filter(|k| k.0)
    .map(|k| k.1)
    .collect();
    if kinds.len() != 1 {
        out.push(doc.problem(
            "spec",
            "give exactly one of `httpRoute`, `http2Route`, `grpcRoute` or `tcpRoute`",
        ));
    }
    if let Some(r) = &spec.http_route {
        check_http_route(doc, mesh, router, "spec.httpRoute", r, false, out);
    }
    if let Some(r) = &spec.http2_route {
        check_http_route(doc, mesh, router, "spec.http2Route", r, true, out);
    }
    if let Some(r) = &spec.tcp_route {
        super::tcp_route::check_tcp_route(doc, mesh, router, r, out);
    }
    if let Some(r) = &spec.grpc_route {
        route_grpc::check_grpc_route(doc, mesh, router, r, out);
    }
    check_listener_protocol(doc, router, spec, out);
}

/// App Mesh pairs route kinds with router listener protocols (httpRoute with http, http2Route
/// with http2, grpcRoute with grpc): the listener a route is for (its `match.port`, or the only
/// one) must be of its kind. (A missing or unknown port is reported by the match's checks.)
fn check_listener_protocol(
    doc: &Document,
    router: &VirtualRouterSpec,
    spec: &RouteSpec,
    out: &mut Vec<Problem>,
) {
    let (field, wanted, port) = if let Some(r) = &spec.http_route {
        ("httpRoute", Protocol::Http, r.matcher.port)
    } else if let Some(r) = &spec.http2_route {
        ("http2Route", Protocol::Http2, r.matcher.port)
    } else if let Some(r) = &spec.grpc_route {
        ("grpcRoute", Protocol::Grpc, r.matcher.port)
    } else {
        return;
    };
    let listener = match port {
        Some(p) => router.listeners.iter().find(|l| l.port_mapping.port == p),
        None if router.listeners.len() == 1 => router.listeners.first(),
        None => None,
    };
    let Some(pm) = listener.map(|l| l.port_mapping) else {
        return;
    };
    if pm.protocol != wanted {
        // "an httpRoute", "a grpcRoute".
        let a = if wanted == Protocol::Grpc { "a" } else { "an" };
        out.push(doc.problem(
            &format!("spec.{field}"),
            format!(
                "{a} {field} needs {a} {} router listener, but the router's listener on port {} is {}",
                wanted.as_str(),
                pm.port,
                pm.protocol.as_str()
            ),
        ));
    }
}

fn check_http_route(
    doc: &Document,
    mesh: &Mesh,
    router: &VirtualRouterSpec,
    base: &str,
    r: &HttpRoute,
    http2: bool,
    out: &mut Vec<Problem>,
) {
    let mp = format!("{base}.match");
    route_match::check_match(doc, router, &mp, &r.matcher, http2, out);
    check_targets(doc, mesh, base, &r.action.weighted_targets, false, out);
    if let Some(rp) = &r.retry_policy {
        check_retry_policy(doc, base, rp, out);
    }
    // Timeouts are non-negative by type and 0 means "disabled": nothing to check.
}

/// 1 to 10 targets, each a listener of a defined virtual node (a tcp one for a `tcp` route, any
/// other for the rest), not all of weight 0.
pub(super) fn check_targets(
    doc: &Document,
    mesh: &Mesh,
    base: &str,
    targets: &[WeightedTarget],
    tcp: bool,
    out: &mut Vec<Problem>,
) {
    let tp = format!("{base}.action.weightedTargets");
    if targets.is_empty() || targets.len() > 10 {
        out.push(doc.problem(&tp, "needs 1 to 10 weighted targets"));
    }
    for (i, t) in targets.iter().enumerate() {
        range(
            doc,
            &format!("{tp}[{i}].weight"),
            t.weight.into(),
            0,
            100,
            out,
        );
        check_target_node(doc, mesh, &tp, i, t, tcp, out);
    }
    if !targets.is_empty() && targets.iter().all(|t| t.weight == 0) {
        out.push(doc.problem(
            &tp,
            "all weights are 0: the route would send traffic nowhere",
        ));
    }
}

/// Target `i` (at `tp[i]`) must be a defined virtual node with a matching listener, tcp exactly
/// when the route is.
fn check_target_node(
    doc: &Document,
    mesh: &Mesh,
    tp: &str,
    i: usize,
    t: &WeightedTarget,
    tcp: bool,
    out: &mut Vec<Problem>,
) {
    match mesh.virtual_nodes.get(&t.virtual_node) {
        None => out.push(doc.problem(
            &format!("{tp}[{i}].virtualNode"),
            super::not_defined(Kind::VirtualNode, &t.virtual_node, &mesh.name),
        )),
        Some(vn) => {
            if vn.spec.listeners.is_empty() {
                out.push(doc.problem(
                    &format!("{tp}[{i}].virtualNode"),
                    format!(
                        "VirtualNode `{}` has no listeners to route to",
                        t.virtual_node
                    ),
                ));
            } else if vn.spec.listener_index(t.port).is_none() {
                let msg = match t.port {
                    Some(p) => format!(
                        "VirtualNode `{}` has no listener on port {p}",
                        t.virtual_node
                    ),
                    None => format!(
                        "required: VirtualNode `{}` has several listeners",
                        t.virtual_node
                    ),
                };
                out.push(doc.problem(&format!("{tp}[{i}].port"), msg));
            } else if let Some(idx) = vn.spec.listener_index(t.port) {
                let pm = vn.spec.listeners[idx].port_mapping;
                let msg = if tcp {
                    format!(
                        "a tcp route can only target a tcp listener; port {} of `{}` is {}",
                        pm.port,
                        t.virtual_node,
                        pm.protocol.as_str()
                    )
                } else {
                    format!(
                        "{} cannot target the tcp listener of `{}`",
                        if tp.contains("grpcRoute") {
                            "a gRPC route"
                        } else {
                            "an HTTP route"
                        },
                        t.virtual_node
                    )
                };
                if (pm.protocol == Protocol::Tcp) != tcp {
                    out.push(doc.problem(&format!("{tp}[{i}]"), msg));
                }
            }
        }
    }
}

fn check_retry_policy(doc: &Document, base: &str, rp: &HttpRetryPolicy, out: &mut Vec<Problem>) {
    let rpp = format!("{base}.retryPolicy");
    if rp.http_retry_events.is_empty() && rp.tcp_retry_events.is_empty() {
        out.push(doc.problem(
            &rpp,
            "give at least one of `httpRetryEvents` or `tcpRetryEvents`",
        ));
    }
    check_retry_events(doc, &rpp, &rp.http_retry_events, &rp.tcp_retry_events, out);
}

/// The HTTP and TCP events of a retry policy at `rpp` (HTTP, HTTP/2 and gRPC routes).
pub(super) fn check_retry_events(
    doc: &Document,
    rpp: &str,
    http: &[String],
    tcp: &[String],
    out: &mut Vec<Problem>,
) {
    if http.len() > 25 {
        out.push(doc.problem(&format!("{rpp}.httpRetryEvents"), "at most 25 events"));
    }
    for (i, e) in http.iter().enumerate() {
        if !HTTP_RETRY_EVENTS.contains(&e.as_str()) {
            out.push(doc.problem(
                &format!("{rpp}.httpRetryEvents[{i}]"),
                format!(
                    "unknown event `{e}`, expected one of {}",
                    HTTP_RETRY_EVENTS.join(", ")
                ),
            ));
        }
    }
    for (i, e) in tcp.iter().enumerate() {
        if e != "connection-error" {
            out.push(doc.problem(
                &format!("{rpp}.tcpRetryEvents[{i}]"),
                format!("unknown event `{e}`, expected connection-error"),
            ));
        }
    }
}
