//! Wires the pipeline together: load → validate → translate → publish, on start and on every change,
//! and runs the xDS and admin servers until shutdown. `reloader` runs the reload loop and holds a
//! reload that would remove most of a mesh (`removal`).

mod reloader;
mod removal;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use envoy_types::pb::google::protobuf::Any;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::build::{pack, Builder, Built};
use crate::diag::Problem;
use crate::model::{self, MeshModel, ProxyId};
use crate::source::{self, Limits};
use crate::translate::{self, NodeResources};
use crate::xds::accept::Incoming;
use crate::xds::cache::SnapshotCache;
use crate::xds::conn::ConnGate;
use crate::xds::limits::{self, ClientLimits};
use crate::xds::server::{Registry, XdsMetrics, XdsService};
use crate::xds::{Resource, Snapshot, SourceMode, TypeSnapshot};

pub use reloader::{ReloadOptions, ReloadSettings, Reloaded, RemovalGuard};
pub use removal::{large_removal, Removal};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Watch(#[from] source::watch::WatchError),
    #[error("config directory {0} does not exist or is not a directory")]
    NoConfigDir(PathBuf),
}

/// The result of reading and validating the config directory.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub files: Vec<PathBuf>,
    /// Files read and parsed by this load (the rest were unchanged).
    pub files_read: usize,
    pub files_parsed: usize,
    /// The parsed documents (shared with the parse cache).
    pub documents: Vec<Arc<source::Document>>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
    pub model: Option<Arc<MeshModel>>,
}

/// Reads, parses and validates `dir` within the default limits. Pure apart from reading files.
pub fn load(dir: &std::path::Path) -> LoadResult {
    load_with(dir, &mut LoadCache::default())
}

/// Like [`load`], within `limits`.
pub fn load_limited(dir: &std::path::Path, limits: Limits) -> LoadResult {
    load_with(dir, &mut LoadCache::new(limits))
}

/// What [`load_with`] keeps between calls: parsed files and per-document check results, and the
/// limits every load observes.
#[derive(Default)]
pub struct LoadCache {
    parsed: source::loader::ParseCache,
    checked: model::CheckCache,
    limits: Limits,
}

impl LoadCache {
    pub fn new(limits: Limits) -> LoadCache {
        LoadCache {
            limits,
            ..LoadCache::default()
        }
    }
}

/// Like [`load`], parsing and checking only what changed since the previous call with `cache`.
pub fn load_with(dir: &std::path::Path, cache: &mut LoadCache) -> LoadResult {
    let out = source::loader::load_dir_cached(dir, &cache.limits, &mut cache.parsed);
    let mut result = LoadResult {
        files: out.files,
        files_read: out.files_read,
        files_parsed: out.files_parsed,
        warnings: out.warnings,
        ..Default::default()
    };
    let validated = model::validate_with(&out.documents, &mut cache.checked);
    // Causes before consequences: what a file could not load as comes first, then what validation
    // of the rest found; a reference to something a failed file would have defined is marked.
    let mut problems = out.problems;
    problems.sort();
    match validated {
        Ok(m) if problems.is_empty() => result.model = Some(Arc::new(m)),
        Ok(_) => {}
        Err(mut p) => {
            p.sort();
            if !problems.is_empty() {
                for q in p
                    .iter_mut()
                    .filter(|q| q.message.contains("is not defined"))
                {
                    q.message
                        .push_str(" (perhaps a consequence: a file above failed to load)");
                }
            }
            problems.extend(p);
        }
    }
    result.problems = problems;
    result.documents = out.documents;
    result
}

/// Encodes translated resources into per-node snapshots the plain way: every resource of every node
/// encoded on its own, nothing cached or shared. The reference the incremental [`Builder`] is
/// tested against, and the baseline of the encoding benchmark.
pub fn build_snapshots(
    nodes: &BTreeMap<ProxyId, NodeResources>,
) -> BTreeMap<String, Arc<Snapshot>> {
    nodes
        .iter()
        .map(|(id, res)| (id.to_string(), Arc::new(encode_node(res))))
        .collect()
}

fn encode_node(res: &NodeResources) -> Snapshot {
    fn by_name(items: impl Iterator<Item = (String, Any)>) -> TypeSnapshot {
        TypeSnapshot::new(
            items
                .map(|(name, any)| (name.clone(), Arc::new(Resource::new(name, any))))
                .collect(),
        )
    }
    Snapshot::new([
        by_name(res.clusters.iter().map(|c| (c.name.clone(), pack(&**c)))),
        by_name(
            res.endpoints
                .iter()
                .map(|e| (e.cluster_name.clone(), pack(&**e))),
        ),
        by_name(res.listeners.iter().map(|l| (l.name.clone(), pack(l)))),
        by_name(
            res.routes
                .iter()
                .map(|rt| (rt.name.clone(), pack(&rt.to_proto()))),
        ),
    ])
}

