//! The gateways of a mesh on the topology page: each with its listeners, its gateway routes and
//! their targets, and the gateway Envoys connected under its id.

use std::fmt::Write as _;

use super::mesh::link;
use super::{connection, esc, more, sidecar, Sidecars, LIST_LIMIT};
use crate::model::{Mesh, ProxyId, ProxyKind};
use crate::spec::{GatewayRouteSpec, VirtualGatewaySpec};

pub(super) fn list(out: &mut String, m: &Mesh, sidecars: &Sidecars) {
    if m.virtual_gateways.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<div class=\"gateways\"><h3>Virtual gateways <span class=\"count\">{}</span></h3>\
         <p class=\"note\">Each gateway Envoy listens on its listeners' ports and routes by \
         its gateway routes to their target services.</p><div class=\"cols\">",
        m.virtual_gateways.len()
    );
    for (name, item) in m.virtual_gateways.iter().take(LIST_LIMIT) {
        let id = ProxyId {
            mesh: m.name.clone(),
            kind: ProxyKind::VirtualGateway,
            name: name.clone(),
        };
        let connected = sidecars.of(&id);
        let _ = write!(
            out,
            "<div class=\"card gateway\"><div class=\"head\"><span class=\"name\">{}</span>",
            esc(name)
        );
        connection(out, connected);
        let _ = write!(
            out,
            "</div><dl><dt>listeners</dt><dd>{}</dd><dt>routes</dt><dd>",
            esc(&gateway_listeners(&item.spec))
        );
        let routes: Vec<String> = m
            .gateway_routes
            .iter()
            .filter(|((g, _), _)| g == name)
            .map(|((_, r), it)| gateway_route(&m.name, r, &it.spec))
            .collect();
        if routes.is_empty() {
            out.push_str("<span class=\"muted\">none</span>");
        }
        out.push_str(&routes.join("<br>"));
        out.push_str("</dd></dl>");
        for p in connected {
            sidecar(out, p);
        }
        out.push_str("</div>");
    }
    more(out, m.virtual_gateways.len(), "the files list them all");
    out.push_str("</div></div>");
}

fn gateway_listeners(spec: &VirtualGatewaySpec) -> String {
    let ls: Vec<String> = spec
        .listeners
        .iter()
        .map(|l| {
            let pm = l.port_mapping;
            format!("{} {}", pm.port, pm.protocol.as_str())
        })
        .collect();
    if ls.is_empty() {
        "none".into()
    } else {
        ls.join(", ")
    }
}

/// `name: http prefix /shop → shop.local` (already escaped).
fn gateway_route(mesh: &str, name: &str, spec: &GatewayRouteSpec) -> String {
    let http = |r: &crate::spec::HttpGatewayRoute| r.matcher.prefix.clone();
    let (kind, matcher) = if let Some(r) = &spec.http_route {
        ("http", http(r))
    } else if let Some(r) = &spec.http2_route {
        ("http2", http(r))
    } else if let Some(r) = &spec.grpc_route {
        ("grpc", r.matcher.service_name.clone())
    } else {
        return esc(name);
    };
    let matcher = matcher.map_or(String::new(), |p| format!(" {p}"));
    let target = spec.target().map_or("?".to_string(), |t| {
        link("vs", mesh, &t.virtual_service.virtual_service_name)
    });
    format!("{}: {kind}{} → {target}", esc(name), esc(&matcher))
}
