//! Virtual gateways: at least one listener, each on its own valid port with an HTTP-family
//! protocol, its health check and connection pool within App Mesh's ranges; the access log; and
//! the gateway's egress port (a meshplane extension), which must not be one of its listener ports.
//! Gateway routes are in `gateway_route`.

use std::collections::HashMap;

use super::check_port;
use super::listener::{check_health_check, check_pool_limits};
use crate::diag::Problem;
use crate::source::Document;
use crate::spec::{GatewayConnectionPool, Logging, Protocol, VirtualGatewaySpec};

pub(super) fn check_gateway(doc: &Document, spec: &VirtualGatewaySpec, out: &mut Vec<Problem>) {
    if spec.listeners.is_empty() {
        out.push(doc.problem(
            "spec.listeners",
            "a virtual gateway needs at least one listener",
        ));
    }
    let mut ports = HashMap::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        let base = format!("spec.listeners[{i}]");
        let pm = l.port_mapping;
        check_port(doc, &format!("{base}.portMapping.port"), pm.port, out);
        if let Some(first) = ports.insert(pm.port, i) {
            out.push(doc.problem(
                &format!("{base}.portMapping.port"),
                format!(
                    "port {} is already used by spec.listeners[{first}]",
                    pm.port
                ),
            ));
        }
        if pm.protocol == Protocol::Tcp {
            out.push(doc.problem(
                &format!("{base}.portMapping.protocol"),
                "a virtual gateway listener must be http, http2 or grpc",
            ));
        }
        if let Some(hc) = &l.health_check {
            check_health_check(doc, &base, pm, hc, out);
        }
        if let Some(cp) = &l.connection_pool {
            check_pool(doc, &base, pm.protocol, cp, out);
        }
        if let Some(tls) = &l.tls {
            super::tls::check_listener_tls(doc, &format!("{base}.tls"), tls, out);
        }
    }
    if let Some(lg) = &spec.logging {
        check_logging(doc, lg, out);
    }
    super::tls::check_backend_defaults(doc, spec.backend_defaults.as_ref(), out);
    if let Some(port) = spec.proxy.and_then(|p| p.egress_port) {
        check_port(doc, "spec.proxy.egressPort", port, out);
        if let Some(i) = ports.get(&port) {
            out.push(doc.problem(
                "spec.proxy.egressPort",
                format!("port {port} is already used by spec.listeners[{i}]"),
            ));
        }
    } else if let Some(i) = ports.get(&crate::model::DEFAULT_EGRESS_PORT) {
        out.push(doc.problem(
            &format!("spec.listeners[{i}].portMapping.port"),
            format!(
                "port {} is the gateway's default egress port; set `spec.proxy.egressPort` to another port",
                crate::model::DEFAULT_EGRESS_PORT
            ),
        ));
    }
}

/// Exactly one pool, of the listener's protocol, every limit at least 1.
fn check_pool(
    doc: &Document,
    base: &str,
    proto: Protocol,
    cp: &GatewayConnectionPool,
    out: &mut Vec<Problem>,
) {
    let p = format!("{base}.connectionPool");
    let given: Vec<(&str, Protocol)> = [
        (cp.http.is_some(), "http", Protocol::Http),
        (cp.http2.is_some(), "http2", Protocol::Http2),
        (cp.grpc.is_some(), "grpc", Protocol::Grpc),
    ]
    .into_iter()
    .filter(|g| g.0)
    .map(|g| (g.1, g.2))
    .collect();
    match given.as_slice() {
        [(name, pr)] if *pr != proto => out.push(doc.problem(
            &format!("{p}.{name}"),
            format!(
                "connection pool `{name}` does not match the listener protocol `{}`",
                proto.as_str()
            ),
        )),
        [_] => {}
        _ => out.push(doc.problem(&p, "give exactly one of `http`, `http2` or `grpc`")),
    }
    check_pool_limits(doc, &p, None, cp.http.as_ref(), [&cp.http2, &cp.grpc], out);
}

/// A file path of 1 to 255 characters; a format that is either text (1 to 1000 characters) or
/// json (keys and values 1 to 100 characters). Gateways and virtual nodes alike.
pub(super) fn check_logging(doc: &Document, lg: &Logging, out: &mut Vec<Problem>) {
    let Some(file) = lg.access_log.as_ref().and_then(|a| a.file.as_ref()) else {
        return;
    };
    let p = "spec.logging.accessLog.file";
    if file.path.is_empty() || file.path.len() > 255 {
        out.push(doc.problem(&format!("{p}.path"), "must be 1 to 255 characters"));
    }
    let Some(f) = &file.format else { return };
    match (&f.text, &f.json) {
        (Some(t), None) if t.is_empty() || t.len() > 1000 => {
            out.push(doc.problem(&format!("{p}.format.text"), "must be 1 to 1000 characters"))
        }
        (None, Some(j)) => {
            if j.is_empty() {
                out.push(doc.problem(&format!("{p}.format.json"), "needs at least one entry"));
            }
            for (i, kv) in j.iter().enumerate() {
                for (name, v) in [("key", &kv.key), ("value", &kv.value)] {
                    if v.is_empty() || v.len() > 100 {
                        out.push(doc.problem(
                            &format!("{p}.format.json[{i}].{name}"),
                            "must be 1 to 100 characters",
                        ));
                    }
                }
            }
        }
        (Some(_), None) => {}
        _ => out.push(doc.problem(
            &format!("{p}.format"),
            "give exactly one of `text` or `json`",
        )),
    }
}
