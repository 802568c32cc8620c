//! Client-policy TLS in the builder. A target's cluster is shared by every client of its service,
//! but a client policy belongs to one client: so the clusters with TLS are cached per (target,
//! policy) beside the plain ones, and a node whose backend has a policy takes that backend's
//! targets' clusters from there. The cluster keeps App Mesh's name (a route table refers to it by
//! name, and route tables are shared too); within one node's snapshot there is one cluster per
//! target, the TLS one when any of the node's backends asks for TLS towards it.
//!
//! An entry depends on its target node only: the policy is part of its key, and a policy edit is
//! an edit of the client, whose own parts (and so its frame's policies) are rebuilt.

use std::collections::HashSet;
use std::sync::Arc;

use super::{upstream, Builder, EgressFrame, Service, Upstream};
use crate::model::{MeshModel, ProxyId};
use crate::spec::ClientTls;
use crate::translate::{self, Target};

/// A target as reached under one client policy.
pub(super) type TlsTarget = (Target, Arc<ClientTls>);

impl Builder {
    /// Step 3: the TLS clusters the nodes' client policies need that are not cached, once each.
    pub(super) fn build_tls_upstreams(&mut self, model: &MeshModel, ids: &[ProxyId]) {
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
