//! Virtual routers: at least one listener, each on a valid port used once.

use std::collections::HashMap;

use super::check_port;
use crate::diag::Problem;
use crate::source::Document;
use crate::spec::VirtualRouterSpec;

pub(super) fn check_router(doc: &Document, spec: &VirtualRouterSpec, out: &mut Vec<Problem>) {
    if spec.listeners.is_empty() {
        out.push(doc.problem(
            "spec.listeners",
            "a virtual router needs at least one listener",
        ));
    }
    let mut ports = HashMap::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        let path = format!("spec.listeners[{i}].portMapping.port");
        check_port(doc, &path, l.port_mapping.port, out);
        if let Some(first) = ports.insert(l.port_mapping.port, i) {
            out.push(doc.problem(
                &path,
                format!(
                    "port {} is already used by spec.listeners[{first}]",
                    l.port_mapping.port
                ),
            ));
        }
    }
}
