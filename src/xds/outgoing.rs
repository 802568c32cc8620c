//! A response a protocol machine decided to send, before it is encoded: which type, version and
//! nonce, and which resources (the whole type snapshot, or a list). Encoding
//! ([`Outgoing::encode`]) shares one body among every stream sending a whole type snapshot
//! (see [`super::wire`]); the protobuf message ([`Outgoing::to_sotw`]) is for unary fetches and
//! tests.

use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
#[cfg(test)]
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryResponse, Resource as DeltaResource,
};

use super::wire::{self, Encoded};
use super::{Resource, TypeSnapshot, TYPE_ORDER};

/// The resources a response carries.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every resource of this type snapshot (the usual case, shared by all its streams).
    All(Arc<TypeSnapshot>),
    /// These, in name order.
    Listed(Vec<Arc<Resource>>),
}

impl Selection {
    /// `listed`, or the whole of `ts` when that is what it holds (the same names, at the same
    /// version), so that the body can be shared.
    pub fn of(ts: &Arc<TypeSnapshot>, version: &str, listed: Vec<Arc<Resource>>) -> Selection {
        if version == ts.version && listed.len() == ts.resources.len() {
            Selection::All(ts.clone())
        } else {
            Selection::Listed(listed)
        }
    }

    fn iter(&self) -> Iter<'_> {
        match self {
            Selection::All(ts) => Iter::All(ts.resources.values()),
            Selection::Listed(rs) => Iter::Listed(rs.iter()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Selection::All(ts) => ts.resources.len(),
            Selection::Listed(rs) => rs.len(),
        }
    }
}

/// The resources of a [`Selection`], in name order.
#[derive(Clone)]
pub enum Iter<'a> {
    All(std::collections::btree_map::Values<'a, String, Arc<Resource>>),
    Listed(std::slice::Iter<'a, Arc<Resource>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Resource;

    fn next(&mut self) -> Option<&'a Resource> {
        match self {
            Iter::All(i) => i.next().map(|r| &**r),
            Iter::Listed(i) => i.next().map(|r| &**r),
        }
    }
}

/// One response of one stream.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Index of the type in [`TYPE_ORDER`].
    pub type_index: usize,
    /// SotW: the version; delta: the system version.
    pub version: String,
    pub nonce: String,
    pub resources: Selection,
    /// Delta only: names the client should drop. `None`: a state-of-the-world response.
    pub removed: Option<Vec<String>>,
}

impl Outgoing {
    pub fn type_url(&self) -> &'static str {
        TYPE_ORDER[self.type_index]
    }

    /// Resources carried and removed (for logs and metrics).
    pub fn count(&self) -> usize {
        self.resources.len() + self.removed.as_ref().map_or(0, Vec::len)
    }

    /// Encoded resource bytes carried (for metrics).
    pub fn bytes(&self) -> usize {
        self.resources.iter().map(|r| r.any.value.len()).sum()
    }

    /// The response on the wire. A whole type snapshot's body is encoded once and shared.
    pub fn encode(&self) -> Encoded {
        let url = self.type_url();
        match &self.removed {
            None => {
                let make = || wire::sotw_body(&self.version, url, self.resources.iter());
                let body = match &self.resources {
                    Selection::All(ts) => ts.bodies.sotw(make),
                    Selection::Listed(_) => make().into(),
                };
                Encoded::new(wire::sotw::NONCE, &self.nonce, body)
            }
            Some(removed) => {
                let make = || wire::delta_body(&self.version, url, self.resources.iter(), removed);
                let body = match &self.resources {
                    Selection::All(ts) if removed.is_empty() => ts.bodies.delta(make),
                    _ => make().into(),
                };
                Encoded::new(wire::delta::NONCE, &self.nonce, body)
            }
        }
    }

    /// As a state-of-the-world message (unary fetches, and tests).
    pub fn to_sotw(&self) -> DiscoveryResponse {
        DiscoveryResponse {
            version_info: self.version.clone(),
            resources: self.resources.iter().map(|r| r.any.clone()).collect(),
            type_url: self.type_url().into(),
            nonce: self.nonce.clone(),
            ..Default::default()
        }
    }

    /// As a delta message (the state machine's tests read responses this way).
    #[cfg(test)]
    pub fn to_delta(&self) -> DeltaDiscoveryResponse {
        DeltaDiscoveryResponse {
            system_version_info: self.version.clone(),
            resources: self
                .resources
                .iter()
                .map(|r| DeltaResource {
                    name: r.name.clone(),
                    version: r.version.clone(),
                    resource: Some(r.any.clone()),
                    ..Default::default()
                })
                .collect(),
            type_url: self.type_url().into(),
            removed_resources: self.removed.clone().unwrap_or_default(),
            nonce: self.nonce.clone(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use envoy_types::pb::google::protobuf::Any;
    use prost::Message;

    use super::*;

    fn ts(names: &[&str]) -> Arc<TypeSnapshot> {
        let rs: BTreeMap<String, Arc<Resource>> = names
            .iter()
            .map(|n| {
                let any = Any {
                    type_url: super::super::CLUSTER.into(),
                    value: n.as_bytes().to_vec(),
                };
                (n.to_string(), Arc::new(Resource::new(n.to_string(), any)))
            })
            .collect();
        Arc::new(TypeSnapshot::new(rs))
    }

    #[test]
    fn streams_sending_a_whole_snapshot_share_its_body_and_differ_by_nonce() {
        let t = ts(&["a", "b"]);
        let all: Vec<_> = t.resources.values().cloned().collect();
        let sel = Selection::of(&t, &t.version, all);
        assert!(matches!(sel, Selection::All(_)));
        let out = |nonce: &str| Outgoing {
            type_index: 0,
            version: t.version.clone(),
            nonce: nonce.into(),
            resources: sel.clone(),
            removed: None,
        };
        let (a, b) = (out("1").encode(), out("2").encode());
        assert_eq!(a.body.as_ptr(), b.body.as_ptr(), "one body for both");
        let decoded = DiscoveryResponse::decode(&b.message()[..]).unwrap();
        assert_eq!(decoded, out("2").to_sotw());
    }

    #[test]
    fn a_subset_or_another_version_is_listed() {
        let t = ts(&["a", "b"]);
        let one = vec![t.resources["a"].clone()];
        assert!(matches!(
            Selection::of(&t, &t.version, one),
            Selection::Listed(_)
        ));
        let all: Vec<_> = t.resources.values().cloned().collect();
        assert!(matches!(
            Selection::of(&t, "other+1", all),
            Selection::Listed(_)
        ));
    }

    #[test]
    fn a_delta_response_with_removals_decodes_as_its_message() {
        let t = ts(&["a"]);
        let o = Outgoing {
            type_index: 1,
            version: t.version.clone(),
            nonce: "9".into(),
            resources: Selection::All(t.clone()),
            removed: Some(vec!["gone".into()]),
        };
        let decoded = DeltaDiscoveryResponse::decode(&o.encode().message()[..]).unwrap();
        assert_eq!(decoded, o.to_delta());
        assert_eq!(o.count(), 2);
    }
}
