//! The SDS references inside TLS transport sockets: a cluster's (and its transport socket
//! matches'), and a listener's filter chains'. The build stage lists the secrets a node's
//! resources fetch over ADS (to serve exactly those), and per-type variants re-point those
//! references at the per-type SecretDiscoveryService, like endpoints and routes.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{transport_socket, TransportSocket};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, CommonTlsContext, DownstreamTlsContext,
    SdsSecretConfig, UpstreamTlsContext,
};
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use super::super::util::any;

/// Calls `f` on every SDS secret reference of a TLS context; true when `f` changed one.
fn visit_common(
    ctx: &mut CommonTlsContext,
    f: &mut dyn FnMut(&mut SdsSecretConfig) -> bool,
) -> bool {
    let mut changed = false;
    for s in &mut ctx.tls_certificate_sds_secret_configs {
        changed |= f(s);
    }
    match ctx.validation_context_type.as_mut() {
        Some(ValidationContextType::ValidationContextSdsSecretConfig(s)) => changed |= f(s),
        Some(ValidationContextType::CombinedValidationContext(c)) => {
            if let Some(s) = c.validation_context_sds_secret_config.as_mut() {
                changed |= f(s);
            }
        }
        _ => {}
    }
    changed
}

/// The same for a transport socket (upstream or downstream TLS); re-encodes what changed.
fn visit_socket(ts: &mut TransportSocket, f: &mut dyn FnMut(&mut SdsSecretConfig) -> bool) -> bool {
    let Some(transport_socket::ConfigType::TypedConfig(cfg)) = ts.config_type.as_mut() else {
        return false;
    };
    if cfg.type_url == UpstreamTlsContext::type_url() {
        let Ok(mut up) = UpstreamTlsContext::decode(cfg.value.as_slice()) else {
            return false;
        };
        let changed = up
            .common_tls_context
            .as_mut()
            .is_some_and(|c| visit_common(c, f));
        if changed {
            *cfg = any(&up);
        }
        return changed;
    }
    if cfg.type_url == DownstreamTlsContext::type_url() {
        let Ok(mut down) = DownstreamTlsContext::decode(cfg.value.as_slice()) else {
            return false;
        };
        let changed = down
            .common_tls_context
            .as_mut()
            .is_some_and(|c| visit_common(c, f));
        if changed {
            *cfg = any(&down);
        }
        return changed;
    }
    false
}

/// Every SDS reference of a cluster's TLS.
pub(super) fn visit_cluster(
    c: &mut Cluster,
    f: &mut dyn FnMut(&mut SdsSecretConfig) -> bool,
) -> bool {
    let mut changed = c
        .transport_socket
        .as_mut()
        .is_some_and(|ts| visit_socket(ts, f));
    for m in &mut c.transport_socket_matches {
        changed |= m
            .transport_socket
            .as_mut()
            .is_some_and(|ts| visit_socket(ts, f));
    }
    changed
}

/// Every SDS reference of a listener's TLS.
pub(super) fn visit_listener(
    l: &mut Listener,
    f: &mut dyn FnMut(&mut SdsSecretConfig) -> bool,
) -> bool {
    let mut changed = false;
    for chain in l
        .filter_chains
        .iter_mut()
        .chain(l.default_filter_chain.as_mut())
    {
        changed |= chain
            .transport_socket
            .as_mut()
            .is_some_and(|ts| visit_socket(ts, f));
    }
    changed
}

/// The secrets a cluster or listener fetches over ADS, by name (sorted, once each); empty for
/// other resources. `hint` is a byte string every such resource must contain (a secret name
/// prefix): resources without it are not decoded.
pub fn ads_secrets(resource: &Any, hint: &[u8]) -> Vec<String> {
    if memchr::memmem::find(&resource.value, hint).is_none() {
        return Vec::new();
    }
    let mut names = Vec::new();
    let mut collect = |s: &mut SdsSecretConfig| {
        if super::is_ads(&s.sds_config) {
            names.push(s.name.clone());
        }
        false
    };
    if resource.type_url == Cluster::type_url() {
        if let Ok(mut c) = Cluster::decode(resource.value.as_slice()) {
            visit_cluster(&mut c, &mut collect);
        }
    } else if resource.type_url == Listener::type_url() {
        if let Ok(mut l) = Listener::decode(resource.value.as_slice()) {
            visit_listener(&mut l, &mut collect);
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::{config_source, TransportSocket};
    use envoy_types::pb::envoy::config::listener::v3::FilterChain;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::CombinedCertificateValidationContext;

    use super::*;
    use crate::translate::util::ads;

    fn ctx() -> CommonTlsContext {
        CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                name: "meshplane/identity".into(),
                sds_config: Some(ads()),
            }],
            validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                CombinedCertificateValidationContext {
                    validation_context_sds_secret_config: Some(SdsSecretConfig {
                        name: "meshplane/trust".into(),
                        sds_config: Some(ads()),
                    }),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    fn socket(typed: Any) -> Option<TransportSocket> {
        Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(typed)),
        })
    }

    /// The SDS config sources in `ctx`'s two references.
    fn sources(ctx: &CommonTlsContext) -> Vec<Option<config_source::ConfigSourceSpecifier>> {
        let mut c = ctx.clone();
        let mut out = Vec::new();
        visit_common(&mut c, &mut |s| {
            out.push(s.sds_config.clone().and_then(|c| c.config_source_specifier));
            false
        });
        out
    }

    #[test]
    fn a_clusters_and_a_listeners_ads_secrets_are_listed_and_repointed_for_per_type_streams() {
        let cluster = Cluster {
            name: "c".into(),
            transport_socket: socket(any(&UpstreamTlsContext {
                common_tls_context: Some(ctx()),
                ..Default::default()
            })),
            ..Default::default()
        };
        let listener = Listener {
            name: "l".into(),
            filter_chains: vec![FilterChain {
                transport_socket: socket(any(&DownstreamTlsContext {
                    common_tls_context: Some(ctx()),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        };
        for r in [any(&cluster), any(&listener)] {
            assert_eq!(
                ads_secrets(&r, b"meshplane/"),
                ["meshplane/identity", "meshplane/trust"]
            );
            assert!(
                ads_secrets(&r, b"nowhere/").is_empty(),
                "the hint gates decoding"
            );
            let per_type =
                super::super::for_per_type_services(&r, true, "xds").expect("re-pointed");
            assert!(
                ads_secrets(&per_type, b"meshplane/").is_empty(),
                "no ADS reference left"
            );
        }
        let c = Cluster::decode(
            super::super::for_per_type_services(&any(&cluster), false, "xds")
                .unwrap()
                .value
                .as_slice(),
        )
        .unwrap();
        let Some(transport_socket::ConfigType::TypedConfig(t)) =
            c.transport_socket.unwrap().config_type
        else {
            panic!()
        };
        let up = UpstreamTlsContext::decode(t.value.as_slice()).unwrap();
        for s in sources(&up.common_tls_context.unwrap()) {
            let Some(config_source::ConfigSourceSpecifier::ApiConfigSource(a)) = s else {
                panic!("{s:?}")
            };
            assert_eq!(a.grpc_services.len(), 1);
        }
        assert!(ads_secrets(&any(&Cluster::default()), b"").is_empty());
    }
}
