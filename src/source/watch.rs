//! Turns file-system events under the config directory into one reload signal per burst.
//!
//! Editors save in many ways (write in place, write a temp file and rename, delete and recreate); all
//! of them produce a burst of events. We wait until the directory has been quiet for `quiet`, capped at
//! `max_wait` so a constantly-written directory still reloads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::loader::is_mesh_file;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// Watches `dir` and sends, once per debounced burst of relevant events, the time the burst's first
/// event was seen (the moment of the save, for convergence metrics). The watcher stops when the
/// returned guard is dropped.
pub fn watch(
    dir: &Path,
    quiet: Duration,
    max_wait: Duration,
) -> Result<
    (
        notify::RecommendedWatcher,
        mpsc::Receiver<std::time::Instant>,
    ),
    WatchError,
> {
    let root = dir.to_path_buf();
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<std::time::Instant>();
    let filter_root = root.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let relevant = match res {
            Ok(ev) => {
                !matches!(ev.kind, notify::EventKind::Access(_))
                    && ev.paths.iter().any(|p| relevant(&filter_root, p))
            }
            // An overflowed or failed watch may have lost events: reload to be safe.
            Err(_) => true,
        };
        if relevant {
            let _ = raw_tx.send(std::time::Instant::now());
        }
    })
    .map_err(|source| WatchError::Watch {
        path: root.clone(),
        source,
    })?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|source| WatchError::Watch {
            path: root.clone(),
            source,
        })?;

    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        // Ends when the watcher (and with it raw_tx) is dropped.
        while let Some(first) = raw_rx.recv().await {
            let deadline = Instant::now() + max_wait;
            loop {
                let until = (Instant::now() + quiet).min(deadline);
                match tokio::time::timeout_at(until, raw_rx.recv()).await {
                    Ok(Some(_)) if Instant::now() < deadline => continue,
                    Ok(None) => return,
                    _ => break,
                }
            }
            // A full channel already holds a pending reload, which will read the newest files.
            if tx.try_send(first).is_err() && tx.is_closed() {
                return;
            }
        }
    });
    Ok((watcher, rx))
}

/// A path matters if it is a mesh file, or a directory (a renamed or deleted folder of mesh files).
fn relevant(root: &Path, path: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    if rel.as_os_str().is_empty() {
        return true;
    }
    if rel
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
    {
        return false;
    }
    is_mesh_file(rel) || rel.extension().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_temp_files_do_not_trigger_reloads() {
        let root = Path::new("/m");
        assert!(relevant(root, Path::new("/m/a.yaml")));
        assert!(relevant(root, Path::new("/m/sub")));
        assert!(!relevant(root, Path::new("/m/.a.yaml.swp")));
        assert!(!relevant(root, Path::new("/m/a.yaml~")));
        assert!(!relevant(root, Path::new("/m/a.yaml.tmp")));
    }
}