/// Translates and encodes the given nodes from scratch, on every core.
pub fn build_nodes(model: &MeshModel, ids: &[ProxyId]) -> Vec<Built> {
    Builder::default().build(model, ids)
}

/// Every virtual node of the model.
fn all_nodes(model: &MeshModel) -> Vec<ProxyId> {
    model
        .meshes
        .values()
        .flat_map(|m| {
            m.virtual_nodes.keys().map(|n| ProxyId {
                mesh: m.name.clone(),
                kind: crate::model::ProxyKind::VirtualNode,
                name: n.clone(),
            })
        })
        .collect()
}

/// Builds the variant of an ADS snapshot for Envoys on per-type services.
pub fn per_type_variant(snap: &Snapshot, mode: SourceMode, cluster: &str) -> Snapshot {
    let delta = mode == SourceMode::PerTypeDelta;
    let types = std::array::from_fn(|t| {
        let resources = snap.types[t]
            .resources
            .iter()
            .map(|(name, r)| {
                let r = match (
                    mode,
                    translate::sources::for_per_type_services(&r.any, delta, cluster),
                ) {
                    (SourceMode::Ads, _) | (_, None) => r.clone(),
                    (_, Some(any)) => Arc::new(Resource::new(name.clone(), any)),
                };
                (name.clone(), r)
            })
            .collect();
        TypeSnapshot::new(resources)
    });
    Snapshot::new(types)
}

/// Live state shared by the reload loop, the admin API and tests.
#[derive(Debug, Default)]
pub struct Status {
    pub last: LoadResult,
    /// True once a valid configuration has been published.
    pub ready: bool,
    pub reloads: u64,
    pub reloads_accepted: u64,
    pub reloads_rejected: u64,
    /// Reloads that panicked (each also counted as rejected).
    pub reload_panics: u64,
    /// Valid reloads held for removing most of a mesh (see `reloader`).
    pub reloads_held: u64,
    /// Nodes that got a new snapshot in the last accepted reload.
    pub last_changed_nodes: usize,
    /// Nodes rebuilt by the last accepted reload (all of them, or only those an edit touched).
    pub last_rebuilt_nodes: usize,
    /// The model of the last accepted reload: what the published snapshots were built from, kept
    /// while the files on disk are invalid (the topology page shows it; the removal guard compares
    /// a new model with it).
    pub serving: Option<Arc<MeshModel>>,
    /// When the last reload (accepted or rejected) finished.
    pub reloaded_at: Option<SystemTime>,
    /// When the last accepted reload finished.
    pub accepted_at: Option<SystemTime>,
    /// Per published node (by its entity key), its id and the entities it was built from.
    deps: HashMap<u64, (ProxyId, Vec<u64>)>,
    /// Document identities per entity at the last accepted reload.
    entities: HashMap<u64, u64>,
}

/// The pipeline from config directory to snapshot cache.
#[derive(Clone)]
pub struct Pipeline {
    pub dir: PathBuf,
    pub cache: SnapshotCache,
    pub status: Arc<Mutex<Status>>,
    /// Parsed files and encoded parts of the previous reload; also serialises reloads.
    parsed: Arc<Mutex<(LoadCache, Builder)>>,
}

impl Pipeline {
    pub fn new(dir: PathBuf) -> Pipeline {
        Pipeline::with_limits(dir, Limits::DEFAULT)
    }

    /// A pipeline whose every load observes `limits`.
    pub fn with_limits(dir: PathBuf, limits: Limits) -> Pipeline {
        Pipeline {
            dir,
            cache: SnapshotCache::new(),
            status: Arc::default(),
            parsed: Arc::new(Mutex::new((LoadCache::new(limits), Builder::default()))),
        }
    }

    pub fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the directory and, when valid, publishes every node's snapshot. An invalid directory
    /// leaves the last good snapshots in place. `origin` is when the change was first seen.
    pub fn reload(&self, origin: Option<Instant>) -> bool {
        self.reload_with(origin, ReloadOptions::default()) == Reloaded::Accepted
    }

