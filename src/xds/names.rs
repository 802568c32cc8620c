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

/// Whether the names of a request (`*` aside) are exactly `current`, decided without building a
/// set when it can be: every ACK repeats the names (an Envoy's 50 endpoints, say), and copying
/// them into a new set to compare was a tenth of the server's CPU in a push to 5,000 sidecars.
/// `None` when only a set can tell: every name is in `current`, as many as it holds, but not in
/// strictly ascending order (so some may repeat).
pub fn same(requested: &[String], current: &BTreeSet<String>) -> Option<bool> {
    let mut count = 0;
    let mut ascending = true;
    let mut previous: Option<&str> = None;
    for name in requested.iter().filter(|n| *n != "*") {
        if !current.contains(name) {
            return Some(false);
        }
        ascending &= previous.is_none_or(|p| p < name.as_str());
        previous = Some(name);
        count += 1;
    }
    // All requested names are in `current`: distinct ones are at most `count`.
    if count < current.len() {
        return Some(false);
    }
    // Strictly ascending means distinct, so `count` distinct names all in a set of that size.
    (ascending && count == current.len()).then_some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_names_without_a_set_when_it_can_tell() {
        let cur = set(&["a", "b", "c"]);
        let v = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(same(&v(&["a", "b", "c"]), &cur), Some(true));
        assert_eq!(same(&v(&["*", "a", "b", "c"]), &cur), Some(true));
        assert_eq!(same(&v(&["a", "b"]), &cur), Some(false));
        assert_eq!(same(&v(&["a", "b", "d"]), &cur), Some(false));
        assert_eq!(same(&v(&["a", "b", "c", "d"]), &cur), Some(false));
        // Out of order or repeated, as many as the set holds: only a set can tell.
        assert_eq!(same(&v(&["c", "b", "a"]), &cur), None);
        assert_eq!(same(&v(&["a", "a", "b"]), &cur), None);
        assert_eq!(same(&v(&["a", "a", "b", "c"]), &cur), None);
        assert_eq!(same(&v(&[]), &BTreeSet::new()), Some(true));
        assert_eq!(same(&v(&["*"]), &BTreeSet::new()), Some(true));
    }

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
