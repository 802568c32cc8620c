//! Finds the mesh files below the config directory, within bounds.
//!
//! Symlinks are followed while they stay inside the directory (a Kubernetes ConfigMap links
//! `x.yaml -> ..data/x.yaml`, and the directory itself may be a link); one that leads outside is
//! skipped with a warning unless told to follow it. Directories are remembered by (device, inode), so
//! a link loop or a second link to a folder is read once; the number of entries visited is bounded.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::limits::Limits;
use super::loader::is_mesh_file;
use crate::diag::Problem;

/// What a walk found: mesh files with their metadata (the stat that finds a file also stamps it),
/// problems that reject the reload, and warnings about what was skipped.
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<(PathBuf, fs::Metadata)>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

fn hidden(rel: &Path) -> bool {
    rel.components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
}

#[cfg(unix)]
fn dir_key(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dir_key(_: &fs::Metadata) -> (u64, u64) {
    (0, 0)
}

struct Walker<'a> {
    root: &'a Path,
    /// The root with every symlink resolved: "inside" is judged against it.
    resolved: PathBuf,
    limits: &'a Limits,
    visited: HashSet<(u64, u64)>,
    entries: usize,
    out: Walk,
}

impl Walker<'_> {
    fn problem(&self, path: &Path, line: usize, message: String) -> Problem {
        Problem {
            file: path.strip_prefix(self.root).unwrap_or(path).to_path_buf(),
            line,
            path: String::new(),
            message,
        }
    }

    fn warn(&mut self, path: &Path, message: String) {
        let w = self.problem(path, 0, message);
        self.out.warnings.push(w);
    }

    /// Reads one directory's entries, sorted (so which of two links to a folder is read is
    /// deterministic); `None` once the entry limit is reached.
    fn entries(&mut self, dir: &Path) -> Option<Vec<fs::DirEntry>> {
        let list = match fs::read_dir(dir) {
            Ok(list) => list,
            Err(e) => {
                let p = self.problem(dir, 0, format!("cannot read directory: {e}"));
                self.out.problems.push(p);
                return Some(Vec::new());
            }
        };
        let mut entries = Vec::new();
        for entry in list.flatten() {
            self.entries += 1;
            if self.entries > self.limits.max_dir_entries {
                let p = self.problem(
                    dir,
                    0,
                    format!(
                        "more than {} directory entries below the config directory (--max-dir-entries); stopped reading",
                        self.limits.max_dir_entries
                    ),
                );
                self.out.problems.push(p);
                return None;
            }
            entries.push(entry);
        }
        entries.sort_by_key(|e| e.file_name());
        Some(entries)
    }

    /// Whether to enter or read `path`, a symlink: only if it resolves inside the root (or the
    /// limits say to follow links out). Dangling links are skipped quietly: a ConfigMap swap
    /// leaves them for a moment.
    fn follow_link(&mut self, path: &Path) -> bool {
        let Ok(target) = fs::canonicalize(path) else {
            return false;
        };
        if self.limits.follow_symlinks_outside || target.starts_with(&self.resolved) {
            return true;
        }
        self.warn(
            path,
            format!(
                "symlink leads outside the config directory (to {}); skipped (--follow-symlinks-outside follows it)",
                target.display()
            ),
        );
        false
    }

    fn run(&mut self) {
        let mut pending = vec![self.root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let Some(entries) = self.entries(&dir) else {
                return;
            };
            let mut subdirs = Vec::new();
            for entry in entries {
                let path = entry.path();
                let rel = path.strip_prefix(self.root).unwrap_or(&path);
                if hidden(rel) {
                    continue;
                }
                let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
                if is_link && !self.follow_link(&path) {
                    continue;
                }
                match fs::metadata(&path) {
                    Ok(m) if m.is_dir() => {
                        if self.visited.insert(dir_key(&m)) {
                            subdirs.push(path);
                        } else {
                            self.warn(
                                &path,
                                "directory already read through another path (a symlink loop or a second link to it); skipped".into(),
                            );
                        }
                    }
                    Ok(m) if m.is_file() && is_mesh_file(rel) => {
                        if self.out.files.len() >= self.limits.max_files {
                            let p = self.problem(
                                &path,
                                1,
                                format!(
                                    "more than {} mesh files below the config directory (--max-files)",
                                    self.limits.max_files
                                ),
                            );
                            self.out.problems.push(p);
                            return;
                        }
                        self.out.files.push((path, m));
                    }
                    _ => {}
                }
            }
            // Depth first, in name order.
            pending.extend(subdirs.into_iter().rev());
        }
    }
}

