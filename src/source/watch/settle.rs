//! One burst of changes, and whether its files have settled: every changed path must keep its size,
//! modification time and inode across a quiet period, so a file still being written (truncated,
//! then filled) is not read half-written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What identifies one state of a path without reading it; `None` in [`Burst`] means absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    // Through symlinks: `x.yaml -> ..data/x.yaml` is read through its link.
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let ino = 0;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        ino,
    })
}

/// What [`Burst::check`] found when the quiet period ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing changed for a quiet period: read now.
    Settled,
    /// Files changed again: wait another quiet period.
    Wait,
    /// Still changing at the burst's deadline: read anyway; these paths changed within the last
    /// quiet period.
    Overdue(Vec<PathBuf>),
}

pub(super) struct Burst {
    first: Instant,
    /// The last relevant event, or the last re-stat that found a change without one.
    last: Instant,
    quiet: Duration,
    max_wait: Duration,
    /// Every changed path, with its stamp and the time it was last seen changing.
    changed: HashMap<PathBuf, (Option<Stamp>, Instant)>,
}

impl Burst {
    pub fn new(first: Instant, quiet: Duration, max_wait: Duration) -> Burst {
        Burst {
            first,
            last: first,
            quiet,
            max_wait,
            changed: HashMap::new(),
        }
    }

    /// When the burst began (the save, for convergence metrics).
    pub fn first(&self) -> Instant {
        self.first
    }

    /// Records an event at `at` on `paths`, stamping each path as it is now.
    pub fn note(&mut self, at: Instant, paths: Vec<PathBuf>) {
        self.last = self.last.max(at);
        for p in paths {
            let s = stamp(&p);
            self.changed.insert(p, (s, at));
        }
    }

    /// When to look again: the end of the quiet period, or the deadline if sooner.
    pub fn wake_at(&self) -> Instant {
        (self.last + self.quiet).min(self.first + self.max_wait)
    }

    /// Re-stats every changed path at `now` (a wake-up with no event in between).
    pub fn check(&mut self, now: Instant) -> Verdict {
        let mut moved = false;
        for (p, (s, at)) in &mut self.changed {
            let n = stamp(p);
            if n != *s {
                (*s, *at) = (n, now);
                moved = true;
            }
        }
        if moved {
            self.last = now;
        }
        if !moved && now >= self.last + self.quiet {
            Verdict::Settled
        } else if now >= self.first + self.max_wait {
            let mut unsettled: Vec<PathBuf> = self
                .changed
                .iter()
                .filter(|(_, (_, at))| *at + self.quiet > now)
                .map(|(p, _)| p.clone())
                .collect();
            unsettled.sort();
            Verdict::Overdue(unsettled)
        } else {
            Verdict::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_millis(500);

    #[test]
    fn a_file_rewritten_without_an_event_is_not_settled() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.yaml");
        std::fs::write(&f, "one").unwrap();
        let t0 = Instant::now();
        let mut b = Burst::new(t0, QUIET, MAX);
        b.note(t0, vec![f.clone()]);
        assert_eq!(b.wake_at(), t0 + QUIET);
        // Written again in place (new size), with its event lost: one more quiet period.
        std::fs::write(&f, "three").unwrap();
        assert_eq!(b.check(t0 + QUIET), Verdict::Wait);
        assert_eq!(b.wake_at(), t0 + QUIET * 2);
        assert_eq!(b.check(t0 + QUIET * 2), Verdict::Settled);
    }

    #[test]
    fn deleted_and_created_paths_settle_once_they_stay_put() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.yaml");
        let t0 = Instant::now();
        let mut b = Burst::new(t0, QUIET, MAX);
        b.note(t0, vec![f.clone()]);
        std::fs::write(&f, "new").unwrap();
        assert_eq!(b.check(t0 + QUIET), Verdict::Wait);
        std::fs::remove_file(&f).unwrap();
        assert_eq!(b.check(t0 + QUIET * 2), Verdict::Wait);
        assert_eq!(b.check(t0 + QUIET * 3), Verdict::Settled);
    }

    #[test]
    fn a_file_that_never_settles_is_read_at_the_deadline() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.yaml");
        let t0 = Instant::now();
        let mut b = Burst::new(t0, QUIET, MAX);
        b.note(t0, vec![f.clone()]);
        for i in 1..10u32 {
            std::fs::write(&f, "x".repeat(i as usize)).unwrap();
            assert_eq!(b.check(t0 + QUIET * i), Verdict::Wait, "{i}");
        }
        std::fs::write(&f, "final").unwrap();
        assert_eq!(b.wake_at(), t0 + MAX);
        assert_eq!(b.check(t0 + MAX), Verdict::Overdue(vec![f]));
    }
}
