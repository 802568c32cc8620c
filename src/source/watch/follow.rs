//! Keeps the inotify (or kqueue) watches pointed at wherever the config path leads now: the
//! resolved directory recursively, and the directories holding its hops (see `resolve`) on their
//! own. Re-arms after a deleted and recreated directory or a swapped link, and decides which events
//! can change what the loader reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use tracing::{debug, warn};

use super::resolve::{resolve, Resolved};
use super::WatchError;
use crate::source::loader::is_mesh_file;

/// A directory's identity: the same path after `rm -rf; mkdir` is a new directory, whose watch
/// must be added again (the kernel dropped the old one with the old inode).
type Identity = (u64, u64);

fn identity(path: &Path) -> Option<Identity> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Some((0, 0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watched {
    id: Identity,
    recursive: bool,
}

pub(super) struct Follower<W> {
    /// The config path as given (possibly a symlink, possibly missing for a while).
    path: PathBuf,
    watcher: W,
    now: Resolved,
    watched: HashMap<PathBuf, Watched>,
}

impl<W: Watcher> Follower<W> {
    /// Arms the watches for `path`, which must resolve to a directory that can be watched.
    pub fn new(path: &Path, watcher: W) -> Result<Follower<W>, WatchError> {
        let mut f = Follower {
            path: path.to_path_buf(),
            watcher,
            now: Resolved::default(),
            watched: HashMap::new(),
        };
        f.rearm_with(|path, source| Err(WatchError::Watch { path, source }))?;
        match f.now.root.clone() {
            Some(root) if f.watched.contains_key(&root) => Ok(f),
            _ => Err(WatchError::NotADirectory(path.to_path_buf())),
        }
    }

    /// Re-resolves the config path and brings the watches in line. A watch that cannot be added
    /// is logged; the periodic re-scan still covers what it would have seen.
    pub fn rearm(&mut self) {
        let _ = self.rearm_with(|path, source| {
            warn!(path = %path.display(), error = %source, "cannot watch; relying on the periodic re-scan");
            Ok(())
        });
    }

    fn rearm_with(
        &mut self,
        mut on_error: impl FnMut(PathBuf, notify::Error) -> Result<(), WatchError>,
    ) -> Result<(), WatchError> {
        let r = resolve(&self.path);
        if r.root != self.now.root {
            debug!(from = ?self.now.root, to = ?r.root, "config path re-pointed");
        }
        // The root recursively; the hops' directories on their own (unless inside the root).
        let mut want: Vec<(PathBuf, bool)> = r.root.iter().map(|p| (p.clone(), true)).collect();
        want.extend(
            r.parents
                .iter()
                .filter(|p| r.root.as_ref().is_none_or(|root| !p.starts_with(root)))
                .map(|p| (p.clone(), false)),
        );
        self.watched.retain(|path, _| {
            want.iter().any(|(p, _)| p == path) || {
                let _ = self.watcher.unwatch(path);
                false
            }
        });
        for (path, recursive) in want {
            let Some(id) = identity(&path) else {
                continue;
            };
            let w = Watched { id, recursive };
            if self.watched.get(&path) == Some(&w) {
                continue;
            }
            if self.watched.remove(&path).is_some() {
                // Gone with its old inode, or its mode changes: notify may still list it.
                let _ = self.watcher.unwatch(&path);
            }
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match self.watcher.watch(&path, mode) {
                Ok(()) => {
                    self.watched.insert(path, w);
                }
                Err(e) => on_error(path, e)?,
            }
        }
        self.now = r;
        Ok(())
    }

    /// Forgets the watch of a watched directory that `event` says was removed or renamed away:
    /// the kernel dropped it, and notify may drop a watch added again under the same path when it
    /// handles this event, so the next `rearm` (which runs after this event was handled) adds it.
    pub fn forget_removed(&mut self, event: &notify::Result<notify::Event>) {
        let Ok(ev) = event else { return };
        if matches!(
            ev.kind,
            notify::EventKind::Remove(_)
                | notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
        ) {
            for p in &ev.paths {
                self.watched.remove(p);
            }
        }
    }

    /// The paths of `event` that can change what the loader reads; `None` for an event that
    /// cannot. An event that may stand for lost ones (an overflowed queue) is relevant.
    pub fn relevant(&self, event: &notify::Result<notify::Event>) -> Option<Vec<PathBuf>> {
        let ev = match event {
            Ok(ev) => ev,
            Err(_) => return Some(Vec::new()),
        };
        if ev.need_rescan() {
            return Some(Vec::new());
        }
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return None;
        }
        let paths: Vec<PathBuf> = ev
            .paths
            .iter()
            .filter(|p| self.relevant_path(p))
            .cloned()
            .collect();
        (!paths.is_empty()).then_some(paths)
    }

    fn relevant_path(&self, path: &Path) -> bool {
        if self.now.hops.contains(path) {
            return true;
        }
        match &self.now.root {
            Some(root) => path.strip_prefix(root).is_ok_and(relevant_below_root),
            None => false,
        }
    }
}

/// Whether a path below the root matters: a mesh file, a directory (a renamed or deleted folder of
/// mesh files), or anything in the `..`-named directories of a Kubernetes ConfigMap volume
/// (`..data` and `..<timestamp>`): kubelet swaps `..data` to a new timestamped directory and leaves
/// the visible `x.yaml -> ..data/x.yaml` links untouched, so the swap is the only event. Other
/// hidden names (`.git`, editors' swap files) never matter: the loader skips them.
fn relevant_below_root(rel: &Path) -> bool {
    if rel.as_os_str().is_empty() {
        return true;
    }
    let names = || rel.components().map(|c| c.as_os_str().to_string_lossy());
    if names().any(|n| n.starts_with("..")) {
        return true;
    }
    if names().any(|n| n.starts_with('.')) {
        return false;
    }
    is_mesh_file(rel) || rel.extension().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_temp_files_do_not_trigger_reloads() {
        assert!(relevant_below_root(Path::new("a.yaml")));
        assert!(relevant_below_root(Path::new("sub")));
        assert!(relevant_below_root(Path::new("")));
        assert!(!relevant_below_root(Path::new(".a.yaml.swp")));
        assert!(!relevant_below_root(Path::new("a.yaml~")));
        assert!(!relevant_below_root(Path::new("a.yaml.tmp")));
        assert!(!relevant_below_root(Path::new(".git/index")));
    }

    #[test]
    fn configmap_swaps_trigger_reloads() {
        assert!(relevant_below_root(Path::new("..data")));
        assert!(relevant_below_root(Path::new("..data_tmp")));
        assert!(relevant_below_root(Path::new(
            "..2026_12_01_10_00_00.123/mesh.yaml"
        )));
    }
}
