//! The resource names streams subscribe to, held once per distinct set: the thousands of streams
//! of one node (or of identical nodes) ask for the same endpoints and routes, and each would
//! otherwise keep its own copy of every name.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// A set of resource names, shared by every stream subscribed to exactly these.
pub type Names = Arc<BTreeSet<String>>;

/// Sets that some stream holds, by content hash; entries whose sets are gone are swept as the
/// table grows, so it never holds more than twice the live sets (plus the sweep's slack).
#[derive(Default)]
struct Table {
    sets: HashMap<u64, Vec<Weak<BTreeSet<String>>>>,
    /// Entries when last swept.
    swept_at: usize,
    /// Seeded per process: clients choose the names, so they must not choose the buckets.
    hasher: RandomState,
}

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default)
}

/// The shared copy of `set` (the empty set is never stored).
pub fn intern(set: BTreeSet<String>) -> Names {
    if set.is_empty() {
        return Arc::new(set);
    }
    // A panic while holding the table cannot leave it inconsistent for the next caller.
    let mut t = table().lock().unwrap_or_else(|e| e.into_inner());
    let key = t.hasher.hash_one(&set);
    let bucket = t.sets.entry(key).or_default();
    if let Some(found) = bucket.iter().filter_map(Weak::upgrade).find(|s| **s == set) {
        return found;
    }
    let shared = Arc::new(set);
    bucket.retain(|w| w.strong_count() > 0);
    bucket.push(Arc::downgrade(&shared));
    let entries = t.sets.len();
    if entries >= 1024 && entries >= 2 * t.swept_at {
        t.sets.retain(|_, b| {
            b.retain(|w| w.strong_count() > 0);
            !b.is_empty()
        });
        t.swept_at = t.sets.len();
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn equal_sets_share_one_copy_while_held() {
        let a = intern(set(&["names-test-a", "names-test-b"]));
        let b = intern(set(&["names-test-b", "names-test-a"]));
        assert!(Arc::ptr_eq(&a, &b));
        let c = intern(set(&["names-test-a"]));
        assert!(!Arc::ptr_eq(&a, &c));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(
            weak.upgrade().is_none(),
            "the table does not keep a set alive"
        );
    }
}
