//! Virtual services: a service's provider is exactly one defined virtual node or virtual router.

use super::not_defined;
use crate::diag::Problem;
use crate::model::Mesh;
use crate::source::Document;
use crate::spec::{Kind, VirtualServiceSpec};

pub(super) fn check_service(
    doc: &Document,
    mesh: &Mesh,
    spec: &VirtualServiceSpec,
    out: &mut Vec<Problem>,
) {
    let Some(p) = &spec.provider else { return };
    match (&p.virtual_node, &p.virtual_router) {
        (Some(vn), None) => {
            if !mesh.virtual_nodes.contains_key(&vn.virtual_node_name) {
                out.push(doc.problem(
                    "spec.provider.virtualNode.virtualNodeName",
                    not_defined(Kind::VirtualNode, &vn.virtual_node_name, &mesh.name),
                ));
            }
        }
        (None, Some(vr)) => {
            if !mesh.virtual_routers.contains_key(&vr.virtual_router_name) {
                out.push(doc.problem(
                    "spec.provider.virtualRouter.virtualRouterName",
                    not_defined(Kind::VirtualRouter, &vr.virtual_router_name, &mesh.name),
                ));
            }
        }
        _ => out.push(doc.problem(
            "spec.provider",
            "give exactly one of `virtualNode` or `virtualRouter`",
        )),
    }
}