    /// Like [`Pipeline::reload`], with the watcher's options: skip a re-scan that finds nothing
    /// new, hold a reload that would remove most of a mesh.
    pub fn reload_with(&self, origin: Option<Instant>, opts: ReloadOptions) -> Reloaded {
        let started = Instant::now();
        let mut guard = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        let (parsed, builder) = &mut *guard;
        let result = load_with(&self.dir, parsed);
        let loaded = started.elapsed();
        if opts.skip_unchanged && reloader::unchanged(&self.status().last, &result) {
            return Reloaded::Unchanged;
        }
        for w in &result.warnings {
            warn!("{w}");
        }
        let Some(model) = result.model.clone() else {
            error!(
                problems = result.problems.len(),
                "configuration rejected; still serving the last good configuration"
            );
            for p in &result.problems {
                error!("{p}");
            }
            let mut st = self.status();
            st.reloads += 1;
            st.reloads_rejected += 1;
            st.reloaded_at = Some(SystemTime::now());
            st.last = result;
            return Reloaded::Rejected;
        };
        let published = self.status().serving.clone();
        if Self::hold_removal(published.as_ref(), &model, opts.removals) {
            self.status().reloads_held += 1;
            return Reloaded::Held;
        }
        let identities = model::entity_identities(&result.documents);
        // Every virtual node, by entity key: cheap to hash and compare, unlike a `ProxyId`.
        let all: Vec<(u64, &str, &str)> = model
            .meshes
            .values()
            .flat_map(|m| {
                m.virtual_nodes.keys().map(|n| {
                    let key = crate::spec::entity_key(crate::spec::Kind::VirtualNode, &m.name, n);
                    (key, m.name.as_str(), n.as_str())
                })
            })
            .collect();
        let (mut deps, prev_entities, was_ready) = {
            let mut st = self.status();
            (
                std::mem::take(&mut st.deps),
                std::mem::take(&mut st.entities),
                st.ready,
            )
        };
        // Rebuild only the nodes an edit can have touched: those depending on a changed entity, and
        // new ones. The first load (or one after a rejected state) rebuilds everything.
        let ids: Vec<ProxyId> = if was_ready && !prev_entities.is_empty() {
            let mut changed: Vec<u64> = identities
                .iter()
                .filter(|(k, v)| prev_entities.get(*k) != Some(*v))
                .map(|(k, _)| *k)
                .chain(
                    prev_entities
                        .keys()
                        .filter(|k| !identities.contains_key(*k))
                        .copied(),
                )
                .collect();
            changed.sort_unstable();
            let changed_set: HashSet<u64> = changed.iter().copied().collect();
            builder.invalidate(&changed);
            // An edit changes a handful of entities: probing each node's sorted dependencies for
            // those few beats hashing every dependency of every node.
            let touches = |node_deps: &[u64]| {
                if changed.len() <= 16 {
                    changed.iter().any(|c| node_deps.binary_search(c).is_ok())
                } else {
                    node_deps.iter().any(|d| changed_set.contains(d))
                }
            };
            all.iter()
                .filter(|(key, _, _)| deps.get(key).is_none_or(|(_, d)| touches(d)))
                .map(|(_, mesh, name)| ProxyId::virtual_node(mesh, name))
                .collect()
        } else {
            builder.clear();
            all_nodes(&model)
        };
        let rebuilt = ids.len();
        let build_started = Instant::now();
        let built = builder.build(&model, &ids);
        let build_time = build_started.elapsed();
        let mut changed = 0;
        // Replaced snapshots are freed on the worker pool, not between two nodes' publications.
        let mut replaced = Vec::with_capacity(built.len());
        for b in built {
            let mut snap = b.snapshot;
            // Only file changes start the convergence clock; the initial load has no origin.
            snap.origin = origin;
            let snap = Arc::new(snap);
            if let Some(old) = self.cache.replace(&b.key, Some(snap.clone())) {
                changed += 1;
                log_changes(&b.key, old.as_deref(), &snap, changed);
                replaced.extend(old);
            }
            deps.insert(b.entity, (b.id, b.deps));
        }
        let live: HashSet<u64> = all.iter().map(|(key, _, _)| *key).collect();
        deps.retain(|key, (id, _)| {
            if live.contains(key) {
                return true;
            }
            if let Some(old) = self.cache.replace(&id.to_string(), None) {
                changed += 1;
                replaced.extend(old);
            }
            false
        });
        rayon::spawn(move || drop(replaced));
        let mut st = self.status();
        st.deps = deps;
        st.entities = identities;
        st.last_rebuilt_nodes = rebuilt;
        info!(
            files = result.files.len(),
            read = result.files_read,
            parsed = result.files_parsed,
            nodes = all.len(),
            rebuilt,
            changed,
            load_ms = loaded.as_secs_f64() * 1e3,
            build_ms = build_time.as_secs_f64() * 1e3,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "configuration loaded"
        );
        st.reloads += 1;
        st.reloads_accepted += 1;
        let now = SystemTime::now();
        st.reloaded_at = Some(now);
        st.accepted_at = Some(now);
        let served = st.serving.replace(model);
        st.ready = true;
        st.last_changed_nodes = changed;
        // The previous model (10,000 nodes' worth of maps) is freed on the worker pool.
        let previous = std::mem::replace(&mut st.last, result);
        rayon::spawn(move || drop((previous, served)));
        Reloaded::Accepted
    }
}

