//! Incremental encoding of per-node snapshots. Owns the caches of encoded parts that survive between
//! reloads — a node's own resources, a backend service's virtual hosts, a target's cluster — and
//! drops exactly the parts built from an entity that changed, so an edit of one route re-encodes
//! that route's virtual hosts once and then only reassembles the route tables that include them.

mod encode;
mod secrets;
mod splice;
mod tcp;
mod tls;
mod variants;
mod view;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::model::{MeshModel, ProxyId};
use crate::translate::{self, Target};
use crate::xds::{Resource, Snapshot, TypeSnapshot, VariantKey, TYPE_COUNT};

pub use encode::pack;
pub use view::NodeResources;

use encode::{encode_own, upstream, Interner};

/// A node's new snapshot and the entities it was built from.
pub struct Built {
    pub id: ProxyId,
    /// The node's key in the snapshot cache (`id` as a string).
    pub key: String,
    /// The node's own entity key ([`crate::change::own_dependencies`]).
    pub entity: u64,
    pub snapshot: Snapshot,
    pub deps: Vec<u64>,
    /// The secrets its clusters and listeners fetch over ADS that meshplane serves.
    pub secrets: Vec<String>,
    /// Those of them no CA serves (`serve` without `--ca-dir`): the pipeline refuses the model.
    pub unserved: Vec<String>,
}

/// A node's own resources, encoded ([`translate::translate_own`]).
struct Own {
    clusters: Vec<Arc<Resource>>,
    listeners: Vec<Arc<Resource>>,
    routes: Vec<Arc<Resource>>,
    egress: Option<EgressFrame>,
    /// A virtual node's part of its TCP egress listeners.
    tcp: Option<translate::TcpFrame>,
    /// The transparent layout's per-destination-port egress tables; each holds its backends'
    /// hosts for that port.
    port_frames: Vec<(u32, EgressFrame)>,
    /// The secrets its clusters and listeners fetch over ADS ([`secrets::referenced`]).
    secrets: Vec<String>,
    /// The node's own entity key.
    entity: u64,
    /// [`crate::change::own_dependencies`], and those of the services its egress tail host is
    /// built from.
    deps: Vec<u64>,
}

/// The node-specific frame of the egress route table; the backends' hosts go between its parts.
struct EgressFrame {
    name: String,
    backends: Vec<String>,
    /// The encoded catch-all host (ALLOW_ALL, or a gateway's), appended after the backends' hosts.
    tail: Vec<u8>,
    /// The backends whose client policy originates TLS ([`translate::EgressTable::tls`]).
    tls: Vec<(String, Arc<crate::spec::ClientTls>)>,
}

/// A backend service as every client sees it: its virtual hosts, each encoded as a field-2 entry of
/// a `RouteConfiguration`, and the clusters of the targets they route to.
struct Service {
    hosts: Vec<u8>,
    /// The same hosts per port, as a transparent client's per-port tables hold them
    /// ([`translate::transparent::port_hosts`]); `None`: `hosts` as they are.
    by_port: Vec<(u32, Option<Vec<u8>>)>,
    upstreams: Vec<Arc<Upstream>>,
    /// The targets of `upstreams`, for the clients that reach them with TLS.
    targets: Vec<Target>,
    deps: Vec<u64>,
    /// Its tcp ports, for the TCP egress listeners of the virtual nodes that call it.
    tcp: Vec<tcp::SharedTcp>,
}

/// A target's encoded cluster and, for static discovery, its endpoints.
struct Upstream {
    cluster: Arc<Resource>,
    endpoints: Option<Arc<Resource>>,
    /// The secrets its TLS fetches over ADS.
    secrets: Vec<String>,
    deps: [u64; 2],
}

