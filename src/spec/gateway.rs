//! VirtualGateway and GatewayRoute: loaded, not translated yet.

use serde_yaml_ng::Value;

/// VirtualGateway spec: kept raw until gateways are translated; the whole spec is reported at load time.
pub type VirtualGatewaySpec = Value;
/// GatewayRoute spec: kept raw until gateways are translated; the whole spec is reported at load time.
pub type GatewayRouteSpec = Value;