/// Logs what a reload changed for one node: resources added, changed and removed per type. The
/// first nodes are logged at info, the rest at debug, so a mesh-wide edit does not flood the log.
fn log_changes(node: &str, old: Option<&Snapshot>, new: &Snapshot, nth: usize) {
    if nth > 20 && !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let mut parts = Vec::new();
    for (t, ts) in new.types.iter().enumerate() {
        let before = old.map(|o| &o.types[t].resources);
        let added = ts
            .resources
            .keys()
            .filter(|k| before.is_none_or(|b| !b.contains_key(*k)))
            .count();
        let changed = ts
            .resources
            .iter()
            .filter(|(k, r)| {
                before
                    .and_then(|b| b.get(*k))
                    .is_some_and(|o| o.hash != r.hash)
            })
            .count();
        let removed = before.map_or(0, |b| {
            b.keys().filter(|k| !ts.resources.contains_key(*k)).count()
        });
        if added + changed + removed > 0 {
            parts.push(format!(
                "{} +{added} ~{changed} -{removed}",
                crate::xds::type_short(t)
            ));
        }
    }
    let summary = parts.join(", ");
    if nth <= 20 {
        info!(node, changes = %summary, "node updated");
    } else {
        tracing::debug!(node, changes = %summary, "node updated");
    }
}

/// Settings of `meshplane serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub config_dir: PathBuf,
    pub xds_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Quiet time that ends a burst of file events.
    pub debounce: Duration,
    /// What xDS clients may hold, and how long they may hold up a shutdown.
    pub limits: ClientLimits,
    /// What one reload may read and parse.
    pub load_limits: Limits,
    /// The watcher's other settings and the guard against removing most of a mesh at once.
    pub reload: ReloadSettings,
}

impl ServeConfig {
    pub fn new(config_dir: PathBuf) -> ServeConfig {
        ServeConfig {
            config_dir,
            xds_listen: ([127, 0, 0, 1], 18000).into(),
            admin_listen: ([127, 0, 0, 1], 18001).into(),
            debounce: Duration::from_millis(100),
            limits: ClientLimits::default(),
            load_limits: Limits::DEFAULT,
            reload: ReloadSettings::default(),
        }
    }
}

/// Binds the xDS listener with a deep accept queue: after a control-plane restart every Envoy
/// reconnects at once, and connections beyond a short queue would have their SYNs dropped and
/// retried a second later. The kernel caps the depth at `net.core.somaxconn`.
fn bind_xds(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(65_535)
}

/// A running server; dropping it does not stop it, `shutdown` does.
pub struct Server {
    pub xds_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub pipeline: Pipeline,
    pub metrics: Arc<XdsMetrics>,
    pub registry: Arc<Registry>,
    shutdown: watch::Sender<bool>,
    /// The xDS connections, to cut those that outlast the drain.
    gate: ConnGate,
    drain_timeout: Duration,
    tasks: Vec<JoinHandle<()>>,
    _watcher: source::watch::WatchHandle,
}

