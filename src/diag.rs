//! Problems and warnings about mesh files, each pinned to a file, a line and a field path.
//!
//! Loading and validation both speak this type so that `meshplane validate`, the server log and the
//! admin API print one uniform list.

use std::fmt;
use std::path::PathBuf;

/// One finding about the mesh files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// File path relative to the config directory.
    pub file: PathBuf,
    /// 1-based line; 0 when the file could not be read at all.
    pub line: usize,
    /// Field path inside the document, e.g. `spec.listeners[0].portMapping.port`; empty for the document.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where a resource was defined, for messages that point back at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Shared with the document (and the file's other documents).
    pub file: std::sync::Arc<std::path::Path>,
    pub line: usize,
}