/// Every mesh file below `root`, within `limits`.
pub fn collect_files(root: &Path, limits: &Limits) -> Walk {
    let mut walker = Walker {
        root,
        resolved: fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
        limits,
        visited: HashSet::new(),
        entries: 0,
        out: Walk::default(),
    };
    if let Ok(m) = fs::metadata(root) {
        walker.visited.insert(dir_key(&m));
    }
    walker.run();
    walker.out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(w: &Walk, root: &Path) -> Vec<String> {
        let mut v: Vec<String> = w
            .files
            .iter()
            .map(|(p, _)| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn loops_and_links_out_are_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("mesh.yaml"), "kind: Mesh\n").unwrap();
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/a.yaml"), "kind: Mesh\n").unwrap();
        symlink(".", root.join("x")).unwrap();
        symlink(".", root.join("y")).unwrap();
        symlink("..", root.join("sub/up")).unwrap();
        symlink("/", root.join("root")).unwrap();
        let w = collect_files(root, &Limits::DEFAULT);
        assert_eq!(names(&w, root), ["mesh.yaml", "sub/a.yaml"]);
        assert!(w.problems.is_empty(), "{:?}", w.problems);
        let warned: Vec<String> = w
            .warnings
            .iter()
            .map(|p| p.file.display().to_string())
            .collect();
        assert_eq!(warned, ["root", "x", "y", "sub/up"], "{:?}", w.warnings);
        assert!(w.warnings[0]
            .message
            .contains("outside the config directory"));
    }

    #[test]
    fn a_config_map_layout_and_a_linked_root_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir_all(real.join("..2026_12_01_10_00_00.1")).unwrap();
        fs::write(
            real.join("..2026_12_01_10_00_00.1/mesh.yaml"),
            "kind: Mesh\n",
        )
        .unwrap();
        symlink("..2026_12_01_10_00_00.1", real.join("..data")).unwrap();
        symlink("..data/mesh.yaml", real.join("mesh.yaml")).unwrap();
        let link = dir.path().join("config");
        symlink(&real, &link).unwrap();
        let w = collect_files(&link, &Limits::DEFAULT);
        assert_eq!(names(&w, &link), ["mesh.yaml"]);
        assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    }

    #[test]
    fn links_out_are_followed_when_told_and_counts_are_bounded() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("b.yaml"), "kind: Mesh\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.yaml"), "kind: Mesh\n").unwrap();
        symlink(outside.path(), dir.path().join("shared")).unwrap();
        let follow = Limits {
            follow_symlinks_outside: true,
            ..Limits::DEFAULT
        };
        let w = collect_files(dir.path(), &follow);
        assert_eq!(names(&w, dir.path()), ["a.yaml", "shared/b.yaml"]);

        let few = Limits {
            max_files: 1,
            ..follow
        };
        let w = collect_files(dir.path(), &few);
        assert_eq!(w.problems.len(), 1, "{:?}", w.problems);
        assert!(w.problems[0].message.contains("--max-files"));
        let w = collect_files(
            dir.path(),
            &Limits {
                max_dir_entries: 1,
                ..follow
            },
        );
        assert!(w.problems[0].message.contains("--max-dir-entries"));
    }
}
