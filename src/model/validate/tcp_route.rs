//! The `tcpRoute` of a route: its router listener (a tcp one, named by `match.port` when the
//! router has several) and its weighted targets (tcp listeners of defined virtual nodes).

use super::check_port;
use super::route::check_targets;
use crate::diag::Problem;
use crate::model::Mesh;
use crate::source::Document;
use crate::spec::{Protocol, TcpRoute, VirtualRouterSpec};

pub(super) fn check_tcp_route(
    doc: &Document,
    mesh: &Mesh,
    router: &VirtualRouterSpec,
    r: &TcpRoute,
    out: &mut Vec<Problem>,
) {
    let base = "spec.tcpRoute";
    check_targets(doc, mesh, base, &r.action.weighted_targets, true, out);
    for (i, t) in r.action.weighted_targets.iter().enumerate() {
        if let Some(p) = t.port {
            check_port(
                doc,
                &format!("{base}.action.weightedTargets[{i}].port"),
                p,
                out,
            );
        }
    }
    check_listener(doc, router, base, r.port(), out);
    // `timeout.idle` is non-negative by type, and 0 disables it: nothing to check.
}

/// The router listener the route is for must exist and be tcp (App Mesh: a route's type matches
/// its listener's protocol).
fn check_listener(
    doc: &Document,
    router: &VirtualRouterSpec,
    base: &str,
    port: Option<u32>,
    out: &mut Vec<Problem>,
) {
    let mp = format!("{base}.match.port");
    let ports: Vec<u32> = router
        .listeners
        .iter()
        .map(|l| l.port_mapping.port)
        .collect();
    let listener = match port {
        Some(p) => {
            check_port(doc, &mp, p, out);
            let found = router.listeners.iter().find(|l| l.port_mapping.port == p);
            if found.is_none() {
                out.push(doc.problem(
                    &mp,
                    format!(
                        "port {p} is not a listener of the virtual router (listeners: {ports:?})"
                    ),
                ));
            }
            found
        }
        None if router.listeners.len() > 1 => {
            out.push(doc.problem(&mp, "required: the virtual router has several listeners"));
            None
        }
        None => router.listeners.first(),
    };
    if let Some(l) = listener.filter(|l| l.port_mapping.protocol != Protocol::Tcp) {
        let at = if port.is_some() { mp } else { base.to_string() };
        out.push(doc.problem(
            &at,
            format!(
                "a tcpRoute needs a tcp router listener; port {} is {}",
                l.port_mapping.port,
                l.port_mapping.protocol.as_str()
            ),
        ));
    }
}
