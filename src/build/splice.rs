//! Splicing a node's egress route table from its frame and its backends' cached host bytes; the
//! targets' clusters and endpoints, and the services' dependencies, come along.

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;
use prost::Name;

use super::{Builder, EgressFrame, Own, Service};
use crate::xds::Resource;

type ByName = BTreeMap<String, Arc<Resource>>;

/// What a node's snapshot gathers from the backends it splices in besides their hosts: their
/// targets' clusters and endpoints, the entities they are built from, the secrets their TLS fetches.
pub(super) struct Gathered<'a> {
    pub clusters: &'a mut ByName,
    pub endpoints: &'a mut ByName,
    pub deps: &'a mut Vec<u64>,
    pub secrets: &'a mut Vec<String>,
}

impl Own {
    /// The node's egress frames: the egress table (no port), and the transparent layout's
    /// per-port tables.
    pub(super) fn frames(&self) -> impl Iterator<Item = (Option<u32>, &EgressFrame)> {
        let ports = self.port_frames.iter().map(|(p, f)| (Some(*p), f));
        self.egress.iter().map(|f| (None, f)).chain(ports)
    }
}

impl Service {
    /// The hosts to splice: all of them, or those for destination port `port`.
    fn hosts_for(&self, port: Option<u32>) -> &[u8] {
        match port {
            None => &self.hosts,
            Some(p) => self
                .by_port
                .iter()
                .find(|(q, _)| *q == p)
                .map_or(&[][..], |(_, b)| b.as_deref().unwrap_or(&self.hosts)),
        }
    }
}

impl Builder {
    /// The `RouteConfiguration` of `frame` (for destination `port`, or all ports), adding what
    /// its services bring to `into`.
    pub(super) fn splice(
        &self,
        mesh: &str,
        frame: &EgressFrame,
        port: Option<u32>,
        into: Gathered<'_>,
    ) -> Arc<Resource> {
        let Gathered {
            clusters,
            endpoints,
            deps,
            secrets,
        } = into;
        let services: Vec<(&str, &Service)> = frame
            .backends
            .iter()
            .filter_map(|vs| Some((vs.as_str(), &**self.services.get(mesh)?.get(vs)?)))
            .collect();
        let len = services
            .iter()
            .map(|(_, s)| s.hosts_for(port).len())
            .sum::<usize>()
            + frame.tail.len()
            + frame.name.len()
            + 8;
        // A `RouteConfiguration`: field 1 (name), then the field-2 virtual hosts in order.
        let mut value = Vec::with_capacity(len);
        if !frame.name.is_empty() {
            prost::encoding::string::encode(1, &frame.name, &mut value);
        }
        for (vs, s) in &services {
            value.extend_from_slice(s.hosts_for(port));
            deps.extend_from_slice(&s.deps);
            // A cluster reached with TLS replaces the plain one of the same target (another
            // backend's): the client asked for TLS towards that target.
            if let Some(secured) = self.secured_upstreams(mesh, frame, vs, s) {
                for u in secured {
                    secrets.extend_from_slice(&u.secrets);
                    clusters.insert(u.cluster.name.clone(), u.cluster.clone());
                }
            }
            for u in &s.upstreams {
                secrets.extend_from_slice(&u.secrets);
                clusters
                    .entry(u.cluster.name.clone())
                    .or_insert_with(|| u.cluster.clone());
                if let Some(e) = &u.endpoints {
                    endpoints.entry(e.name.clone()).or_insert_with(|| e.clone());
                }
            }
        }
        value.extend_from_slice(&frame.tail);
        let any = Any {
            type_url: envoy_types::pb::envoy::config::route::v3::RouteConfiguration::type_url(),
            value,
        };
        Arc::new(Resource::new(frame.name.clone(), any))
    }
}
