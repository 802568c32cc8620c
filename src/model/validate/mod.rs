//! Every App Mesh rule meshplane checks, reported all at once with file, line and field path.
//!
//! This module owns the two passes and what they share: `index` puts every resource in its place
//! (duplicates, missing parents), then each document is checked on its own against the finished
//! model by the module of its kind (`service`, `node` with `listener`, `router`, `route` with
//! `route_match` and `tcp_route`, `gateway`, `gateway_route`). Meshes have no field rules of their own.
//! `cache` owns what a re-validation may skip; `tcp_egress` (where apps reach TCP backends) reads
//! more than a document names, so it runs on every validation.

mod cache;
mod gateway;
mod gateway_route;
pub(super) mod ignored;
mod index;
mod listener;
mod node;
mod regex;
pub use regex::program_size_bound;
mod route;
mod route_grpc;
mod route_match;
mod router;
mod service;
mod tcp_egress;
mod tcp_route;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rules;
mod tls;
mod transparent;

use std::sync::Arc;

use super::MeshModel;
use crate::change::{ChangeSet, Identities};
use crate::diag::{Origin, Problem};
use crate::source::{Body, Document};
use crate::spec::{Duration, Kind};

pub use cache::{validate_with, CheckCache};

/// Builds the model from loaded documents, or returns every problem found (sorted by file and line).
pub fn validate(docs: &[Arc<Document>]) -> Result<MeshModel, Vec<Problem>> {
    let changes = ChangeSet::between(&Default::default(), Identities::of(docs));
    validate_with(docs, &CheckCache::default(), &changes).0
}

struct Validator {
    problems: Vec<Problem>,
    model: MeshModel,
}

impl Validator {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }
}

fn origin(doc: &Document) -> Origin {
    Origin {
        file: doc.file.clone(),
        line: doc.line(),
    }
}

fn n(s: Option<&str>) -> String {
    s.unwrap_or_default().to_string()
}

/// The checks of one document against the finished model; a document of an undefined mesh was
/// already reported by `index` and has nothing to be checked against.
fn check_document(model: &MeshModel, doc: &Document, out: &mut Vec<Problem>) {
    let mesh_name = doc.names().mesh.unwrap_or_default();
    let Some(mesh) = model.meshes.get(mesh_name) else {
        return;
    };
    match &doc.body {
        // Every Mesh field is an enum, so serde already enforced its values.
        Body::Mesh(_) => {}
        Body::VirtualService(e) => match &e.spec {
            Some(s) => service::check_service(doc, mesh, s, out),
            None => service::check_service(doc, mesh, &Default::default(), out),
        },
        Body::VirtualNode(e) => match &e.spec {
            Some(s) => node::check_node(doc, mesh, s, out),
            None => node::check_node(doc, mesh, &Default::default(), out),
        },
        Body::VirtualRouter(e) => match &e.spec {
            Some(s) => router::check_router(doc, s, out),
            None => router::check_router(doc, &Default::default(), out),
        },
        Body::Route(e) => {
            let router = n(e.virtual_router_name.as_deref());
            if let Some(r) = mesh.virtual_routers.get(&router) {
                match &e.spec {
                    Some(s) => route::check_route(doc, mesh, &r.spec, s, out),
                    None => route::check_route(doc, mesh, &r.spec, &Default::default(), out),
                }
            }
        }
        Body::VirtualGateway(e) => match &e.spec {
            Some(s) => gateway::check_gateway(doc, s, out),
            None => gateway::check_gateway(doc, &Default::default(), out),
        },
        Body::GatewayRoute(e) => {
            let gw = n(e.virtual_gateway_name.as_deref());
            if let Some(g) = mesh.virtual_gateways.get(&gw) {
                match &e.spec {
                    Some(s) => gateway_route::check_gateway_route(doc, mesh, &g.spec, s, out),
                    None => gateway_route::check_gateway_route(
                        doc,
                        mesh,
                        &g.spec,
                        &Default::default(),
                        out,
                    ),
                }
            }
        }
    }
}

/// `value` must be within `lo..=hi`.
/// The message for a reference to a `kind` named `name` that mesh `mesh` does not define. (The
/// loader marks these as possible consequences when a file failed to load: keep the wording.)
fn not_defined(kind: Kind, name: &str, mesh: &str) -> String {
    format!("{kind} `{name}` is not defined in mesh `{mesh}`")
}

fn range(doc: &Document, path: &str, value: u64, lo: u64, hi: u64, out: &mut Vec<Problem>) {
    if value < lo || value > hi {
        out.push(doc.problem(
            path,
            format!("{value} is out of range: must be {lo} to {hi}"),
        ));
    }
}

fn check_port(doc: &Document, path: &str, port: u32, out: &mut Vec<Problem>) {
    range(doc, path, port.into(), 1, 65535, out);
}

fn check_duration(doc: &Document, path: &str, d: &Duration, min_ms: u64, out: &mut Vec<Problem>) {
    if d.as_millis() < min_ms {
        out.push(doc.problem(path, format!("must be at least {min_ms} ms")));
    }
}
