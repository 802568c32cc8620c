//! What a proxy's certificate names, App Mesh's way: its SPIFFE URI
//! (`spiffe://<trust domain>/mesh/<mesh>/virtualNode/<name>`, or `.../virtualGateway/<name>`), and
//! the DNS names its clients reach it by and check (App Mesh's client policies match a backend's
//! certificate against its service discovery hostname or the virtual service's name): a virtual
//! node's DNS hostname or Cloud Map `<service>.<namespace>`, and the virtual services it provides,
//! directly or through a router's routes; a virtual gateway's gateway-route hostnames.

use std::collections::{BTreeSet, HashMap};

use crate::model::{Mesh, MeshModel, ProxyId, ProxyKind};
use crate::spec::{Kind, References};

use super::Identity;

/// `spiffe://<td>/mesh/<mesh>/virtualNode/<name>` (or `virtualGateway`).
pub fn spiffe_uri(trust_domain: &str, id: &ProxyId) -> String {
    format!("spiffe://{trust_domain}/{id}")
}

/// Names the proxies of one model, with each mesh's "which services reach this node" worked out
/// once (a mesh-wide rebuild names every node).
pub struct Namer<'a> {
    model: &'a MeshModel,
    trust_domain: &'a str,
    provided: HashMap<&'a str, HashMap<&'a str, Vec<&'a str>>>,
}

impl<'a> Namer<'a> {
    pub fn new(model: &'a MeshModel, trust_domain: &'a str) -> Namer<'a> {
        Namer {
            model,
            trust_domain,
            provided: HashMap::new(),
        }
    }

    /// The identity meshplane's CA gives `id`'s certificate; `None` when the model does not
    /// define the node.
    pub fn identity(&mut self, id: &ProxyId) -> Option<Identity> {
        let mesh = self.model.meshes.get(&id.mesh)?;
        let mut dns = BTreeSet::new();
        match id.kind {
            ProxyKind::VirtualNode => {
                let node = mesh.virtual_nodes.get(&id.name)?;
                if let Some(sd) = &node.spec.service_discovery {
                    if let Some(d) = &sd.dns {
                        dns.insert(d.hostname.clone());
                    }
                    if let Some(c) = &sd.aws_cloud_map {
                        dns.insert(c.hostname());
                    }
                }
                let provided = self
                    .provided
                    .entry(mesh.name.as_str())
                    .or_insert_with(|| provided_services(mesh));
                if let Some(services) = provided.get(id.name.as_str()) {
                    dns.extend(services.iter().map(|s| s.to_string()));
                }
            }
            ProxyKind::VirtualGateway => {
                mesh.virtual_gateways.get(&id.name)?;
                for ((gw, _), route) in &mesh.gateway_routes {
                    if *gw == id.name {
                        dns.extend(gateway_hosts(&route.spec));
                    }
                }
            }
        }
        Some(Identity {
            uri: spiffe_uri(self.trust_domain, id),
            dns: dns.into_iter().collect(),
        })
    }
}

/// The identity of `id` in `model` (see [`Namer`]).
pub fn node_identity(model: &MeshModel, trust_domain: &str, id: &ProxyId) -> Option<Identity> {
    Namer::new(model, trust_domain).identity(id)
}

/// Per node, the virtual services whose traffic can reach it: provided by it, or by a router one
/// of whose routes targets it.
fn provided_services(mesh: &Mesh) -> HashMap<&str, Vec<&str>> {
    let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
    for (vs, item) in &mesh.virtual_services {
        let mut nodes: BTreeSet<&str> = BTreeSet::new();
        for (kind, n) in item.spec.referenced() {
            match kind {
                Kind::VirtualNode => {
                    nodes.insert(n);
                }
                Kind::VirtualRouter => {
                    for route in mesh
                        .virtual_routers
                        .get(n)
                        .iter()
                        .flat_map(|r| r.routes.values())
                    {
                        route.spec.references(&mut |k, t| {
                            if k == Kind::VirtualNode {
                                nodes.insert(t);
                            }
                        });
                    }
                }
                _ => {}
            }
        }
        for n in nodes {
            out.entry(n).or_default().push(vs.as_str());
        }
    }
    out
}

/// The hostnames a gateway route matches: exact ones as they are, suffixes as a wildcard.
fn gateway_hosts(spec: &crate::spec::GatewayRouteSpec) -> Vec<String> {
    let hosts = [
        spec.http_route.as_ref().map(|r| &r.matcher.hostname),
        spec.http2_route.as_ref().map(|r| &r.matcher.hostname),
        spec.grpc_route.as_ref().map(|r| &r.matcher.hostname),
    ];
    hosts
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|h| match (&h.exact, &h.suffix) {
            (Some(e), _) => Some(e.clone()),
            (None, Some(s)) => Some(format!("*.{}", s.trim_start_matches('.'))),
            _ => None,
        })
        .collect()
}
