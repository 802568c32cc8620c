//! The single writer: [`Pipeline`] owns the load cache, the builder of encoded parts and the
//! record of what each published node was built from, and is the only thing that publishes
//! snapshots and load reports. One reload: load → (reject | hold | build) → publish → report.
//! `ca`: the secrets meshplane's CA serves (refusing a model that needs a CA the server lacks,
//! renewing certificates before they expire).

mod ca;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::reloader::{unchanged, ReloadOptions, Reloaded};
use super::{load_tracked, LoadCache};
use crate::build::Builder;
use crate::change::ChangeSet;
use crate::model::{MeshModel, ProxyId};
use crate::report::{LoadResult, Published, Status};
use crate::source::Limits;
use crate::xds::cache::SnapshotCache;
use crate::xds::variants::Demand;

/// What each published node was built from, to rebuild only what an edit touches.
#[derive(Default)]
struct Tracked {
    /// Per published node (by its entity key), its id and the entities it was built from.
    deps: HashMap<u64, (ProxyId, Vec<u64>)>,
}

/// The pipeline from config directory to snapshot cache. Owned by one task (the reload task of a
/// server, or a test); everyone else reads a [`Published`].
pub struct Pipeline {
    pub dir: PathBuf,
    pub cache: SnapshotCache,
    /// The working copy of the report; readers get copies through `report`.
    status: Status,
    report: watch::Sender<Arc<Status>>,
    load: LoadCache,
    builder: Builder,
    tracked: Tracked,
    /// The per-type variants xDS streams need; every build makes them.
    demand: Demand,
    /// The last error reading the CA directory, so it is logged once, not on every check.
    ca_error: Option<String>,
}

