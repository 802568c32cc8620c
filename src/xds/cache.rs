//! The snapshot cache: the latest snapshot per node, delivered through `watch` channels.
//!
//! A watch channel keeps only the newest value, so a slow stream never queues stale snapshots and
//! publishing never waits for any stream. A node's entry lives while it has a snapshot or a
//! stream following it: an id that no file defines costs nothing once its last stream ends.

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
                let removed = snapshot.is_none();
                tx.send_if_modified(|cur| {
                    let same = match (&*cur, &snapshot) {
                        (Some(a), Some(b)) => a.same_content(b),
                        (a, b) => a.is_none() && b.is_none(),
                    };
                    if !same {
                        replaced = Some(std::mem::replace(cur, snapshot));
                    }
                    !same
                });
                // A node removed from the files keeps its entry only while a stream follows it.
                if removed && tx.receiver_count() == 0 {
                    nodes.remove(node);
                }
                replaced
            }
            None => {
                let snapshot = snapshot?;
                nodes.insert(node.to_string(), watch::channel(Some(snapshot)).0);
                Some(None)
            }
        }
    }

    /// The current snapshot of `node`, if any.
    pub fn get(&self, node: &str) -> Option<Arc<Snapshot>> {
        self.lock().get(node).and_then(|tx| tx.borrow().clone())
    }

    /// Follows `node`'s snapshots; a node not published yet starts with `None`, and gets its
    /// snapshot as soon as one is published. Dropping the subscription lets go of the entry.
    pub fn subscribe(&self, node: &str) -> Subscription {
        let mut nodes = self.lock();
        let rx = nodes
            .entry(node.to_string())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe();
        Subscription {
            rx,
            entry: Some((self.clone(), node.to_string())),
        }
    }

    /// The nodes that have a snapshot or a subscriber.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.lock().keys().cloned().collect();
        k.sort();
        k
    }

    /// Every node with a snapshot and its four versions, by node (for comparisons: versions are
    /// content hashes, so equal versions mean equal bytes).
    pub fn versions(&self) -> std::collections::BTreeMap<String, [String; 4]> {
        self.keys()
            .into_iter()
            .filter_map(|k| self.get(&k).map(|s| (k, s.versions().map(str::to_owned))))
            .collect()
    }

    /// Entries: nodes with a snapshot, and ids streams wait on.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nodes with a published snapshot.
    pub fn published(&self) -> usize {
        self.lock()
            .values()
            .filter(|tx| tx.borrow().is_some())
            .count()
    }

    /// Drops `node`'s entry when it has no snapshot and `rx`, about to be dropped, is its last
    /// subscriber. Under the lock, so a stream subscribing meanwhile keeps the entry alive.
    fn release(&self, node: &str) {
        let mut nodes = self.lock();
        if nodes
            .get(node)
            .is_some_and(|tx| tx.borrow().is_none() && tx.receiver_count() <= 1)
        {
            nodes.remove(node);
        }
    }
}

/// A stream's hold on one node's snapshots: the channel, and (for a cached node) the entry to let
/// go of when the stream ends.
pub struct Subscription {
    rx: SnapshotRx,
    entry: Option<(SnapshotCache, String)>,
}

impl Subscription {
    /// A channel no snapshot ever arrives on, for ids that cannot name a node.
    pub fn detached() -> Subscription {
        Subscription {
            rx: watch::channel(None).1,
            entry: None,
        }
    }
}

impl std::ops::Deref for Subscription {
    type Target = SnapshotRx;
    fn deref(&self) -> &SnapshotRx {
        &self.rx
    }
}

impl std::ops::DerefMut for Subscription {
    fn deref_mut(&mut self) -> &mut SnapshotRx {
        &mut self.rx
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some((cache, node)) = self.entry.take() {
            cache.release(&node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Option<Arc<Snapshot>> {
        Some(Arc::new(Snapshot::default()))
    }

    #[test]
    fn an_unpublished_node_is_forgotten_when_its_last_subscriber_leaves() {
        let cache = SnapshotCache::new();
        let a = cache.subscribe("ghost");
        let b = cache.subscribe("ghost");
        assert_eq!(cache.len(), 1);
        drop(a);
        assert_eq!(cache.len(), 1, "b still follows it");
        drop(b);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_waiting_subscriber_gets_the_snapshot_and_a_published_node_stays() {
        let cache = SnapshotCache::new();
        let mut rx = cache.subscribe("n");
        assert!(rx.borrow_and_update().is_none());
        assert!(cache.set("n", snap()));
        assert!(rx.has_changed().unwrap_or(false));
        assert!(rx.borrow_and_update().is_some());
        drop(rx);
        assert_eq!((cache.len(), cache.published()), (1, 1));
    }

    #[test]
    fn a_removed_node_is_forgotten_now_or_when_its_streams_end() {
        let cache = SnapshotCache::new();
        cache.set("idle", snap());
        cache.set("followed", snap());
        let rx = cache.subscribe("followed");
        cache.set("idle", None);
        cache.set("followed", None);
        assert_eq!(cache.keys(), vec!["followed".to_string()]);
        assert_eq!(cache.published(), 0);
        drop(rx);
        assert!(cache.is_empty());
        assert!(!cache.set("never", None));
        assert!(cache.is_empty());
    }
}