/// Encoded parts kept across reloads. Every entry records the entities it was built from; a reload
/// calls [`Builder::invalidate`] with the entities that changed before [`Builder::build`].
#[derive(Default)]
pub struct Builder {
    own: HashMap<ProxyId, Arc<Own>>,
    /// Per mesh, per virtual service.
    services: HashMap<String, HashMap<String, Arc<Service>>>,
    /// Per mesh, per target. A service depends on all its targets' nodes, so dropping a service
    /// whenever one of its upstreams would be stale keeps this cache a pure sharing device; its
    /// entries are dropped with the same rule.
    upstreams: HashMap<String, HashMap<Target, Arc<Upstream>>>,
    /// Per mesh, per target and client policy: the targets' clusters with TLS (`tls`).
    tls_upstreams: HashMap<String, HashMap<tls::TlsTarget, Arc<Upstream>>>,
    /// Per node (by entity key), the type snapshots it was last given: a rebuild whose resources
    /// of a type are the very same `Arc`s reuses the type snapshot instead of making an equal one.
    last: HashMap<u64, [Arc<TypeSnapshot>; TYPE_COUNT]>,
    /// Per node (by entity key), the per-type variants it was last given.
    last_variants: HashMap<u64, variants::Variants>,
    /// meshplane's CA, serving the secrets nodes fetch over ADS (`serve --ca-dir`).
    ca: Option<Arc<crate::ca::Authority>>,
}

impl Builder {
    /// A builder whose nodes get their secrets from `ca`.
    pub fn with_ca(mut self, ca: Option<Arc<crate::ca::Authority>>) -> Builder {
        self.ca = ca;
        self
    }

    pub fn ca(&self) -> Option<&Arc<crate::ca::Authority>> {
        self.ca.as_ref()
    }

    /// Forgets everything (a first load, or one after a rejected configuration) but the CA.
    pub fn clear(&mut self) {
        let ca = self.ca.take();
        *self = Builder::default().with_ca(ca);
    }

    /// Drops every part built from one of the `changed` entities (sorted).
    pub fn invalidate(&mut self, changed: &[u64]) {
        let is_changed = |d: &u64| changed.binary_search(d).is_ok();
        let hit = |deps: &[u64]| deps.iter().any(is_changed);
        self.own.retain(|_, o| !hit(&o.deps));
        self.last.retain(|node, _| !is_changed(node));
        self.last_variants.retain(|node, _| !is_changed(node));
        for m in self.services.values_mut() {
            m.retain(|_, s| !hit(&s.deps));
        }
        for m in self.upstreams.values_mut() {
            m.retain(|_, u| !hit(&u.deps));
        }
        for m in self.tls_upstreams.values_mut() {
            m.retain(|_, u| !hit(&u.deps));
        }
    }

    /// Builds the snapshots of `ids` (skipping ids the model does not translate), each with the
    /// per-type `variants` in demand, reusing every cached part and filling the caches with the
    /// parts it had to make. Work is spread over all cores; the per-node assembly only
    /// concatenates and hashes already-encoded bytes.
    pub fn build(
        &mut self,
        model: &MeshModel,
        ids: &[ProxyId],
        variants: &[VariantKey],
    ) -> Vec<Built> {
        self.build_own(model, ids);
        self.build_services(model, ids);
        self.build_tls_upstreams(model, ids);
        self.assemble_all(model, ids, variants)
    }

    /// Step 1: the nodes' own parts that are not cached.
    fn build_own(&mut self, model: &MeshModel, ids: &[ProxyId]) {
        let missing: Vec<&ProxyId> = ids
            .iter()
            .filter(|id| !self.own.contains_key(*id))
            .collect();
        let made = crate::par::map_chunks(&missing, 64, Interner::default, |intern, id| {
            let own = translate::translate_own(model, id)?;
            let mesh = model.meshes.get(&id.mesh)?;
            Some(((*id).clone(), Arc::new(encode_own(own, intern, mesh, id))))
        });
        self.own.extend(made);
    }

