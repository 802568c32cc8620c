//! The ports a virtual service is provided on, as its clients dial them: what a transparent
//! sidecar's egress listener matches the original destination port against.

use super::Mesh;
use crate::spec::Protocol;

impl Mesh {
    /// The (port, protocol) pairs clients of virtual service `vs` dial, in listener order: its
    /// provider node's listeners, or its provider router's. Empty without a provider.
    pub fn service_ports(&self, vs: &str) -> Vec<(u32, Protocol)> {
        let Some(provider) = self
            .virtual_services
            .get(vs)
            .and_then(|s| s.spec.provider.as_ref())
        else {
            return Vec::new();
        };
        if let Some(vn) = &provider.virtual_node {
            return self
                .virtual_nodes
                .get(&vn.virtual_node_name)
                .map(|n| {
                    let ls = &n.spec.listeners;
                    ls.iter()
                        .map(|l| (l.port_mapping.port, l.port_mapping.protocol))
                        .collect()
                })
                .unwrap_or_default();
        }
        if let Some(vr) = &provider.virtual_router {
            return self
                .virtual_routers
                .get(&vr.virtual_router_name)
                .map(|r| {
                    let ls = &r.spec.listeners;
                    ls.iter()
                        .map(|l| (l.port_mapping.port, l.port_mapping.protocol))
                        .collect()
                })
                .unwrap_or_default();
        }
        Vec::new()
    }
}
