//! The load tool's view of xDS responses: the envoy-types messages with every resource's bytes
//! held as `Bytes` slices of the received frame, not copied out of it.
//!
//! Envoy decodes every response too, but into its own arena; what the tool must not do is spend
//! the CPU it shares with the server under test copying resources it mostly never looks at (at
//! 10,000 sidecars `memmove` was 8.6% of all samples, PERFORMANCE.md). The field numbers are
//! envoy.service.discovery.v3's and google.protobuf.Any's; fields the tool never reads are skipped
//! by prost as unknown.

use envoy_types::pb::envoy::config::core::v3::Node;
use prost::bytes::Bytes;

/// `google.protobuf.Any`, its value a slice of the frame (the type URL too: it is never read, and
/// as a `String` it was an allocation per resource per response).
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Any {
    #[prost(bytes = "bytes", tag = "1")]
    pub type_url: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

/// `DiscoveryRequest` (SotW), its resource names shared slices: every ACK repeats them (string
/// and bytes fields are the same on the wire).
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Request {
    #[prost(string, tag = "1")]
    pub version_info: String,
    #[prost(message, optional, tag = "2")]
    pub node: Option<Node>,
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub resource_names: Vec<Bytes>,
    #[prost(string, tag = "4")]
    pub type_url: String,
    #[prost(string, tag = "5")]
    pub response_nonce: String,
}

/// `DiscoveryResponse` (SotW).
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Response {
    #[prost(string, tag = "1")]
    pub version_info: String,
    #[prost(message, repeated, tag = "2")]
    pub resources: Vec<Any>,
    #[prost(string, tag = "4")]
    pub type_url: String,
    #[prost(string, tag = "5")]
    pub nonce: String,
}

/// `Resource`, as a delta response carries it.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Resource {
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub resource: Option<Any>,
}

/// `DeltaDiscoveryResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct DeltaResponse {
    #[prost(string, tag = "1")]
    pub system_version_info: String,
    #[prost(message, repeated, tag = "2")]
    pub resources: Vec<Resource>,
    #[prost(string, tag = "4")]
    pub type_url: String,
    #[prost(string, repeated, tag = "6")]
    pub removed_resources: Vec<String>,
    #[prost(string, tag = "5")]
    pub nonce: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::discovery::v3;
    use prost::Message;

    #[test]
    fn writes_what_envoy_types_reads() {
        let req = Request {
            version_info: "v1".into(),
            node: Some(Node {
                id: "n".into(),
                ..Default::default()
            }),
            resource_names: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
            type_url: "t".into(),
            response_nonce: "1".into(),
        };
        let got = v3::DiscoveryRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(got.resource_names, ["a", "b"]);
        assert_eq!((got.version_info, got.type_url), ("v1".into(), "t".into()));
        assert_eq!(
            (got.node.unwrap().id, got.response_nonce),
            ("n".into(), "1".into())
        );
    }

    #[test]
    fn reads_what_envoy_types_writes() {
        let any = envoy_types::pb::google::protobuf::Any {
            type_url: "t".into(),
            value: vec![1, 2, 3],
        };
        let sotw = v3::DiscoveryResponse {
            version_info: "v1".into(),
            resources: vec![any.clone()],
            type_url: "t".into(),
            nonce: "n".into(),
            canary: true,
            ..Default::default()
        };
        let got = Response::decode(Bytes::from(sotw.encode_to_vec())).unwrap();
        assert_eq!((got.version_info.as_str(), got.nonce.as_str()), ("v1", "n"));
        assert_eq!(got.resources[0].value.as_ref(), &[1, 2, 3]);

        let delta = v3::DeltaDiscoveryResponse {
            system_version_info: "v2".into(),
            resources: vec![v3::Resource {
                name: "r".into(),
                version: "1".into(),
                resource: Some(any),
                ..Default::default()
            }],
            type_url: "t".into(),
            removed_resources: vec!["gone".into()],
            nonce: "m".into(),
            ..Default::default()
        };
        let got = DeltaResponse::decode(Bytes::from(delta.encode_to_vec())).unwrap();
        assert_eq!(got.resources[0].name, "r");
        assert_eq!(
            got.resources[0].resource.as_ref().unwrap().value.as_ref(),
            &[1, 2, 3]
        );
        assert_eq!(
            (got.removed_resources, got.nonce),
            (vec!["gone".into()], "m".into())
        );
    }
}
