//! The App Mesh resource specs. Field names follow the App Mesh API exactly.

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

// ---------------------------------------------------------------- Mesh

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshSpec {
    pub egress_filter: Option<EgressFilter>,
    pub service_discovery: Option<MeshServiceDiscovery>,
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

// ---------------------------------------------------------------- VirtualService

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

// ---------------------------------------------------------------- VirtualNode

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNodeSpec {
    #[serde(default)]
    pub listeners: Vec<NodeListener>,
    pub service_discovery: Option<ServiceDiscovery>,
    #[serde(default)]
    pub backends: Vec<Backend>,
    pub backend_defaults: Option<BackendDefaults>,
    /// Not translated yet (access logs): reported at load time.
    pub logging: Option<Value>,
    /// meshplane extension (docs/contract.md §2).
    pub proxy: Option<ProxyPorts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    Tcp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
            Protocol::Tcp => "tcp",
        }
    }

    /// True for the protocols carried by Envoy's HTTP connection manager.
    pub fn is_http_family(self) -> bool {
        !matches!(self, Protocol::Tcp)
    }

    /// True when the upstream connection must speak HTTP/2.
    pub fn is_h2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct PortMapping {
    pub port: u32,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeListener {
    pub port_mapping: PortMapping,
    pub health_check: Option<HealthCheck>,
    pub outlier_detection: Option<OutlierDetection>,
    pub connection_pool: Option<ConnectionPool>,
    pub timeout: Option<ListenerTimeout>,
    /// Not translated yet (TLS): reported at load time.
    pub tls: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    pub interval_millis: u64,
    pub timeout_millis: u64,
    pub protocol: Protocol,
    pub port: Option<u32>,
    pub path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    pub max_server_errors: u64,
    pub interval: Duration,
    pub base_ejection_duration: Duration,
    pub max_ejection_percent: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPool {
    pub tcp: Option<TcpPool>,
    pub http: Option<HttpPool>,
    pub http2: Option<RequestPool>,
    pub grpc: Option<RequestPool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpPool {
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpPool {
    pub max_connections: u32,
    pub max_pending_requests: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestPool {
    pub max_requests: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTimeout {
    pub http: Option<HttpTimeout>,
    pub http2: Option<HttpTimeout>,
    pub grpc: Option<HttpTimeout>,
    pub tcp: Option<TcpTimeout>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpTimeout {
    pub per_request: Option<Duration>,
    pub idle: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpTimeout {
    pub idle: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDiscovery {
    pub dns: Option<DnsDiscovery>,
    /// Not translated yet (Cloud Map): reported at load time.
    pub aws_cloud_map: Option<Value>,
    /// meshplane extension (docs/contract.md §2).
    #[serde(rename = "static")]
    pub static_: Option<StaticDiscovery>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DnsResponseType {
    #[serde(rename = "LOADBALANCER")]
    LoadBalancer,
    #[serde(rename = "ENDPOINTS")]
    Endpoints,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsDiscovery {
    pub hostname: String,
    pub response_type: Option<DnsResponseType>,
    pub ip_preference: Option<IpPreference>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StaticDiscovery {
    pub endpoints: Vec<StaticEndpoint>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StaticEndpoint {
    pub address: String,
    pub port: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    pub virtual_service: Option<VirtualServiceBackend>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceBackend {
    pub virtual_service_name: String,
    /// Not translated yet (client TLS): reported at load time.
    pub client_policy: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendDefaults {
    /// Not translated yet (client TLS): reported at load time.
    pub client_policy: Option<Value>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyPorts {
    pub ingress_port: Option<u32>,
    pub egress_port: Option<u32>,
}

// ---------------------------------------------------------------- VirtualRouter and Route

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualRouterSpec {
    #[serde(default)]
    pub listeners: Vec<RouterListener>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterListener {
    pub port_mapping: PortMapping,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    pub priority: Option<u32>,
    pub http_route: Option<HttpRoute>,
    pub http2_route: Option<HttpRoute>,
    /// Not translated yet (gRPC routes): reported at load time.
    pub grpc_route: Option<Value>,
    /// Not translated yet (TCP routes): reported at load time.
    pub tcp_route: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    #[serde(rename = "match")]
    pub matcher: HttpRouteMatch,
    pub action: RouteAction,
    pub retry_policy: Option<HttpRetryPolicy>,
    pub timeout: Option<HttpTimeout>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    pub prefix: Option<String>,
    pub path: Option<PathMatch>,
    pub method: Option<String>,
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    #[serde(default)]
    pub query_parameters: Vec<QueryParameterMatch>,
    pub scheme: Option<String>,
    pub port: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PathMatch {
    pub exact: Option<String>,
    pub regex: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HeaderMatch {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: Option<HeaderMatchMethod>,
    pub invert: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HeaderMatchMethod {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub regex: Option<String>,
    pub range: Option<MatchRange>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct MatchRange {
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueryParameterMatch {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: Option<QueryMatchMethod>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueryMatchMethod {
    pub exact: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteAction {
    pub weighted_targets: Vec<WeightedTarget>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedTarget {
    pub virtual_node: String,
    pub weight: u32,
    pub port: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetryPolicy {
    pub max_retries: u32,
    pub per_retry_timeout: Duration,
    #[serde(default)]
    pub http_retry_events: Vec<String>,
    #[serde(default)]
    pub tcp_retry_events: Vec<String>,
}

// ---------------------------------------------------------------- Gateways (loaded, not translated yet)

/// VirtualGateway spec: kept raw until gateways are translated; the whole spec is reported at load time.
pub type VirtualGatewaySpec = Value;
/// GatewayRoute spec: kept raw until gateways are translated; the whole spec is reported at load time.
pub type GatewayRouteSpec = Value;
