//! The Mesh spec: egress filter and mesh-wide service discovery preferences.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshSpec {
    pub egress_filter: Option<EgressFilter>,
    pub service_discovery: Option<MeshServiceDiscovery>,
    /// meshplane extension (docs/contract.md §2): the sidecar layout of the mesh's nodes.
    pub proxy: Option<MeshProxy>,
}

impl MeshSpec {
    /// Whether sidecars may reach destinations outside the mesh (`egressFilter: ALLOW_ALL`).
    pub fn allows_all_egress(&self) -> bool {
        self.egress_filter
            .as_ref()
            .is_some_and(|f| f.kind == EgressFilterType::AllowAll)
    }
}

/// `Mesh.spec.proxy`: the mesh-wide default of `VirtualNode.spec.proxy.mode`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshProxy {
    pub mode: Option<ProxyMode>,
}

/// How a sidecar's traffic reaches Envoy: `explicit` (meshplane's ports, no iptables) or
/// `transparent` (App Mesh's iptables redirection, ingress 15000 and egress 15001 by original
/// destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    #[default]
    Explicit,
    Transparent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum EgressFilterType {
    #[serde(rename = "ALLOW_ALL")]
    AllowAll,
    #[serde(rename = "DROP_ALL")]
    DropAll,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EgressFilter {
    #[serde(rename = "type")]
    pub kind: EgressFilterType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum IpPreference {
    #[serde(rename = "IPv6_PREFERRED")]
    Ipv6Preferred,
    #[serde(rename = "IPv4_PREFERRED")]
    Ipv4Preferred,
    #[serde(rename = "IPv4_ONLY")]
    Ipv4Only,
    #[serde(rename = "IPv6_ONLY")]
    Ipv6Only,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshServiceDiscovery {
    pub ip_preference: Option<IpPreference>,
}
