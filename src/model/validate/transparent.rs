//! Rules of the transparent layout (`proxy.mode: transparent`): iptables redirects the node's
//! listener ports to one ingress port and everything else the app sends to the egress port, so
//! neither may be one of the listener ports. (Backends' ports are not checked here: they are two
//! references away, beyond what the check cache re-checks on an edit.)

use crate::diag::Problem;
use crate::model::Mesh;
use crate::source::Document;
use crate::spec::VirtualNodeSpec;

pub(super) fn check_transparent(
    doc: &Document,
    _mesh: &Mesh,
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
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::source::loader::parse_file;
    use crate::source::LoadOutput;

    fn problems(mesh_proxy: &str, node_proxy: &str, ports: &[u32]) -> Vec<String> {
        let listeners: Vec<String> = ports
            .iter()
            .map(|p| format!("{{portMapping: {{port: {p}, protocol: http}}}}"))
            .collect();
        let text = format!(
            "kind: Mesh\nmeshName: demo\nspec: {{{mesh_proxy}}}\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners: [{}]\n  serviceDiscovery: {{dns: {{hostname: a}}}}\n  backends: [{{virtualService: {{virtualServiceName: s}}}}]\n  proxy: {{{node_proxy}}}\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: s\nspec: {{provider: {{virtualNode: {{virtualNodeName: a}}}}}}\n",
            listeners.join(", ")
        );
        let mut out = LoadOutput::default();
        parse_file(Path::new("m.yaml"), &text, &mut out);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        match crate::model::validate(&out.documents) {
            Ok(_) => Vec::new(),
            Err(ps) => ps.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn several_listeners_share_one_ingress_port_in_transparent_mode() {
        // Explicit: listener 1 would take 15001, the egress port.
        let explicit = problems("", "", &[8080, 9090]);
        assert!(
            explicit.iter().any(|p| p.contains("collides")),
            "{explicit:?}"
        );
        assert!(problems("", "mode: transparent", &[8080, 9090]).is_empty());
        assert!(problems("proxy: {mode: transparent}", "", &[8080, 9090]).is_empty());
        // The node's own mode wins over the mesh's.
        let back = problems(
            "proxy: {mode: transparent}",
            "mode: explicit",
            &[8080, 9090],
        );
        assert!(back.iter().any(|p| p.contains("collides")), "{back:?}");
    }

    #[test]
    fn listener_ports_stay_clear_of_the_proxy_ports() {
        let got = problems("", "mode: transparent", &[8080, 15001]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("spec.listeners[1].portMapping.port")
                && got[0].contains("Envoy egress port in transparent mode"),
            "{got:?}"
        );
        let got = problems("", "mode: transparent, ingressPort: 8080", &[8080]);
        assert!(got[0].contains("`spec.proxy.ingressPort`"), "{got:?}");
    }
}
