//! Where a node's app reaches its TCP backends (docs/contract.md §2, `proxy.tcpEgress`): one
//! local port per tcp listener of each backend virtual service, `127.0.0.1:<that listener's port>`
//! unless the node's `proxy.tcpEgress` names another. Validation (collisions) and translation (the
//! egress listeners) both read it from here, so they cannot disagree.

use super::Mesh;
use crate::spec::{Protocol, VirtualNodeSpec};

/// One TCP backend port of a node, and where its app reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpEgress<'a> {
    /// The backend virtual service.
    pub service: &'a str,
    /// Its index in `spec.backends`.
    pub backend: usize,
    /// The service's tcp listener port (a router listener, or the provider node's listener).
    pub service_port: u32,
    /// The port the app connects to on 127.0.0.1.
    pub local_port: u32,
    /// Whether `local_port` comes from `proxy.tcpEgress`.
    pub overridden: bool,
}

impl Mesh {
    /// The ports of `vs`'s tcp listeners: those of its provider router, or of its provider node.
    /// Sorted and unique; empty for a service that is not TCP (or has no provider).
    pub fn tcp_service_ports(&self, vs: &str) -> Vec<u32> {
        let mut ports: Vec<u32> = self
            .service_ports(vs)
            .into_iter()
            .filter(|(_, proto)| *proto == Protocol::Tcp)
            .map(|(port, _)| port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

impl VirtualNodeSpec {
    /// Every TCP port of this node's backends, in backend order, with where the app reaches it.
    /// A `proxy.tcpEgress` entry places a service with one tcp port (the validator rejects one for
    /// a service with several).
    pub fn tcp_egress<'a>(&'a self, mesh: &Mesh) -> Vec<TcpEgress<'a>> {
        let mut out = Vec::new();
        for (backend, b) in self.backends.iter().enumerate() {
            let Some(vs) = &b.virtual_service else {
                continue;
            };
            let service = vs.virtual_service_name.as_str();
            let ports = mesh.tcp_service_ports(service);
            let chosen = self
                .proxy
                .as_ref()
                .and_then(|p| p.tcp_egress.get(service))
                .filter(|_| ports.len() == 1);
            for &service_port in &ports {
                out.push(TcpEgress {
                    service,
                    backend,
                    service_port,
                    local_port: chosen.copied().unwrap_or(service_port),
                    overridden: chosen.is_some(),
                });
            }
        }
        out
    }
}
