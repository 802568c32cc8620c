//! Unit tests of the TLS translation: listener modes, the secret sources, SAN types, which
//! backends a client policy covers, and per-client clusters through incremental rebuilds.

use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain};
use prost::Message;

use super::*;
use crate::app::Pipeline;
use crate::build::NodeResources;

fn plain_listener() -> Listener {
    Listener {
        name: "lds_ingress_0.0.0.0_15000".into(),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "f".into(),
                config_type: None,
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn tls(yaml: &str) -> ListenerTls {
    serde_yaml_ng::from_str(yaml).expect("a listener tls")
}

fn downstream_of(chain: &FilterChain) -> DownstreamTlsContext {
    let Some(transport_socket::ConfigType::TypedConfig(a)) = chain
        .transport_socket
        .as_ref()
        .and_then(|t| t.config_type.clone())
    else {
        panic!("no TLS on {chain:?}")
    };
    DownstreamTlsContext::decode(a.value.as_slice()).unwrap()
}

const FILE_CERT: &str = "certificate: {file: {certificateChain: /c.pem, privateKey: /k.pem}}";

#[test]
fn strict_puts_tls_on_the_one_chain_and_permissive_adds_a_plaintext_chain() {
    let mut l = plain_listener();
    secure_listener(
        &mut l,
        Some(&tls(&format!("{{mode: STRICT, {FILE_CERT}}}"))),
    );
    assert_eq!(l.filter_chains.len(), 1);
    assert!(l.listener_filters.is_empty());
    let ctx = downstream_of(&l.filter_chains[0]);
    assert_eq!(ctx.require_client_certificate, boolv(false));
    let common = ctx.common_tls_context.unwrap();
    assert_eq!(common.tls_certificates[0].private_key, file("/k.pem"));

    let mut l = plain_listener();
    secure_listener(
        &mut l,
        Some(&tls(&format!("{{mode: PERMISSIVE, {FILE_CERT}}}"))),
    );
    assert_eq!(
        l.listener_filters[0].name,
        "envoy.filters.listener.tls_inspector"
    );
    let protocols: Vec<_> = l
        .filter_chains
        .iter()
        .map(|c| {
            c.filter_chain_match
                .as_ref()
                .unwrap()
                .transport_protocol
                .as_str()
        })
        .collect();
    assert_eq!(protocols, ["tls", "raw_buffer"]);
    assert!(l.filter_chains[0].transport_socket.is_some());
    assert!(l.filter_chains[1].transport_socket.is_none());
    assert_eq!(l.filter_chains[0].filters, l.filter_chains[1].filters);

    let mut l = plain_listener();
    secure_listener(
        &mut l,
        Some(&tls(&format!("{{mode: DISABLED, {FILE_CERT}}}"))),
    );
    assert_eq!(l, plain_listener());
}

#[test]
fn validation_requires_a_client_certificate_with_typed_san_matchers() {
    let mut l = plain_listener();
    let t = tls(
        "{mode: STRICT, certificate: {sds: {secretName: spire-cert}}, validation: {trust: {sds: {secretName: spire-bundle}}, subjectAlternativeNames: {match: {exact: [web.local, 'spiffe://mesh/web', 10.0.0.1]}}}}",
    );
    secure_listener(&mut l, Some(&t));
    let ctx = downstream_of(&l.filter_chains[0]);
    assert_eq!(ctx.require_client_certificate, boolv(true));
    let common = ctx.common_tls_context.unwrap();
    let cert = &common.tls_certificate_sds_secret_configs[0];
    assert_eq!(cert.name, "spire-cert");
    assert_eq!(cert.sds_config, Some(agent()));
    let Some(ValidationContextType::CombinedValidationContext(v)) = common.validation_context_type
    else {
        panic!("a combined validation context")
    };
    assert_eq!(
        v.validation_context_sds_secret_config.unwrap().name,
        "spire-bundle"
    );
    let types: Vec<i32> = v
        .default_validation_context
        .unwrap()
        .match_typed_subject_alt_names
        .iter()
        .map(|m| m.san_type)
        .collect();
    let want = [SanType::Dns, SanType::Uri, SanType::IpAddress].map(|t| t as i32);
    assert_eq!(types, want);
}

#[test]
fn acm_certificates_come_from_meshplanes_ca_over_ads() {
    let mut l = plain_listener();
    let t = tls("{mode: STRICT, certificate: {acm: {certificateArn: 'arn:aws:acm:x'}}}");
    secure_listener(&mut l, Some(&t));
    let common = downstream_of(&l.filter_chains[0])
        .common_tls_context
        .unwrap();
    let cert = &common.tls_certificate_sds_secret_configs[0];
    assert_eq!(
        (cert.name.as_str(), cert.sds_config.clone()),
        (IDENTITY_SECRET, Some(ads()))
    );
}

#[test]
fn a_backends_own_policy_replaces_the_default_and_enforce_false_turns_tls_off() {
    let spec: VirtualNodeSpec = serde_yaml_ng::from_str(
        "backendDefaults: {clientPolicy: {tls: {validation: {trust: {file: {certificateChain: /ca}}}}}}\n\
         backends:\n\
         - virtualService: {virtualServiceName: a}\n\
         - virtualService: {virtualServiceName: b, clientPolicy: {tls: {enforce: false, validation: {trust: {file: {certificateChain: /ca}}}}}}\n\
         - virtualService: {virtualServiceName: c, clientPolicy: {tls: {ports: [80], validation: {trust: {acm: {certificateAuthorityArns: [x]}}}}}}\n\
         - virtualService: {virtualServiceName: d, clientPolicy: {}}\n",
    )
    .unwrap();
    let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    let got = node_policies(&spec, &names);
    let backends: Vec<&str> = got.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(backends, ["a", "c"]);
    assert_eq!(got[1].1.ports, [80]);
    assert!(got[1].1.covers(80) && !got[1].1.covers(81));
}

const MESH: &str = "tests/golden/tls/mesh/all.yaml";

fn api_cluster(p: &Pipeline, node: &str) -> Option<UpstreamTlsContext> {
    let snap = p
        .cache
        .get(&format!("mesh/tls/virtualNode/{node}"))
        .unwrap();
    let res = NodeResources::decode(&snap).unwrap();
    let c = res
        .clusters
        .iter()
        .find(|c| c.name == "cds_egress_tls_api_http_8080")
        .unwrap();
    let Some(transport_socket::ConfigType::TypedConfig(a)) =
        c.transport_socket.as_ref()?.config_type.clone()
    else {
        return None;
    };
    Some(UpstreamTlsContext::decode(a.value.as_slice()).unwrap())
}

/// Two clients of the same target, one with TLS and one without, each get their own cluster of
/// the same name; editing one client's policy changes only that client's cluster, on an
/// incremental rebuild exactly as on a full one.
#[test]
fn client_policies_are_per_client_through_incremental_rebuilds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.yaml");
    let text = std::fs::read_to_string(root.join(MESH)).unwrap();
    std::fs::write(&file, &text).unwrap();
    // The mesh names `acm` certificates: the pipelines need a CA, as `serve --ca-dir` gives.
    let ca_dir = tempfile::tempdir().unwrap();
    let ca =
        crate::ca::CaDir::open_or_create(&ca_dir.path().join("ca"), "meshplane.local").unwrap();
    let ca = std::sync::Arc::new(crate::ca::Authority::new(
        ca,
        std::time::Duration::from_secs(24 * 3600),
    ));
    let mut p = Pipeline::new(dir.path().to_path_buf()).with_ca(Some(ca.clone()));
    assert!(p.reload(None));
    let web = api_cluster(&p, "web").expect("web reaches api with TLS");
    assert_eq!(web.sni, "api.tls.local");
    assert!(
        api_cluster(&p, "batch").is_none(),
        "batch has enforce: false"
    );

    // batch turns TLS on (with its own trust), web's stays as it was.
    let edited = text.replacen("        enforce: false\n", "", 1);
    assert_ne!(edited, text);
    std::fs::write(&file, &edited).unwrap();
    assert!(p.reload(None));
    let batch = api_cluster(&p, "batch").expect("batch now reaches api with TLS");
    assert!(batch
        .common_tls_context
        .unwrap()
        .tls_certificates
        .is_empty());
    assert_eq!(api_cluster(&p, "web"), Some(web));
    let mut full = Pipeline::new(dir.path().to_path_buf()).with_ca(Some(ca));
    assert!(full.reload(None));
    assert_eq!(p.cache.versions(), full.cache.versions());

    // And back: the plain cluster returns for batch.
    std::fs::write(&file, &text).unwrap();
    assert!(p.reload(None));
    assert!(api_cluster(&p, "batch").is_none());
}