    /// Step 2: the backend services the nodes call that are not cached, with their targets'
    /// clusters.
    fn build_services(&mut self, model: &MeshModel, ids: &[ProxyId]) {
        let wanted = self.missing_services(ids);
        let hosts = crate::par::map_chunks(
            &wanted,
            16,
            || (),
            |_, (mesh, vs)| {
                let m = model.meshes.get(*mesh)?;
                let mut sh = translate::service_hosts(m, vs);
                let mut bytes = Vec::new();
                for h in &sh.hosts {
                    prost::encoding::message::encode(2, &**h, &mut bytes);
                }
                let (tcp_ports, tcp_targets) = translate::service_tcp(m, vs);
                sh.targets.extend(tcp_targets);
                let tcp = tcp::shared(tcp_ports);
                let by_port = translate::transparent::port_hosts(vs, &sh.hosts)
                    .into_iter()
                    .map(|(port, h)| {
                        let bytes = h.map(|h| {
                            let mut b = Vec::new();
                            prost::encoding::message::encode(2, &h, &mut b);
                            b
                        });
                        (port, bytes)
                    })
                    .collect();
                let deps = crate::change::service_dependencies(m, vs);
                let bytes = (bytes, by_port);
                Some((
                    mesh.to_string(),
                    vs.to_string(),
                    bytes,
                    sh.targets,
                    deps,
                    tcp,
                ))
            },
        );
        let targets: Vec<(&str, &Target)> = hosts
            .iter()
            .flat_map(|(mesh, _, _, ts, _, _)| ts.iter().map(move |t| (mesh.as_str(), t)))
            .collect();
        self.build_upstreams(model, &targets);
        for (mesh, vs, (hosts, by_port), ts, deps, tcp) in hosts {
            let known = self.upstreams.get(&mesh);
            let upstreams = ts
                .iter()
                .filter_map(|t| known.and_then(|m| m.get(t)).cloned())
                .collect();
            let svc = Service {
                hosts,
                by_port,
                upstreams,
                targets: ts.into_iter().collect(),
                deps,
                tcp,
            };
            self.services
                .entry(mesh)
                .or_default()
                .insert(vs, Arc::new(svc));
        }
    }

