//! The decoded view of a built snapshot: what one node is served, as typed Envoy messages in
//! name order. Golden tests print it, so they check the bytes the server sends, not a parallel
//! path.

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use prost::Message;

use crate::translate::RouteTable;
use crate::xds::{Snapshot, TypeSnapshot};

/// Everything one sidecar receives, each list sorted by resource name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeResources {
    pub clusters: Vec<Arc<Cluster>>,
    pub endpoints: Vec<Arc<ClusterLoadAssignment>>,
    pub listeners: Vec<Listener>,
    pub routes: Vec<RouteTable>,
}

impl NodeResources {
    /// Decodes what `snap` serves.
    pub fn decode(snap: &Snapshot) -> Result<NodeResources, prost::DecodeError> {
        fn all<M: Message + Default>(ts: &TypeSnapshot) -> Result<Vec<M>, prost::DecodeError> {
            ts.resources
                .values()
                .map(|r| M::decode(r.any.value.as_slice()))
                .collect()
        }
        let tables: Vec<RouteConfiguration> = all(&snap.types[3])?;
        Ok(NodeResources {
            clusters: all(&snap.types[0])?.into_iter().map(Arc::new).collect(),
            endpoints: all(&snap.types[1])?.into_iter().map(Arc::new).collect(),
            listeners: all(&snap.types[2])?,
            routes: tables
                .into_iter()
                .map(|rc| RouteTable {
                    name: rc.name,
                    virtual_hosts: rc.virtual_hosts.into_iter().map(Arc::new).collect(),
                })
                .collect(),
        })
    }
}
