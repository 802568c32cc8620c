//! Serde mirror of the App Mesh API: every resource kind, with App Mesh's own camelCase field names.
//!
//! These types only describe shape and spelling. Ranges, references and cross-resource rules live in
//! `model`; sections meshplane does not translate yet are kept as raw YAML so files using them still load.

mod envelope;
mod gateway;
mod grpc_route;
mod mesh;
mod node;
mod refs;
mod route;
mod service;
mod tcp_route;
mod tls;

pub use envelope::*;
pub use gateway::*;
pub use grpc_route::*;
pub use mesh::*;
pub use node::*;
pub use refs::References;
pub use route::*;
pub use service::*;
pub use tcp_route::*;
pub use tls::*;

/// The seven App Mesh resource kinds, with their native `kind` and export-form top-level key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Mesh,
    VirtualService,
    VirtualNode,
    VirtualRouter,
    Route,
    VirtualGateway,
    GatewayRoute,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Mesh,
        Kind::VirtualService,
        Kind::VirtualNode,
        Kind::VirtualRouter,
        Kind::Route,
        Kind::VirtualGateway,
        Kind::GatewayRoute,
    ];

    /// The `kind:` value of the native form.
    pub fn native(self) -> &'static str {
        match self {
            Kind::Mesh => "Mesh",
            Kind::VirtualService => "VirtualService",
            Kind::VirtualNode => "VirtualNode",
            Kind::VirtualRouter => "VirtualRouter",
            Kind::Route => "Route",
            Kind::VirtualGateway => "VirtualGateway",
            Kind::GatewayRoute => "GatewayRoute",
        }
    }

    /// The top-level key of `aws appmesh describe-<kind>` output.
    pub fn export_key(self) -> &'static str {
        match self {
            Kind::Mesh => "mesh",
            Kind::VirtualService => "virtualService",
            Kind::VirtualNode => "virtualNode",
            Kind::VirtualRouter => "virtualRouter",
            Kind::Route => "route",
            Kind::VirtualGateway => "virtualGateway",
            Kind::GatewayRoute => "gatewayRoute",
        }
    }

    /// The name fields that identify a resource of this kind, outermost first.
    pub fn name_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Mesh => &["meshName"],
            Kind::VirtualService => &["meshName", "virtualServiceName"],
            Kind::VirtualNode => &["meshName", "virtualNodeName"],
            Kind::VirtualRouter => &["meshName", "virtualRouterName"],
            Kind::Route => &["meshName", "virtualRouterName", "routeName"],
            Kind::VirtualGateway => &["meshName", "virtualGatewayName"],
            Kind::GatewayRoute => &["meshName", "virtualGatewayName", "gatewayRouteName"],
        }
    }

    pub fn from_native(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.native() == s)
    }

    pub fn from_export_key(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.export_key() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.native())
    }
}
