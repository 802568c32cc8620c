//! gRPC routes of virtual routers (`spec.grpcRoute`), with App Mesh's rules: `methodName` (1 to 50
//! characters) only with a `serviceName`, at most 10 `metadata` matches, the router listener of
//! `match.port`, weighted targets on grpc listeners, and a retry policy with at least one event,
//! its `grpcRetryEvents` (at most 5) among the five App Mesh knows.

use super::{route, route_match};
use crate::diag::Problem;
use crate::model::Mesh;
use crate::source::Document;
use crate::spec::{GrpcRetryPolicy, GrpcRoute, GrpcRouteMatch, Protocol, VirtualRouterSpec};

const BASE: &str = "spec.grpcRoute";

pub(super) const GRPC_RETRY_EVENTS: [&str; 5] = [
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

pub(super) fn check_grpc_route(
    doc: &Document,
    mesh: &Mesh,
    router: &VirtualRouterSpec,
    r: &GrpcRoute,
    out: &mut Vec<Problem>,
) {
    let mp = format!("{BASE}.match");
    check_match(doc, &mp, &r.matcher, out);
    route_match::check_port(doc, router, &mp, r.matcher.port, out);
    route::check_targets(doc, mesh, BASE, &r.action.weighted_targets, false, out);
    check_target_protocols(doc, mesh, r, out);
    if let Some(rp) = &r.retry_policy {
        check_retry_policy(doc, rp, out);
    }
}

fn check_match(doc: &Document, mp: &str, m: &GrpcRouteMatch, out: &mut Vec<Problem>) {
    if let Some(s) = &m.service_name {
        if s.is_empty() {
            out.push(doc.problem(&format!("{mp}.serviceName"), "must not be empty"));
        }
    }
    if let Some(method) = &m.method_name {
        if m.service_name.is_none() {
            out.push(doc.problem(
                &format!("{mp}.methodName"),
                "a `methodName` needs a `serviceName`",
            ));
        }
        if method.is_empty() || method.len() > 50 {
            out.push(doc.problem(&format!("{mp}.methodName"), "must be 1 to 50 characters"));
        }
    }
    let path = format!("{mp}.metadata");
    route_match::check_header_matches(doc, &path, &m.metadata, "metadata", out);
}

/// A gRPC route's targets must be grpc listeners (App Mesh pairs the route kind with the target's
/// listener protocol; gRPC over an HTTP/1 listener could not work). Missing nodes and listeners
/// are reported by `route::check_targets`.
fn check_target_protocols(doc: &Document, mesh: &Mesh, r: &GrpcRoute, out: &mut Vec<Problem>) {
    for (i, t) in r.action.weighted_targets.iter().enumerate() {
        let Some(node) = mesh.virtual_nodes.get(&t.virtual_node) else {
            continue;
        };
        let Some(idx) = node.spec.listener_index(t.port) else {
            continue;
        };
        let pm = node.spec.listeners[idx].port_mapping;
        if !matches!(pm.protocol, Protocol::Grpc | Protocol::Tcp) {
            out.push(doc.problem(
                &format!("{BASE}.action.weightedTargets[{i}]"),
                format!(
                    "a grpcRoute needs a grpc listener, but the listener of `{}` on port {} is {}",
                    t.virtual_node,
                    pm.port,
                    pm.protocol.as_str()
                ),
            ));
        }
    }
}

fn check_retry_policy(doc: &Document, rp: &GrpcRetryPolicy, out: &mut Vec<Problem>) {
    let rpp = format!("{BASE}.retryPolicy");
    if rp.grpc_retry_events.is_empty()
        && rp.http_retry_events.is_empty()
        && rp.tcp_retry_events.is_empty()
    {
        out.push(doc.problem(
            &rpp,
            "give at least one of `grpcRetryEvents`, `httpRetryEvents` or `tcpRetryEvents`",
        ));
    }
    if rp.grpc_retry_events.len() > 5 {
        out.push(doc.problem(&format!("{rpp}.grpcRetryEvents"), "at most 5 events"));
    }
    for (i, e) in rp.grpc_retry_events.iter().enumerate() {
        if !GRPC_RETRY_EVENTS.contains(&e.as_str()) {
            out.push(doc.problem(
                &format!("{rpp}.grpcRetryEvents[{i}]"),
                format!(
                    "unknown event `{e}`, expected one of {}",
                    GRPC_RETRY_EVENTS.join(", ")
                ),
            ));
        }
    }
    let (http, tcp) = (&rp.http_retry_events, &rp.tcp_retry_events);
    route::check_retry_events(doc, &rpp, http, tcp, out);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::source::loader::parse_file;
    use crate::source::LoadOutput;

    /// A mesh with a grpc node `g` (port 50051), an http node `h`, and a router `r` listening on
    /// grpc 50051 and http 8080; `route` is the spec of route `x` of `r`.
    fn problems(route: &str) -> Vec<String> {
        let text = format!(
            "kind: Mesh\nmeshName: m\n\
             ---\nkind: VirtualNode\nmeshName: m\nvirtualNodeName: g\nspec:\n  listeners: [{{portMapping: {{port: 50051, protocol: grpc}}}}]\n  serviceDiscovery: {{dns: {{hostname: g}}}}\n\
             ---\nkind: VirtualNode\nmeshName: m\nvirtualNodeName: h\nspec:\n  listeners: [{{portMapping: {{port: 8080, protocol: http}}}}]\n  serviceDiscovery: {{dns: {{hostname: h}}}}\n\
             ---\nkind: VirtualRouter\nmeshName: m\nvirtualRouterName: r\nspec:\n  listeners: [{{portMapping: {{port: 50051, protocol: grpc}}}}, {{portMapping: {{port: 8080, protocol: http}}}}]\n\
             ---\nkind: Route\nmeshName: m\nvirtualRouterName: r\nrouteName: x\nspec:\n{route}"
        );
        let mut out = LoadOutput::default();
        parse_file(Path::new("m.yaml"), &text, &mut out);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        match super::super::validate(&out.documents) {
            Ok(_) => Vec::new(),
            Err(ps) => ps.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// Change tracking reads a route's targets from `spec::References`: a gRPC route's are there.
    #[test]
    fn a_grpc_routes_targets_are_references() {
        use crate::spec::{Kind, References, RouteSpec};
        let spec: RouteSpec = serde_yaml_ng::from_str(
            "grpcRoute:\n  match: {serviceName: s}\n  action: {weightedTargets: [{virtualNode: g, weight: 1}, {virtualNode: h, weight: 1}]}\n",
        )
        .unwrap();
        assert_eq!(
            spec.referenced(),
            vec![(Kind::VirtualNode, "g"), (Kind::VirtualNode, "h")]
        );
    }

    const TARGET: &str = "    action: {weightedTargets: [{virtualNode: g, weight: 1}]}\n";

    #[test]
    fn a_full_grpc_route_is_valid() {
        let route = format!(
            "  priority: 3\n  grpcRoute:\n    match:\n      serviceName: shop.Cart\n      methodName: Add\n      port: 50051\n      metadata:\n        - {{name: x-tenant, match: {{suffix: -prod}}, invert: true}}\n        - {{name: x-version, match: {{range: {{start: 1, end: 3}}}}}}\n        - {{name: x-any}}\n{TARGET}    retryPolicy:\n      maxRetries: 3\n      perRetryTimeout: {{unit: ms, value: 500}}\n      grpcRetryEvents: [cancelled, deadline-exceeded, internal, resource-exhausted, unavailable]\n      httpRetryEvents: [server-error]\n      tcpRetryEvents: [connection-error]\n    timeout: {{perRequest: {{unit: s, value: 0}}, idle: {{unit: s, value: 60}}}}\n"
        );
        assert_eq!(problems(&route), Vec::<String>::new());
    }

    #[test]
    fn every_broken_grpc_rule_is_reported() {
        let metadata: String = (0..11)
            .map(|i| format!("        - {{name: m{i}}}\n"))
            .collect();
        let route = format!(
            "  grpcRoute:\n    match:\n      methodName: {long}\n      port: 50051\n      metadata:\n{metadata}        - {{name: two, match: {{exact: a, prefix: b}}}}\n    action: {{weightedTargets: [{{virtualNode: h, weight: 1}}]}}\n    retryPolicy:\n      maxRetries: 1\n      perRetryTimeout: {{unit: ms, value: 500}}\n      grpcRetryEvents: [unavailable, not-found]\n",
            long = "m".repeat(51)
        );
        let got = problems(&route);
        let want = [
            "spec.grpcRoute.match.methodName: a `methodName` needs a `serviceName`",
            "spec.grpcRoute.match.methodName: must be 1 to 50 characters",
            "spec.grpcRoute.match.metadata: at most 10 metadata matches",
            "spec.grpcRoute.match.metadata[11].match: give exactly one of",
            "spec.grpcRoute.action.weightedTargets[0]: a grpcRoute needs a grpc listener, but the listener of `h` on port 8080 is http",
            "spec.grpcRoute.retryPolicy.grpcRetryEvents[1]: unknown event `not-found`",
        ];
        for w in want {
            assert!(
                got.iter().any(|p| p.contains(w)),
                "missing {w:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }

    #[test]
    fn a_retry_policy_needs_an_event() {
        let route = format!(
            "  grpcRoute:\n    match: {{serviceName: s, port: 50051}}\n{TARGET}    retryPolicy: {{maxRetries: 1, perRetryTimeout: {{unit: ms, value: 1}}}}\n"
        );
        let got = problems(&route);
        assert!(
            got.len() == 1 && got[0].contains("give at least one of `grpcRetryEvents`"),
            "{got:#?}"
        );
    }

    #[test]
    fn the_route_kind_must_be_its_router_listeners_protocol() {
        // Several router listeners: the port is required.
        let got = problems(&format!(
            "  grpcRoute:\n    match: {{serviceName: s}}\n{TARGET}"
        ));
        assert!(
            got.len() == 1
                && got[0].contains(
                    "spec.grpcRoute.match.port: required: the virtual router has several listeners"
                ),
            "{got:#?}"
        );
        // A grpcRoute on the http listener, an http2Route on the grpc one.
        let got = problems(&format!(
            "  grpcRoute:\n    match: {{serviceName: s, port: 8080}}\n{TARGET}"
        ));
        assert!(
            got.len() == 1
                && got[0].contains("spec.grpcRoute: a grpcRoute needs a grpc router listener, but the router's listener on port 8080 is http"),
            "{got:#?}"
        );
        let got = problems(
            "  http2Route:\n    match: {prefix: /, port: 50051}\n    action: {weightedTargets: [{virtualNode: h, weight: 1}]}\n",
        );
        assert!(
            got.len() == 1 && got[0].contains("an http2Route needs an http2 router listener"),
            "{got:#?}"
        );
        // An unknown port is the match's problem only.
        let got = problems(&format!(
            "  grpcRoute:\n    match: {{serviceName: s, port: 1}}\n{TARGET}"
        ));
        assert!(
            got.len() == 1 && got[0].contains("port 1 is not a listener of the virtual router"),
            "{got:#?}"
        );
    }
}
