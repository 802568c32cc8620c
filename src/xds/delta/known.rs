//! What a delta client holds, name by name, kept small: a resource we sent is remembered as the
//! shared resource itself (its name and version are the resource's own), so a stream copies no
//! names or versions for what it sent; only names the client brought (reconnect claims,
//! subscriptions to names that do not exist) are owned.

use std::borrow::Borrow;
use std::collections::HashSet;
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

/// One name the client holds something for.
#[derive(Debug, Clone)]
pub(super) enum Known {
    /// The resource we sent it.
    Sent(Arc<Resource>),
    /// What it said it holds when it reconnected (`initial_resource_versions`).
    Claimed(Box<str>, Held),
    /// Told the name does not exist.
    Gone(Box<str>),
}

impl Known {
    pub(super) fn name(&self) -> &str {
        match self {
            Known::Sent(r) => &r.name,
            Known::Claimed(n, _) | Known::Gone(n) => n,
        }
    }

    /// The content hash of what the client holds under this name, if it holds one of ours.
    pub(super) fn hash(&self) -> Option<u64> {
        match self {
            Known::Sent(r) => Some(r.hash),
            Known::Claimed(_, Held::At(h)) => Some(*h),
            Known::Claimed(_, Held::Other) | Known::Gone(_) => None,
        }
    }

    pub(super) fn is_gone(&self) -> bool {
        matches!(self, Known::Gone(_))
    }
}

// Equal, hashed and looked up by name alone, so the set is a map keyed by `&str`.
impl PartialEq for Known {
    fn eq(&self, other: &Known) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Known {}

impl Hash for Known {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.name().hash(h)
    }
}

impl Borrow<str> for Known {
    fn borrow(&self) -> &str {
        self.name()
    }
}

/// Name → what the client holds.
pub(super) type KnownSet = HashSet<Known>;

/// Records `k`, in place of whatever was known under its name.
pub(super) fn set(known: &mut KnownSet, k: Known) {
    known.replace(k);
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
        let mut k = KnownSet::new();
        set(&mut k, Known::Claimed("a".into(), Held::of("nope")));
        assert_eq!(k.get("a").and_then(Known::hash), None);
        set(&mut k, Known::Sent(r.clone()));
        assert_eq!(k.len(), 1);
        assert_eq!(k.get("a").and_then(Known::hash), Some(r.hash));
        set(&mut k, Known::Gone("a".into()));
        assert!(k.get("a").is_some_and(Known::is_gone));
        assert!(k.remove("a") && k.is_empty());
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
