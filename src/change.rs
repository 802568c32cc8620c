//! Change tracking, in one place: entity keys, the identity of what defines each entity, the
//! [`ChangeSet`] between the last published load and this one, and which entities each node's
//! snapshot is built from (a walk of the reference graph in `spec::References`). The validator
//! re-checks, and the builder rebuilds, exactly what a `ChangeSet` touches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::model::{Mesh, ProxyId, ProxyKind};
use crate::source::Document;
use crate::spec::{Kind, References};

/// Identifies a model entity: a hash of its kind, mesh and name. Routes count as part of their
/// router, gateway routes of their gateway. A hash rather than a string: every node records a
/// dozen of these.
pub fn entity_key(kind: Kind, mesh: &str, name: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(kind.native().as_bytes());
    h.update(&[0]);
    h.update(mesh.as_bytes());
    h.update(&[0]);
    h.update(name.as_bytes());
    h.digest()
}

/// Per entity, an identity of the documents defining it: equal values mean the entity is
/// unchanged. Built from the documents' content hashes, so re-parsing a file for an edit of one of
/// its documents leaves the others' entities unchanged. Summing needs no allocation and ignores
/// order (two identical duplicates still differ from one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identities(HashMap<u64, u64>);

impl Identities {
    pub fn of(docs: &[Arc<Document>]) -> Identities {
        let mut m: HashMap<u64, u64> = HashMap::with_capacity(docs.len());
        for d in docs {
            let e = m.entry(d.entity_key()).or_default();
            *e = e.wrapping_add(xxhash_rust::xxh3::xxh3_64(&d.content_hash().to_le_bytes()));
        }
        Identities(m)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The entities whose defining documents differ between two loads: changed, added and removed.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    /// What the later load holds, to be the baseline of the next change set.
    pub current: Identities,
    /// Sorted.
    changed: Vec<u64>,
    set: HashSet<u64>,
    /// No baseline: everything is new.
    everything: bool,
}

impl ChangeSet {
    /// From `previous` to `current`; an empty `previous` (the first load, or after the caches were
    /// dropped) marks everything as changed.
    pub fn between(previous: &Identities, current: Identities) -> ChangeSet {
        let (prev, now) = (&previous.0, &current.0);
        let mut changed: Vec<u64> = now
            .iter()
            .filter(|(k, v)| prev.get(*k) != Some(*v))
            .map(|(k, _)| *k)
            .chain(prev.keys().filter(|k| !now.contains_key(*k)).copied())
            .collect();
        changed.sort_unstable();
        ChangeSet {
            set: changed.iter().copied().collect(),
            everything: prev.is_empty(),
            changed,
            current,
        }
    }

    /// Whether there was no baseline, so nothing built before can be kept.
    pub fn everything(&self) -> bool {
        self.everything
    }

    /// The changed entity keys, sorted.
    pub fn changed(&self) -> &[u64] {
        &self.changed
    }

    pub fn contains(&self, key: u64) -> bool {
        self.set.contains(&key)
    }

    /// The changed keys as a set.
    pub fn set(&self) -> &HashSet<u64> {
        &self.set
    }

    /// Whether something built from the sorted `deps` must be rebuilt. An edit changes a handful
    /// of entities: probing the sorted dependencies for those few beats hashing every dependency.
    pub fn touches(&self, deps: &[u64]) -> bool {
        if self.everything {
            return true;
        }
        if self.changed.len() <= 16 {
            self.changed.iter().any(|c| deps.binary_search(c).is_ok())
        } else {
            deps.iter().any(|d| self.set.contains(d))
        }
    }
}

/// The entities a node's own resources are built from: its mesh and itself.
pub fn own_dependencies(id: &ProxyId) -> [u64; 2] {
    let node_kind = match id.kind {
        ProxyKind::VirtualNode => Kind::VirtualNode,
        ProxyKind::VirtualGateway => Kind::VirtualGateway,
    };
    [
        entity_key(Kind::Mesh, &id.mesh, &id.mesh),
        entity_key(node_kind, &id.mesh, &id.name),
    ]
}

/// The entities a client's view of backend `vs_name` is built from (its virtual hosts and its
/// targets' clusters): the mesh, the service, what the service names (a provider node, or a
/// router), and what a providing router's routes name (target nodes). Sorted and unique.
pub fn service_dependencies(mesh: &Mesh, vs_name: &str) -> Vec<u64> {
    let m = mesh.name.as_str();
    let mut deps = vec![
        entity_key(Kind::Mesh, m, m),
        entity_key(Kind::VirtualService, m, vs_name),
    ];
    let named = mesh
        .virtual_services
        .get(vs_name)
        .map(|vs| vs.spec.referenced())
        .unwrap_or_default();
    for (kind, name) in named {
        deps.push(entity_key(kind, m, name));
        let Some(router) = mesh
            .virtual_routers
            .get(name)
            .filter(|_| kind == Kind::VirtualRouter)
        else {
            continue;
        };
        for route in router.routes.values() {
            route
                .spec
                .references(&mut |k, n| deps.push(entity_key(k, m, n)));
        }
    }
    deps.sort_unstable();
    deps.dedup();
    deps
}

/// Every entity whose change can change `id`'s snapshot: its own and those of each backend (for a
/// virtual gateway, each target service of its gateway routes, which are part of its own entity).
pub fn node_dependencies(mesh: &Mesh, id: &ProxyId) -> Vec<u64> {
    let mut deps = own_dependencies(id).to_vec();
    let mut visit = |kind: Kind, vs: &str| {
        if kind == Kind::VirtualService {
            deps.extend(service_dependencies(mesh, vs));
        }
    };
    match id.kind {
        ProxyKind::VirtualNode => {
            if let Some(node) = mesh.virtual_nodes.get(&id.name) {
                node.spec.references(&mut visit);
            }
        }
        ProxyKind::VirtualGateway => {
            for ((gw, _), route) in &mesh.gateway_routes {
                if *gw == id.name {
                    route.spec.references(&mut visit);
                }
            }
        }
    }
    deps.sort_unstable();
    deps.dedup();
    deps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(pairs: &[(u64, u64)]) -> Identities {
        Identities(pairs.iter().copied().collect())
    }

    #[test]
    fn a_change_set_holds_changed_added_and_removed_entities() {
        let before = ids(&[(1, 10), (2, 20), (3, 30)]);
        let c = ChangeSet::between(&before, ids(&[(1, 10), (2, 21), (4, 40)]));
        assert_eq!(c.changed(), [2, 3, 4]);
        assert!(!c.everything());
        assert!(c.touches(&[1, 3]));
        assert!(!c.touches(&[1, 5]));
        let first = ChangeSet::between(&Identities::default(), before);
        assert!(first.everything() && first.touches(&[]));
    }
}
