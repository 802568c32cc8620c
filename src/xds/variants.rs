//! Per-type variants of snapshots. Resources point at the resources they depend on (a cluster's
//! endpoints, a listener's routes) through a config source: ADS for Envoys on one ADS stream, or a
//! per-type service (SotW or delta) on the cluster the Envoy's bootstrap names for meshplane. Which
//! of those an Envoy needs is only known once it connects, so streams declare it here ([`Demand`])
//! and the build stage makes exactly the variants in demand, before publishing; a stream only ever
//! picks a variant that is ready.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// One per-type variant: the protocol flavour and the bootstrap's cluster name for meshplane.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VariantKey {
    pub delta: bool,
    pub cluster: Arc<str>,
}

/// Distinct variants served at once: Envoys of one mesh use one or two cluster names. Every
/// variant costs a copy of every node's clusters and listeners, and an unauthenticated client
/// chooses the name, so a stream asking for one more is refused.
pub const MAX_VARIANTS: usize = 8;

/// The variants open streams need, with how many streams need each.
#[derive(Debug, Clone)]
pub struct Demand {
    held: Arc<Mutex<BTreeMap<VariantKey, usize>>>,
    /// Bumped when a variant nobody held before is needed.
    added: Arc<watch::Sender<u64>>,
}

impl Default for Demand {
    fn default() -> Demand {
        Demand {
            held: Arc::default(),
            added: Arc::new(watch::channel(0).0),
        }
    }
}

impl Demand {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<VariantKey, usize>> {
        // Single-entry updates: a poisoned lock still holds a consistent map.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Declares that a stream needs `key` until the returned hold is dropped; `None` when
    /// [`MAX_VARIANTS`] others are held already.
    pub fn hold(&self, key: VariantKey) -> Option<Hold> {
        let mut held = self.lock();
        let new = !held.contains_key(&key);
        if new && held.len() >= MAX_VARIANTS {
            return None;
        }
        *held.entry(key.clone()).or_default() += 1;
        drop(held);
        if new {
            self.added.send_modify(|n| *n += 1);
        }
        Some(Hold {
            demand: self.clone(),
            key,
        })
    }

    /// The variants some stream holds, sorted. One nobody holds any more is left out of the next
    /// build, without a rebuild of its own: a reconnecting Envoy would otherwise cost two.
    pub fn wanted(&self) -> Vec<VariantKey> {
        self.lock().keys().cloned().collect()
    }

    /// Changes whenever a variant is needed that was not before.
    pub fn added(&self) -> watch::Receiver<u64> {
        self.added.subscribe()
    }
}

/// A stream's claim on one variant.
#[derive(Debug)]
pub struct Hold {
    demand: Demand,
    key: VariantKey,
}

impl Hold {
    pub fn key(&self) -> &VariantKey {
        &self.key
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = self.demand.lock();
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cluster: &str) -> VariantKey {
        VariantKey {
            delta: false,
            cluster: cluster.into(),
        }
    }

    #[test]
    fn holds_count_and_a_new_variant_is_announced_once() {
        let d = Demand::default();
        let mut added = d.added();
        let a = d.hold(key("a")).unwrap();
        assert!(added.has_changed().unwrap());
        added.mark_unchanged();
        let a2 = d.hold(key("a")).unwrap();
        assert!(!added.has_changed().unwrap(), "already held");
        drop(a);
        assert_eq!(d.wanted(), [key("a")]);
        drop(a2);
        assert!(d.wanted().is_empty());
    }

    #[test]
    fn at_most_max_variants_are_held() {
        let d = Demand::default();
        let holds: Vec<Hold> = (0..MAX_VARIANTS)
            .map(|i| d.hold(key(&i.to_string())).unwrap())
            .collect();
        assert!(d.hold(key("one more")).is_none());
        assert!(d.hold(key("0")).is_some(), "a held one is still available");
        drop(holds);
        assert!(d.hold(key("one more")).is_some());
    }
}
