//! Where each node's app reaches its TCP backends (`proxy.tcpEgress`, docs/contract.md §2): every
//! entry names a TCP backend of the node with a single tcp port, and no two local ports collide,
//! nor one with the node's own ingress, egress or app ports. A transparent node has no local ports:
//! no two of its TCP backends may share a port.
//!
//! A node's placements read its backends' providers (routers and nodes it does not name), which
//! the per-document check cache does not follow; this pass is cheap and runs on every validation.

use std::collections::HashMap;
use std::sync::Arc;

use super::check_port;
use crate::diag::Problem;
use crate::model::{Mesh, MeshModel, TcpEgress};
use crate::source::{Body, Document};
use crate::spec::{ProxyMode, VirtualNodeSpec};

/// The problems of every virtual node's TCP egress placements.
pub(super) fn problems(model: &MeshModel, docs: &[Arc<Document>]) -> Vec<Problem> {
    let mut out = Vec::new();
    for doc in docs {
        let Body::VirtualNode(e) = &doc.body else {
            continue;
        };
        let (Some(spec), Some(mesh)) = (
            &e.spec,
            model.meshes.get(doc.names().mesh.unwrap_or_default()),
        ) else {
            continue;
        };
        if spec.backends.is_empty() {
            continue;
        }
        check_entries(doc, mesh, spec, &mut out);
        check_collisions(doc, mesh, spec, &mut out);
    }
    out
}

fn entry_path(vs: &str) -> String {
    format!("spec.proxy.tcpEgress.{vs}")
}

/// Each `tcpEgress` entry: a port, for a backend of the node that is TCP with one tcp port.
fn check_entries(doc: &Document, mesh: &Mesh, spec: &VirtualNodeSpec, out: &mut Vec<Problem>) {
    let Some(proxy) = &spec.proxy else { return };
    for (vs, &port) in &proxy.tcp_egress {
        let path = entry_path(vs);
        check_port(doc, &path, port, out);
        let is_backend = spec.backends.iter().any(|b| {
            b.virtual_service
                .as_ref()
                .is_some_and(|v| v.virtual_service_name == *vs)
        });
        let ports = mesh.tcp_service_ports(vs);
        let msg = if !is_backend {
            format!("`{vs}` is not a backend of this virtual node")
        } else if ports.is_empty() {
            format!("`{vs}` has no tcp listener: HTTP, HTTP/2 and gRPC backends are reached through the egress port")
        } else if ports.len() > 1 {
            format!("`{vs}` has several tcp ports ({ports:?}); a tcpEgress entry can only place a service with one")
        } else {
            continue;
        };
        out.push(doc.problem(&path, msg));
    }
}

/// No local port used twice: the node's own ports first, then each TCP backend port in order.
fn check_collisions(doc: &Document, mesh: &Mesh, spec: &VirtualNodeSpec, out: &mut Vec<Problem>) {
    let placements = spec.tcp_egress(mesh);
    if placements.is_empty() {
        return;
    }
    if spec.proxy_mode(&mesh.spec) == ProxyMode::Transparent {
        return check_transparent(doc, &placements, out);
    }
    let mut taken: HashMap<u32, String> = HashMap::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        taken
            .entry(spec.ingress_port(i))
            .or_insert_with(|| format!("the ingress port of spec.listeners[{i}]"));
        taken
            .entry(l.port_mapping.port)
            .or_insert_with(|| format!("the app's own port of spec.listeners[{i}]"));
    }
    taken
        .entry(spec.egress_port())
        .or_insert_with(|| "the node's egress port".into());
    for p in placements {
        let what = format!("TCP backend `{}` (port {})", p.service, p.service_port);
        let Some(by) = taken.get(&p.local_port) else {
            taken.insert(p.local_port, what);
            continue;
        };
        let (path, msg) = if p.overridden {
            (
                entry_path(p.service),
                format!(
                    "127.0.0.1:{} is already taken by {by}: choose another port",
                    p.local_port
                ),
            )
        } else {
            (
                format!("spec.backends[{}].virtualService.virtualServiceName", p.backend),
                format!(
                    "{what} would be reached at 127.0.0.1:{}, already taken by {by}: give it a port of its own in `spec.proxy.tcpEgress` (`{}: <port>`)",
                    p.local_port, p.service
                ),
            )
        };
        out.push(doc.problem(&path, msg));
    }
}

/// A transparent sidecar has no local ports (the app dials the backend's own address, iptables
/// brings it to the egress listener), and tells TCP destinations apart by port alone: two TCP
/// backends on one port cannot both be reached.
fn check_transparent(doc: &Document, placements: &[TcpEgress<'_>], out: &mut Vec<Problem>) {
    let mut taken: HashMap<u32, &str> = HashMap::new();
    for p in placements {
        match taken.get(&p.service_port) {
            None => {
                taken.insert(p.service_port, p.service);
            }
            Some(first) if *first != p.service => out.push(doc.problem(
                &format!("spec.backends[{}].virtualService.virtualServiceName", p.backend),
                format!(
                    "TCP backend `{}` (port {port}) cannot be told apart from TCP backend `{first}` \
                     (port {port}): this node's sidecar is transparent and picks a TCP destination \
                     by its port alone; give one of the services another port",
                    p.service,
                    port = p.service_port
                ),
            )),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
#[path = "tcp_egress/tests.rs"]
mod tests;