/// What publishing one accepted model did.
struct Outcome {
    nodes: usize,
    rebuilt: usize,
    changed: usize,
    build: Duration,
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
            status: Status::default(),
            report: watch::channel(Arc::default()).0,
            load: LoadCache::new(limits),
            builder: Builder::default(),
            tracked: Tracked::default(),
            demand: Demand::default(),
            ca_error: None,
        }
    }

    /// A pipeline whose loads treat fields loaded but not translated as problems (`--strict`).
    pub fn with_strict(mut self, strict: bool) -> Pipeline {
        self.load = std::mem::take(&mut self.load).strict(strict);
        self
    }

    /// A pipeline that builds the per-type variants `demand` asks for.
    pub fn with_demand(mut self, demand: Demand) -> Pipeline {
        self.demand = demand;
        self
    }

    /// What streams need changed with no file change (a new per-type variant): rebuilds every
    /// node of the model being served from cached parts, with the variants now in demand.
    pub fn refresh_variants(&mut self) {
        let Some(model) = self.status.serving.clone() else {
            return;
        };
        let started = Instant::now();
        let all = virtual_nodes(&model);
        let ids: Vec<ProxyId> = all.iter().map(|(_, id)| id.clone()).collect();
        let Ok(done) = self.publish_built(&model, &all, &ids, None) else {
            return;
        };
        info!(
            variants = self.demand.wanted().len(),
            nodes = done.nodes,
            changed = done.changed,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "per-type variants built"
        );
    }

    /// A read-only handle for the admin API, the status service and tests.
    pub fn published(&self) -> Published {
        Published {
            dir: self.dir.clone(),
            cache: self.cache.clone(),
            status: self.report.subscribe(),
        }
    }

    /// The latest report.
    pub fn status(&self) -> Arc<Status> {
        self.report.borrow().clone()
    }

    fn report(&self) {
        self.report.send_replace(Arc::new(self.status.clone()));
    }

    /// Loads the directory and, when valid, publishes every node's snapshot. An invalid directory
    /// leaves the last good snapshots in place. `origin` is when the change was first seen.
    pub fn reload(&mut self, origin: Option<Instant>) -> bool {
        self.reload_with(origin, ReloadOptions::default()) == Reloaded::Accepted
    }

    /// Like [`Pipeline::reload`], with the watcher's options: skip a re-scan that finds nothing
    /// new, hold a reload that would remove most of a mesh.
    pub fn reload_with(&mut self, origin: Option<Instant>, opts: ReloadOptions) -> Reloaded {
        let started = Instant::now();
        let mut loaded = load_tracked(&self.dir, &mut self.load);
        let result = std::mem::take(&mut loaded.result);
        let load_time = started.elapsed();
        if opts.skip_unchanged && unchanged(&self.status.last, &result) {
            return Reloaded::Unchanged;
        }
        for w in &result.warnings {
            warn!("{w}");
        }
        let Some(model) = result.model.clone() else {
            return self.reject(result);
        };
        if super::hold_removal(self.status.serving.as_ref(), &model, opts.removals) {
            self.status.reloads_held += 1;
            self.report();
            return Reloaded::Held;
        }
        let done = match self.publish(&model, &loaded.changes, origin) {
            Ok(done) => done,
            Err(problems) => {
                let mut result = result;
                result.model = None;
                result.problems.extend(problems);
                return self.reject(result);
            }
        };
        self.load.commit(loaded);
        info!(
            files = result.files.len(),
            read = result.files_read,
            parsed = result.files_parsed,
            nodes = done.nodes,
            rebuilt = done.rebuilt,
            changed = done.changed,
            load_ms = load_time.as_secs_f64() * 1e3,
            build_ms = done.build.as_secs_f64() * 1e3,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "configuration loaded"
        );
        self.accept(result, model, &done);
        Reloaded::Accepted
    }

    fn reject(&mut self, result: LoadResult) -> Reloaded {
        error!(
            problems = result.problems.len(),
            "configuration rejected; still serving the last good configuration"
        );
        for p in &result.problems {
            error!("{p}");
        }
        let st = &mut self.status;
        st.reloads += 1;
        st.reloads_rejected += 1;
        st.reloaded_at = Some(SystemTime::now());
        let previous = std::mem::replace(&mut st.last, Arc::new(result));
        self.report();
        rayon::spawn(move || drop(previous));
        Reloaded::Rejected
    }

    fn accept(&mut self, result: LoadResult, model: Arc<MeshModel>, done: &Outcome) {
        let st = &mut self.status;
        st.last_rebuilt_nodes = done.rebuilt;
        st.last_changed_nodes = done.changed;
        st.reloads += 1;
        st.reloads_accepted += 1;
        let now = SystemTime::now();
        st.reloaded_at = Some(now);
        st.accepted_at = Some(now);
        st.ready = true;
        let served = st.serving.replace(model);
        let previous = std::mem::replace(&mut st.last, Arc::new(result));
        self.report();
        // The previous model (10,000 nodes' worth of maps) is freed on the worker pool.
        rayon::spawn(move || drop((previous, served)));
    }

    /// Builds the nodes an edit can have touched and publishes their snapshots; removes the nodes
    /// the model no longer defines.
    fn publish(
        &mut self,
        model: &MeshModel,
        changes: &ChangeSet,
        origin: Option<Instant>,
    ) -> Result<Outcome, Vec<crate::diag::Problem>> {
        let all = virtual_nodes(model);
        let mut ids = self.nodes_to_rebuild(&all, changes);
        self.add_renamed(model, &mut ids);
        self.publish_built(model, &all, &ids, origin)
    }

    /// Builds `ids` and publishes their snapshots; removes the nodes not in `all`. Publishes
    /// nothing when a node needs secrets no CA serves (the problems say which).
    fn publish_built(
        &mut self,
        model: &MeshModel,
        all: &[(u64, ProxyId)],
        ids: &[ProxyId],
        origin: Option<Instant>,
    ) -> Result<Outcome, Vec<crate::diag::Problem>> {
        let rebuilt = ids.len();
        let build_started = Instant::now();
        let built = self.builder.build(model, ids, &self.demand.wanted());
        ca::unserved(model, &built)?;
        let build = build_started.elapsed();
        let mut changed = 0;
        // Replaced snapshots are freed on the worker pool, not between two nodes' publications.
        let mut replaced = Vec::with_capacity(built.len());
        let deps = &mut self.tracked.deps;
        for b in built {
            let mut snap = b.snapshot;
            // Only file changes start the convergence clock; the initial load has no origin.
            snap.origin = origin;
            let snap = Arc::new(snap);
            if let Some(old) = self.cache.replace(&b.key, Some(snap.clone())) {
                changed += 1;
                super::log_changes(&b.key, old.as_deref(), &snap, changed);
                replaced.extend(old);
            }
            deps.insert(b.entity, (b.id, b.deps));
        }
        let live: HashSet<u64> = all.iter().map(|(key, _)| *key).collect();
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
        Ok(Outcome {
            nodes: all.len(),
            rebuilt,
            changed,
            build,
        })
    }

    /// The nodes an edit can have touched: those depending on a changed entity, and new ones. The
    /// first load (or one after the caches were dropped) rebuilds everything.
    fn nodes_to_rebuild(&mut self, all: &[(u64, ProxyId)], changes: &ChangeSet) -> Vec<ProxyId> {
        if changes.everything() {
            self.builder.clear();
            return all.iter().map(|(_, id)| id.clone()).collect();
        }
        self.builder.invalidate(changes.changed());
        let deps = &self.tracked.deps;
        all.iter()
            .filter(|(key, _)| deps.get(key).is_none_or(|(_, d)| changes.touches(d)))
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// After a reload panicked: counts it as a rejection and drops every cache the reload may
    /// have left half-updated, so the next reload builds afresh. What is published keeps serving.
    pub(super) fn recover_from_panic(&mut self) {
        let (limits, strict) = (self.load.limits, self.load.strict);
        self.load = LoadCache::new(limits).strict(strict);
        self.builder = Builder::default().with_ca(self.builder.ca().cloned());
        self.tracked = Tracked::default();
        let st = &mut self.status;
        st.reloads += 1;
        st.reloads_rejected += 1;
        st.reload_panics += 1;
        self.report();
    }
}

/// Every virtual node and virtual gateway of the model with its entity key (cheap to hash and
/// compare, unlike a `ProxyId`).
fn virtual_nodes(model: &MeshModel) -> Vec<(u64, ProxyId)> {
    use crate::change::entity_key;
    use crate::spec::Kind;
    model
        .meshes
        .values()
        .flat_map(|m| {
            let nodes = m.virtual_nodes.keys().map(|n| {
                let key = entity_key(Kind::VirtualNode, &m.name, n);
                (key, ProxyId::virtual_node(&m.name, n))
            });
            let gateways = m.virtual_gateways.keys().map(|g| {
                let id = ProxyId {
                    mesh: m.name.clone(),
                    kind: crate::model::ProxyKind::VirtualGateway,
                    name: g.clone(),
                };
                (entity_key(Kind::VirtualGateway, &m.name, g), id)
            });
            nodes.chain(gateways)
        })
        .collect()
}
