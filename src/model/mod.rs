//! The validated mesh model: every resource resolved, every reference checked.
//!
//! `validate` turns loaded documents into a `MeshModel` or the complete list of problems. The
//! translator only ever sees a model that passed, so it never has to handle dangling references.
//! `document` holds what each document must be on its own (names; `untranslated` warnings), which
//! the loader asks for as it parses; `presence` the rule that there is something to serve.

mod document;
mod ports;
mod presence;
mod tcp_egress;
mod untranslated;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::diag::Origin;
use crate::spec::{
    GatewayRouteSpec, MeshSpec, RouteSpec, VirtualGatewaySpec, VirtualNodeSpec, VirtualRouterSpec,
    VirtualServiceSpec,
};

pub use document::{check_alone, check_alone_strict};
pub use tcp_egress::TcpEgress;
pub use validate::{validate, validate_with, CheckCache};

/// The RE2 program size limit (`re2.max_program_size.error_level`) `meshplane bootstrap` gives
/// Envoy instead of Envoy's default of 100, which App Mesh's own regexes often exceed; validation
/// rejects a regex whose program may be larger. Below RE2's own limit (its default 8 MiB of memory
/// per regex, about 87,000 instructions), so RE2 compiles whatever passes.
pub const RE2_MAX_PROGRAM_SIZE: u32 = 50_000;

/// An upper bound on the program RE2 compiles `re` to, as validation judges it.
pub use validate::program_size_bound as re2_program_size_bound;

/// Default proxy ports of docs/contract.md §2.
pub const DEFAULT_INGRESS_PORT: u32 = 15000;
pub const DEFAULT_EGRESS_PORT: u32 = 15001;

/// A resource with the place it was defined.
#[derive(Debug, Clone)]
pub struct Item<T> {
    /// Shared with the parsed document it came from (building the model copies no specs).
    pub spec: Arc<T>,
    pub origin: Origin,
}

/// All meshes defined in the config directory.
#[derive(Debug, Clone, Default)]
pub struct MeshModel {
    pub meshes: BTreeMap<String, Mesh>,
}

#[derive(Debug, Clone)]
pub struct Mesh {
    pub name: String,
    pub spec: Arc<MeshSpec>,
    pub origin: Origin,
    pub virtual_services: BTreeMap<String, Item<VirtualServiceSpec>>,
    pub virtual_nodes: BTreeMap<String, Item<VirtualNodeSpec>>,
    pub virtual_routers: BTreeMap<String, Router>,
    pub virtual_gateways: BTreeMap<String, Item<VirtualGatewaySpec>>,
    /// Keyed by (gateway, route).
    pub gateway_routes: BTreeMap<(String, String), Item<GatewayRouteSpec>>,
}

#[derive(Debug, Clone)]
pub struct Router {
    pub spec: Arc<VirtualRouterSpec>,
    pub origin: Origin,
    pub routes: BTreeMap<String, Item<RouteSpec>>,
}

impl VirtualNodeSpec {
    /// The port this node's Envoy accepts inbound traffic on for listener `index` (docs/contract.md §2).
    pub fn ingress_port(&self, index: usize) -> u32 {
        self.proxy
            .as_ref()
            .and_then(|p| p.ingress_port)
            .unwrap_or(DEFAULT_INGRESS_PORT)
            + index as u32
    }

    /// The port this node's Envoy accepts outbound traffic from its app on.
    pub fn egress_port(&self) -> u32 {
        self.proxy
            .as_ref()
            .and_then(|p| p.egress_port)
            .unwrap_or(DEFAULT_EGRESS_PORT)
    }

    /// The index of the listener for `port`, or of the only listener when `port` is not given.
    pub fn listener_index(&self, port: Option<u32>) -> Option<usize> {
        match port {
            Some(p) => self.listeners.iter().position(|l| l.port_mapping.port == p),
            None if self.listeners.len() == 1 => Some(0),
            None => None,
        }
    }
}

impl crate::spec::VirtualGatewaySpec {
    /// The port of the gateway's egress listener, where its gateway routes send requests back into
    /// the mesh (`spec.proxy.egressPort`, docs/contract.md §2).
    pub fn egress_port(&self) -> u32 {
        self.proxy
            .and_then(|p| p.egress_port)
            .unwrap_or(DEFAULT_EGRESS_PORT)
    }
}

/// The kind of Envoy a node id names (docs/contract.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProxyKind {
    VirtualNode,
    VirtualGateway,
}

/// A parsed Envoy node id: `mesh/<mesh>/virtualNode/<name>`, the gateway form, or the full ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProxyId {
    pub mesh: String,
    pub kind: ProxyKind,
    pub name: String,
}

impl ProxyId {
    pub fn virtual_node(mesh: &str, name: &str) -> ProxyId {
        ProxyId {
            mesh: mesh.to_string(),
            kind: ProxyKind::VirtualNode,
            name: name.to_string(),
        }
    }

    pub fn parse(node_id: &str) -> Option<ProxyId> {
        // ARN form: arn:aws:appmesh:<region>:<account>:mesh/<mesh>/virtualNode/<name>
        let resource = if node_id.starts_with("arn:") {
            node_id.splitn(6, ':').nth(5)?
        } else {
            node_id
        };
        let mut parts = resource.split('/');
        let (Some("mesh"), Some(mesh), Some(kind), Some(name), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let kind = match kind {
            "virtualNode" => ProxyKind::VirtualNode,
            "virtualGateway" => ProxyKind::VirtualGateway,
            _ => return None,
        };
        if mesh.is_empty() || name.is_empty() {
            return None;
        }
        Some(ProxyId {
            mesh: mesh.to_string(),
            kind,
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for ProxyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ProxyKind::VirtualNode => "virtualNode",
            ProxyKind::VirtualGateway => "virtualGateway",
        };
        write!(f, "mesh/{}/{}/{}", self.mesh, kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_node_id_form() {
        let want = ProxyId {
            mesh: "demo".into(),
            kind: ProxyKind::VirtualNode,
            name: "web".into(),
        };
        assert_eq!(
            ProxyId::parse("mesh/demo/virtualNode/web"),
            Some(want.clone())
        );
        assert_eq!(
            ProxyId::parse("arn:aws:appmesh:eu-west-1:123456789012:mesh/demo/virtualNode/web"),
            Some(want.clone())
        );
        assert_eq!(want.to_string(), "mesh/demo/virtualNode/web");
        assert_eq!(
            ProxyId::parse("mesh/demo/virtualGateway/gw").map(|p| p.kind),
            Some(ProxyKind::VirtualGateway)
        );
        assert_eq!(ProxyId::parse("web"), None);
        assert_eq!(ProxyId::parse("mesh/demo/virtualRouter/r"), None);
        assert_eq!(ProxyId::parse("mesh//virtualNode/x"), None);
    }
}
