//! Config sources for Envoys that use per-type xDS services instead of ADS.
//!
//! Translated resources point at their dependents (a cluster's endpoints, a listener's routes) with
//! `ads: {}`. An Envoy bootstrapped for per-type services has no ADS stream, so those references
//! must name the per-type API (SotW `GRPC` or `DELTA_GRPC`) on the cluster through which that Envoy
//! reaches meshplane (its bootstrap's name for it, learned from the stream). The same goes for the
//! secrets their TLS fetches over ADS (`sds`).

mod sds;

pub use sds::ads_secrets;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    api_config_source, config_source, grpc_service, ApiConfigSource, ApiVersion, ConfigSource,
    GrpcService,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Listener};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, HttpConnectionManager,
};
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use super::util::any;

fn per_type_source(delta: bool, cluster: &str) -> ConfigSource {
    let api_type = if delta {
        api_config_source::ApiType::DeltaGrpc
    } else {
        api_config_source::ApiType::Grpc
    };
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::ApiConfigSource(
            ApiConfigSource {
                api_type: api_type as i32,
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: cluster.into(),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )),
        resource_api_version: ApiVersion::V3 as i32,
        ..Default::default()
    }
}

fn is_ads(cs: &Option<ConfigSource>) -> bool {
    matches!(
        cs.as_ref().and_then(|c| c.config_source_specifier.as_ref()),
        Some(config_source::ConfigSourceSpecifier::Ads(_))
    )
}

/// The resource re-pointed at per-type services on `cluster`, or `None` when it has no ADS
/// reference.
pub fn for_per_type_services(resource: &Any, delta: bool, cluster: &str) -> Option<Any> {
    // Every SDS reference over ADS, now to the per-type SecretDiscoveryService.
    let mut repoint = |s: &mut envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::SdsSecretConfig| {
        if !is_ads(&s.sds_config) {
            return false;
        }
        s.sds_config = Some(per_type_source(delta, cluster));
        true
    };
    if resource.type_url == Cluster::type_url() {
        let mut c = Cluster::decode(resource.value.as_slice()).ok()?;
        let mut changed = sds::visit_cluster(&mut c, &mut repoint);
        if let Some(eds) = c
            .eds_cluster_config
            .as_mut()
            .filter(|e| is_ads(&e.eds_config))
        {
            eds.eds_config = Some(per_type_source(delta, cluster));
            changed = true;
        }
        return changed.then(|| any(&c));
    }
    if resource.type_url == Listener::type_url() {
        let mut l = Listener::decode(resource.value.as_slice()).ok()?;
        let mut changed = sds::visit_listener(&mut l, &mut repoint);
        for chain in &mut l.filter_chains {
            for f in &mut chain.filters {
                let Some(filter::ConfigType::TypedConfig(cfg)) = f.config_type.as_mut() else {
                    continue;
                };
                if cfg.type_url != HttpConnectionManager::type_url() {
                    continue;
                }
                let Ok(mut hcm) = HttpConnectionManager::decode(cfg.value.as_slice()) else {
                    continue;
                };
                if let Some(http_connection_manager::RouteSpecifier::Rds(rds)) =
                    hcm.route_specifier.as_mut()
                {
                    if is_ads(&rds.config_source) {
                        rds.config_source = Some(per_type_source(delta, cluster));
                        *cfg = any(&hcm);
                        changed = true;
                    }
                }
            }
        }
        return changed.then(|| any(&l));
    }
    None
}
