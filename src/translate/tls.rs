//! TLS on the data path. App Mesh listener TLS becomes a `DownstreamTlsContext` on the ingress
//! filter chain (PERMISSIVE: a `tls_inspector` and a plaintext chain beside the TLS one); a client
//! policy becomes an `UpstreamTlsContext` on the egress clusters of the backends' targets.
//! Certificates and trust come from files (paths only: Envoy reads them, meshplane never holds key
//! material), from the local SDS agent (`sds`: SPIRE in App Mesh, reached through the bootstrap's
//! [`SDS_CLUSTER`]), or from meshplane's CA over the proxy's own ADS stream (`acm`:
//! [`IDENTITY_SECRET`], [`TRUST_SECRET`]).

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    config_source, data_source, grpc_service, transport_socket, ApiConfigSource, ApiVersion,
    ConfigSource, DataSource, GrpcService, TransportSocket,
};
use envoy_types::pb::envoy::config::listener::v3::{
    listener_filter, FilterChainMatch, Listener, ListenerFilter,
};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    subject_alt_name_matcher::SanType,
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    SubjectAltNameMatcher, TlsCertificate as EnvoyCertificate, UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, StringMatcher};

use super::util::{ads, any, boolv};
use super::{mesh_node, Target};
use crate::model::Mesh;
use crate::spec::{
    ClientTls, ListenerTls, TlsCertificate, TlsMode, TlsTrust, TlsValidation, VirtualGatewaySpec,
    VirtualNodeSpec,
};

/// The SDS secret meshplane's CA serves each proxy on its ADS stream: its own certificate and key
/// (what `acm.certificateArn` stands for).
pub const IDENTITY_SECRET: &str = "meshplane/identity";
/// The SDS secret with meshplane's CA bundle, as a validation context (what
/// `acm.certificateAuthorityArns` stands for).
pub const TRUST_SECRET: &str = "meshplane/trust";
/// The bootstrap cluster of the local SDS agent's unix socket (`meshplane bootstrap
/// --sds-socket`); App Mesh's Envoy used this name.
pub const SDS_CLUSTER: &str = "static_cluster_sds_unix_socket";

const TLS_SOCKET: &str = "envoy.transport_sockets.tls";

/// Turns the single filter chain of an ingress listener into what `tls.mode` asks for: STRICT,
/// that chain with TLS; PERMISSIVE, a TLS chain and the plaintext chain, told apart by the
/// `tls_inspector`; DISABLED (or no `tls`), unchanged.
pub(super) fn secure_listener(l: &mut Listener, tls: Option<&ListenerTls>) {
    let Some(tls) = tls.filter(|t| t.mode != TlsMode::Disabled) else {
        return;
    };
    let Some(plain) = l.filter_chains.first().cloned() else {
        return;
    };
    let Some(ctx) = downstream(tls) else { return };
    let mut secure = plain.clone();
    secure.transport_socket = Some(transport_socket(any(&ctx)));
    if tls.mode == TlsMode::Strict {
        l.filter_chains = vec![secure];
        return;
    }
    let mut plain = plain;
    let with = |m: Option<FilterChainMatch>, protocol: &str| {
        Some(FilterChainMatch {
            transport_protocol: protocol.into(),
            ..m.unwrap_or_default()
        })
    };
    secure.filter_chain_match = with(secure.filter_chain_match.take(), "tls");
    plain.filter_chain_match = with(plain.filter_chain_match.take(), "raw_buffer");
    l.listener_filters.push(ListenerFilter {
        name: "envoy.filters.listener.tls_inspector".into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(any(
            &TlsInspector::default(),
        ))),
        ..Default::default()
    });
    l.filter_chains = vec![secure, plain];
}

/// The server side: the listener's certificate, and with `validation` a required, verified client
/// certificate (mTLS).
fn downstream(tls: &ListenerTls) -> Option<DownstreamTlsContext> {
    let mut ctx = CommonTlsContext::default();
    certificate(&mut ctx, tls.certificate.as_ref()?);
    let validation = tls.validation.as_ref().and_then(|v| {
        let names = sans(v);
        Some(validation_context(v.trust.as_ref()?, &names))
    });
    let require = validation.is_some();
    ctx.validation_context_type = validation;
    Some(DownstreamTlsContext {
        common_tls_context: Some(ctx),
        require_client_certificate: boolv(require),
        ..Default::default()
    })
}

/// Puts the client policy `tls` on `c`, the cluster of `target`, when the policy covers the
/// target's port. With no subject alternative names in the policy, the server's certificate must
/// name the target's DNS hostname (App Mesh's rule), which is also sent as SNI.
pub(super) fn secure_cluster(c: &mut Cluster, mesh: &Mesh, target: &Target, tls: &ClientTls) {
    let Some(node) = mesh_node(mesh, &target.node) else {
        return;
    };
    let Some(l) = node.spec.listeners.get(target.listener) else {
        return;
    };
    if !tls.covers(l.port_mapping.port) {
        return;
    }
    let hostname = node
        .spec
        .service_discovery
        .as_ref()
        .and_then(|sd| sd.dns.as_ref())
        .map(|d| d.hostname.clone());
    let mut ctx = CommonTlsContext::default();
    if let Some(cert) = &tls.certificate {
        certificate(&mut ctx, cert);
    }
    if let Some(v) = &tls.validation {
        let mut names = sans(v);
        if names.is_empty() {
            names.extend(hostname.clone());
        }
        ctx.validation_context_type = v.trust.as_ref().map(|t| validation_context(t, &names));
    }
    let up = UpstreamTlsContext {
        common_tls_context: Some(ctx),
        sni: hostname.unwrap_or_default(),
        ..Default::default()
    };
    c.transport_socket = Some(transport_socket(any(&up)));
}

