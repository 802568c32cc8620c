//! What the reload engine publishes for everyone else to read: the load report ([`LoadResult`],
//! [`Status`]) and [`Published`], the read-only handle on it and on the snapshot cache that the
//! admin API, the gRPC status service and tests hold. Readers get an `Arc` of the latest report and
//! never lock anything the reload task writes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::diag::Problem;
use crate::model::MeshModel;
use crate::source;
use crate::xds::cache::SnapshotCache;

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

/// The state of the reloads, as of the last one. Cheap to clone: the large parts are shared.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub last: Arc<LoadResult>,
    /// True once a valid configuration has been published.
    pub ready: bool,
    pub reloads: u64,
    pub reloads_accepted: u64,
    pub reloads_rejected: u64,
    /// Reloads that panicked (each also counted as rejected).
    pub reload_panics: u64,
    /// Valid reloads held for removing most of a mesh (see `app::reloader`).
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
}

/// Read-only view of a pipeline: its directory, the snapshots it published and its latest report.
#[derive(Debug, Clone)]
pub struct Published {
    pub dir: PathBuf,
    pub cache: SnapshotCache,
    pub status: watch::Receiver<Arc<Status>>,
}

impl Published {
    /// The latest report (a shared copy: holding it delays no reload).
    pub fn status(&self) -> Arc<Status> {
        self.status.borrow().clone()
    }
}
