//! The pipeline's part in serving meshplane's CA: it refuses a model whose TLS needs the CA when
//! the server has none, rebuilds a node whose certificate names what the model no longer gives it,
//! and renews certificates before they expire by re-assembling only the nodes whose certificates
//! are due (their other parts come from the builder's caches; only their secrets change).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::{info, warn};

use super::{virtual_nodes, Pipeline};
use crate::build::Built;
use crate::ca::{Authority, Namer};
use crate::diag::Problem;
use crate::model::{MeshModel, ProxyId, ProxyKind};

impl Pipeline {
    /// A pipeline whose nodes get the secrets they fetch over ADS from `ca` (`serve --ca-dir`).
    pub fn with_ca(mut self, ca: Option<Arc<Authority>>) -> Pipeline {
        self.builder = std::mem::take(&mut self.builder).with_ca(ca);
        self
    }

    /// Whether the server has a CA (`--ca-dir`).
    pub fn has_ca(&self) -> bool {
        self.builder.ca().is_some()
    }

    /// When the next certificate is due for renewal, if any node has one.
    pub fn next_renewal(&self) -> Option<SystemTime> {
        self.builder.ca()?.next_renewal()
    }

    /// Renews every certificate that is due: the nodes holding one are re-assembled (getting a
    /// new certificate) and published; nothing else is rebuilt.
    pub fn renew_due(&mut self) {
        let (Some(ca), Some(model)) = (self.builder.ca().cloned(), self.status.serving.clone())
        else {
            return;
        };
        let due = ca.due(SystemTime::now());
        if due.is_empty() {
            return;
        }
        let started = Instant::now();
        let all = virtual_nodes(&model);
        match self.publish_built(&model, &all, &due, None) {
            Ok(done) => info!(
                nodes = due.len(),
                changed = done.changed,
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "proxy certificates renewed"
            ),
            Err(problems) => warn!(problems = problems.len(), "renewing certificates failed"),
        }
    }

    /// Re-reads the CA directory; after a step of `meshplane ca rotate`, every node is rebuilt and
    /// published: the new trust bundle to all, new certificates to those holding one. An error (a
    /// step half done) is logged when it first appears, and the CA kept as it was.
    pub fn check_ca(&mut self) {
        let Some(ca) = self.builder.ca().cloned() else {
            return;
        };
        match ca.reload() {
            Ok(false) => self.ca_error = None,
            Ok(true) => {
                self.ca_error = None;
                let Some(model) = self.status.serving.clone() else {
                    return;
                };
                let all = virtual_nodes(&model);
                let ids: Vec<ProxyId> = all.iter().map(|(_, id)| id.clone()).collect();
                match self.publish_built(&model, &all, &ids, None) {
                    Ok(done) => info!(
                        nodes = ids.len(),
                        changed = done.changed,
                        "republished every node after a CA root change"
                    ),
                    Err(problems) => warn!(
                        problems = problems.len(),
                        "republishing after a CA root change failed"
                    ),
                }
            }
            Err(e) => {
                let e = e.to_string();
                if self.ca_error.as_ref() != Some(&e) {
                    warn!(error = %e, "the CA directory cannot be read; keeping the CA as it was");
                    self.ca_error = Some(e);
                }
            }
        }
    }

    /// Adds to `ids` the nodes whose certificate names other names than the model now gives them
    /// (a virtual service that now routes to the node, a new hostname): change tracking would not
    /// rebuild them, since their own resources did not change.
    pub(super) fn add_renamed(&self, model: &MeshModel, ids: &mut Vec<ProxyId>) {
        let Some(ca) = self.builder.ca().filter(|ca| !ca.is_empty()) else {
            return;
        };
        let dir = ca.ca();
        let mut namer = Namer::new(model, dir.trust_domain());
        let renamed = ca.stale(|id| namer.identity(id));
        if renamed.is_empty() {
            return;
        }
        let have: HashSet<ProxyId> = ids.iter().cloned().collect();
        ids.extend(renamed.into_iter().filter(|id| !have.contains(id)));
    }
}

