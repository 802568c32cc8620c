//! Reading the mesh files within the limits, and what each file parsed into (`ParseCache`): a
//! file whose stamp is unchanged is not read again, one whose content is unchanged is not parsed
//! again, and the changed ones are parsed on every core.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{parse_file_with, Document, Judge, LoadOutput};
use crate::diag::Problem;
use crate::source::limits::{read_text, Limits, ReadError};

fn file_problem(root: &Path, path: &Path, line: usize, message: String) -> Problem {
    Problem {
        file: path.strip_prefix(root).unwrap_or(path).to_path_buf(),
        line,
        path: String::new(),
        message,
    }
}

/// Reads one mesh file within `limits`; `None` when it cannot be, with a problem saying why unless
/// the file was deleted meanwhile.
fn read_within(root: &Path, path: &Path, limits: &Limits, out: &mut LoadOutput) -> Option<String> {
    let problem = match read_text(path, limits.max_file_bytes) {
        Ok(Ok(text)) => return Some(text),
        Ok(Err(e)) => file_problem(root, path, e.line(), e.to_string()),
        // A file deleted between listing and reading is part of an editor's save; the watcher
        // will report the next state.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => file_problem(root, path, 0, format!("cannot read file: {e}")),
    };
    out.files.push(problem.file.clone());
    out.problems.push(problem);
    None
}

/// Why a file of `len` bytes, bringing the total to `total`, must not be read.
fn size_breach(len: u64, total: u64, limits: &Limits) -> Option<String> {
    if len > limits.max_file_bytes {
        Some(
            ReadError::TooLarge {
                len,
                max: limits.max_file_bytes,
            }
            .to_string(),
        )
    } else if total > limits.max_total_bytes {
        Some(format!(
            "mesh files add up to more than {} bytes with this one (--max-total-bytes); stopped reading",
            limits.max_total_bytes
        ))
    } else {
        None
    }
}

/// What one file parsed into, keyed by a hash of its content.
#[derive(Debug, Clone, Default)]
pub(super) struct ParsedFile {
    hash: u64,
    /// The file's metadata when it was read, if it can stand for the content: then an identical
    /// stamp later means the file was not touched and need not be read again.
    stamp: Option<Stamp>,
    pub(super) documents: Vec<Arc<Document>>,
    pub(super) problems: Vec<Problem>,
    pub(super) warnings: Vec<Problem>,
}

/// Parsed files from the previous load: a reload parses only the files whose content changed.
#[derive(Debug, Default)]
pub struct ParseCache {
    pub(super) files: HashMap<PathBuf, ParsedFile>,
}

/// What identifies one version of a file without reading it: size, modification and change times
/// and inode (an atomic rename-over gives a new inode even within one clock tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    len: u64,
    modified: std::time::SystemTime,
    #[cfg(unix)]
    ino: u64,
    #[cfg(unix)]
    ctime: (i64, i64),
}

/// How close to the read a modification may be before its stamp is not trusted: a write in the same
/// clock tick as the read (coarse timestamps on some file systems) could leave the stamp unchanged.
/// Such files are read again on the next reload, as git does with "racily clean" entries.
const RACY: std::time::Duration = std::time::Duration::from_secs(2);

impl Stamp {
    fn of(meta: &fs::Metadata) -> Option<Stamp> {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Some(Stamp {
            len: meta.len(),
            modified: meta.modified().ok()?,
            #[cfg(unix)]
            ino: meta.ino(),
            #[cfg(unix)]
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// This stamp, if the file was last modified well before `read_at`.
    fn settled(self, read_at: std::time::SystemTime) -> Option<Stamp> {
        (self.modified + RACY < read_at).then_some(self)
    }
}

/// One mesh file found: its relative path, its text (empty when its stamp says it is unchanged)
/// and hash, what it parsed into last time if that still holds, and the stamp to keep.
pub(super) type Read = (PathBuf, String, u64, Option<ParsedFile>, Option<Stamp>);

/// Reads the `files` (sorted) whose stamp changed, within `limits`, taking from `cache` what each
/// parsed into last time if its content is the same. Files that cannot be read are problems.
pub(super) fn read_changed(
    root: &Path,
    limits: &Limits,
    cache: &mut ParseCache,
    files: Vec<(PathBuf, fs::Metadata)>,
    out: &mut LoadOutput,
) -> Vec<Read> {
    let read_at = std::time::SystemTime::now();
    let mut reads = Vec::with_capacity(files.len());
    let mut total: u64 = 0;
    for (path, meta) in files {
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        // Sizes from the stat, before anything is read.
        total = total.saturating_add(meta.len());
        if let Some(message) = size_breach(meta.len(), total, limits) {
            out.problems.push(file_problem(root, &path, 1, message));
            out.files.push(rel);
            if total > limits.max_total_bytes {
                break;
            }
            continue;
        }
        let stamp = Stamp::of(&meta);
        if stamp.is_some() && cache.files.get(&rel).is_some_and(|p| p.stamp == stamp) {
            let hit = cache.files.remove(&rel);
            reads.push((rel, String::new(), 0, hit, None));
            continue;
        }
        let Some(text) = read_within(root, &path, limits, out) else {
            continue;
        };
        out.files_read += 1;
        let hash = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
        let stamp = stamp.and_then(|s| s.settled(read_at));
        let cached = cache
            .files
            .remove(&rel)
            .filter(|p| p.hash == hash)
            .map(|p| ParsedFile { stamp, ..p });
        reads.push((rel, text, hash, cached, stamp));
    }
    reads
}

/// Parses, on every core, the read files with nothing cached; keyed by their index in `reads`.
pub(super) fn parse_changed(
    reads: &[Read],
    limits: &Limits,
    judge: Judge,
    out: &mut LoadOutput,
) -> HashMap<usize, ParsedFile> {
    let todo: Vec<usize> = reads
        .iter()
        .enumerate()
        .filter(|(_, r)| r.3.is_none())
        .map(|(i, _)| i)
        .collect();
    out.files_parsed = todo.len();
    let parsed_new: Vec<(usize, ParsedFile)> = crate::par::map_chunks(
        &todo,
        8,
        || (),
        |_, &i| {
            let (rel, text, hash, _, stamp) = &reads[i];
            let mut one = LoadOutput::default();
            parse_file_with(rel, text, limits, &mut one);
            // A manifest without `meshRef` is judged once its mesh is settled.
            for doc in one.documents.iter().filter(|d| !d.mesh_implicit) {
                judge(doc, &mut one.problems, &mut one.warnings);
            }
            Some((
                i,
                ParsedFile {
                    hash: *hash,
                    stamp: *stamp,
                    documents: one.documents,
                    problems: one.problems,
                    warnings: one.warnings,
                },
            ))
        },
    );
    parsed_new.into_iter().collect()
}
