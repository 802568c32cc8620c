//! The gRPC route of a virtual router (`spec.grpcRoute`): its match (service, method, metadata,
//! port), weighted targets (shared with HTTP routes), gRPC retry policy and timeouts.

use serde::Deserialize;

use super::{Duration, HeaderMatch, HttpTimeout, RouteAction};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRoute {
    #[serde(rename = "match")]
    pub matcher: GrpcRouteMatch,
    pub action: RouteAction,
    pub retry_policy: Option<GrpcRetryPolicy>,
    pub timeout: Option<HttpTimeout>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteMatch {
    pub service_name: Option<String>,
    /// App Mesh requires `serviceName` with it.
    pub method_name: Option<String>,
    /// Same shape as an HTTP header match: `{name, match, invert}`.
    #[serde(default)]
    pub metadata: Vec<HeaderMatch>,
    pub port: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRetryPolicy {
    pub max_retries: u32,
    pub per_retry_timeout: Duration,
    #[serde(default)]
    pub grpc_retry_events: Vec<String>,
    #[serde(default)]
    pub http_retry_events: Vec<String>,
    #[serde(default)]
    pub tcp_retry_events: Vec<String>,
}
