//! The reload loop: one reload per change the watcher reports, re-scans that change nothing left
//! silent, and a reload that would remove most of a mesh held until the directory has been still
//! for a while, then applied (both logged at `warn` with what it removes). Certificates of
//! meshplane's CA are renewed when due, between reloads.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{LoadResult, Pipeline};
use crate::source::watch::{Change, Changes, WatchConfig};
use crate::xds::limits::parse_duration;

/// Watcher and reload settings of `meshplane serve` besides `--debounce-ms` (README "How the
/// directory is watched").
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ReloadSettings {
    /// Longest a burst of changes may delay its reload while changed files keep changing (e.g.
    /// `10s`); until then a file is read only once its size and time have held still for the
    /// debounce.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub max_wait: Duration,
    /// Interval of the safety re-scan that catches changes whose file-system events were lost (a
    /// stat of every file; nothing is read unless it changed).
    #[arg(long = "rescan-interval", default_value = "30s", value_parser = parse_interval)]
    pub rescan: Duration,
    /// A reload that would remove more than this percentage of one kind of resource of a mesh
    /// (virtual nodes, gateways, services, routes, gateway routes) is held; 100 never holds.
    #[arg(long = "removal-hold-percent", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub removal_percent: u8,
    /// How long the directory must stay still before such a held reload is applied.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub removal_hold: Duration,
}

/// A re-scan interval: a duration of at least a second (a re-scan stats every file).
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("`{s}`: the re-scan interval must be at least 1s"));
    }
    Ok(d)
}

impl Default for ReloadSettings {
    fn default() -> ReloadSettings {
        ReloadSettings {
            max_wait: Duration::from_secs(10),
            rescan: Duration::from_secs(30),
            removal_percent: 50,
            removal_hold: Duration::from_secs(2),
        }
    }
}

impl ReloadSettings {
    pub fn watch_config(&self, quiet: Duration) -> WatchConfig {
        WatchConfig {
            quiet,
            max_wait: self.max_wait.max(quiet),
            rescan: self.rescan,
        }
    }
}

/// What a large removal does to a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemovalGuard {
    /// Not checked (the first load, tests, benchmarks).
    #[default]
    Off,
    /// Held: not published.
    Hold(u8),
    /// Published, and logged: the directory stayed still after it was held.
    Apply(u8),
}

/// How one reload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReloadOptions {
    /// Return [`Reloaded::Unchanged`] without a trace when the files are the last load's.
    pub skip_unchanged: bool,
    pub removals: RemovalGuard,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    Accepted,
    /// Invalid: the last good configuration keeps serving.
    Rejected,
    /// Valid, but it would remove most of a mesh: not published (yet).
    Held,
    /// Nothing changed since the last load.
    Unchanged,
}

/// Whether `now` read exactly what `last` did: no file parsed anew, the same files, the same
/// problems.
pub(super) fn unchanged(last: &LoadResult, now: &LoadResult) -> bool {
    now.files_parsed == 0 && now.files == last.files && now.problems == last.problems
}

/// A reload held for removing most of a mesh.
struct Held {
    origin: Option<Instant>,
    check_at: tokio::time::Instant,
}

/// Runs one reload on the blocking pool: the pipeline goes there and comes back with the outcome.
/// `None` only if the blocking pool is gone (the runtime is shutting down).
pub(super) async fn reload(
    mut p: Pipeline,
    origin: Option<Instant>,
    opts: ReloadOptions,
) -> Option<(Pipeline, Reloaded)> {
    tokio::task::spawn_blocking(move || {
        let r = guarded(&mut p, |p| p.reload_with(origin, opts));
        (p, r)
    })
    .await
    .ok()
}

/// Rebuilds every node with the per-type variants now in demand, on the blocking pool (a panic
/// is handled as in a reload).
async fn refresh_variants(mut p: Pipeline) -> Option<Pipeline> {
    tokio::task::spawn_blocking(move || {
        guarded(&mut p, |p| {
            p.refresh_variants();
            Reloaded::Accepted
        });
        p
    })
    .await
    .ok()
}

/// Runs one reload. A panic inside it (a bug, never an input: inputs are validated) is logged,
/// counted and taken as a rejected reload: what was published keeps serving, and the caches the
/// reload may have left half-updated are dropped, so the next reload builds afresh.
fn guarded(p: &mut Pipeline, run: impl FnOnce(&mut Pipeline) -> Reloaded) -> Reloaded {
    let panic = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut *p))) {
        Ok(done) => return done,
        Err(panic) => panic,
    };
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    tracing::error!(panic = %what, "reload panicked; still serving the last good configuration");
    p.recover_from_panic();
    Reloaded::Rejected
}

/// Renews the certificates that are due, on the blocking pool (a panic is handled as in a reload).
async fn renew(mut p: Pipeline) -> Option<Pipeline> {
    tokio::task::spawn_blocking(move || {
        guarded(&mut p, |p| {
            p.renew_due();
            Reloaded::Accepted
        });
        p
    })
    .await
    .ok()
}

