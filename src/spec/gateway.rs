//! The VirtualGateway and GatewayRoute specs: gateway listeners (ports, health check, connection
//! pool, TLS), access logging and backend defaults; HTTP, HTTP/2 and gRPC gateway routes with their
//! match, target and rewrites. Field names are App Mesh's; the TLS shapes are in `tls`.

use serde::Deserialize;

use super::{
    BackendDefaults, HeaderMatch, HealthCheck, PathMatch, PortMapping, QueryParameterMatch,
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualGatewaySpec {
    #[serde(default)]
    pub listeners: Vec<GatewayListener>,
    pub backend_defaults: Option<BackendDefaults>,
    pub logging: Option<Logging>,
    /// meshplane extension (docs/contract.md §2): where the gateway's egress listener takes the
    /// traffic its gateway routes send back into the mesh.
    pub proxy: Option<GatewayProxy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayListener {
    /// `tcp` is not a gateway protocol; the validator says so.
    pub port_mapping: PortMapping,
    /// Not translated yet (App Mesh documents no Envoy mapping): reported at load time.
    pub health_check: Option<HealthCheck>,
    pub connection_pool: Option<GatewayConnectionPool>,
    pub tls: Option<super::ListenerTls>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConnectionPool {
    pub http: Option<super::HttpPool>,
    pub http2: Option<super::RequestPool>,
    pub grpc: Option<super::RequestPool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayProxy {
    pub egress_port: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Logging {
    pub access_log: Option<AccessLog>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AccessLog {
    pub file: Option<FileAccessLog>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileAccessLog {
    pub path: String,
    pub format: Option<LoggingFormat>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LoggingFormat {
    pub json: Option<Vec<JsonFormatRef>>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JsonFormatRef {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRouteSpec {
    pub priority: Option<u32>,
    pub http_route: Option<HttpGatewayRoute>,
    pub http2_route: Option<HttpGatewayRoute>,
    pub grpc_route: Option<GrpcGatewayRoute>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpGatewayRoute {
    #[serde(rename = "match")]
    pub matcher: HttpGatewayRouteMatch,
    pub action: HttpGatewayRouteAction,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpGatewayRouteMatch {
    pub prefix: Option<String>,
    pub path: Option<PathMatch>,
    pub hostname: Option<HostnameMatch>,
    pub method: Option<String>,
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    #[serde(default)]
    pub query_parameters: Vec<QueryParameterMatch>,
    pub port: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostnameMatch {
    pub exact: Option<String>,
    pub suffix: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpGatewayRouteAction {
    pub target: GatewayRouteTarget,
    pub rewrite: Option<HttpGatewayRouteRewrite>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRouteTarget {
    pub virtual_service: GatewayRouteVirtualService,
    pub port: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRouteVirtualService {
    pub virtual_service_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpGatewayRouteRewrite {
    pub prefix: Option<PrefixRewrite>,
    pub path: Option<PathRewrite>,
    pub hostname: Option<HostnameRewrite>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Toggle {
    #[serde(rename = "ENABLED")]
    Enabled,
    #[serde(rename = "DISABLED")]
    Disabled,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixRewrite {
    pub default_prefix: Option<Toggle>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PathRewrite {
    pub exact: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostnameRewrite {
    pub default_target_hostname: Option<Toggle>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GrpcGatewayRoute {
    #[serde(rename = "match")]
    pub matcher: GrpcGatewayRouteMatch,
    pub action: GrpcGatewayRouteAction,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcGatewayRouteMatch {
    pub service_name: Option<String>,
    pub hostname: Option<HostnameMatch>,
    /// Same shape as an HTTP header match: `{name, match, invert}`.
    #[serde(default)]
    pub metadata: Vec<HeaderMatch>,
    pub port: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GrpcGatewayRouteAction {
    pub target: GatewayRouteTarget,
    pub rewrite: Option<GrpcGatewayRouteRewrite>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GrpcGatewayRouteRewrite {
    pub hostname: Option<HostnameRewrite>,
}

impl GatewayRouteSpec {
    /// The route's target, whichever route type it is.
    pub fn target(&self) -> Option<&GatewayRouteTarget> {
        self.http_route
            .as_ref()
            .or(self.http2_route.as_ref())
            .map(|r| &r.action.target)
            .or(self.grpc_route.as_ref().map(|r| &r.action.target))
    }
}
