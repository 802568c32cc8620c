//! The snapshot cache: the latest snapshot per node, delivered through `watch` channels.
//!
//! A watch channel keeps only the newest value, so a slow stream never queues stale snapshots and
//! publishing never waits for any stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::Snapshot;

pub type SnapshotRx = watch::Receiver<Option<Arc<Snapshot>>>;
type NodeMap = HashMap<String, watch::Sender<Option<Arc<Snapshot>>>>;

#[derive(Debug, Default, Clone)]
pub struct SnapshotCache {
    nodes: Arc<Mutex<NodeMap>>,
}

impl SnapshotCache {
    pub fn new() -> SnapshotCache {
        SnapshotCache::default()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Option<Arc<Snapshot>>>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts), so a
        // poisoned lock is still usable.
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `snapshot` for `node`; returns true when it differs from what the node had.
    pub fn set(&self, node: &str, snapshot: Option<Arc<Snapshot>>) -> bool {
        self.replace(node, snapshot).is_some()
    }

    /// Publishes `snapshot` for `node` when it differs from what the node had, and then returns
    /// what it replaced. The replaced snapshot goes back to the caller, so freeing it never
    /// happens under the lock streams take to find their node.
    pub fn replace(
        &self,
        node: &str,
        snapshot: Option<Arc<Snapshot>>,
    ) -> Option<Option<Arc<Snapshot>>> {
        let mut nodes = self.lock();
        match nodes.get(node) {
            Some(tx) => {
                let mut replaced = None;
                tx.send_if_modified(|cur| {
                    let same = match (&*cur, &snapshot) {
                        (Some(a), Some(b)) => a.versions() == b.versions(),
                        (a, b) => a.is_none() && b.is_none(),
                    };
                    if !same {
                        replaced = Some(std::mem::replace(cur, snapshot));
                    }
                    !same
                });
                replaced
            }
            None => {
                let changed = snapshot.is_some();
                nodes.insert(node.to_string(), watch::channel(snapshot).0);
                changed.then_some(None)
            }
        }
    }

    /// The current snapshot of `node`, if any.
    pub fn get(&self, node: &str) -> Option<Arc<Snapshot>> {
        self.lock().get(node).and_then(|tx| tx.borrow().clone())
    }

    /// Follows `node`'s snapshots; a node not published yet starts with `None`.
    pub fn subscribe(&self, node: &str) -> SnapshotRx {
        let mut nodes = self.lock();
        nodes
            .entry(node.to_string())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// The nodes that have (or had) a snapshot or a subscriber.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.lock().keys().cloned().collect();
        k.sort();
        k
    }
}
