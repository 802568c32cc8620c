//! The edit phase of `meshplane load`: once the clients have converged, make each config change
//! (rewrite the synthetic mesh's svc-0 route, or run `--edit-cmd`) and time it to every client's ACK.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::client::Shared;
use super::report::{percentiles, Percentiles};
use super::{LoadError, LoadOptions};

/// Makes `--edits` changes one after another (none without `--edit-dir` or `--edit-cmd`); per edit,
/// the latencies of the clients that saw it, waiting for all `converged` of them up to the timeout.
pub(super) async fn measure(
    opts: &LoadOptions,
    shared: &Shared,
    converged: usize,
) -> Result<Vec<Percentiles>, LoadError> {
    let timeout = Duration::from_secs(opts.timeout);
    let mut edits = Vec::new();
    let editing = opts.edit_dir.is_some() || opts.edit_cmd.is_some();
    for k in 1..=(if editing { opts.edits } else { 0 }) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        shared
            .edit_nanos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *shared.edit_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        shared.edit.store(k as u64, Ordering::Release);
        // Off the runtime's workers: a blocked worker would serve none of the clients whose
        // responses the edit sets off, while the command (a shell script, say) runs.
        let (dir, cmd) = (opts.edit_dir.clone(), opts.edit_cmd.clone());
        tokio::task::spawn_blocking(move || edit(dir.as_deref(), cmd.as_deref(), k))
            .await
            .map_err(|e| LoadError::Edit(e.to_string()))??;
        let began = Instant::now();
        while shared
            .edit_nanos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
            < converged
            && began.elapsed() < timeout
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Late responders in the same edit still count: give them a moment.
        tokio::time::sleep(Duration::from_millis(100)).await;
        edits.push(percentiles(
            shared
                .edit_nanos
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        ));
    }
    Ok(edits)
}

/// Config change number `k`: in the synthetic mesh `dir`, or by the shell command `cmd`.
fn edit(dir: Option<&Path>, cmd: Option<&str>, k: usize) -> Result<(), LoadError> {
    if let Some(dir) = dir {
        super::synth::edit_weights(dir, k as u64).map_err(|e| LoadError::Edit(e.to_string()))?;
    } else if let Some(cmd) = cmd {
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .status()
            .map_err(|e| LoadError::Edit(e.to_string()))?;
        if !ok.success() {
            return Err(LoadError::Edit(format!("`{cmd}` exited with {ok}")));
        }
    }
    Ok(())
}
