//! Encoding a node's own translated resources into shared bytes: the interner that lets the nodes
//! one worker encodes share identical resources, and the node's `Own` part with its dependencies.

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use super::{EgressFrame, Own};
use crate::model::ProxyId;
use crate::translate;
use crate::translate::Target;
use crate::xds::Resource;

/// Shares identical resources (same name and bytes, such as the egress listener of every node on the
/// same port) between the nodes one worker encodes.
#[derive(Default)]
pub(super) struct Interner(HashMap<(String, u64), Arc<Resource>>);

impl Interner {
    fn intern(&mut self, name: &str, any: Any) -> Arc<Resource> {
        let r = Resource::new(name.to_string(), any);
        self.0
            .entry((r.name.clone(), r.hash))
            .or_insert_with(|| Arc::new(r))
            .clone()
    }
}

pub(super) fn encode_own(
    own: translate::OwnResources,
    intern: &mut Interner,
    mesh: &crate::model::Mesh,
    id: &ProxyId,
) -> Own {
    let own_deps = crate::change::own_dependencies(id);
    let mut deps = own_deps.to_vec();
    let tails = own.egress.iter().flat_map(|e| &e.tail_services);
    for vs in tails.chain(&own.built_from) {
        deps.extend(crate::change::service_dependencies(mesh, vs));
    }
    deps.sort_unstable();
    deps.dedup();
    let routes = own
        .routes
        .iter()
        .map(|rt| intern.intern(&rt.name, pack(&rt.to_proto())))
        .collect();
    let clusters: Vec<Arc<Resource>> = own
        .clusters
        .iter()
        .map(|c| intern.intern(&c.name, pack(c)))
        .collect();
    let listeners: Vec<Arc<Resource>> = own
        .listeners
        .iter()
        .map(|l| intern.intern(&l.name, pack(l)))
        .collect();
    Own {
        secrets: super::secrets::referenced(clusters.iter().chain(&listeners)),
        clusters,
        listeners,
        routes,
        egress: own.egress.map(frame),
        port_frames: own
            .port_tables
            .into_iter()
            .map(|p| (p.port, frame(p.table)))
            .collect(),
        tcp: own.tcp,
        entity: own_deps[1],
        deps,
    }
}

fn frame(e: translate::EgressTable) -> EgressFrame {
    EgressFrame {
        name: e.name,
        backends: e.backends,
        tls: e.tls,
        tail: e.tail_host.map_or_else(Vec::new, |h| {
            let mut b = Vec::new();
            prost::encoding::message::encode(2, &*h, &mut b);
            b
        }),
    }
}

/// A message as the `Any` xDS carries it.
pub fn pack<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

/// A target's cluster (and static endpoints) as encoded parts, built from its node.
pub(super) fn upstream(
    mesh: &str,
    t: &Target,
    (c, cla): (
        envoy_types::pb::envoy::config::cluster::v3::Cluster,
        Option<envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment>,
    ),
) -> super::Upstream {
    let cluster = Arc::new(Resource::new(c.name.clone(), pack(&c)));
    super::Upstream {
        secrets: super::secrets::referenced(std::iter::once(&cluster)),
        cluster,
        endpoints: cla.map(|e| Arc::new(Resource::new(e.cluster_name.clone(), pack(&e)))),
        deps: crate::change::own_dependencies(&ProxyId::virtual_node(mesh, &t.node)),
    }
}
