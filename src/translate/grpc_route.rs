//! gRPC routes of virtual routers: App Mesh's `grpcRoute` as an Envoy route on the router
//! listener's virtual host. The service and method become the request path (`/<service>/` as a
//! prefix, `/<service>/<method>` exact), metadata becomes header matchers; weighted targets,
//! timeouts (App Mesh's defaults: 15 s per request, 300 s idle) are built as for HTTP routes, and
//! the retry policy adds gRPC's status events to the HTTP and TCP ones.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::route::v3::{route_match, Route, RouteMatch};

use super::route::{
    default_grpc_retry_policy, grpc_retry_policy, matching::header, weighted, weighted_targets,
};
use super::Target;
use crate::model::Mesh;
use crate::spec::{GrpcRoute, GrpcRouteMatch};

/// One App Mesh gRPC route named `name`, its targets noted in `targets`.
pub(super) fn grpc_route(
    mesh: &Mesh,
    name: &str,
    g: &GrpcRoute,
    targets: &mut BTreeSet<Target>,
) -> Route {
    let clusters = weighted_targets(mesh, &g.action, targets);
    let retry = g
        .retry_policy
        .as_ref()
        .map_or_else(default_grpc_retry_policy, grpc_retry_policy);
    Route {
        name: name.to_string(),
        r#match: Some(grpc_match(&g.matcher)),
        action: Some(weighted(clusters, g.timeout.as_ref(), Some(retry))),
        ..Default::default()
    }
}

/// The match: gRPC requests only (`content-type: application/grpc`, as the gateway's gRPC routes),
/// on the path of the service (and method), with the metadata as headers.
pub(super) fn grpc_match(m: &GrpcRouteMatch) -> RouteMatch {
    use route_match::PathSpecifier as P;
    let path = match (&m.service_name, &m.method_name) {
        (Some(svc), Some(method)) => P::Path(format!("/{svc}/{method}")),
        (Some(svc), None) => P::Prefix(format!("/{svc}/")),
        // The validator requires a service with a method; without either, every call.
        (None, _) => P::Prefix("/".into()),
    };
    RouteMatch {
        path_specifier: Some(path),
        headers: m.metadata.iter().map(header).collect(),
        grpc: Some(route_match::GrpcRouteMatchOptions {}),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{HeaderMatch, HeaderMatchMethod};

    fn m(service: Option<&str>, method: Option<&str>) -> GrpcRouteMatch {
        GrpcRouteMatch {
            service_name: service.map(Into::into),
            method_name: method.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn service_and_method_become_the_path() {
        use route_match::PathSpecifier as P;
        let path = |g: GrpcRouteMatch| grpc_match(&g).path_specifier;
        assert_eq!(
            path(m(Some("shop.Cart"), Some("Add"))),
            Some(P::Path("/shop.Cart/Add".into()))
        );
        assert_eq!(
            path(m(Some("shop.Cart"), None)),
            Some(P::Prefix("/shop.Cart/".into()))
        );
        assert_eq!(path(m(None, None)), Some(P::Prefix("/".into())));
    }

    #[test]
    fn metadata_becomes_header_matchers_and_only_grpc_matches() {
        let mut g = m(Some("s"), None);
        g.metadata = vec![HeaderMatch {
            name: "x-tenant".into(),
            matcher: Some(HeaderMatchMethod {
                suffix: Some("-prod".into()),
                ..Default::default()
            }),
            invert: Some(true),
        }];
        let rm = grpc_match(&g);
        assert_eq!(rm.headers.len(), 1);
        assert_eq!(rm.headers[0].name, "x-tenant");
        assert!(rm.headers[0].invert_match);
        assert!(rm.grpc.is_some());
    }
}
