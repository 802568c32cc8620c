//! Where the config path leads right now: the directory it resolves to, and every path whose
//! replacement would re-point it (the path itself and each symlink followed on the way), with the
//! directories those live in. The watcher watches those directories, so a swapped link
//! (`ln -sfn`, git-sync's flip) or a deleted and recreated directory is seen as it happens.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed before giving up, as the kernel does (`ELOOP` after 40).
const MAX_LINKS: usize = 40;

/// One resolution of the config path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Resolved {
    /// The directory the path leads to, free of symlinks; `None` while it does not exist, is not a
    /// directory, or loops.
    pub root: Option<PathBuf>,
    /// Paths whose creation, removal or replacement re-points the config path, each below an
    /// already resolved directory: every symlink followed, the final directory, or the first
    /// missing component.
    pub hops: BTreeSet<PathBuf>,
    /// The directories holding the hops (watched on their own, not recursively).
    pub parents: BTreeSet<PathBuf>,
}

enum Step {
    Up,
    Name(OsString),
}

/// The steps of `path`, last first (so `pop` yields them in order); the root is implied.
fn steps(path: &Path) -> Vec<Step> {
    let mut out: Vec<Step> = path
        .components()
        .filter_map(|c| match c {
            Component::ParentDir => Some(Step::Up),
            Component::Normal(n) => Some(Step::Name(n.to_os_string())),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    out.reverse();
    out
}

/// Resolves `path` (relative paths against the working directory) one component at a time,
/// recording each hop.
pub(super) fn resolve(path: &Path) -> Resolved {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = Resolved::default();
    let mut todo = steps(&abs);
    let mut cur = PathBuf::from("/");
    let mut links = 0;
    while let Some(step) = todo.pop() {
        let name = match step {
            Step::Up => {
                cur.pop();
                continue;
            }
            Step::Name(n) => n,
        };
        let next = cur.join(&name);
        match fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                out.hops.insert(next.clone());
                out.parents.insert(cur.clone());
                links += 1;
                let Ok(target) = fs::read_link(&next) else {
                    return out;
                };
                if links > MAX_LINKS {
                    return out;
                }
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                todo.extend(steps(&target));
            }
            Ok(_) => {
                if todo.is_empty() {
                    out.hops.insert(next.clone());
                    out.parents.insert(cur.clone());
                }
                cur = next;
            }
            Err(_) => {
                out.hops.insert(next);
                out.parents.insert(cur);
                return out;
            }
        }
    }
    out.root = fs::metadata(&cur).is_ok_and(|m| m.is_dir()).then_some(cur);
    out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn set(paths: &[PathBuf]) -> BTreeSet<PathBuf> {
        paths.iter().cloned().collect()
    }

    #[test]
    fn a_plain_directory_resolves_to_itself() {
        let t = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(t.path()).unwrap();
        fs::create_dir(base.join("cfg")).unwrap();
        let r = resolve(&base.join("cfg"));
        assert_eq!(r.root, Some(base.join("cfg")));
        assert_eq!(r.hops, set(&[base.join("cfg")]));
        assert_eq!(r.parents, set(std::slice::from_ref(&base)));
    }

    #[test]
    fn links_on_the_way_are_hops_and_their_directories_parents() {
        let t = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(t.path()).unwrap();
        // git-sync's layout: root/current -> .worktrees/rev1, and the config one level below.
        fs::create_dir_all(base.join("root/.worktrees/rev1/mesh")).unwrap();
        symlink(".worktrees/rev1", base.join("root/current")).unwrap();
        let r = resolve(&base.join("root/current/mesh"));
        let rev = base.join("root/.worktrees/rev1");
        assert_eq!(r.root, Some(rev.join("mesh")));
        assert_eq!(r.hops, set(&[base.join("root/current"), rev.join("mesh")]));
        assert_eq!(r.parents, set(&[base.join("root"), rev]));
    }

    #[test]
    fn a_chain_of_links_and_dot_dot_after_a_link_resolve_like_the_kernel() {
        let t = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(t.path()).unwrap();
        fs::create_dir_all(base.join("a/b")).unwrap();
        fs::create_dir_all(base.join("v2")).unwrap();
        // cfg -> a/b/up, up -> .. (so a/b/up is a), then ../v2 is base/v2.
        symlink("..", base.join("a/b/up")).unwrap();
        symlink("a/b/up/../v2", base.join("cfg")).unwrap();
        let r = resolve(&base.join("cfg"));
        assert_eq!(r.root, Some(base.join("v2")));
        assert!(r.hops.contains(&base.join("cfg")));
        assert!(r.hops.contains(&base.join("a/b/up")));
        assert!(r.parents.contains(&base.join("a/b")));
    }

    #[test]
    fn a_missing_directory_has_no_root_but_a_hop_to_wait_for() {
        let t = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(t.path()).unwrap();
        let r = resolve(&base.join("gone/cfg"));
        assert_eq!(r.root, None);
        assert_eq!(r.hops, set(&[base.join("gone")]));
        assert_eq!(r.parents, set(std::slice::from_ref(&base)));
    }

    #[test]
    fn a_link_loop_ends() {
        let t = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(t.path()).unwrap();
        symlink("b", base.join("a")).unwrap();
        symlink("a", base.join("b")).unwrap();
        let r = resolve(&base.join("a"));
        assert_eq!(r.root, None);
        assert_eq!(r.hops, set(&[base.join("a"), base.join("b")]));
    }
}
