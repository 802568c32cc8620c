//! A Kubernetes manifest's document settled once every file is read: placed in the config's only
//! mesh when it has no `meshRef`, and each of its references by name to a resource that `awsName`
//! renamed replaced by that `awsName`; its content hash then covers what was settled.

use std::sync::Arc;

use super::{Body, Document};
use crate::spec::{
    Envelope, GatewayRouteSpec, Kind, RouteSpec, VirtualNodeSpec, VirtualServiceSpec,
};

/// What renames a document's references by name: `renamed(kind, default name)` is the `awsName`
/// of a resource it renamed, for the references the document records (`by_ref`).
struct Renames<'a> {
    by_ref: &'a [(Kind, String)],
    renamed: &'a dyn Fn(Kind, &str) -> Option<String>,
}

impl Renames<'_> {
    /// The new name of the reference to the `kind` named `name`, if it is one of the document's
    /// references by name and its target was renamed.
    fn to(&self, kind: Kind, name: &str) -> Option<String> {
        self.by_ref
            .iter()
            .any(|(k, n)| *k == kind && n == name)
            .then(|| (self.renamed)(kind, name))
            .flatten()
    }

    /// Renames `name`, a reference to a `kind`, if its target was renamed.
    fn swap(&self, kind: Kind, name: &mut String) {
        if let Some(new) = self.to(kind, name) {
            *name = new;
        }
    }

    /// Whether a reference inside the spec is renamed: a spec is copied only then (it is shared
    /// with the parse cache), so a manifest that only joins the config's mesh keeps it as it is.
    fn in_spec(&self) -> bool {
        self.by_ref.iter().any(|(k, n)| {
            !matches!(k, Kind::Mesh | Kind::VirtualGateway) && (self.renamed)(*k, n).is_some()
        })
    }
}

impl Document {
    /// This Kubernetes manifest's document once every file is read: in `mesh` when it has no
    /// `meshRef`, and with each reference by name to a resource that `awsName` renamed replaced
    /// by that `awsName` (`renamed(kind, default name)`).
    pub(in crate::source) fn settled(
        &self,
        mesh: Option<&str>,
        renamed: &dyn Fn(Kind, &str) -> Option<String>,
    ) -> Document {
        let mut doc = self.clone();
        let r = Renames {
            by_ref: &self.by_ref,
            renamed,
        };
        let in_spec = r.in_spec();
        match &mut doc.body {
            Body::Mesh(e) => envelope(e, mesh, &r),
            Body::VirtualService(e) => {
                envelope(e, mesh, &r);
                if let Some(s) = spec_to_settle(e, in_spec) {
                    service(s, &r);
                }
            }
            Body::VirtualNode(e) => {
                envelope(e, mesh, &r);
                if let Some(s) = spec_to_settle(e, in_spec) {
                    node(s, &r);
                }
            }
            Body::Route(e) => {
                envelope(e, mesh, &r);
                if let Some(s) = spec_to_settle(e, in_spec) {
                    route(s, &r);
                }
            }
            Body::VirtualRouter(e) => envelope(e, mesh, &r),
            Body::VirtualGateway(e) => envelope(e, mesh, &r),
            Body::GatewayRoute(e) => {
                envelope(e, mesh, &r);
                if let Some(s) = spec_to_settle(e, in_spec) {
                    gateway_route(s, &r);
                }
            }
        }
        doc.content = self.settled_content(mesh, renamed);
        doc.entity = doc.compute_entity_key();
        doc.references = crate::source::references::compute_references(&doc);
        doc
    }

    /// The content hash of this document settled in `mesh` with `renamed`: what was settled is
    /// part of the content, so a rename in another file changes this document for change tracking
    /// even though its own text did not change.
    fn settled_content(
        &self,
        mesh: Option<&str>,
        renamed: &dyn Fn(Kind, &str) -> Option<String>,
    ) -> u64 {
        use std::hash::{Hash, Hasher};
        let applied: Vec<(&Kind, &str, Option<String>)> = self
            .by_ref
            .iter()
            .map(|(k, n)| (k, n.as_str(), renamed(*k, n)))
            .collect();
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        (self.content, mesh, applied).hash(&mut h);
        h.finish()
    }
}

/// The envelope's name fields: `meshName` set to `mesh` when given, then the mesh and gateway
/// references renamed.
fn envelope<S>(e: &mut Envelope<S>, mesh: Option<&str>, r: &Renames) {
    if let Some(mesh) = mesh {
        e.mesh_name = Some(mesh.to_string());
    }
    if let Some(m) = e.mesh_name.as_mut() {
        r.swap(Kind::Mesh, m);
    }
    if let Some(g) = e.virtual_gateway_name.as_mut() {
        r.swap(Kind::VirtualGateway, g);
    }
}

/// The envelope's spec, copied out of the parse cache's, when a reference in it is renamed.
fn spec_to_settle<S: Clone>(e: &mut Envelope<S>, in_spec: bool) -> Option<&mut S> {
    e.spec.as_mut().filter(|_| in_spec).map(Arc::make_mut)
}

/// A virtual service's provider: its node or router.
fn service(s: &mut VirtualServiceSpec, r: &Renames) {
    let Some(p) = s.provider.as_mut() else {
        return;
    };
    if let Some(n) = p.virtual_node.as_mut() {
        r.swap(Kind::VirtualNode, &mut n.virtual_node_name);
    }
    if let Some(v) = p.virtual_router.as_mut() {
        r.swap(Kind::VirtualRouter, &mut v.virtual_router_name);
    }
}

/// A virtual node's backend services.
fn node(s: &mut VirtualNodeSpec, r: &Renames) {
    for b in s
        .backends
        .iter_mut()
        .filter_map(|b| b.virtual_service.as_mut())
    {
        r.swap(Kind::VirtualService, &mut b.virtual_service_name);
    }
}

/// A route's weighted target nodes (HTTP, HTTP/2, gRPC, TCP).
fn route(s: &mut RouteSpec, r: &Renames) {
    for h in [s.http_route.as_mut(), s.http2_route.as_mut()]
        .into_iter()
        .flatten()
    {
        for t in &mut h.action.weighted_targets {
            r.swap(Kind::VirtualNode, &mut t.virtual_node);
        }
    }
    for t in s
        .grpc_route
        .iter_mut()
        .flat_map(|g| g.action.weighted_targets.iter_mut())
    {
        r.swap(Kind::VirtualNode, &mut t.virtual_node);
    }
    for t in s
        .tcp_route
        .iter_mut()
        .flat_map(|t| &mut t.action.weighted_targets)
    {
        r.swap(Kind::VirtualNode, &mut t.virtual_node);
    }
}

/// A gateway route's target services.
fn gateway_route(s: &mut GatewayRouteSpec, r: &Renames) {
    let http = [s.http_route.as_mut(), s.http2_route.as_mut()].into_iter();
    let targets = http
        .flatten()
        .map(|h| &mut h.action.target)
        .chain(s.grpc_route.as_mut().map(|g| &mut g.action.target));
    for t in targets {
        r.swap(
            Kind::VirtualService,
            &mut t.virtual_service.virtual_service_name,
        );
    }
}
