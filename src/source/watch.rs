//! Turns file-system changes under the config path into one reload signal per settled burst.
//!
//! Follows every way a directory changes: edits in place, write-and-rename, delete-and-recreate of
//! files or of the whole directory, a symlinked directory swapped with `ln -sfn` or by git-sync,
//! and Kubernetes ConfigMap `..data` swaps (`follow`, `resolve`). A burst ends when the directory
//! has been quiet and every changed file has kept its size and time for the quiet period
//! (`settle`), capped at a maximum wait; a periodic re-scan covers events the kernel dropped.

mod follow;
mod resolve;
mod settle;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self as std_mpsc, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch as latest};
use tracing::{debug, warn};

use follow::Follower;
use settle::{Burst, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot watch {0}: not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot start the watcher thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// How the watcher groups and checks changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchConfig {
    /// Quiet time that ends a burst; also how long each changed file must keep its size and time.
    pub quiet: Duration,
    /// Longest a burst may go on (files still changing) before its reload happens anyway.
    pub max_wait: Duration,
    /// Interval of the safety re-scan, in case the kernel dropped events.
    pub rescan: Duration,
}

/// What the watcher asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Files changed and have settled; `origin` is when the burst's first event was seen (the
    /// moment of the save, for convergence metrics).
    Edit { origin: Instant },
    /// The periodic re-scan: reload only if the files differ from what was last loaded.
    Rescan,
}

/// The receiving end: changes, and when the last relevant event was seen.
pub struct Changes {
    rx: mpsc::Receiver<Change>,
    last_event: latest::Receiver<Instant>,
}

impl Changes {
    /// The next change; `None` once the watcher has stopped.
    pub async fn recv(&mut self) -> Option<Change> {
        self.rx.recv().await
    }

    /// How long no relevant event has been seen (the directory has been still).
    pub fn quiet_for(&self) -> Duration {
        self.last_event.borrow().elapsed()
    }
}

enum Raw {
    Event(Instant, notify::Result<notify::Event>),
    Stop,
}

/// Stops the watcher when dropped.
pub struct WatchHandle {
    stop: std_mpsc::Sender<Raw>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(Raw::Stop);
    }
}

/// Watches `dir` (a directory, or a symlink to one) on a thread of its own until the handle is
/// dropped. Fails when `dir` cannot be watched now; later failures are logged and retried.
pub fn watch(dir: &Path, cfg: WatchConfig) -> Result<(WatchHandle, Changes), WatchError> {
    let (raw_tx, raw_rx) = std_mpsc::channel();
    let events = raw_tx.clone();
    let watcher = <notify::RecommendedWatcher as notify::Watcher>::new(
        move |res| {
            let _ = events.send(Raw::Event(Instant::now(), res));
        },
        // Never out of the directory through a link inside it (`ln -s / root` would watch the
        // whole file system); the re-scan covers what such links point at.
        notify::Config::default().with_follow_symlinks(false),
    )
    .map_err(|source| WatchError::Watch {
        path: dir.to_path_buf(),
        source,
    })?;
    let follower = Follower::new(dir, watcher)?;
    let cfg = WatchConfig {
        rescan: cfg.rescan.max(Duration::from_millis(10)),
        ..cfg
    };
    let (tx, rx) = mpsc::channel(1);
    let (last_tx, last_event) = latest::channel(Instant::now());
    let out = Out { tx, last: last_tx };
    std::thread::Builder::new()
        .name("meshplane-watch".into())
        .spawn(move || run(follower, raw_rx, out, cfg))
        .map_err(WatchError::Thread)?;
    Ok((WatchHandle { stop: raw_tx }, Changes { rx, last_event }))
}

struct Out {
    tx: mpsc::Sender<Change>,
    last: latest::Sender<Instant>,
}

impl Out {
    /// False once nobody listens. A full channel already holds a pending reload, which will read
    /// the newest files.
    fn send(&self, c: Change) -> bool {
        !matches!(
            self.tx.try_send(c),
            Err(mpsc::error::TrySendError::Closed(_))
        )
    }
}

fn run<W: notify::Watcher>(
    mut f: Follower<W>,
    raw: std_mpsc::Receiver<Raw>,
    out: Out,
    cfg: WatchConfig,
) {
    let mut rescan_at = Instant::now() + cfg.rescan;
    loop {
        let (at, event) =
            match raw.recv_timeout(rescan_at.saturating_duration_since(Instant::now())) {
                Ok(Raw::Event(at, ev)) => (at, ev),
                Ok(Raw::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    f.rearm();
                    rescan_at = Instant::now() + cfg.rescan;
                    if !out.send(Change::Rescan) {
                        return;
                    }
                    continue;
                }
            };
        f.forget_removed(&event);
        let Some(paths) = f.relevant(&event) else {
            continue;
        };
        let _ = out.last.send_replace(at);
        let mut burst = Burst::new(at, cfg.quiet, cfg.max_wait);
        burst.note(at, paths);
        f.rearm();
        if !settle(&mut f, &raw, &out, &mut burst) {
            return;
        }
        // The root may have moved during the burst; the reload reads wherever it is now.
        f.rearm();
        if !out.send(Change::Edit {
            origin: burst.first(),
        }) {
            return;
        }
        rescan_at = Instant::now() + cfg.rescan;
    }
}

