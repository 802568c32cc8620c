//! The first pass: every resource put in its place in the model, so references can be checked in
//! any order. Owns the rules of placement: duplicates, documents of an undefined mesh, routes of an
//! undefined router and gateway routes of an undefined gateway.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{n, origin, Validator};
use crate::diag::{Origin, Problem};
use crate::model::{Item, Mesh, Router};
use crate::source::{Body, Document};
use crate::spec::{Envelope, GatewayRouteSpec, Kind, MeshSpec, RouteSpec, VirtualRouterSpec};

/// Where a resource went: nowhere new because it duplicates one defined at the `Origin`
/// (`Some`), into the model (`None`), or nowhere because its parent is missing (`Err`).
type Placed = Result<Option<(String, Origin)>, Problem>;

impl Validator {
    fn duplicate(&mut self, doc: &Document, what: String, first: &Origin) {
        self.push(doc.problem(
            "",
            format!(
                "duplicate {what}; first defined at {}:{}",
                first.file.display(),
                first.line
            ),
        ));
    }

    /// First pass: put every resource in its place, so references can be checked in any order.
    pub(super) fn index(&mut self, docs: &[Arc<Document>]) {
        // Meshes first: everything else hangs off them.
        for doc in docs {
            if let Body::Mesh(e) = &doc.body {
                self.index_mesh(doc, e);
            }
        }
        for pass in 0..2 {
            for doc in docs {
                if matches!(doc.body, Body::Mesh(_)) {
                    continue;
                }
                // Routes and gateway routes go in the second pass, after their parents.
                let child = matches!(doc.body, Body::Route(_) | Body::GatewayRoute(_));
                if child != (pass == 1) {
                    continue;
                }
                self.index_resource(doc, pass, child);
            }
        }
    }

    fn index_mesh(&mut self, doc: &Document, e: &Envelope<MeshSpec>) {
        let name = n(e.mesh_name.as_deref());
        if let Some(m) = self.model.meshes.get(&name) {
            let first = m.origin.clone();
            self.duplicate(doc, format!("Mesh `{name}`"), &first);
            return;
        }
        self.model.meshes.insert(
            name.clone(),
            Mesh {
                name,
                spec: e.spec.clone().unwrap_or_default(),
                origin: origin(doc),
                virtual_services: BTreeMap::new(),
                virtual_nodes: BTreeMap::new(),
                virtual_routers: BTreeMap::new(),
                virtual_gateways: BTreeMap::new(),
                gateway_routes: BTreeMap::new(),
            },
        );
    }

    /// Places one non-mesh resource in its mesh. A document of an undefined mesh is reported once:
    /// in the first pass, or in the second for routes and gateway routes.
    fn index_resource(&mut self, doc: &Document, pass: usize, child: bool) {
        let mesh_name = doc.names().mesh.unwrap_or_default();
        let Some(mesh) = self.model.meshes.get_mut(mesh_name) else {
            if pass == 0 || child {
                self.push(doc.problem(
                    "meshName",
                    format!(
                        "mesh `{mesh_name}` is not defined (every mesh needs its Mesh document)"
                    ),
                ));
            }
            return;
        };
        let o = origin(doc);
        let placed: Placed = match &doc.body {
            Body::VirtualService(e) => Ok(insert(
                &mut mesh.virtual_services,
                n(e.virtual_service_name.as_deref()),
                e.spec.clone().unwrap_or_default(),
                o,
                "VirtualService",
            )),
            Body::VirtualNode(e) => Ok(insert(
                &mut mesh.virtual_nodes,
                n(e.virtual_node_name.as_deref()),
                e.spec.clone().unwrap_or_default(),
                o,
                "VirtualNode",
            )),
            Body::VirtualGateway(e) => Ok(insert(
                &mut mesh.virtual_gateways,
                n(e.virtual_gateway_name.as_deref()),
                e.spec.clone().unwrap_or_default(),
                o,
                "VirtualGateway",
            )),
            Body::VirtualRouter(e) => Ok(insert_router(mesh, e, o)),
            Body::Route(e) => insert_route(mesh, doc, mesh_name, e, o),
            Body::GatewayRoute(e) => insert_gateway_route(mesh, doc, mesh_name, e, o),
            Body::Mesh(_) => Ok(None),
        };
        match placed {
            Ok(Some((what, first))) => self.duplicate(doc, what, &first),
            Ok(None) => {}
            Err(p) => self.push(p),
        }
    }
}

fn insert<T>(
    map: &mut BTreeMap<String, Item<T>>,
    name: String,
    spec: Arc<T>,
    origin: Origin,
    what: &str,
) -> Option<(String, Origin)> {
    if let Some(first) = map.get(&name) {
        return Some((format!("{what} `{name}`"), first.origin.clone()));
    }
    map.insert(name, Item { spec, origin });
    None
}

fn insert_router(
    mesh: &mut Mesh,
    e: &Envelope<VirtualRouterSpec>,
    o: Origin,
) -> Option<(String, Origin)> {
    let name = n(e.virtual_router_name.as_deref());
    if let Some(r) = mesh.virtual_routers.get(&name) {
        return Some((format!("VirtualRouter `{name}`"), r.origin.clone()));
    }
    mesh.virtual_routers.insert(
        name,
        Router {
            spec: e.spec.clone().unwrap_or_default(),
            origin: o,
            routes: BTreeMap::new(),
        },
    );
    None
}

fn insert_route(
    mesh: &mut Mesh,
    doc: &Document,
    mesh_name: &str,
    e: &Envelope<RouteSpec>,
    o: Origin,
) -> Placed {
    let router = n(e.virtual_router_name.as_deref());
    match mesh.virtual_routers.get_mut(&router) {
        None => Err(doc.problem(
            "virtualRouterName",
            super::not_defined(Kind::VirtualRouter, &router, mesh_name),
        )),
        Some(r) => Ok(insert(
            &mut r.routes,
            n(e.route_name.as_deref()),
            e.spec.clone().unwrap_or_default(),
            o,
            &format!("Route in VirtualRouter `{router}`:"),
        )),
    }
}

fn insert_gateway_route(
    mesh: &mut Mesh,
    doc: &Document,
    mesh_name: &str,
    e: &Envelope<GatewayRouteSpec>,
    o: Origin,
) -> Placed {
    let gw = n(e.virtual_gateway_name.as_deref());
    if !mesh.virtual_gateways.contains_key(&gw) {
        return Err(doc.problem(
            "virtualGatewayName",
            super::not_defined(Kind::VirtualGateway, &gw, mesh_name),
        ));
    }
    let key = (gw, n(e.gateway_route_name.as_deref()));
    if let Some(first) = mesh.gateway_routes.get(&key) {
        return Ok(Some((
            format!("GatewayRoute `{}`", key.1),
            first.origin.clone(),
        )));
    }
    mesh.gateway_routes.insert(
        key,
        Item {
            spec: e.spec.clone().unwrap_or_default(),
            origin: o,
        },
    );
    Ok(None)
}
