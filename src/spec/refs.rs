//! The reference graph of App Mesh resources, written once next to the types it reads: which other
//! entities of its own mesh a resource names. Change tracking (`crate::change`) derives node
//! dependencies and the validator's re-check rule from it, so a new field holding a reference is
//! taught here and nowhere else.

use super::{GatewayRouteSpec, Kind, RouteSpec, VirtualNodeSpec, VirtualServiceSpec};

/// A resource that names other entities of its mesh.
pub trait References {
    /// Calls `visit` with the kind and name of every entity this resource names.
    fn references<'a>(&'a self, visit: &mut dyn FnMut(Kind, &'a str));

    /// The same, collected.
    fn referenced(&self) -> Vec<(Kind, &str)> {
        let mut out = Vec::new();
        self.references(&mut |k, n| out.push((k, n)));
        out
    }
}

impl References for VirtualServiceSpec {
    /// Its provider: a virtual node or a virtual router.
    fn references<'a>(&'a self, visit: &mut dyn FnMut(Kind, &'a str)) {
        let Some(p) = &self.provider else { return };
        if let Some(vn) = &p.virtual_node {
            visit(Kind::VirtualNode, &vn.virtual_node_name);
        }
        if let Some(vr) = &p.virtual_router {
            visit(Kind::VirtualRouter, &vr.virtual_router_name);
        }
    }
}

impl References for VirtualNodeSpec {
    /// The virtual services it calls (its backends).
    fn references<'a>(&'a self, visit: &mut dyn FnMut(Kind, &'a str)) {
        for b in &self.backends {
            if let Some(vs) = &b.virtual_service {
                visit(Kind::VirtualService, &vs.virtual_service_name);
            }
        }
    }
}

impl References for RouteSpec {
    /// The virtual nodes its weighted targets send traffic to (HTTP, HTTP/2, gRPC and TCP routes).
    fn references<'a>(&'a self, visit: &mut dyn FnMut(Kind, &'a str)) {
        let http = [self.http_route.as_ref(), self.http2_route.as_ref()];
        let grpc = self.grpc_route.as_ref().map(|g| &g.action);
        for action in http.into_iter().flatten().map(|h| &h.action).chain(grpc) {
            for t in &action.weighted_targets {
                visit(Kind::VirtualNode, &t.virtual_node);
            }
        }
        for t in self
            .tcp_route
            .iter()
            .flat_map(|r| &r.action.weighted_targets)
        {
            visit(Kind::VirtualNode, &t.virtual_node);
        }
    }
}

impl References for GatewayRouteSpec {
    /// The virtual service its target names (whichever route type it is).
    fn references<'a>(&'a self, visit: &mut dyn FnMut(Kind, &'a str)) {
        if let Some(t) = self.target() {
            visit(
                Kind::VirtualService,
                &t.virtual_service.virtual_service_name,
            );
        }
    }
}
