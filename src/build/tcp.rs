//! The TCP egress listeners of a node's snapshot. A backend service's listener on its own port is
//! encoded once and shared by its clients; a client that places the service elsewhere
//! (`proxy.tcpEgress`), logs its connections or binds IPv6 too (`ipPreference`) gets a listener of
//! its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;

use super::pack;
use crate::translate::{self, ServiceTcpPort, TcpFrame};
use crate::xds::Resource;

/// One tcp port of a backend service.
pub(super) struct SharedTcp {
    service_port: u32,
    /// The port's `tcp_proxy`, and the listener on the service's port built from it; `None` when no
    /// route applies (no listener: the app's connection is refused).
    routed: Option<(TcpProxy, Arc<Resource>)>,
}

/// A service's tcp ports, with their shared listeners encoded.
pub(super) fn shared(ports: Vec<ServiceTcpPort>) -> Vec<SharedTcp> {
    ports
        .into_iter()
        .map(|p| SharedTcp {
            service_port: p.service_port,
            routed: p.proxy.map(|proxy| {
                let l = translate::tcp_egress_listener(p.service_port, &proxy, &[]);
                let r = Arc::new(Resource::new(l.name.clone(), pack(&l)));
                (proxy, r)
            }),
        })
        .collect()
}

/// Adds the node's TCP egress listeners for backend `vs` (tcp ports `ports`) to `listeners`.
pub(super) fn add_listeners(
    frame: &TcpFrame,
    vs: &str,
    ports: &[SharedTcp],
    listeners: &mut BTreeMap<String, Arc<Resource>>,
) {
    // The same rule as `VirtualNodeSpec::tcp_egress`: an entry places a service with one tcp port.
    let placed = frame.ports.get(vs).filter(|_| ports.len() == 1);
    for p in ports {
        let Some((proxy, shared)) = &p.routed else {
            continue;
        };
        let r = match placed {
            None if frame.shares_listeners() => shared.clone(),
            _ => {
                let port = placed.copied().unwrap_or(p.service_port);
                let l = translate::own_tcp_egress_listener(frame, port, proxy);
                Arc::new(Resource::new(l.name.clone(), pack(&l)))
            }
        };
        listeners.entry(r.name.clone()).or_insert(r);
    }
}
