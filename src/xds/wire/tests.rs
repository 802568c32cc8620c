use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryResponse, DiscoveryResponse, Resource as DeltaResource,
};
use prost::Message;

use super::*;

fn res(name: &str, value: &[u8]) -> Resource {
    Resource::new(
        name.into(),
        Any {
            type_url: crate::xds::CLUSTER.into(),
            value: value.to_vec(),
        },
    )
}

#[test]
fn a_sotw_response_decodes_as_prost_encodes_it() {
    let rs = [
        res("a", b"\x0a\x01a"),
        res("b", &[7u8; 300]),
        res("empty", b""),
    ];
    let body = sotw_body("v1", crate::xds::CLUSTER, rs.iter());
    let e = Encoded::new(sotw::NONCE, "42", body.into());
    assert_eq!(e.head[0], 0, "not compressed");
    let len = u32::from_be_bytes([e.head[1], e.head[2], e.head[3], e.head[4]]) as usize;
    assert_eq!(len, e.head.len() - 5 + e.body.len(), "prefix length");
    let got = DiscoveryResponse::decode(&e.message()[..]).unwrap();
    let want = DiscoveryResponse {
        version_info: "v1".into(),
        resources: rs.iter().map(|r| r.any.clone()).collect(),
        type_url: crate::xds::CLUSTER.into(),
        nonce: "42".into(),
        ..Default::default()
    };
    assert_eq!(got, want);
    // Same length as prost's own encoding: no field is written twice or padded.
    assert_eq!(e.message().len(), want.encoded_len());
}

#[test]
fn a_delta_response_decodes_as_prost_encodes_it() {
    let rs = [res("a", b"\x0a\x01a"), res("b", &[9u8; 200])];
    let removed = vec!["gone".to_string(), "also".to_string()];
    let body = delta_body("sys", crate::xds::ENDPOINT, rs.iter(), &removed);
    let e = Encoded::new(delta::NONCE, "7", body.into());
    let got = DeltaDiscoveryResponse::decode(&e.message()[..]).unwrap();
    let want = DeltaDiscoveryResponse {
        system_version_info: "sys".into(),
        resources: rs
            .iter()
            .map(|r| DeltaResource {
                name: r.name.clone(),
                version: r.version.clone(),
                resource: Some(r.any.clone()),
                ..Default::default()
            })
            .collect(),
        type_url: crate::xds::ENDPOINT.into(),
        removed_resources: removed,
        nonce: "7".into(),
        ..Default::default()
    };
    assert_eq!(got, want);
    assert_eq!(e.message().len(), want.encoded_len());
}

#[test]
fn the_cache_shares_a_body_while_held_and_frees_it_after() {
    let cache = BodyCache::default();
    let mut made = 0;
    let a = cache.sotw(|| {
        made += 1;
        b"body".to_vec()
    });
    let b = cache.sotw(|| {
        made += 1;
        b"other".to_vec()
    });
    assert_eq!(made, 1, "the second stream shares the first one's body");
    assert_eq!(a.as_ptr(), b.as_ptr(), "the very same bytes");
    drop((a, b));
    let c = cache.sotw(|| b"again".to_vec());
    assert_eq!(&c[..], b"again", "made anew once nobody held it");
    let d = cache.delta(|| b"delta".to_vec());
    assert_eq!(&d[..], b"delta", "delta bodies are kept apart");
}