/// Waits until `burst` is over: quiet, and its files settled (or its deadline passed). False when
/// the watcher is stopping.
fn settle<W: notify::Watcher>(
    f: &mut Follower<W>,
    raw: &std_mpsc::Receiver<Raw>,
    out: &Out,
    burst: &mut Burst,
) -> bool {
    loop {
        let now = Instant::now();
        // Checked before waiting, so a storm of events cannot keep the deadline from passing.
        if now >= burst.wake_at() {
            match burst.check(now) {
                Verdict::Settled => return true,
                Verdict::Wait => debug!("changed files still being written; waiting"),
                Verdict::Overdue(paths) => {
                    warn!(
                        files = ?paths,
                        waited_ms = burst.first().elapsed().as_millis() as u64,
                        "files still changing at the maximum wait; reading them as they are"
                    );
                    return true;
                }
            }
            continue;
        }
        match raw.recv_timeout(burst.wake_at() - now) {
            Ok(Raw::Event(at, ev)) => {
                f.forget_removed(&ev);
                if let Some(paths) = f.relevant(&ev) {
                    let _ = out.last.send_replace(at);
                    burst.note(at, paths);
                    // Re-resolve on every event: this one may have re-pointed the config path.
                    f.rearm();
                }
            }
            Ok(Raw::Stop) | Err(RecvTimeoutError::Disconnected) => return false,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: WatchConfig = WatchConfig {
        quiet: Duration::from_millis(40),
        max_wait: Duration::from_secs(5),
        rescan: Duration::from_secs(60),
    };

    /// The watcher's loop on `dir`, fed by hand instead of by the kernel.
    fn run_by_hand(
        dir: &Path,
        cfg: WatchConfig,
    ) -> (std_mpsc::Sender<Raw>, mpsc::Receiver<Change>) {
        let (raw_tx, raw_rx) = std_mpsc::channel();
        let f = Follower::new(dir, notify::NullWatcher).expect("follower");
        let (tx, rx) = mpsc::channel(1);
        let (last, _) = latest::channel(Instant::now());
        std::thread::spawn(move || run(f, raw_rx, Out { tx, last }, cfg));
        (raw_tx, rx)
    }

    /// The next change within `limit`; `Err(())` once the loop has ended.
    fn next(rx: &mut mpsc::Receiver<Change>, limit: Duration) -> Result<Option<Change>, ()> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            match rx.try_recv() {
                Ok(c) => return Ok(Some(c)),
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return Err(()),
            }
        }
        Ok(None)
    }

    fn modified(path: &Path) -> notify::Result<notify::Event> {
        Ok(
            notify::Event::new(notify::EventKind::Modify(notify::event::ModifyKind::Any))
                .add_path(path.to_path_buf()),
        )
    }

    #[test]
    fn rescans_come_at_their_interval_and_end_with_the_watcher() {
        let d = tempfile::tempdir().unwrap();
        let cfg = WatchConfig {
            rescan: Duration::from_millis(30),
            ..CFG
        };
        let (raw, mut rx) = run_by_hand(d.path(), cfg);
        let started = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                next(&mut rx, Duration::from_secs(2)),
                Ok(Some(Change::Rescan))
            );
        }
        assert!(started.elapsed() >= Duration::from_millis(90));
        raw.send(Raw::Stop).unwrap();
        let ended = (0..100).any(|_| next(&mut rx, Duration::from_millis(50)).is_err());
        assert!(ended, "the loop did not end");
    }

    #[test]
    fn a_burst_is_one_edit_once_its_files_hold_still() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let file = root.join("a.yaml");
        // A quiet period well above the writes' 10 ms spacing, so a busy machine that delays one
        // write by a few tens of ms does not end the burst early.
        let cfg = WatchConfig {
            quiet: Duration::from_millis(200),
            ..CFG
        };
        let (raw, mut rx) = run_by_hand(&root, cfg);
        let first = Instant::now();
        let mut last = first;
        for i in 0..5 {
            std::fs::write(&file, "x".repeat(i + 1)).unwrap();
            let at = if i == 0 { first } else { Instant::now() };
            raw.send(Raw::Event(at, modified(&file))).unwrap();
            last = at;
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            next(&mut rx, Duration::from_secs(2)),
            Ok(Some(Change::Edit { origin: first }))
        );
        assert!(
            last.elapsed() >= cfg.quiet,
            "reloaded before the quiet period"
        );
        // An editor's swap file never starts a burst.
        raw.send(Raw::Event(
            Instant::now(),
            modified(&root.join(".a.yaml.swp")),
        ))
        .unwrap();
        assert_eq!(next(&mut rx, Duration::from_millis(200)), Ok(None));
    }
}