    /// The (mesh, service) pairs the nodes' egress tables name that are not cached, once each.
    fn missing_services<'a>(&'a self, ids: &'a [ProxyId]) -> Vec<(&'a str, &'a str)> {
        let mut wanted = Vec::new();
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        for id in ids {
            let Some(own) = self.own.get(id) else {
                continue;
            };
            let known = self.services.get(&id.mesh);
            for vs in own.frames().flat_map(|(_, f)| &f.backends) {
                if !known.is_some_and(|m| m.contains_key(vs))
                    && seen.insert((id.mesh.as_str(), vs.as_str()))
                {
                    wanted.push((id.mesh.as_str(), vs.as_str()));
                }
            }
        }
        wanted
    }

    /// The clusters (and static endpoints) of `targets` that are not cached, once each.
    fn build_upstreams(&mut self, model: &MeshModel, targets: &[(&str, &Target)]) {
        let mut seen: HashSet<(&str, &Target)> = HashSet::new();
        let missing: Vec<(&str, &Target)> = targets
            .iter()
            .filter(|(mesh, t)| {
                !self
                    .upstreams
                    .get(*mesh)
                    .is_some_and(|m| m.contains_key(*t))
                    && seen.insert((mesh, t))
            })
            .copied()
            .collect();
        let made = crate::par::map_chunks(
            &missing,
            16,
            || (),
            |_, (mesh, t)| {
                let m = model.meshes.get(*mesh)?;
                let up = upstream(mesh, t, translate::target_cluster(m, t));
                Some((mesh.to_string(), (*t).clone(), Arc::new(up)))
            },
        );
        for (mesh, t, up) in made {
            self.upstreams.entry(mesh).or_default().insert(t, up);
        }
    }

    /// Steps 4 and 5 (step 3, the clusters with client-policy TLS, is in `tls`): every node's
    /// snapshot from its own parts and its backends' shared parts, then the per-type variants in
    /// demand, from each new snapshot.
    fn assemble_all(
        &mut self,
        model: &MeshModel,
        ids: &[ProxyId],
        variants: &[VariantKey],
    ) -> Vec<Built> {
        let this = &*self;
        let mut built = crate::par::map_chunks(ids, 64, || (), |_, id| this.assemble(id));
        secrets::add(&mut built, model, self.ca.as_ref());
        let this = &*self;
        let made = crate::par::map_chunks(&built, 64, Default::default, |memo, b| {
            let (last, previous) = (this.last.get(&b.entity), this.last_variants.get(&b.entity));
            Some(variants::make(&b.snapshot, variants, last, previous, memo))
        });
        for (b, v) in built.iter_mut().zip(made) {
            let snap = std::mem::take(&mut b.snapshot);
            b.snapshot = snap.with_variants(v);
            // Tests and debug servers check every snapshot they build (a panic here is a bug,
            // and the reload task turns it into a rejected reload).
            #[cfg(debug_assertions)]
            check_consistent(b);
            self.last.insert(b.entity, b.snapshot.types.clone());
            self.last_variants
                .insert(b.entity, b.snapshot.variants().to_vec());
        }
        built
    }

    fn assemble(&self, id: &ProxyId) -> Option<Built> {
        let own = self.own.get(id)?;
        let by_name = |rs: &[Arc<Resource>]| -> BTreeMap<String, Arc<Resource>> {
            rs.iter().map(|r| (r.name.clone(), r.clone())).collect()
        };
        let mut clusters = by_name(&own.clusters);
        let mut endpoints = BTreeMap::new();
        let mut listeners = by_name(&own.listeners);
        let mut routes = by_name(&own.routes);
        let mut deps = own.deps.clone();
        let mut secrets = own.secrets.clone();
        for (port, frame) in own.frames() {
            let into = splice::Gathered {
                clusters: &mut clusters,
                endpoints: &mut endpoints,
                deps: &mut deps,
                secrets: &mut secrets,
            };
            let table = self.splice(&id.mesh, frame, port, into);
            // The explicit layout's TCP egress listeners, one per tcp port of its backends.
            if let (None, Some(f)) = (port, &own.tcp) {
                for vs in &frame.backends {
                    if let Some(s) = self.services.get(&id.mesh).and_then(|m| m.get(vs)) {
                        tcp::add_listeners(f, vs, &s.tcp, &mut listeners);
                    }
                }
            }
            routes.insert(frame.name.clone(), table);
        }
        deps.sort_unstable();
        deps.dedup();
        secrets.sort_unstable();
        secrets.dedup();
        let last = self.last.get(&own.entity);
        let mut t = 0;
        let types = [clusters, endpoints, listeners, routes].map(|resources| {
            let same = last.map(|l| &l[t]).filter(|prev| {
                prev.resources.len() == resources.len()
                    && prev
                        .resources
                        .iter()
                        .zip(&resources)
                        .all(|((pn, pr), (n, r))| Arc::ptr_eq(pr, r) && pn == n)
            });
            t += 1;
            match same {
                Some(prev) => prev.clone(),
                None => Arc::new(TypeSnapshot::new(resources)),
            }
        });
        Some(Built {
            id: id.clone(),
            key: id.to_string(),
            entity: own.entity,
            snapshot: Snapshot::from_shared(types),
            deps,
            secrets,
            unserved: Vec::new(),
        })
    }
}

/// Panics when `b`'s snapshot or one of its variants refers to a resource it lacks.
#[cfg(debug_assertions)]
fn check_consistent(b: &Built) {
    let variants = b.snapshot.variants().iter().map(|v| &*v.1);
    for s in std::iter::once(&b.snapshot).chain(variants) {
        if let Err(e) = s.consistent() {
            panic!("inconsistent snapshot for {}:\n{e}", b.key);
        }
    }
}

#[cfg(test)]
mod tests;
