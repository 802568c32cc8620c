//! One App Mesh resource as parsed: its typed body, where it came from (file, line index, the
//! export-form prefix of its field paths), its name fields and its identity for change tracking.
//! `settle` settles a Kubernetes manifest's document once every file is read.

mod settle;

use std::path::Path;
use std::sync::Arc;

use super::lines::DocLines;
use crate::diag::Problem;
use crate::spec::{
    Envelope, GatewayRouteSpec, Kind, MeshSpec, RouteSpec, VirtualGatewaySpec, VirtualNodeSpec,
    VirtualRouterSpec, VirtualServiceSpec,
};

/// A typed resource body, one variant per kind.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per document; boxing buys nothing
pub enum Body {
    Mesh(Envelope<MeshSpec>),
    VirtualService(Envelope<VirtualServiceSpec>),
    VirtualNode(Envelope<VirtualNodeSpec>),
    VirtualRouter(Envelope<VirtualRouterSpec>),
    Route(Envelope<RouteSpec>),
    VirtualGateway(Envelope<VirtualGatewaySpec>),
    GatewayRoute(Envelope<GatewayRouteSpec>),
}

/// One App Mesh resource as read from disk.
#[derive(Debug, Clone)]
pub struct Document {
    /// Path relative to the config directory; shared by the file's documents and the model.
    pub file: Arc<Path>,
    pub kind: Kind,
    pub body: Body,
    /// `""` for the native form, `"virtualNode."` (etc.) for the export form: field paths in messages
    /// are written as the user sees them in the file.
    pub prefix: String,
    /// The Kubernetes form's field paths: App Mesh path → the manifest's path for it (the longest
    /// match wins; `prefix` for the rest). Empty for the other forms.
    pub(super) paths: Vec<(String, String)>,
    /// A Kubernetes manifest without `spec.meshRef`: its mesh is settled by the loader once every
    /// file is read (the config's only mesh); until then it has no `meshName`.
    pub(super) mesh_implicit: bool,
    /// A Kubernetes manifest's (kind, default name, `awsName`) when `awsName` renames it.
    pub(super) renamed: Option<(Kind, String, String)>,
    /// The (kind, default name) of what a Kubernetes manifest names by `meshRef` or `<kind>Ref`:
    /// such a reference means the `awsName` of its target, settled once every file is read.
    pub(super) by_ref: Vec<(Kind, String)>,
    pub lines: DocLines,
    /// [`Document::entity_key`] and [`Document::references`], computed once when the file is parsed:
    /// every reload asks for them, and unchanged files are not parsed again.
    pub(super) entity: u64,
    pub(super) references: Vec<u64>,
    pub(super) content: u64,
}

impl Document {
    /// A problem about `field` (relative to the resource, e.g. `spec.listeners[0]`).
    pub fn problem(&self, field: &str, message: impl Into<String>) -> Problem {
        let path = self.path_of(field);
        Problem {
            file: self.file.to_path_buf(),
            line: self.lines.line_of(&path),
            path,
            message: message.into(),
        }
    }

    /// The path of `field` (relative to the App Mesh resource) as the user wrote it in the file.
    pub fn path_of(&self, field: &str) -> String {
        let rule = self
            .paths
            .iter()
            .filter(|(from, _)| {
                field.strip_prefix(from.as_str()).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
                })
            })
            .max_by_key(|(from, _)| from.len());
        match rule {
            Some((from, to)) => format!("{to}{}", &field[from.len()..]),
            None => format!("{}{}", self.prefix, field),
        }
    }

    /// Whether this document came from a Kubernetes manifest.
    pub fn is_k8s(&self) -> bool {
        !self.paths.is_empty()
    }

    /// Line where the document's resource starts.
    pub fn line(&self) -> usize {
        self.lines.start()
    }

    /// The model entity this document defines or belongs to (routes belong to their router), in the
    /// form of [`crate::change::entity_key`].
    pub fn entity_key(&self) -> u64 {
        self.entity
    }

    /// The other entities this document names: a service's provider, a node's backend services, a
    /// route's target nodes (as [`crate::change::entity_key`]s).
    pub fn references(&self) -> &[u64] {
        &self.references
    }

    /// A hash of the document's content: a file edited elsewhere is parsed again, and its other
    /// documents come out with new identities but the same content hashes.
    pub fn content_hash(&self) -> u64 {
        self.content
    }

    pub(super) fn compute_entity_key(&self) -> u64 {
        let n = self.names();
        let mesh = n.mesh.unwrap_or_default();
        let (kind, name) = match self.kind {
            Kind::Mesh => (Kind::Mesh, mesh),
            Kind::VirtualService => (Kind::VirtualService, n.virtual_service.unwrap_or_default()),
            Kind::VirtualNode => (Kind::VirtualNode, n.virtual_node.unwrap_or_default()),
            Kind::VirtualRouter | Kind::Route => {
                (Kind::VirtualRouter, n.virtual_router.unwrap_or_default())
            }
            Kind::VirtualGateway | Kind::GatewayRoute => {
                (Kind::VirtualGateway, n.virtual_gateway.unwrap_or_default())
            }
        };
        crate::change::entity_key(kind, mesh, name)
    }

    /// The name fields of the envelope, whatever the kind.
    pub fn names(&self) -> Names<'_> {
        macro_rules! n {
            ($e:expr) => {
                Names {
                    mesh: $e.mesh_name.as_deref(),
                    virtual_service: $e.virtual_service_name.as_deref(),
                    virtual_node: $e.virtual_node_name.as_deref(),
                    virtual_router: $e.virtual_router_name.as_deref(),
                    route: $e.route_name.as_deref(),
                    virtual_gateway: $e.virtual_gateway_name.as_deref(),
                    gateway_route: $e.gateway_route_name.as_deref(),
                }
            };
        }
        match &self.body {
            Body::Mesh(e) => n!(e),
            Body::VirtualService(e) => n!(e),
            Body::VirtualNode(e) => n!(e),
            Body::VirtualRouter(e) => n!(e),
            Body::Route(e) => n!(e),
            Body::VirtualGateway(e) => n!(e),
            Body::GatewayRoute(e) => n!(e),
        }
    }
}

/// The name fields of one document.
#[derive(Debug, Clone, Copy, Default)]
pub struct Names<'a> {
    pub mesh: Option<&'a str>,
    pub virtual_service: Option<&'a str>,
    pub virtual_node: Option<&'a str>,
    pub virtual_router: Option<&'a str>,
    pub route: Option<&'a str>,
    pub virtual_gateway: Option<&'a str>,
    pub gateway_route: Option<&'a str>,
}

impl Names<'_> {
    /// The value of the camelCase name field `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        match field {
            "meshName" => self.mesh,
            "virtualServiceName" => self.virtual_service,
            "virtualNodeName" => self.virtual_node,
            "virtualRouterName" => self.virtual_router,
            "routeName" => self.route,
            "virtualGatewayName" => self.virtual_gateway,
            "gatewayRouteName" => self.gateway_route,
            _ => None,
        }
    }
}
