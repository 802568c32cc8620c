//! A virtual router's card on the topology page: its listeners, then its routes in App Mesh priority
//! order, each with what it matches, its weighted targets (weight and a bar of the route's share)
//! and its retry and timeout policy.

use std::fmt::Write as _;

use serde_yaml_ng::Value;

use super::mesh::{anchor, at, link};
use super::{esc, more, LIST_LIMIT};
use crate::model::Mesh;
use crate::spec::{GrpcRoute, HeaderMatch, HttpRoute, HttpRouteMatch, RouteSpec};

/// The routers column of one mesh.
pub(super) fn column(out: &mut String, m: &Mesh) {
    super::mesh::column(out, "Virtual routers", m.virtual_routers.len());
    for (name, r) in m.virtual_routers.iter().take(LIST_LIMIT) {
        let listeners: Vec<String> = r
            .spec
            .listeners
            .iter()
            .map(|l| {
                format!(
                    "{} {}",
                    l.port_mapping.port,
                    l.port_mapping.protocol.as_str()
                )
            })
            .collect();
        let _ = write!(
            out,
            "<div class=\"card router\" id=\"{}\"><div class=\"head\"><span class=\"name\">{}</span>\
             <span class=\"muted\">listens {}</span></div>",
            anchor("vr", &m.name, name),
            esc(name),
            esc(&listeners.join(", "))
        );
        let mut routes: Vec<_> = r.routes.iter().collect();
        routes.sort_by_key(|(n, item)| (item.spec.priority.map_or(u64::MAX, u64::from), *n));
        if routes.is_empty() {
            out.push_str("<p class=\"muted\">no routes</p>");
        }
        for (route_name, item) in routes {
            route(out, &m.name, route_name, &item.spec);
        }
        out.push_str("</div>");
    }
    more(out, m.virtual_routers.len(), "the files list them all");
    out.push_str("</div>");
}

fn route(out: &mut String, mesh: &str, name: &str, spec: &RouteSpec) {
    let (kind, http, raw) = match (
        &spec.http_route,
        &spec.http2_route,
        &spec.grpc_route,
        &spec.tcp_route,
    ) {
        (Some(h), _, _, _) => ("http", Some(h), None),
        (None, Some(h), _, _) => ("http2", Some(h), None),
        (None, None, Some(_), _) => ("grpc", None, None),
        (None, None, None, Some(_)) => ("tcp", None, None),
        (None, None, None, None) => ("no route type", None, None),
    };
    let priority = spec
        .priority
        .map_or("no priority".to_string(), |p| format!("priority {p}"));
    let _ = write!(
        out,
        "<div class=\"route\"><div class=\"route-head\"><span class=\"name\">{}</span>\
         <span class=\"muted\">{priority} · {kind}</span></div>",
        esc(name)
    );
    if let Some(h) = http {
        let _ = write!(
            out,
            "<div class=\"match\">{}</div>",
            esc(&match_summary(&h.matcher))
        );
        let targets: Vec<(String, u64, Option<u64>)> = h
            .action
            .weighted_targets
            .iter()
            .map(|t| {
                (
                    t.virtual_node.clone(),
                    t.weight.into(),
                    t.port.map(u64::from),
                )
            })
            .collect();
        weights(out, mesh, &targets);
        policies(out, h);
    } else if let Some(g) = &spec.grpc_route {
        grpc_route(out, mesh, g);
    } else if let Some(v) = raw {
        weights(out, mesh, &raw_targets(v));
    } else if let Some(t) = &spec.tcp_route {
        let targets: Vec<(String, u64, Option<u64>)> = t
            .action
            .weighted_targets
            .iter()
            .map(|t| {
                (
                    t.virtual_node.clone(),
                    t.weight.into(),
                    t.port.map(u64::from),
                )
            })
            .collect();
        weights(out, mesh, &targets);
    }
    out.push_str("</div>");
}

/// A gRPC route: what it matches (`/<service>/<method>`, metadata, port) and its targets.
fn grpc_route(out: &mut String, mesh: &str, g: &GrpcRoute) {
    let m = &g.matcher;
    let mut parts = vec![match (&m.service_name, &m.method_name) {
        (Some(s), Some(x)) => format!("method /{s}/{x}"),
        (Some(s), None) => format!("service {s}"),
        _ => "any service".to_string(),
    }];
    parts.extend(m.metadata.iter().map(header_summary));
    if let Some(p) = m.port {
        parts.push(format!("port {p}"));
    }
    let _ = write!(
        out,
        "<div class=\"match\">{}</div>",
        esc(&parts.join(" · "))
    );
    let targets: Vec<(String, u64, Option<u64>)> = g
        .action
        .weighted_targets
        .iter()
        .map(|t| {
            (
                t.virtual_node.clone(),
                t.weight.into(),
                t.port.map(u64::from),
            )
        })
        .collect();
    weights(out, mesh, &targets);
}

