use prost::Message;

use crate::app::Pipeline;

/// The egress route tables are spliced from cached virtual-host bytes; what is spliced must be
/// exactly what prost would encode for the same table, or versions would differ between replicas
/// that built the same table differently.
#[test]
fn spliced_route_tables_encode_exactly_like_prost() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/features/mesh");
    let mut p = Pipeline::new(dir);
    assert!(p.reload(None));
    let mut tables = 0;
    for key in p.cache.keys() {
        let snap = p.cache.get(&key).expect("published");
        for r in snap.types[3].resources.values() {
            let rc = envoy_types::pb::envoy::config::route::v3::RouteConfiguration::decode(
                r.any.value.as_slice(),
            )
            .expect("decodes");
            assert_eq!(r.any.value, rc.encode_to_vec(), "{key}: {}", r.name);
            tables += 1;
        }
    }
    assert!(tables >= 4);
}
