//! One type's diff for a delta stream: what the client lacks of a type snapshot, either by
//! looking every name up in what it holds, or (when it holds exactly an earlier snapshot) by
//! walking the two snapshots side by side.

use std::sync::Arc;

use super::{DeltaTypeState, Resource, TypeSnapshot};

/// The full diff: every resource of `ts` the stream wants is looked up in what it holds, and
/// everything it holds in `ts`. Needed after subscriptions or `known` changed.
pub(super) fn diff_known(st: &DeltaTypeState, ts: &TypeSnapshot, hold_removals: bool) -> Diff {
    let mut diff = Diff::default();
    for (name, r) in &ts.resources {
        if st.interested(name) && st.known.hash(name) != Some(r.hash) {
            diff.resources.push(r.clone());
        }
    }
    for name in st.known.held() {
        if !ts.resources.contains_key(name) {
            diff.remove(name, hold_removals);
        }
    }
    // Subscribed names that do not exist are reported once as removed.
    for name in st.names.iter() {
        if !ts.resources.contains_key(name) && !st.known.contains(name.as_str()) {
            diff.removed.push(name.clone());
        }
    }
    diff.removed.sort();
    diff.removed.dedup();
    diff
}

/// The diff of a stream that holds exactly `prev` (what it wants of it; subscribed names `prev`
/// lacks were reported removed), by one ordered walk over both snapshots: the same answer as
/// [`diff_known`] without a lookup per name, since a resource both share is one pointer.
pub(super) fn diff_since(
    st: &DeltaTypeState,
    prev: &TypeSnapshot,
    ts: &TypeSnapshot,
    hold: bool,
) -> Diff {
    use std::cmp::Ordering;
    let mut diff = Diff::default();
    let mut old = prev.resources.iter().peekable();
    let mut new = ts.resources.iter().peekable();
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((_, a)), Some((_, b))) if Arc::ptr_eq(a, b) => Ordering::Equal,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        match order {
            Ordering::Less => {
                let Some((name, _)) = old.next() else { break };
                if st.interested(name) {
                    diff.remove(name, hold);
                }
            }
            Ordering::Greater => {
                let Some((name, r)) = new.next() else { break };
                if st.interested(name) {
                    diff.resources.push(r.clone());
                }
            }
            Ordering::Equal => {
                let (Some((_, a)), Some((name, b))) = (old.next(), new.next()) else {
                    break;
                };
                if a.hash != b.hash && st.interested(name) {
                    diff.resources.push(b.clone());
                }
            }
        }
    }
    diff
}

/// What one type's client lacks, worked out by [`DeltaState::diff`].
#[derive(Default)]
pub(super) struct Diff {
    /// Resources to send (the client then holds each at its version), in name order.
    pub resources: Vec<Arc<Resource>>,
    /// Names to remove: deleted, or subscribed but not existing.
    pub removed: Vec<String>,
    /// Some deletions wait for listeners and routes to move off them.
    pub held: bool,
}

impl Diff {
    /// Removes `name` from the client, or notes that a removal waits.
    fn remove(&mut self, name: &str, hold: bool) {
        if hold {
            self.held = true;
        } else {
            self.removed.push(name.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use envoy_types::pb::google::protobuf::Any;

    use super::super::{DeltaDiscoveryRequest, DeltaState, Peers, Snapshot};
    use super::*;
    use crate::xds::{TYPE_COUNT, TYPE_ORDER};

    /// A small deterministic generator (xorshift), so a failure replays.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

    /// `prev` with some resources changed, added or dropped; the rest shared by pointer.
    fn edit(rng: &mut Rng, prev: &TypeSnapshot, t: usize) -> TypeSnapshot {
        let mut out: BTreeMap<String, Arc<Resource>> = prev.resources.clone();
        for name in NAMES {
            match rng.below(6) {
                0 => {
                    out.remove(name);
                }
                1 => {
                    let any = Any {
                        type_url: TYPE_ORDER[t].into(),
                        value: format!("{name}{}", rng.below(3)).into_bytes(),
                    };
                    out.insert(name.into(), Arc::new(Resource::new(name.into(), any)));
                }
                _ => {}
            }
        }
        TypeSnapshot::new(out)
    }

    fn key(d: &Diff) -> (Vec<(String, u64)>, Vec<String>, bool) {
        let rs = d
            .resources
            .iter()
            .map(|r| (r.name.clone(), r.hash))
            .collect();
        (rs, d.removed.clone(), d.held)
    }

    /// Drives one stream through random edits, subscription changes and ACKs; whenever the walk
    /// applies, it must say what the full lookup says.
    fn run(seed: u64, t: usize) -> usize {
        let mut rng = Rng(seed);
        let mut st = DeltaState::new();
        let mut types: [TypeSnapshot; TYPE_COUNT] = Default::default();
        let mut nonce = String::new();
        let mut compared = 0;
        for _ in 0..200 {
            types[t] = edit(&mut rng, &types[t], t);
            let mut req = DeltaDiscoveryRequest {
                type_url: TYPE_ORDER[t].into(),
                response_nonce: nonce.clone(),
                ..Default::default()
            };
            if rng.below(5) == 0 {
                let name = NAMES[rng.below(6) as usize].to_string();
                match rng.below(2) {
                    0 => req.resource_names_subscribe.push(name),
                    _ => req.resource_names_unsubscribe.push(name),
                }
            }
            st.on_request(&req);
            let s = &st.types[t];
            if let (Some(prev), false) = (&s.synced, s.dirty) {
                for hold in [false, true] {
                    let walked = diff_since(s, prev, &types[t], hold);
                    assert_eq!(key(&walked), key(&diff_known(s, &types[t], hold)), "{seed}");
                }
                compared += 1;
            }
            let [c, e, l, r, _] = types.clone();
            let snap = Snapshot::new([c, e, l, r]);
            if let Some(o) = st.responses(Some(&snap), &Peers::default()).first() {
                nonce = o.nonce.clone();
            }
        }
        compared
    }

    #[test]
    fn the_walk_agrees_with_the_full_lookup() {
        let mut compared = 0;
        for seed in 1..50 {
            compared += run(seed, 0) + run(seed * 7919, 1);
        }
        assert!(compared > 1000, "the walk ran {compared} times");
    }
}
