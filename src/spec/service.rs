//! The VirtualService spec: its provider, a virtual node or a virtual router.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    pub provider: Option<VirtualServiceProvider>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceProvider {
    pub virtual_node: Option<VirtualNodeRef>,
    pub virtual_router: Option<VirtualRouterRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNodeRef {
    pub virtual_node_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualRouterRef {
    pub virtual_router_name: String,
}
