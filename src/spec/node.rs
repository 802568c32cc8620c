//! The VirtualNode spec: listeners (ports, health checks, outlier detection, connection pools,
//! timeouts), service discovery, backends and proxy ports.

use serde::Deserialize;

use super::{Duration, IpPreference, Logging, MeshSpec, ProxyMode};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNodeSpec {
    #[serde(default)]
    pub listeners: Vec<NodeListener>,
    pub service_discovery: Option<ServiceDiscovery>,
    #[serde(default)]
    pub backends: Vec<Backend>,
    pub backend_defaults: Option<BackendDefaults>,
    /// Access logs on every ingress and egress listener (the same shape as a gateway's).
    pub logging: Option<Logging>,
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
    pub tls: Option<super::ListenerTls>,
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
    /// Resolved by DNS as the name Cloud Map publishes (`attributes` are reported at load time).
    pub aws_cloud_map: Option<CloudMapDiscovery>,
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

/// `awsCloudMap`: the instances of a Cloud Map service, which clients reach as the DNS name Cloud
/// Map publishes for it, `<serviceName>.<namespaceName>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudMapDiscovery {
    pub namespace_name: String,
    pub service_name: String,
    /// Instance attributes (AND-ed) that select among the instances: DNS cannot filter by them.
    #[serde(default)]
    pub attributes: Vec<CloudMapAttribute>,
    pub ip_preference: Option<IpPreference>,
}

impl CloudMapDiscovery {
    /// The DNS name Cloud Map publishes for the service.
    pub fn hostname(&self) -> String {
        format!("{}.{}", self.service_name, self.namespace_name)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CloudMapAttribute {
    pub key: String,
    pub value: String,
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
    /// Overrides `backendDefaults.clientPolicy` for this backend.
    pub client_policy: Option<super::ClientPolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendDefaults {
    pub client_policy: Option<super::ClientPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyPorts {
    pub ingress_port: Option<u32>,
    pub egress_port: Option<u32>,
    /// Where the app reaches each TCP backend (virtual service name → local port), instead of
    /// `127.0.0.1:<the service's listener port>` (docs/contract.md §2).
    #[serde(default)]
    pub tcp_egress: std::collections::BTreeMap<String, u32>,
    /// Default: the mesh's `spec.proxy.mode`, else `explicit`.
    pub mode: Option<ProxyMode>,
}

impl VirtualNodeSpec {
    /// The names of the virtual services this node calls, sorted and unique.
    pub fn backend_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .backends
            .iter()
            .filter_map(|b| b.virtual_service.as_ref())
            .map(|v| v.virtual_service_name.clone())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// This node's sidecar layout: its own `proxy.mode`, else the mesh's, else `explicit`.
    pub fn proxy_mode(&self, mesh: &MeshSpec) -> ProxyMode {
        self.proxy
            .as_ref()
            .and_then(|p| p.mode)
            .or(mesh.proxy.and_then(|p| p.mode))
            .unwrap_or_default()
    }
}