impl Server {
    /// Binds both listeners and starts serving; the first load runs in the background, so the
    /// ports open whatever the files hold, and `/readyz` answers 503 until a valid configuration is
    /// published.
    pub async fn start(cfg: ServeConfig) -> Result<Server, AppError> {
        if !cfg.config_dir.is_dir() {
            return Err(AppError::NoConfigDir(cfg.config_dir));
        }
        let descriptors = limits::raise_descriptor_limit();
        let pipeline = Pipeline::with_limits(cfg.config_dir.clone(), cfg.load_limits);
        // Watch before the first load so no edit slips between the two.
        let (watcher, changes) =
            source::watch::watch(&cfg.config_dir, cfg.reload.watch_config(cfg.debounce))?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        // The first load runs in the reload task, after the ports are open (see `start`'s doc).
        let p = pipeline.clone();
        let (settings, stop) = (cfg.reload, shutdown_rx.clone());
        tasks.push(tokio::spawn(async move {
            let first = p.clone();
            reloader::reload(&first, None, Default::default()).await;
            reloader::run(p, changes, settings, stop).await;
        }));

        let xds_listener = bind_xds(cfg.xds_listen).map_err(|source| AppError::Bind {
            addr: cfg.xds_listen,
            source,
        })?;
        let xds_addr = xds_listener.local_addr().map_err(|source| AppError::Bind {
            addr: cfg.xds_listen,
            source,
        })?;
        let node_key: crate::xds::server::NodeKeyFn =
            Arc::new(|id: &str| ProxyId::parse(id).map(|p| p.to_string()));
        let admin_pipeline = pipeline.clone();
        let xds = XdsService::new(
            pipeline.cache.clone(),
            node_key,
            Arc::new(per_type_variant),
            shutdown_rx.clone(),
            cfg.limits.clone(),
        );
        let metrics = xds.metrics.clone();
        let registry = xds.registry.clone();
        let mut stop = shutdown_rx.clone();
        let l = &cfg.limits;
        let max_connections = limits::connections_within(l.max_connections, descriptors);
        if max_connections < l.max_connections {
            warn!(
                max_connections,
                descriptors, "--max-connections lowered to fit the descriptor limit"
            );
        }
        let gate = ConnGate::new(max_connections, l.handshake_timeout, metrics.clone());
        let incoming = Incoming::new(xds_listener, gate.clone());
        let builder = tonic::transport::Server::builder()
            .max_concurrent_streams(l.max_streams_per_connection)
            .http2_keepalive_interval(Some(l.keepalive_interval))
            .http2_keepalive_timeout(Some(l.keepalive_timeout));
        tasks.push(tokio::spawn(async move {
            let result = xds
                .add_to(builder)
                .add_service(crate::proto::AdminService::server(admin_pipeline))
                .serve_with_incoming_shutdown(incoming, async move {
                    crate::xds::server::stopped(&mut stop).await;
                })
                .await;
            if let Err(e) = result {
                error!(error = %e, "xDS server failed");
            }
        }));

        let admin_listener = TcpListener::bind(cfg.admin_listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: cfg.admin_listen,
                source,
            })?;
        let admin_addr = admin_listener
            .local_addr()
            .map_err(|source| AppError::Bind {
                addr: cfg.admin_listen,
                source,
            })?;
        let router = crate::admin::router(pipeline.clone(), metrics.clone(), registry.clone());
        let mut stop = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let result = axum::serve(admin_listener, router)
                .with_graceful_shutdown(async move {
                    crate::xds::server::stopped(&mut stop).await;
                })
                .await;
            if let Err(e) = result {
                error!(error = %e, "admin server failed");
            }
        }));
        info!(%xds_addr, %admin_addr, dir = %cfg.config_dir.display(), "meshplane serving");
        Ok(Server {
            xds_addr,
            admin_addr,
            pipeline,
            metrics,
            registry,
            shutdown,
            gate,
            drain_timeout: cfg.limits.drain_timeout,
            tasks,
            _watcher: watcher,
        })
    }

    /// Stops watching and closes every stream, then waits for all tasks to end: for the drain
    /// timeout, then (a stream Envoy does not read holds its connection) cuts every connection.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.gate.close_silent();
        if tokio::time::timeout(self.drain_timeout, join(&mut self.tasks))
            .await
            .is_err()
        {
            warn!(connections = self.gate.open(), timeout = ?self.drain_timeout,
                "drain timed out; closing the remaining connections");
            self.gate.close_all();
            if tokio::time::timeout(Duration::from_secs(1), join(&mut self.tasks))
                .await
                .is_err()
            {
                for t in &self.tasks {
                    t.abort();
                }
            }
        }
    }
}

/// Waits for each task in turn, removing it once it has ended (a handle is polled only until then).
async fn join(tasks: &mut Vec<JoinHandle<()>>) {
    while let Some(t) = tasks.last_mut() {
        let _ = t.await;
        tasks.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn route_tables_encode_exactly_like_prost() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/features/mesh");
        let model = load(&dir).model.expect("valid");
        let translated = translate::translate_all(&model);
        let mut tables = 0;
        for b in build_nodes(&model, &all_nodes(&model)) {
            for rt in &translated[&b.id].routes {
                let assembled = &b.snapshot.types[3].resources[&rt.name];
                assert_eq!(
                    assembled.any.value,
                    rt.to_proto().encode_to_vec(),
                    "{}",
                    rt.name
                );
                tables += 1;
            }
        }
        assert!(tables >= 4);
    }
}
