//! Runs the pipeline: the load facade (read, parse, validate a directory: [`load`]), the single
//! writer that turns a valid model into published snapshots (`pipeline`), the reload task that
//! drives it from file changes (`reloader`, with the `removal` guard), and the servers (`serve`).

mod pipeline;
mod reloader;
mod removal;
mod security;
mod serve;
mod xds_ca;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tracing::{info, warn};

use crate::change::{ChangeSet, Identities};
use crate::model::{self, MeshModel};
use crate::source::{self, Limits};
use crate::xds::Snapshot;

pub use crate::report::{LoadResult, Published, Status};
pub use pipeline::Pipeline;
pub use reloader::{ReloadOptions, ReloadSettings, Reloaded, RemovalGuard};
pub use removal::{large_removal, Removal};
pub use security::{AdminToken, Security, SecurityError, SpiffeAuthorizer, DEFAULT_TRUST_DOMAIN};
pub use serve::{run, CaSettings, Listeners, ServeConfig, Server};

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
    #[error("--ca-dir: {0}")]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Security(#[from] SecurityError),
}

/// Reads, parses and validates `dir` within the default limits. Pure apart from reading files.
pub fn load(dir: &std::path::Path) -> LoadResult {
    load_with(dir, &mut LoadCache::default())
}

/// Like [`load`], within `limits`.
pub fn load_limited(dir: &std::path::Path, limits: Limits) -> LoadResult {
    load_with(dir, &mut LoadCache::new(limits))
}

/// Like [`load_limited`]; with `strict`, a field that is loaded but not translated is a problem.
pub fn load_strict(dir: &std::path::Path, limits: Limits, strict: bool) -> LoadResult {
    load_with(dir, &mut LoadCache::new(limits).strict(strict))
}

/// What a load keeps between calls: parsed files, the check results and entity identities of the
/// last committed load (the published one, in a server), and the limits every load observes.
#[derive(Default)]
pub struct LoadCache {
    parsed: source::loader::ParseCache,
    checked: model::CheckCache,
    baseline: Identities,
    limits: Limits,
    /// `--strict`: fields loaded but not translated are problems (`model::check_alone_strict`).
    strict: bool,
}

impl LoadCache {
    pub fn new(limits: Limits) -> LoadCache {
        LoadCache {
            limits,
            ..LoadCache::default()
        }
    }

    /// With `strict`, every load of this cache treats untranslated fields as problems.
    pub fn strict(mut self, strict: bool) -> LoadCache {
        self.strict = strict;
        self
    }

    /// Makes `loaded` the baseline of the next load's change set and check cache.
    pub fn commit(&mut self, loaded: Loaded) {
        self.checked = loaded.checked;
        self.baseline = loaded.changes.current;
    }
}

/// One load with what it changed since the cache's baseline, not yet committed.
pub struct Loaded {
    pub result: LoadResult,
    /// Computed once per load; the validator re-checked, and the builder rebuilds, what it touches.
    pub changes: ChangeSet,
    checked: model::CheckCache,
}

/// Like [`load`], parsing and checking only what changed since the previous call with `cache`.
pub fn load_with(dir: &std::path::Path, cache: &mut LoadCache) -> LoadResult {
    let mut loaded = load_tracked(dir, cache);
    let result = std::mem::take(&mut loaded.result);
    cache.commit(loaded);
    result
}

/// Reads, parses and validates `dir`, re-using what `cache` holds; the caller commits the result
/// once it is published (until then the next load is compared with the same baseline).
pub fn load_tracked(dir: &std::path::Path, cache: &mut LoadCache) -> Loaded {
    let judge = if cache.strict {
        model::check_alone_strict
    } else {
        model::check_alone
    };
    let out = source::loader::load_dir_cached(dir, &cache.limits, &mut cache.parsed, judge);
    let mut result = LoadResult {
        files: out.files,
        files_read: out.files_read,
        files_parsed: out.files_parsed,
        warnings: out.warnings,
        ..Default::default()
    };
    let changes = ChangeSet::between(&cache.baseline, Identities::of(&out.documents));
    let (validated, checked) = model::validate_with(&out.documents, &cache.checked, &changes);
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
    Loaded {
        result,
        changes,
        checked,
    }
}

/// Whether `model` must be held rather than published (logged); `published` is what is served.
fn hold_removal(
    published: Option<&Arc<MeshModel>>,
    model: &MeshModel,
    guard: RemovalGuard,
) -> bool {
    let (percent, hold) = match guard {
        RemovalGuard::Off => return false,
        RemovalGuard::Hold(p) => (p, true),
        RemovalGuard::Apply(p) => (p, false),
    };
    let Some(removal) = published.and_then(|prev| large_removal(prev, model, percent)) else {
        return false;
    };
    if hold {
        warn!(removes = %removal, "reload would remove most of a mesh; holding it until the directory stays still");
    } else {
        warn!(removes = %removal, "applying a held reload: the directory stayed still");
    }
    hold
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
