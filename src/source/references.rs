//! The entity keys a document names (a service's provider, a node's backends, a route's targets, a
//! gateway route's target service),
//! computed once when it is parsed: every reload's change tracking asks for them. What counts as a
//! reference is `spec::References`; this only keys it.

use super::document::{Body, Document};
use crate::change::entity_key;
use crate::spec::References;

pub(super) fn compute_references(doc: &Document) -> Vec<u64> {
    let mesh = doc.names().mesh.unwrap_or_default();
    let mut refs = Vec::new();
    if let Some(s) = doc.body.referring_spec() {
        s.references(&mut |kind, name| refs.push(entity_key(kind, mesh, name)));
    }
    refs.sort_unstable();
    refs.dedup();
    refs
}

impl Body {
    /// The spec of a kind that refers to others, as the reference graph sees it.
    pub fn referring_spec(&self) -> Option<&dyn References> {
        match self {
            Body::VirtualService(e) => e.spec.as_deref().map(|s| s as &dyn References),
            Body::VirtualNode(e) => e.spec.as_deref().map(|s| s as &dyn References),
            Body::Route(e) => e.spec.as_deref().map(|s| s as &dyn References),
            Body::GatewayRoute(e) => e.spec.as_deref().map(|s| s as &dyn References),
            Body::Mesh(_) | Body::VirtualRouter(_) | Body::VirtualGateway(_) => None,
        }
    }
}
