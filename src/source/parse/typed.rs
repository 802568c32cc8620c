//! A document's resource deserialized into the typed body of its kind: every unknown field (with
//! a spelling hint for the document's form) and the first type error are problems at the path the
//! user wrote.

use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use crate::source::document::{Body, Document};
use crate::source::loader::LoadOutput;
use crate::spec::{Envelope, Kind};

/// `inner` deserialized into the body of `doc`'s kind.
pub(super) fn typed_body(doc: &Document, inner: Value, out: &mut LoadOutput) -> Option<Body> {
    match doc.kind {
        Kind::Mesh => typed(doc, inner, out).map(Body::Mesh),
        Kind::VirtualService => typed(doc, inner, out).map(Body::VirtualService),
        Kind::VirtualNode => typed(doc, inner, out).map(Body::VirtualNode),
        Kind::VirtualRouter => typed(doc, inner, out).map(Body::VirtualRouter),
        Kind::Route => typed(doc, inner, out).map(Body::Route),
        Kind::VirtualGateway => typed(doc, inner, out).map(Body::VirtualGateway),
        Kind::GatewayRoute => typed(doc, inner, out).map(Body::GatewayRoute),
    }
}

pub(super) fn empty_envelope<S>() -> Envelope<S> {
    Envelope {
        mesh_name: None,
        virtual_service_name: None,
        virtual_node_name: None,
        virtual_router_name: None,
        route_name: None,
        virtual_gateway_name: None,
        gateway_route_name: None,
        spec: None,
        metadata: None,
        status: None,
    }
}

/// Deserializes into `Envelope<S>`, collecting every unknown field and the first type error.
fn typed<S: DeserializeOwned>(
    doc: &Document,
    inner: Value,
    out: &mut LoadOutput,
) -> Option<Envelope<S>> {
    let mut unknown = Vec::new();
    let mut on_unknown = |p: serde_ignored::Path<'_>| unknown.push(ignored_path(&p));
    let result: Result<Envelope<S>, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(inner, &mut on_unknown));
    for path in unknown {
        let field = path.rsplit(['.', '[']).next().unwrap_or(&path).to_string();
        let hint = if doc.is_k8s() {
            crate::source::suggest::k8s_field(&field)
        } else {
            crate::source::suggest::field(&field)
        };
        let hint = hint
            .map(|w| format!(" (did you mean `{w}`?)"))
            .unwrap_or_default();
        out.problems
            .push(doc.problem(&path, format!("unknown field `{field}`{hint}")));
    }
    match result {
        Ok(env) => Some(env),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            out.problems
                .push(doc.problem(&path, e.into_inner().to_string()));
            None
        }
    }
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let base = ignored_path(parent);
            if base.is_empty() {
                key.to_string()
            } else {
                format!("{base}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}
