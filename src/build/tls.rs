//! Client-policy TLS in the builder. A target's cluster is shared by every client of its service,
//! but a client policy belongs to one client: so the clusters with TLS are cached per (target,
//! policy) beside the plain ones, and a node whose backend has a policy takes that backend's
//! targets' clusters from there. The cluster keeps App Mesh's name (a route table refers to it by
//! name, and route tables are shared too); within one node's snapshot there is one cluster per
//! target, the TLS one when any of the node's backends asks for TLS towards it.
//!
//! An entry depends on its target node only: the policy is part of its key, and a policy edit is
//! an edit of the client, whose own parts (and so its frame's policies) are rebuilt.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::encode::upstream;
use super::{Builder, EgressFrame, Service, Upstream};
use crate::model::{MeshModel, ProxyId};
use crate::spec::ClientTls;
use crate::translate::{self, Target};

/// A target as reached under one client policy.
pub(super) type TlsTarget = (Target, Arc<ClientTls>);

impl Builder {
    /// Step 3: the TLS clusters the nodes' client policies need that are not cached, once each.
    pub(super) fn build_tls_upstreams(&mut self, model: &MeshModel, ids: &[ProxyId]) {
        self.prune_tls_upstreams();
        let mut missing: Vec<(String, TlsTarget)> = Vec::new();
        let mut seen: HashSet<(&str, TlsTarget)> = HashSet::new();
        for id in ids {
            let Some(frame) = self.own.get(id).and_then(|o| o.egress.as_ref()) else {
                continue;
            };
            let cached = self.tls_upstreams.get(&id.mesh);
            for (vs, tls) in &frame.tls {
                let Some(s) = self.services.get(&id.mesh).and_then(|m| m.get(vs)) else {
                    continue;
                };
                for t in &s.targets {
                    let key = (t.clone(), tls.clone());
                    if cached.is_some_and(|m| m.contains_key(&key))
                        || !seen.insert((id.mesh.as_str(), key.clone()))
                    {
                        continue;
                    }
                    missing.push((id.mesh.clone(), key));
                }
            }
        }
        let made = crate::par::map_chunks(
            &missing,
            16,
            || (),
            |_, (mesh, (t, tls))| {
                let m = model.meshes.get(mesh)?;
                let up = upstream(mesh, t, translate::target_cluster_tls(m, t, tls));
                Some((mesh.clone(), (t.clone(), tls.clone()), Arc::new(up)))
            },
        );
        for (mesh, key, up) in made {
            self.tls_upstreams.entry(mesh).or_default().insert(key, up);
        }
    }

    /// Drops the TLS clusters of policies no cached node has any more (a client's policy was
    /// edited or removed), so edits do not pile up entries that nothing reads.
    fn prune_tls_upstreams(&mut self) {
        if self.tls_upstreams.is_empty() {
            return;
        }
        let mut live: HashMap<&str, HashSet<&ClientTls>> = HashMap::new();
        for (id, own) in &self.own {
            for (_, tls) in own.egress.iter().flat_map(|e| &e.tls) {
                live.entry(id.mesh.as_str()).or_default().insert(&**tls);
            }
        }
        for (mesh, m) in self.tls_upstreams.iter_mut() {
            let l = live.get(mesh.as_str());
            m.retain(|(_, tls), _| l.is_some_and(|l| l.contains(&**tls)));
        }
        self.tls_upstreams.retain(|_, m| !m.is_empty());
    }

    /// The clusters of service `s` (backend `vs` of the node with `frame`) when the node's client
    /// policy for `vs` originates TLS; `None` for a plain backend.
    pub(super) fn secured_upstreams<'a>(
        &'a self,
        mesh: &str,
        frame: &'a EgressFrame,
        vs: &str,
        s: &'a Service,
    ) -> Option<impl Iterator<Item = &'a Arc<Upstream>> + 'a> {
        let i = frame
            .tls
            .binary_search_by(|(b, _)| b.as_str().cmp(vs))
            .ok()?;
        let tls = &frame.tls[i].1;
        let cached = self.tls_upstreams.get(mesh)?;
        Some(
            s.targets
                .iter()
                .filter_map(move |t| cached.get(&(t.clone(), tls.clone()))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TLS clusters are made once per (target, policy) and dropped with the last node whose
    /// frame names their policy.
    #[test]
    fn tls_clusters_are_kept_while_a_node_names_their_policy() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/tls/mesh");
        let model = crate::app::load(&dir).model.expect("valid");
        let ids: Vec<ProxyId> = ["web", "batch", "api"]
            .iter()
            .map(|n| ProxyId::virtual_node("tls", n))
            .collect();
        let mut b = Builder::default();
        b.build(&model, &ids, &[]);
        // web: api (defaults), legacy and billing (their own policies); batch none.
        assert_eq!(b.tls_upstreams["tls"].len(), 3);
        b.own.retain(|id, _| id.name != "web");
        b.build(&model, &ids[1..], &[]);
        assert!(b.tls_upstreams.is_empty());
    }
}
