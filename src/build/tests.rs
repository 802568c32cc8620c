//! Tests of the build stage: spliced route tables, per-type variants.

use prost::Message;

use crate::app::Pipeline;

/// The egress route tables are spliced from cached virtual-host bytes; what is spliced must be
/// exactly what prost would encode for the same table, or versions would differ between replicas
/// that built the same table differently.
#[test]
fn spliced_route_tables_encode_exactly_like_prost() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut tables = 0;
    // The features mesh has an ALLOW_ALL tail host; the gateway one a gateway's catch-all host;
    // the transparent one per-port tables.
    for mesh in [
        "tests/golden/features/mesh",
        "tests/golden/gateway/mesh",
        "tests/golden/transparent/mesh",
    ] {
        let mut p = Pipeline::new(root.join(mesh));
        assert!(p.reload(None));
        tables += spliced_tables(&p);
    }
    assert!(tables >= 8);
}

fn spliced_tables(p: &Pipeline) -> usize {
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
    tables
}

/// The gateway's egress catch-all host (for its routes that keep the client's Host) is made of its
/// target services' routes: an edit of such a route reaches it on an incremental reload, exactly
/// as a full rebuild makes it.
#[test]
fn a_gateway_catch_all_host_follows_its_targets_routes() {
    use envoy_types::pb::envoy::config::route::v3::{route, route_action, RouteConfiguration};
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/gateway/mesh");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.yaml");
    std::fs::copy(src.join("all.yaml"), &file).unwrap();
    let weights = |p: &Pipeline| -> Vec<u32> {
        let snap = p.cache.get("mesh/edge/virtualGateway/ingress").unwrap();
        let r = &snap.types[3].resources["rds_egress_http_15011"];
        let rc = RouteConfiguration::decode(r.any.value.as_slice()).unwrap();
        let last = rc.virtual_hosts.last().unwrap();
        assert_eq!(
            (last.name.as_str(), last.domains.as_slice()),
            ("default_backend", &["*".to_string()][..])
        );
        let split = last.routes.iter().find(|r| r.name == "split").unwrap();
        let Some(route::Action::Route(a)) = &split.action else {
            panic!("a route action")
        };
        let Some(route_action::ClusterSpecifier::WeightedClusters(w)) = &a.cluster_specifier else {
            panic!("weighted clusters")
        };
        w.clusters
            .iter()
            .map(|c| c.weight.as_ref().map_or(0, |w| w.value))
            .collect()
    };
    let mut p = Pipeline::new(dir.path().to_path_buf());
    assert!(p.reload(None));
    assert_eq!(weights(&p), [80, 20]);
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replace(
        "weight: 80}, {virtualNode: shop-v2, weight: 20}",
        "weight: 60}, {virtualNode: shop-v2, weight: 40}",
    );
    assert_ne!(text, edited);
    std::fs::write(&file, edited).unwrap();
    assert!(p.reload(None));
    assert_eq!(weights(&p), [60, 40]);
    let mut full = Pipeline::new(dir.path().to_path_buf());
    assert!(full.reload(None));
    assert_eq!(p.cache.versions(), full.cache.versions());
}

/// A variant in demand is built with every snapshot: its clusters fetch endpoints over the
/// per-type service on the named cluster, its endpoints and route tables are the ADS ones, and a
/// node an edit does not touch keeps its converted clusters as they were.
#[test]
fn variants_in_demand_are_built_and_kept_for_untouched_nodes() {
    use crate::xds::variants::Demand;
    use crate::xds::VariantKey;
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::core::v3::{api_config_source, config_source};
    use std::sync::Arc;

    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/features/mesh");
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let demand = Demand::default();
    let key = VariantKey {
        delta: true,
        cluster: "control-plane".into(),
    };
    let _hold = demand.hold(key.clone()).unwrap();
    let mut p = Pipeline::new(dir.path().to_path_buf()).with_demand(demand);
    assert!(p.reload(None));
    let nodes = p.cache.keys();
    let mut eds_clusters = 0;
    for n in &nodes {
        let snap = p.cache.get(n).unwrap();
        let v = snap.variant(&key).expect("variant built");
        assert!(Arc::ptr_eq(&v.types[1], &snap.types[1]), "endpoints shared");
        assert!(
            Arc::ptr_eq(&v.types[3], &snap.types[3]),
            "route tables shared"
        );
        for r in v.types[0].resources.values() {
            let c = Cluster::decode(r.any.value.as_slice()).unwrap();
            let Some(eds) = c.eds_cluster_config.and_then(|e| e.eds_config) else {
                continue;
            };
            let Some(config_source::ConfigSourceSpecifier::ApiConfigSource(api)) =
                eds.config_source_specifier
            else {
                panic!("{n}: {} still fetches endpoints over ADS", r.name);
            };
            assert_eq!(api.api_type, api_config_source::ApiType::DeltaGrpc as i32);
            let target = format!("{:?}", api.grpc_services);
            assert!(target.contains("control-plane"), "{target}");
            eds_clusters += 1;
        }
    }
    assert!(eds_clusters > 0, "the mesh has EDS clusters");
    let before: Vec<_> = nodes.iter().map(|n| p.cache.get(n).unwrap()).collect();

    // An edit of one route: nodes whose clusters did not change keep their converted ones.
    let file = dir.path().join("all.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("maxRetries: 4"),
        "the features mesh has a retry policy to edit"
    );
    std::fs::write(&file, text.replacen("maxRetries: 4", "maxRetries: 5", 1)).unwrap();
    assert!(p.reload(None));
    let mut kept = 0;
    for (n, old) in nodes.iter().zip(&before) {
        let now = p.cache.get(n).unwrap();
        if Arc::ptr_eq(&now.types[0], &old.types[0]) {
            let (a, b) = (now.variant(&key).unwrap(), old.variant(&key).unwrap());
            assert!(Arc::ptr_eq(&a.types[0], &b.types[0]), "{n}");
            kept += 1;
        }
    }
    assert!(kept > 0);
}
