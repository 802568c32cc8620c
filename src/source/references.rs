//! The entities a document names (a service's provider, a node's backends, a route's targets), for
//! the change tracking of validation. Moved here verbatim from `loader.rs`.

use super::document::{Body, Document};
use crate::spec::Kind;

pub(super) fn compute_references(doc: &Document) -> Vec<u64> {
    use crate::spec::entity_key;
    let mesh = doc.names().mesh.unwrap_or_default();
    let mut refs = Vec::new();
    match &doc.body {
        Body::VirtualService(e) => {
            if let Some(p) = e.spec.as_ref().and_then(|s| s.provider.as_ref()) {
                if let Some(vn) = &p.virtual_node {
                    refs.push(entity_key(Kind::VirtualNode, mesh, &vn.virtual_node_name));
                }
                if let Some(vr) = &p.virtual_router {
                    refs.push(entity_key(
                        Kind::VirtualRouter,
                        mesh,
                        &vr.virtual_router_name,
                    ));
                }
            }
        }
        Body::VirtualNode(e) => {
            for b in e.spec.iter().flat_map(|s| &s.backends) {
                if let Some(vs) = &b.virtual_service {
                    refs.push(entity_key(
                        Kind::VirtualService,
                        mesh,
                        &vs.virtual_service_name,
                    ));
                }
            }
        }
        Body::Route(e) => {
            for h in e
                .spec
                .iter()
                .flat_map(|s| [s.http_route.as_ref(), s.http2_route.as_ref()])
                .flatten()
            {
                for t in &h.action.weighted_targets {
                    refs.push(entity_key(Kind::VirtualNode, mesh, &t.virtual_node));
                }
            }
        }
        Body::Mesh(_)
        | Body::VirtualRouter(_)
        | Body::VirtualGateway(_)
        | Body::GatewayRoute(_) => {}
    }
    refs.sort_unstable();
    refs.dedup();
    refs
}