/// Weighted targets: each with its weight as a number and a bar of its share of the route.
fn weights(out: &mut String, mesh: &str, targets: &[(String, u64, Option<u64>)]) {
    let total: u64 = targets.iter().map(|t| t.1).sum();
    out.push_str("<table class=\"targets\">");
    for (node, weight, port) in targets {
        let share = if total == 0 {
            0.0
        } else {
            *weight as f64 * 100.0 / total as f64
        };
        let port = port.map_or(String::new(), |p| format!(":{p}"));
        let _ = write!(
            out,
            "<tr><td class=\"target\">{}{port}</td><td class=\"weight\">{weight}</td>\
             <td class=\"bar\" title=\"{share:.1}%\"><span class=\"track\"><span style=\"width:{share:.1}%\"></span></span></td>",
            link("vn", mesh, node)
        );
        if total != 100 {
            let _ = write!(out, "<td class=\"share\">{share:.0}%</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The targets of a route kept raw (TCP): `action.weightedTargets`, as far as they parse.
fn raw_targets(v: &Value) -> Vec<(String, u64, Option<u64>)> {
    let Some(ts) = at(v, &["action", "weightedTargets"]).and_then(Value::as_sequence) else {
        return Vec::new();
    };
    ts.iter()
        .filter_map(|t| {
            let node = at(t, &["virtualNode"])?.as_str()?.to_string();
            let weight = at(t, &["weight"]).and_then(Value::as_u64).unwrap_or(0);
            Some((node, weight, at(t, &["port"]).and_then(Value::as_u64)))
        })
        .collect()
}

fn millis(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn policies(out: &mut String, h: &HttpRoute) {
    let mut parts = Vec::new();
    if let Some(r) = &h.retry_policy {
        let events: Vec<&str> = r
            .http_retry_events
            .iter()
            .chain(&r.tcp_retry_events)
            .map(String::as_str)
            .collect();
        parts.push(format!(
            "{} retries, {} per try ({})",
            r.max_retries,
            millis(r.per_retry_timeout.as_millis()),
            events.join(", ")
        ));
    }
    if let Some(t) = h.timeout.as_ref().and_then(|t| t.per_request) {
        parts.push(format!("timeout {}", millis(t.as_millis())));
    }
    if !parts.is_empty() {
        let _ = write!(
            out,
            "<div class=\"muted\">{}</div>",
            esc(&parts.join(" · "))
        );
    }
}

/// What a route matches, in one line: `prefix /api · header x-version = v2 · query v = 1`.
pub(super) fn match_summary(m: &HttpRouteMatch) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &m.prefix {
        parts.push(format!("prefix {p}"));
    }
    if let Some(p) = &m.path {
        if let Some(e) = &p.exact {
            parts.push(format!("path = {e}"));
        }
        if let Some(r) = &p.regex {
            parts.push(format!("path ~ {r}"));
        }
    }
    if let Some(x) = &m.method {
        parts.push(format!("method {x}"));
    }
    parts.extend(m.headers.iter().map(header_summary));
    for q in &m.query_parameters {
        parts.push(match q.matcher.as_ref().and_then(|q| q.exact.as_ref()) {
            Some(v) => format!("query {} = {v}", q.name),
            None => format!("query {} present", q.name),
        });
    }
    if let Some(s) = &m.scheme {
        parts.push(format!("scheme {s}"));
    }
    if let Some(p) = m.port {
        parts.push(format!("port {p}"));
    }
    if parts.is_empty() {
        "every request".into()
    } else {
        parts.join(" · ")
    }
}

fn header_summary(h: &HeaderMatch) -> String {
    let not = if h.invert == Some(true) { "not " } else { "" };
    let how = match &h.matcher {
        None => "present".to_string(),
        Some(m) => match (&m.exact, &m.prefix, &m.suffix, &m.regex, m.range) {
            (Some(v), ..) => format!("= {v}"),
            (_, Some(v), ..) => format!("starts with {v}"),
            (_, _, Some(v), ..) => format!("ends with {v}"),
            (_, _, _, Some(v), _) => format!("~ {v}"),
            (.., Some(r)) => format!("in [{}, {})", r.start, r.end),
            _ => "present".to_string(),
        },
    };
    format!("header {not}{} {how}", h.name)
}
