//! Bounds on what one reload may read: file sizes, their total, how many files and directory
//! entries, nesting depth and alias expansion.
//!
//! Sizes are checked from the stat before a file is opened and again while it is read (it may grow
//! in between); depth and aliases are checked by the streaming pre-pass in [`super::prepass`] before
//! the text reaches the YAML deserializer, so nothing quadratic or exponential runs on unbounded
//! input.

use std::io::Read;
use std::path::Path;

/// Every bound a reload observes; one value per pipeline, the same for `serve` and `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest mesh file read, in bytes. The YAML deserializer holds ~26× a file's size while it
    /// parses, so this bounds the memory one file can take.
    pub max_file_bytes: u64,
    /// Largest total size of all mesh files, in bytes: every file's text is held during a reload.
    pub max_total_bytes: u64,
    /// Most mesh files below the config directory.
    pub max_files: usize,
    /// Most directory entries (files, folders, links, hidden or not) the walk visits.
    pub max_dir_entries: usize,
    /// Deepest nesting of mappings and sequences in a document (an alias counts as deep as what it
    /// names). Bounds the parser's stack and the cost of flow nesting, which is quadratic in depth.
    pub max_depth: usize,
    /// Most nodes that aliases may add to one document when expanded (a "billion laughs" bomb adds
    /// exponentially many); documents without aliases add none.
    pub max_alias_expansion: u64,
    /// Follow symlinks that lead outside the config directory (off: they are skipped with a warning).
    pub follow_symlinks_outside: bool,
}

impl Limits {
    /// The defaults: generous for any real mesh (a 10,000-node mesh is ~6 MiB in ~2,000 files), small
    /// enough that a reload of the worst allowed input stays within a few hundred MiB and seconds.
    pub const DEFAULT: Limits = Limits {
        max_file_bytes: 8 << 20,
        max_total_bytes: 256 << 20,
        max_files: 100_000,
        max_dir_entries: 1_000_000,
        max_depth: 64,
        max_alias_expansion: 100_000,
        follow_symlinks_outside: false,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// Why a file's content was not read or not parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("file is {len} bytes, more than the limit of {max} bytes (--max-file-bytes)")]
    TooLarge { len: u64, max: u64 },
    #[error("not valid UTF-8 (byte {offset})")]
    NotUtf8 { line: usize, offset: usize },
    #[error("nesting deeper than {max} levels (--max-depth)")]
    TooDeep { line: usize, max: usize },
    #[error("aliases expand to more than {max} nodes in this document (--max-alias-expansion)")]
    AliasExpansion { line: usize, max: u64 },
    #[error("alias refers to a node that contains it (a recursive alias)")]
    RecursiveAlias { line: usize },
    #[error("character U+{code:04X} is not allowed in YAML")]
    Character { line: usize, code: u32 },
    #[error("duplicate key `{key}`")]
    DuplicateKey { line: usize, key: String },
    #[error("YAML syntax error: {message} at line {line} column {column}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
}

impl ReadError {
    /// The 1-based line of the offending node; line 1 for the file's size.
    pub fn line(&self) -> usize {
        match self {
            ReadError::TooLarge { .. } => 1,
            ReadError::NotUtf8 { line, .. }
            | ReadError::TooDeep { line, .. }
            | ReadError::AliasExpansion { line, .. }
            | ReadError::RecursiveAlias { line }
            | ReadError::Character { line, .. }
            | ReadError::DuplicateKey { line, .. }
            | ReadError::Syntax { line, .. } => (*line).max(1),
        }
    }
}

/// Reads `path` as UTF-8 text of at most `max` bytes, whatever size its stat claimed: a file
/// still growing, or one in `/proc`, cannot make the read exceed the bound.
pub fn read_text(path: &Path, max: u64) -> std::io::Result<Result<String, ReadError>> {
    let file = std::fs::File::open(path)?;
    let hint = file.metadata().map_or(0, |m| m.len()).min(max);
    let mut buf = Vec::with_capacity(usize::try_from(hint).unwrap_or(0).saturating_add(1));
    file.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    let len = buf.len() as u64;
    if len > max {
        return Ok(Err(ReadError::TooLarge { len, max }));
    }
    Ok(String::from_utf8(buf).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        ReadError::NotUtf8 { line, offset }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_within_the_bound_and_refuses_beyond_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.yaml");
        std::fs::write(&p, "kind: Mesh\n").unwrap();
        assert_eq!(read_text(&p, 11).unwrap(), Ok("kind: Mesh\n".into()));
        assert_eq!(
            read_text(&p, 10).unwrap(),
            Err(ReadError::TooLarge { len: 11, max: 10 })
        );
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.yaml");
        std::fs::write(&p, b"kind: Mesh\nmeshName: d\xffmo\n").unwrap();
        let err = read_text(&p, 100).unwrap().unwrap_err();
        assert_eq!(
            err,
            ReadError::NotUtf8 {
                line: 2,
                offset: 22
            }
        );
        assert_eq!(err.line(), 2);
    }
}