/// The problems of a build whose nodes need secrets no CA serves: one per node, at its document.
pub(super) fn unserved(model: &MeshModel, built: &[Built]) -> Result<(), Vec<Problem>> {
    let problems: Vec<Problem> = built
        .iter()
        .filter(|b| !b.unserved.is_empty())
        .map(|b| problem(model, &b.id, &b.unserved))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn problem(model: &MeshModel, id: &ProxyId, names: &[String]) -> Problem {
    let origin = model.meshes.get(&id.mesh).and_then(|m| match id.kind {
        ProxyKind::VirtualNode => m.virtual_nodes.get(&id.name).map(|n| n.origin.clone()),
        ProxyKind::VirtualGateway => m.virtual_gateways.get(&id.name).map(|g| g.origin.clone()),
    });
    let (file, line) = origin.map_or_else(Default::default, |o| (o.file.to_path_buf(), o.line));
    Problem {
        file,
        line,
        path: "spec".into(),
        message: format!(
            "its TLS uses `acm` (certificateArn or certificateAuthorityArns; served as SDS secret {}), \
             which meshplane's own CA serves, but this server has none: start `meshplane serve` \
             with `--ca-dir DIR` (created when absent)",
            names.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prost::Message;

    use super::*;
    use crate::ca::{CaDir, IDENTITY_SECRET, TRUST_SECRET};
    use crate::xds::SDS;

    fn demo() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")
    }

    fn authority(dir: &std::path::Path, validity: Duration) -> Arc<Authority> {
        let ca = CaDir::open_or_create(&dir.join("ca"), "meshplane.local").unwrap();
        Arc::new(Authority::new(ca, validity))
    }

    /// The DNS names in the certificate of `node`'s identity secret.
    fn cert_names(p: &Pipeline, node: &str) -> Vec<String> {
        use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{secret, Secret};
        let snap = p.cache.get(node).unwrap();
        let r = &snap.types[SDS].resources[IDENTITY_SECRET];
        let s = Secret::decode(r.any.value.as_slice()).unwrap();
        let Some(secret::Type::TlsCertificate(t)) = s.r#type else {
            panic!("not a certificate")
        };
        let Some(envoy_types::pb::envoy::config::core::v3::data_source::Specifier::InlineBytes(
            pem,
        )) = t.certificate_chain.unwrap().specifier
        else {
            panic!("not inline")
        };
        let (_, p) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let cert = p.parse_x509().unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        san.value
            .general_names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect()
    }

    #[test]
    fn only_nodes_that_name_secrets_get_them_and_renewal_republishes_only_their_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = authority(tmp.path(), Duration::from_millis(1500));
        let demand = crate::xds::variants::Demand::default();
        let per_type = crate::xds::VariantKey {
            delta: false,
            cluster: "xds_cluster".into(),
        };
        let _hold = demand.hold(per_type.clone()).unwrap();
        let mut p = Pipeline::new(demo())
            .with_demand(demand)
            .with_ca(Some(ca.clone()));
        assert!(p.reload(None));
        let keys = p.cache.keys();
        for k in &keys {
            assert!(
                p.cache.get(k).unwrap().types[SDS].resources.is_empty(),
                "{k}"
            );
        }
        assert!(ca.is_empty(), "a mesh without acm issues nothing");
        assert!(p.next_renewal().is_none());

        let backend = ProxyId::virtual_node("demo", "backend-v1");
        p.builder
            .pretend_secrets(&backend, &[IDENTITY_SECRET, TRUST_SECRET]);
        p.refresh_variants();
        let key = backend.to_string();
        let before = p.cache.get(&key).unwrap();
        let names: Vec<&String> = before.types[SDS].resources.keys().collect();
        assert_eq!(names, [IDENTITY_SECRET, TRUST_SECRET]);
        let variant = before.variant(&per_type).expect("the per-type variant");
        assert!(
            Arc::ptr_eq(&variant.types[SDS], &before.types[SDS]),
            "secrets go to per-type streams too"
        );
        let sans = cert_names(&p, &key);
        assert_eq!(
            sans,
            [
                "URI(\"spiffe://meshplane.local/mesh/demo/virtualNode/backend-v1\")",
                "DNSName(\"backend.demo.local\")"
            ]
        );
        let others: Vec<_> = keys
            .iter()
            .filter(|k| **k != key)
            .map(|k| p.cache.get(k).unwrap())
            .collect();
        assert!(others.iter().all(|s| s.types[SDS].resources.is_empty()));

        let due = p.next_renewal().expect("a certificate to renew");
        std::thread::sleep(due.duration_since(SystemTime::now()).unwrap_or_default());
        p.renew_due();
        let after = p.cache.get(&key).unwrap();
        assert_ne!(
            after.types[SDS].version, before.types[SDS].version,
            "renewed"
        );
        for t in 0..4 {
            assert!(
                Arc::ptr_eq(&after.types[t], &before.types[t]),
                "type {t} untouched"
            );
        }
        let now: Vec<_> = keys
            .iter()
            .filter(|k| **k != key)
            .map(|k| p.cache.get(k).unwrap())
            .collect();
        for (a, b) in others.iter().zip(&now) {
            assert!(Arc::ptr_eq(a, b), "other nodes are not republished");
        }
        assert!(p.next_renewal().unwrap() > SystemTime::now());
    }

    #[test]
    fn a_node_needing_secrets_without_a_ca_is_a_problem_at_its_document() {
        let mut p = Pipeline::new(demo());
        assert!(p.reload(None));
        let model = p.status().serving.clone().unwrap();
        let id = ProxyId::virtual_node("demo", "frontend");
        let built = Built {
            key: id.to_string(),
            id,
            entity: 0,
            snapshot: Default::default(),
            deps: Vec::new(),
            secrets: Vec::new(),
            unserved: vec![IDENTITY_SECRET.into()],
        };
        let problems = unserved(&model, &[built]).unwrap_err();
        let text = problems[0].to_string();
        assert!(text.starts_with("frontend.yaml:"), "{text}");
        assert!(text.contains("--ca-dir") && text.contains("acm"), "{text}");
        // And the pipeline itself: a node naming secrets, no CA: nothing is published.
        let backend = ProxyId::virtual_node("demo", "backend-v1");
        let before = p.cache.get(&backend.to_string()).unwrap();
        p.builder.pretend_secrets(&backend, &[IDENTITY_SECRET]);
        p.refresh_variants();
        assert!(Arc::ptr_eq(
            &before,
            &p.cache.get(&backend.to_string()).unwrap()
        ));
    }

    #[test]
    fn a_reload_that_needs_secrets_without_a_ca_is_rejected_and_the_last_good_one_serves() {
        let tmp = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(demo()).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
        }
        let mut p = Pipeline::new(tmp.path().to_path_buf());
        assert!(p.reload(None));
        let frontend = ProxyId::virtual_node("demo", "frontend");
        let before = p.cache.get(&frontend.to_string()).unwrap();
        // An edit of the router re-assembles the frontend (it calls the routed service) from
        // its cached own parts, which now name a secret.
        p.builder.pretend_secrets(&frontend, &[TRUST_SECRET]);
        let router = tmp.path().join("router.yaml");
        let text = std::fs::read_to_string(&router).unwrap();
        std::fs::write(&router, text.replace("weight: 90", "weight: 80")).unwrap();
        assert!(!p.reload(None), "rejected");
        let st = p.status();
        assert_eq!(st.reloads_rejected, 1);
        let problem = st
            .last
            .problems
            .iter()
            .find(|q| q.message.contains("--ca-dir"));
        let problem = problem.expect("a problem asking for --ca-dir");
        assert_eq!(problem.file, std::path::Path::new("frontend.yaml"));
        assert!(Arc::ptr_eq(
            &before,
            &p.cache.get(&frontend.to_string()).unwrap()
        ));
    }
}
