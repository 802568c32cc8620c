//! The VirtualRouter and Route specs: router listeners, and HTTP and HTTP/2 routes with their
//! match, action and retry policy (gRPC routes in `grpc_route`, TCP routes in `tcp_route`).

use serde::Deserialize;

use super::{Duration, HttpTimeout, PortMapping};

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
    pub grpc_route: Option<super::GrpcRoute>,
    pub tcp_route: Option<super::TcpRoute>,
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
