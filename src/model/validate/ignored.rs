//! Fields App Mesh accepted and then ignored, which meshplane accepts and ignores the same way,
//! with a warning so the author knows: `healthCheck.path` on a health check that is neither http
//! nor http2 (App Mesh: "only used if the specified protocol is HTTP or HTTP/2"), and a virtual
//! gateway listener's `healthCheck` (App Mesh validated it but gave its Envoy nothing for it: a
//! gateway is checked from outside, by its load balancer, on its listener port). Judged per
//! document at load (the loader caches the verdict with the parse); `--strict` keeps these
//! warnings, since the translation does what App Mesh did.

use crate::diag::Problem;
use crate::source::{Body, Document};
use crate::spec::{HealthCheck, Protocol};

/// The warnings of `doc` for fields App Mesh ignored.
pub(in crate::model) fn report_ignored(doc: &Document, warnings: &mut Vec<Problem>) {
    let checks: Vec<(usize, &HealthCheck)> = match &doc.body {
        Body::VirtualNode(e) => e.spec.as_ref().map_or_else(Vec::new, |s| {
            s.listeners
                .iter()
                .enumerate()
                .filter_map(|(i, l)| Some((i, l.health_check.as_ref()?)))
                .collect()
        }),
        Body::VirtualGateway(e) => e.spec.as_ref().map_or_else(Vec::new, |s| {
            s.listeners
                .iter()
                .enumerate()
                .filter_map(|(i, l)| Some((i, l.health_check.as_ref()?)))
                .collect()
        }),
        _ => Vec::new(),
    };
    if matches!(doc.body, Body::VirtualGateway(_)) {
        for (i, _) in &checks {
            warnings.push(doc.problem(
                &format!("spec.listeners[{i}].healthCheck"),
                "a virtual gateway listener's health check configures nothing in Envoy, as in App \
                 Mesh (check the gateway from its load balancer, on the listener port); ignored",
            ));
        }
    }
    for (i, hc) in checks {
        if hc.path.is_some() && !matches!(hc.protocol, Protocol::Http | Protocol::Http2) {
            warnings.push(doc.problem(
                &format!("spec.listeners[{i}].healthCheck.path"),
                format!(
                    "a {} health check has no path (App Mesh uses it for http and http2 only); ignored",
                    hc.protocol.as_str()
                ),
            ));
        }
    }
}