/// The client policy of each of a node's backends that originates TLS (the backend's own, else
/// `backendDefaults`), by backend name (sorted, as the backends are).
pub fn node_policies(spec: &VirtualNodeSpec, backends: &[String]) -> Vec<(String, Arc<ClientTls>)> {
    let default = spec
        .backend_defaults
        .as_ref()
        .and_then(|d| d.client_policy.as_ref());
    backends
        .iter()
        .filter_map(|vs| {
            let own = spec
                .backends
                .iter()
                .filter_map(|b| b.virtual_service.as_ref())
                .find(|b| &b.virtual_service_name == vs)
                .and_then(|b| b.client_policy.as_ref());
            // A backend's own policy replaces the default one, even when it originates no TLS.
            let tls = own.or(default)?.enforced_tls()?;
            Some((vs.clone(), Arc::new(tls.clone())))
        })
        .collect()
}

/// A gateway's `backendDefaults` client policy, for every service its routes send to.
pub fn gateway_policies(
    spec: &VirtualGatewaySpec,
    backends: &[String],
) -> Vec<(String, Arc<ClientTls>)> {
    let Some(tls) = spec
        .backend_defaults
        .as_ref()
        .and_then(|d| d.client_policy.as_ref())
        .and_then(|p| p.enforced_tls())
    else {
        return Vec::new();
    };
    let tls = Arc::new(tls.clone());
    backends
        .iter()
        .map(|vs| (vs.clone(), tls.clone()))
        .collect()
}

fn transport_socket(config: envoy_types::pb::google::protobuf::Any) -> TransportSocket {
    TransportSocket {
        name: TLS_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(config)),
    }
}

fn file(path: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    })
}

/// The local SDS agent, over the bootstrap's unix-socket cluster.
fn agent() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::ApiConfigSource(
            ApiConfigSource {
                api_type: envoy_types::pb::envoy::config::core::v3::api_config_source::ApiType::Grpc
                    as i32,
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: SDS_CLUSTER.into(),
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

fn secret(name: &str, source: ConfigSource) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.to_string(),
        sds_config: Some(source),
    }
}

/// The proxy's own certificate: files, a secret of the local agent, or meshplane's CA.
fn certificate(ctx: &mut CommonTlsContext, cert: &TlsCertificate) {
    if let Some(f) = &cert.file {
        ctx.tls_certificates.push(EnvoyCertificate {
            certificate_chain: file(&f.certificate_chain),
            private_key: file(&f.private_key),
            ..Default::default()
        });
    } else if let Some(s) = &cert.sds {
        ctx.tls_certificate_sds_secret_configs
            .push(secret(&s.secret_name, agent()));
    } else if cert.acm.is_some() {
        ctx.tls_certificate_sds_secret_configs
            .push(secret(IDENTITY_SECRET, ads()));
    }
}

fn sans(v: &TlsValidation) -> Vec<String> {
    v.subject_alternative_names
        .as_ref()
        .map(|s| s.matcher.exact.clone())
        .unwrap_or_default()
}

/// Trust from a file (inline context), or from a secret (the agent's, or meshplane's CA bundle)
/// combined with the name matchers.
fn validation_context(trust: &TlsTrust, names: &[String]) -> ValidationContextType {
    let matchers = names.iter().map(|n| san_matcher(n)).collect();
    if let Some(f) = &trust.file {
        return ValidationContextType::ValidationContext(CertificateValidationContext {
            trusted_ca: file(&f.certificate_chain),
            match_typed_subject_alt_names: matchers,
            ..Default::default()
        });
    }
    let source = match &trust.sds {
        Some(s) => secret(&s.secret_name, agent()),
        None => secret(TRUST_SECRET, ads()),
    };
    ValidationContextType::CombinedValidationContext(CombinedCertificateValidationContext {
        default_validation_context: Some(CertificateValidationContext {
            match_typed_subject_alt_names: matchers,
            ..Default::default()
        }),
        validation_context_sds_secret_config: Some(source),
        ..Default::default()
    })
}

/// App Mesh matches a name against the certificate's SANs of any type; Envoy wants the type. A
/// name with a scheme (`spiffe://…`, SPIRE's) is a URI, an address an IP address, anything else
/// a DNS name.
fn san_matcher(name: &str) -> SubjectAltNameMatcher {
    let t = if name.contains("://") {
        SanType::Uri
    } else if name.parse::<std::net::IpAddr>().is_ok() {
        SanType::IpAddress
    } else {
        SanType::Dns
    };
    SubjectAltNameMatcher {
        san_type: t as i32,
        matcher: Some(StringMatcher {
            match_pattern: Some(string_matcher::MatchPattern::Exact(name.to_string())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
