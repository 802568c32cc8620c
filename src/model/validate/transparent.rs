//! Rules of the transparent layout (`proxy.mode: transparent`): iptables redirects the node's
//! listener ports to one ingress port and everything else the app sends to the egress port, and
//! the egress listener tells backends apart by the original destination port alone.

use std::collections::BTreeMap;

use crate::diag::Problem;
use crate::model::Mesh;
use crate::source::Document;
use crate::spec::VirtualNodeSpec;

pub(super) fn check_transparent(
    doc: &Document,
    mesh: &Mesh,
    spec: &VirtualNodeSpec,
    out: &mut Vec<Problem>,
) {
    let (ingress, egress) = (spec.ingress_port(0), spec.egress_port());
    for (i, l) in spec.listeners.iter().enumerate() {
        let port = l.port_mapping.port;
        let (which, field) = if port == ingress {
            ("ingress", "ingressPort")
        } else if port == egress {
            ("egress", "egressPort")
        } else {
            continue;
        };
        out.push(doc.problem(
            &format!("spec.listeners[{i}].portMapping.port"),
            format!(
                "port {port} is this node's Envoy {which} port in transparent mode (iptables \
                 redirects the listener ports to Envoy); set `spec.proxy.{field}` to another port"
            ),
        ));
    }
    check_backend_ports(doc, mesh, spec, out);
}

/// One protocol per destination port: the egress listener picks HTTP or TCP by the port the app
/// dialled, before it sees a Host header.
fn check_backend_ports(
    doc: &Document,
    mesh: &Mesh,
    spec: &VirtualNodeSpec,
    out: &mut Vec<Problem>,
) {
    // port → (is HTTP, first backend on it)
    let mut seen: BTreeMap<u32, (bool, &str)> = BTreeMap::new();
    for (i, b) in spec.backends.iter().enumerate() {
        let Some(vs) = &b.virtual_service else {
            continue;
        };
        let name = vs.virtual_service_name.as_str();
        for (port, proto) in mesh.service_ports(name) {
            let http = proto.is_http_family();
            let (first_http, first) = *seen.entry(port).or_insert((http, name));
            if first_http != http {
                let kind = |h: bool| if h { "HTTP" } else { "TCP" };
                out.push(doc.problem(
                    &format!("spec.backends[{i}]"),
                    format!(
                        "in transparent mode the destination port decides the protocol: port \
                         {port} is {} for `{first}` and {} for `{name}`",
                        kind(first_http),
                        kind(http)
                    ),
                ));
            }
        }
    }
}