/// Looks at the CA directory for a root rotation, on the blocking pool.
async fn check_ca(mut p: Pipeline) -> Option<Pipeline> {
    tokio::task::spawn_blocking(move || {
        guarded(&mut p, |p| {
            p.check_ca();
            Reloaded::Accepted
        });
        p
    })
    .await
    .ok()
}

/// When to renew certificates next: when the first is due, but never sooner than a second after
/// the last renewal (a certificate that could not be issued is retried, not spun on).
fn renewal_wake(p: &Pipeline, last: Option<tokio::time::Instant>) -> Option<tokio::time::Instant> {
    let at = p.next_renewal()?;
    let wait = at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    let wake = tokio::time::Instant::now() + wait;
    Some(match last {
        Some(l) => wake.max(l + Duration::from_secs(1)),
        None => wake,
    })
}

/// Reloads on every change until `stop` or until the watcher ends. Owns the pipeline: nothing
/// else writes snapshots or reports.
pub(super) async fn run(
    mut p: Pipeline,
    mut changes: Changes,
    mut variants: watch::Receiver<u64>,
    s: ReloadSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut held: Option<Held> = None;
    let mut variants_open = true;
    let mut renewed: Option<tokio::time::Instant> = None;
    let has_ca = p.has_ca();
    let mut ca_check = tokio::time::interval(super::xds_ca::CA_CHECK);
    ca_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let wake = held.as_ref().map(|h| h.check_at);
        let renew_at = renewal_wake(&p, renewed);
        let (origin, opts) = tokio::select! {
            _ = crate::xds::server::stopped(&mut stop) => break,
            _ = tokio::time::sleep_until(renew_at.unwrap_or_else(tokio::time::Instant::now)), if renew_at.is_some() => {
                renewed = Some(tokio::time::Instant::now());
                let Some(back) = renew(p).await else { return };
                p = back;
                continue;
            }
            _ = ca_check.tick(), if has_ca => {
                let Some(back) = check_ca(p).await else { return };
                p = back;
                continue;
            }
            r = variants.changed(), if variants_open => {
                if r.is_err() {
                    // The xDS server is gone; file changes still reload.
                    variants_open = false;
                    continue;
                }
                let Some(back) = refresh_variants(p).await else { return };
                p = back;
                continue;
            }
            c = changes.recv() => {
                let Some(c) = c else { break };
                let (origin, skip_unchanged) = match c {
                    Change::Edit { origin } => (Some(origin), false),
                    Change::Rescan => (held.as_ref().and_then(|h| h.origin), true),
                };
                (origin, ReloadOptions { skip_unchanged, removals: RemovalGuard::Hold(s.removal_percent) })
            }
            _ = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => {
                let still = changes.quiet_for();
                if still < s.removal_hold {
                    if let Some(h) = held.as_mut() {
                        h.check_at = tokio::time::Instant::now() + (s.removal_hold - still);
                    }
                    continue;
                }
                let origin = held.take().and_then(|h| h.origin);
                (origin, ReloadOptions { skip_unchanged: false, removals: RemovalGuard::Apply(s.removal_percent) })
            }
        };
        let Some((back, done)) = reload(p, origin, opts).await else {
            return;
        };
        p = back;
        match done {
            Reloaded::Held => {
                let check_at = tokio::time::Instant::now() + s.removal_hold;
                held = Some(Held {
                    origin,
                    check_at: held.map_or(check_at, |h| h.check_at),
                });
            }
            Reloaded::Unchanged => {}
            Reloaded::Accepted | Reloaded::Rejected => held = None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panicking_reload_is_a_counted_rejection_and_drops_the_caches() {
        let dir = std::env::temp_dir().join(format!("meshplane-panic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = Pipeline::new(dir.clone());
        let r = super::guarded(&mut p, |_| panic!("a bug in the translation"));
        assert_eq!(r, Reloaded::Rejected);
        {
            let st = p.status();
            assert_eq!(
                (st.reloads, st.reloads_rejected, st.reload_panics),
                (1, 1, 1)
            );
        }
        assert_eq!(
            super::guarded(&mut p, |_| Reloaded::Accepted),
            Reloaded::Accepted
        );
        assert_eq!(p.status().reload_panics, 1, "only panics count");
        let _ = std::fs::remove_dir_all(dir);
    }

    use super::*;

    #[test]
    fn a_rescan_that_reads_nothing_new_is_unchanged() {
        let last = LoadResult {
            files: vec!["a.yaml".into()],
            files_read: 1,
            files_parsed: 1,
            ..Default::default()
        };
        // Read again (a recent write keeps its stamp untrusted) but with the same content.
        let same = LoadResult {
            files_parsed: 0,
            ..last.clone()
        };
        assert!(unchanged(&last, &same));
        assert!(!unchanged(
            &last,
            &LoadResult {
                files_parsed: 1,
                ..same.clone()
            }
        ));
        assert!(!unchanged(
            &last,
            &LoadResult {
                files: vec![],
                ..same.clone()
            }
        ));
    }
}
