//! What every resource shares: the envelope of name fields around a `spec` (both document forms),
//! and App Mesh's durations.

use serde::Deserialize;
use serde_yaml_ng::Value;

/// The envelope shared by both document forms: name fields, `spec`, and the ignored export-only parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<S> {
    pub mesh_name: Option<String>,
    pub virtual_service_name: Option<String>,
    pub virtual_node_name: Option<String>,
    pub virtual_router_name: Option<String>,
    pub route_name: Option<String>,
    pub virtual_gateway_name: Option<String>,
    pub gateway_route_name: Option<String>,
    pub spec: Option<std::sync::Arc<S>>,
    /// `aws appmesh describe-*` output carries these; App Mesh owns them, so they are ignored.
    pub metadata: Option<Value>,
    pub status: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DurationUnit {
    #[serde(rename = "s")]
    Seconds,
    #[serde(rename = "ms")]
    Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Duration {
    pub unit: DurationUnit,
    pub value: u64,
}

impl Duration {
    pub fn as_millis(&self) -> u64 {
        match self.unit {
            DurationUnit::Seconds => self.value.saturating_mul(1000),
            DurationUnit::Millis => self.value,
        }
    }
}
