//! Reads every mesh file below a directory into typed App Mesh documents.
//!
//! `walk` finds the files; the loader reads them within the `limits`, keeps what each file parsed
//! into (`ParseCache`) so a reload reads and parses only what changed, and hands each changed file
//! to `parse`. Nothing here judges a document: its names and untranslated sections are checked by
//! the caller's [`Judge`] (`model::check_alone`, run per parsed file, so cached with the parse),
//! references and ranges by `model::validate`.
//!
//! This module runs a load; `cache` reads the files within the limits and parses the changed
//! ones, keeping what each parsed into, and `settle` settles what the Kubernetes form's documents
//! say about other files once every file is read.

mod cache;
mod settle;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::limits::Limits;
use crate::diag::Problem;
use cache::{parse_changed, read_changed};
use settle::settle_k8s;

pub use super::document::{Body, Document, Names};
pub use super::parse::{parse_file, parse_file_with};
pub use cache::ParseCache;

/// What the caller says of each document of a freshly parsed file on its own (problems, then
/// warnings), cached with the parse so an unchanged file is not judged again. The loader only
/// parses; the judgment is the model's (`model::check_alone`), handed in by the caller. One parse
/// cache must always be used with the same judge.
pub type Judge = fn(&Document, &mut Vec<Problem>, &mut Vec<Problem>);

/// Everything read from a directory.
#[derive(Debug, Default)]
pub struct LoadOutput {
    /// Shared with the parse cache: an unchanged file is not parsed (or copied) again.
    pub documents: Vec<Arc<Document>>,
    /// Files or documents that could not be read; the mesh is invalid while any exist.
    pub problems: Vec<Problem>,
    /// Fields that load but are not translated into Envoy configuration yet.
    pub warnings: Vec<Problem>,
    /// The mesh files found, relative to the directory.
    pub files: Vec<PathBuf>,
    /// How many of them had to be read (the others were unchanged since the last load).
    pub files_read: usize,
    /// How many of them had to be parsed (read and with new content).
    pub files_parsed: usize,
}

/// True for files meshplane reads: `*.yaml`, `*.yml`, `*.json`, not hidden, not editor leftovers.
pub fn is_mesh_file(relative: &Path) -> bool {
    let hidden = relative
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
    let ext = relative.extension().and_then(|e| e.to_str()).unwrap_or("");
    !hidden && matches!(ext, "yaml" | "yml" | "json")
}

/// Reads and parses every mesh file below `root`, in a stable (sorted) order, within the default
/// [`Limits`].
pub fn load_dir(root: &Path) -> LoadOutput {
    load_dir_cached(
        root,
        &Limits::DEFAULT,
        &mut ParseCache::default(),
        |_, _, _| {},
    )
}

/// Like [`load_dir`], reusing `cache` for files whose content is unchanged: files whose metadata is
/// unchanged are not even read, the others are read and hashed, and only changed content is parsed.
/// Nothing larger than `limits` is read or parsed.
pub fn load_dir_cached(
    root: &Path,
    limits: &Limits,
    cache: &mut ParseCache,
    judge: Judge,
) -> LoadOutput {
    let mut out = LoadOutput::default();
    let walk = super::walk::collect_files(root, limits);
    let mut files = walk.files;
    out.problems = walk.problems;
    out.warnings = walk.warnings;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    // Read what may have changed, then parse the changed files on every core.
    let reads = read_changed(root, limits, cache, files, &mut out);
    let mut parsed_new = parse_changed(&reads, limits, judge, &mut out);
    let mut next = HashMap::with_capacity(reads.len());
    for (i, (rel, _text, _hash, cached, _stamp)) in reads.into_iter().enumerate() {
        let Some(parsed) = cached.or_else(|| parsed_new.remove(&i)) else {
            continue;
        };
        out.documents.extend(parsed.documents.iter().cloned());
        out.problems.extend(parsed.problems.iter().cloned());
        out.warnings.extend(parsed.warnings.iter().cloned());
        next.insert(rel.clone(), parsed);
        out.files.push(rel);
    }
    cache.files = next;
    settle_k8s(&mut out, judge);
    out
}
