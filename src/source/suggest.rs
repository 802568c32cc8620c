//! "Did you mean": the known field name closest to a misspelt one. The names come from the spec
//! types themselves (the field lists serde's derive hands to `deserialize_struct`), so a field added
//! to a spec type is known here without being listed twice.

use std::sync::OnceLock;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::spec;

/// Collects the field names a type asks for, then stops the deserialization.
struct Fields(Vec<&'static str>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names collected")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Stop {
        Stop
    }
}

impl<'de> Deserializer<'de> for &mut Fields {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0.extend_from_slice(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

fn fields_of<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
    let mut f = Fields(Vec::new());
    let _ = T::deserialize(&mut f);
    f.0
}

/// Every field name of every spec type, sorted and unique.
fn vocabulary() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words: Vec<&'static str> = [
            fields_of::<spec::MeshSpec>(),
            fields_of::<spec::EgressFilter>(),
            fields_of::<spec::MeshServiceDiscovery>(),
            fields_of::<spec::VirtualServiceSpec>(),
            fields_of::<spec::VirtualServiceProvider>(),
            fields_of::<spec::VirtualNodeRef>(),
            fields_of::<spec::VirtualRouterRef>(),
            fields_of::<spec::VirtualNodeSpec>(),
            fields_of::<spec::PortMapping>(),
            fields_of::<spec::NodeListener>(),
            fields_of::<spec::HealthCheck>(),
            fields_of::<spec::OutlierDetection>(),
            fields_of::<spec::ConnectionPool>(),
            fields_of::<spec::TcpPool>(),
            fields_of::<spec::HttpPool>(),
            fields_of::<spec::RequestPool>(),
            fields_of::<spec::ListenerTimeout>(),
            fields_of::<spec::HttpTimeout>(),
            fields_of::<spec::TcpTimeout>(),
            fields_of::<spec::ServiceDiscovery>(),
            fields_of::<spec::DnsDiscovery>(),
            fields_of::<spec::StaticDiscovery>(),
            fields_of::<spec::StaticEndpoint>(),
            fields_of::<spec::Backend>(),
            fields_of::<spec::VirtualServiceBackend>(),
            fields_of::<spec::BackendDefaults>(),
            fields_of::<spec::ProxyPorts>(),
            fields_of::<spec::VirtualRouterSpec>(),
            fields_of::<spec::RouterListener>(),
            fields_of::<spec::RouteSpec>(),
            fields_of::<spec::HttpRoute>(),
            fields_of::<spec::HttpRouteMatch>(),
            fields_of::<spec::PathMatch>(),
            fields_of::<spec::HeaderMatch>(),
            fields_of::<spec::HeaderMatchMethod>(),
            fields_of::<spec::MatchRange>(),
            fields_of::<spec::QueryParameterMatch>(),
            fields_of::<spec::QueryMatchMethod>(),
            fields_of::<spec::RouteAction>(),
            fields_of::<spec::WeightedTarget>(),
            fields_of::<spec::HttpRetryPolicy>(),
            fields_of::<spec::GrpcRoute>(),
            fields_of::<spec::GrpcRouteMatch>(),
            fields_of::<spec::GrpcRetryPolicy>(),
            fields_of::<spec::VirtualGatewaySpec>(),
            fields_of::<spec::GatewayListener>(),
            fields_of::<spec::GatewayConnectionPool>(),
            fields_of::<spec::GatewayProxy>(),
            fields_of::<spec::Logging>(),
            fields_of::<spec::AccessLog>(),
            fields_of::<spec::FileAccessLog>(),
            fields_of::<spec::LoggingFormat>(),
            fields_of::<spec::JsonFormatRef>(),
            fields_of::<spec::GatewayRouteSpec>(),
            fields_of::<spec::HttpGatewayRoute>(),
            fields_of::<spec::HttpGatewayRouteMatch>(),
            fields_of::<spec::HostnameMatch>(),
            fields_of::<spec::HttpGatewayRouteAction>(),
            fields_of::<spec::GatewayRouteTarget>(),
            fields_of::<spec::GatewayRouteVirtualService>(),
            fields_of::<spec::HttpGatewayRouteRewrite>(),
            fields_of::<spec::PrefixRewrite>(),
            fields_of::<spec::PathRewrite>(),
            fields_of::<spec::HostnameRewrite>(),
            fields_of::<spec::GrpcGatewayRoute>(),
            fields_of::<spec::GrpcGatewayRouteMatch>(),
            fields_of::<spec::GrpcGatewayRouteAction>(),
            fields_of::<spec::GrpcGatewayRouteRewrite>(),
        ]
        .concat();
        words.sort_unstable();
        words.dedup();
        words
    })
}

/// The known field name `word` most likely meant: at most two edits away (one for short words).
pub fn field(word: &str) -> Option<&'static str> {
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    vocabulary()
        .iter()
        .map(|w| (distance(word, w), *w))
        .filter(|(d, w)| *d <= limit && *w != word)
        .min()
        .map(|(_, w)| w)
}

/// The fields only the Kubernetes form has (its envelope, the controller's names and references).
const K8S_WORDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "status",
    "name",
    "namespace",
    "uid",
    "awsName",
    "meshRef",
    "meshOwner",
    "meshServiceDiscovery",
    "namespaceSelector",
    "podSelector",
    "gatewayRouteSelector",
    "backendGroups",
    "routes",
    "virtualNodeRef",
    "virtualNodeARN",
    "virtualServiceRef",
    "virtualServiceARN",
    "virtualRouterRef",
    "virtualRouterARN",
    "virtualGatewayRef",
    "certificateARN",
    "certificateAuthorityARNs",
];

/// Like [`field`], for a manifest of the Kubernetes form: its own names come first.
pub fn k8s_field(word: &str) -> Option<&'static str> {
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    K8S_WORDS
        .iter()
        .map(|w| (distance(word, w), *w))
        .filter(|(d, w)| *d <= limit && *w != word)
        .min()
        .map(|(_, w)| w)
        .or_else(|| field(word))
}

/// Levenshtein distance, case-insensitive (a wrong capital is one of the commonest slips).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_fields_get_the_name_they_meant() {
        assert!(vocabulary().contains(&"listeners"), "{:?}", vocabulary());
        assert_eq!(field("listners"), Some("listeners"));
        assert_eq!(field("weightedTarget"), Some("weightedTargets"));
        assert_eq!(field("portmapping"), Some("portMapping"));
        assert_eq!(field("tags"), None, "nothing close");
    }
}
