//! Make-before-break across the per-type streams of one Envoy.
//!
//! Over ADS one stream carries every type, so its state machine orders them itself. Without ADS,
//! an Envoy opens a stream per type — for EDS and RDS one per cluster or route table — over the
//! same connection, and nothing orders them: a route to a new cluster could land before the
//! cluster is warm (503), a cluster could go before the routes moved off it. The streams of one
//! Envoy (same peer address and node id) form a [`Group`]: each publishes how far it has delivered
//! its type ([`Member`]), and each reads the others' progress ([`Peers`]) before it sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::watch;

use super::Snapshot;

/// How far one stream has delivered its type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Member {
    /// The type index in [`super::TYPE_ORDER`].
    pub type_index: usize,
    /// The type-snapshot version Envoy has answered (ACK or NACK) with nothing in flight.
    pub settled: Option<String>,
    /// The names the stream is subscribed to; `None` for wildcard.
    pub names: Option<crate::xds::names::Names>,
}

/// What the other streams of an Envoy have delivered, per type; `None` where no other stream of
/// that Envoy serves the type (always, over ADS).
#[derive(Debug, Clone, Default)]
pub struct Peers {
    types: [Option<Vec<Member>>; 4],
}

impl Peers {
    /// Whether the Envoy holds version `snap.types[t]` of type `t` in full: every stream of that
    /// type settled at it, and between them subscribed to every resource it has. True when no
    /// other stream serves `t`.
    pub fn settled(&self, t: usize, snap: &Snapshot) -> bool {
        let Some(members) = &self.types[t] else {
            return true;
        };
        let ts = &snap.types[t];
        if members
            .iter()
            .any(|m| m.settled.as_deref() != Some(ts.version.as_str()))
        {
            return false;
        }
        if members.iter().any(|m| m.names.is_none()) {
            return true;
        }
        // One union of the members' names, not a scan of every member per resource: without ADS
        // an Envoy has an endpoint stream per cluster, so both counts grow with its clusters.
        let subscribed: std::collections::HashSet<&str> = members
            .iter()
            .flat_map(|m| m.names.iter().flat_map(|n| n.iter()))
            .map(String::as_str)
            .collect();
        ts.resources.keys().all(|n| subscribed.contains(n.as_str()))
    }

    /// Whether another stream of this Envoy serves type `t`.
    pub fn serves(&self, t: usize) -> bool {
        self.types[t].is_some()
    }
}

/// The per-type streams of one Envoy, by stream id.
#[derive(Debug)]
pub struct Group {
    members: Mutex<HashMap<u64, Member>>,
    /// Bumped on every change of any member, so the others look again.
    changed: watch::Sender<u64>,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Member>> {
        // Each update replaces one entry whole: a poisoned map is still consistent.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes stream `id`'s progress; wakes the others when it changed.
    pub fn update(&self, id: u64, member: Member) {
        let changed = {
            let mut m = self.lock();
            if m.get(&id) == Some(&member) {
                false
            } else {
                m.insert(id, member);
                true
            }
        };
        if changed {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The progress of every stream but `id`.
    pub fn peers(&self, id: u64) -> Peers {
        let mut peers = Peers::default();
        for (_, m) in self.lock().iter().filter(|(k, _)| **k != id) {
            if let Some(slot) = peers.types.get_mut(m.type_index) {
                slot.get_or_insert_with(Vec::new).push(m.clone());
            }
        }
        peers
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn leave(&self, id: u64) {
        if self.lock().remove(&id).is_some() {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// One stream's place in its group; leaving the group when dropped.
#[derive(Debug)]
pub struct Membership {
    pub group: Arc<Group>,
    id: u64,
}

impl Membership {
    pub fn update(&self, member: Member) {
        self.group.update(self.id, member)
    }

    pub fn peers(&self) -> Peers {
        self.group.peers(self.id)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.group.leave(self.id);
    }
}

type GroupKey = (String, String);

/// Every group with a live member, by (peer address, node id). Entries go with their last member.
#[derive(Debug, Default)]
pub struct Groups {
    groups: Mutex<HashMap<GroupKey, Weak<Group>>>,
}

impl Groups {
    /// Stream `id` of the Envoy at `peer` with `node_id` joins that Envoy's group.
    pub fn join(&self, peer: &str, node_id: &str, id: u64) -> Membership {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        // Drop entries whose members are all gone, so the map is bounded by live streams.
        groups.retain(|_, g| g.strong_count() > 0);
        let key = (peer.to_string(), node_id.to_string());
        let group = match groups.get(&key).and_then(Weak::upgrade) {
            Some(g) => g,
            None => {
                let g = Arc::new(Group {
                    members: Mutex::default(),
                    changed: watch::channel(0).0,
                });
                groups.insert(key, Arc::downgrade(&g));
                g
            }
        };
        Membership { group, id }
    }

    pub fn len(&self) -> usize {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.values().filter(|g| g.strong_count() > 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Resource, TypeSnapshot};
    use super::*;
    use envoy_types::pb::google::protobuf::Any;

    fn snap_with_endpoints(names: &[&str]) -> Snapshot {
        let eds = TypeSnapshot::new(
            names
                .iter()
                .map(|n| {
                    let r = Resource::new(n.to_string(), Any::default());
                    (n.to_string(), Arc::new(r))
                })
                .collect(),
        );
        let mut s = Snapshot::default();
        s.types[1] = Arc::new(eds);
        s
    }

    fn eds(settled: &str, names: &[&str]) -> Member {
        Member {
            type_index: 1,
            settled: Some(settled.to_string()),
            names: Some(std::sync::Arc::new(
                names.iter().map(|s| s.to_string()).collect(),
            )),
        }
    }

    #[test]
    fn endpoints_are_settled_only_when_every_resource_is_held() {
        let groups = Groups::default();
        let rds = groups.join("p", "n", 1);
        let a = groups.join("p", "n", 2);
        let s = snap_with_endpoints(&["a", "b"]);
        let v = s.types[1].version.clone();
        a.update(eds(&v, &["a"]));
        assert!(!rds.peers().settled(1, &s), "b has no stream yet");
        let b = groups.join("p", "n", 3);
        b.update(eds("old", &["b"]));
        assert!(!rds.peers().settled(1, &s), "b's stream is behind");
        b.update(eds(&v, &["b"]));
        assert!(rds.peers().settled(1, &s));
        assert!(
            !rds.peers().serves(3),
            "nobody serves routes but rds itself"
        );
        drop(b);
        assert!(!rds.peers().settled(1, &s), "b's stream left");
    }

    #[test]
    fn groups_go_with_their_last_member_and_never_mix_envoys() {
        let groups = Groups::default();
        let a = groups.join("p1", "n", 1);
        let b = groups.join("p2", "n", 2);
        a.update(eds("x", &["a"]));
        assert!(!b.peers().serves(1), "another connection is another Envoy");
        assert_eq!(groups.len(), 2);
        drop(a);
        drop(b);
        assert!(groups.is_empty());
    }
}
