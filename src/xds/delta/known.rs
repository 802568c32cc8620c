//! What a delta client holds, name by name, kept small: a resource we sent is remembered as the
//! shared resource itself (its name and version are the resource's own), one pointer per name, so
//! a stream copies no names or versions for what it sent; only names the client brought
//! (reconnect claims, subscriptions to names that do not exist) are owned, in a map that is empty
//! on most streams.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::xds::Resource;

/// A version a client says it holds. Our versions are the resources' content hashes in hex
/// ([`Resource::version`]), so a hash is all that is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// The resource whose content hash this is.
    At(u64),
    /// A version that is none of ours (another server's, or garbage): it matches nothing.
    Other,
}

impl Held {
    pub(super) fn of(version: &str) -> Held {
        match u64::from_str_radix(version, 16) {
            Ok(h) if version.len() == 16 => Held::At(h),
            _ => Held::Other,
        }
    }
}

/// A resource we sent, found by its name.
#[derive(Debug, Clone)]
struct Sent(Arc<Resource>);

impl PartialEq for Sent {
    fn eq(&self, other: &Sent) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Sent {}

impl Hash for Sent {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.name.as_str().hash(h)
    }
}

impl Borrow<str> for Sent {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

/// Name → what the client holds. A name is in at most one of the two parts.
#[derive(Debug, Clone, Default)]
pub(super) struct KnownSet {
    /// Resources we sent it.
    sent: HashSet<Sent>,
    /// Names it brought: what it said it holds on reconnect (`initial_resource_versions`), or
    /// `None` once told the name does not exist.
    brought: BTreeMap<Box<str>, Option<Held>>,
}

impl KnownSet {
    /// The client now holds `r`.
    pub(super) fn sent(&mut self, r: Arc<Resource>) {
        self.brought.remove(r.name.as_str());
        self.sent.replace(Sent(r));
    }

    /// The client says it holds `name` at `held`.
    pub(super) fn claimed(&mut self, name: &str, held: Held) {
        self.sent.remove(name);
        self.brought.insert(name.into(), Some(held));
    }

    /// The client was told `name` does not exist.
    pub(super) fn gone(&mut self, name: &str) {
        self.sent.remove(name);
        self.brought.insert(name.into(), None);
    }

    /// The content hash of what the client holds under `name`, if it holds one of ours.
    pub(super) fn hash(&self, name: &str) -> Option<u64> {
        if let Some(s) = self.sent.get(name) {
            return Some(s.0.hash);
        }
        match self.brought.get(name) {
            Some(Some(Held::At(h))) => Some(*h),
            _ => None,
        }
    }

    /// Whether anything is known under `name` (held, or told gone).
    pub(super) fn contains(&self, name: &str) -> bool {
        self.sent.contains(name) || self.brought.contains_key(name)
    }

    /// Forgets `name`; whether anything was known under it.
    pub(super) fn remove(&mut self, name: &str) -> bool {
        self.sent.remove(name) | self.brought.remove(name).is_some()
    }

    /// Keeps only the names `keep` says yes to.
    pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.sent.retain(|s| keep(&s.0.name));
        self.brought.retain(|n, _| keep(n));
    }

    /// The names the client holds something under (not those it was told are gone).
    pub(super) fn held(&self) -> impl Iterator<Item = &str> {
        let sent = self.sent.iter().map(|s| s.0.name.as_str());
        let brought = self.brought.iter().filter(|(_, h)| h.is_some());
        sent.chain(brought.map(|(n, _)| &**n))
    }

    /// Whether the client was told `name` does not exist (and holds nothing under it).
    #[cfg(test)]
    pub(super) fn is_gone(&self, name: &str) -> bool {
        matches!(self.brought.get(name), Some(None))
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.sent.len() + self.brought.len()
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::google::protobuf::Any;

    use super::*;

    #[test]
    fn entries_are_found_by_name_and_replaced_whole() {
        let r = Arc::new(Resource::new(
            "a".into(),
            Any {
                type_url: crate::xds::CLUSTER.into(),
                value: b"x".to_vec(),
            },
        ));
        let mut k = KnownSet::default();
        k.claimed("a", Held::of("nope"));
        assert_eq!(k.hash("a"), None);
        assert!(k.contains("a") && k.held().eq(["a"]));
        k.sent(r.clone());
        assert_eq!(k.len(), 1);
        assert_eq!(k.hash("a"), Some(r.hash));
        k.gone("a");
        assert!(k.is_gone("a") && k.len() == 1 && k.held().next().is_none());
        k.claimed("b", Held::of(&r.version));
        assert_eq!(k.hash("b"), Some(r.hash));
        k.retain(|n| n == "b");
        assert!(!k.contains("a") && k.remove("b") && k.len() == 0);
        assert!(!k.remove("b"));
    }

    #[test]
    fn a_held_version_is_our_hash_or_matches_nothing() {
        let r = Resource::new("a".into(), Any::default());
        assert_eq!(Held::of(&r.version), Held::At(r.hash));
        for foreign in ["", "1", "v1", "zzzzzzzzzzzzzzzz", "0000000000000000ff"] {
            assert_eq!(Held::of(foreign), Held::Other, "{foreign:?}");
        }
    }
}
