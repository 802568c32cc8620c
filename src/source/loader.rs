//! Reads every mesh file below a directory into typed App Mesh documents.
//!
//! `walk` finds the files; this module reads them within the `limits`, keeps what each file parsed
//! into (`ParseCache`) so a reload reads and parses only what changed, and hands each changed file
//! to `parse`. Nothing here judges a document: its names and untranslated sections are checked by
//! the caller's [`Judge`] (`model::check_alone`, run per parsed file, so cached with the parse),
//! references and ranges by `model::validate`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::limits::{read_text, Limits, ReadError};
use crate::diag::Problem;
use crate::spec::Kind;

pub use super::document::{Body, Document, Names};
pub use super::parse::{parse_file, parse_file_with};

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

/// What one file parsed into, keyed by a hash of its content.
#[derive(Debug, Clone, Default)]
struct ParsedFile {
    hash: u64,
    /// The file's metadata when it was read, if it can stand for the content: then an identical
    /// stamp later means the file was not touched and need not be read again.
    stamp: Option<Stamp>,
    documents: Vec<Arc<Document>>,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

/// Parsed files from the previous load: a reload parses only the files whose content changed.
#[derive(Debug, Default)]
pub struct ParseCache {
    files: HashMap<PathBuf, ParsedFile>,
}

/// What identifies one version of a file without reading it: size, modification and change times
/// and inode (an atomic rename-over gives a new inode even within one clock tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
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
type Read = (PathBuf, String, u64, Option<ParsedFile>, Option<Stamp>);

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

/// What the Kubernetes form's documents say about other files, settled once every file is read:
/// a manifest without `spec.meshRef` belongs to the config's only mesh (the controller takes the
/// mesh whose `namespaceSelector` selects its namespace, but meshplane ignores selectors), and a
/// reference by `<kind>Ref` to a resource that `spec.awsName` renamed means that `awsName`. Done
/// on every load (another file may change the answer); a manifest without `meshRef` is judged
/// only then.
fn settle_k8s(out: &mut LoadOutput, judge: Judge) {
    let renames: HashMap<(Kind, &str), &str> = out
        .documents
        .iter()
        .filter_map(|d| d.renamed.as_ref())
        .map(|(k, default, aws)| ((*k, default.as_str()), aws.as_str()))
        .collect();
    let touched = |d: &Document| {
        d.mesh_implicit
            || d.by_ref
                .iter()
                .any(|(k, n)| renames.contains_key(&(*k, n.as_str())))
    };
    if !out.documents.iter().any(|d| touched(d)) {
        return;
    }
    let renamed = |k: Kind, n: &str| renames.get(&(k, n)).map(|s| s.to_string());
    let mut meshes: Vec<String> = out
        .documents
        .iter()
        .filter(|d| d.kind == Kind::Mesh)
        .filter_map(|d| d.names().mesh.map(str::to_string))
        .collect();
    meshes.sort_unstable();
    meshes.dedup();
    let mut settled = Vec::with_capacity(out.documents.len());
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for doc in &out.documents {
        if !touched(doc) {
            settled.push(doc.clone());
            continue;
        }
        if !doc.mesh_implicit {
            settled.push(Arc::new(doc.settled(None, &renamed)));
            continue;
        }
        if let [only] = meshes.as_slice() {
            let doc = doc.settled(Some(only), &renamed);
            judge(&doc, &mut problems, &mut warnings);
            settled.push(Arc::new(doc));
            continue;
        }
        let found = if meshes.is_empty() {
            "no Mesh is defined".to_string()
        } else {
            format!("there are {} meshes ({})", meshes.len(), meshes.join(", "))
        };
        problems.push(doc.problem(
            "meshName",
            format!(
                "no `spec.meshRef`, and {found}: name the mesh with `meshRef: {{name: <mesh>}}` \
                 (meshplane ignores namespace selectors)"
            ),
        ));
    }
    out.documents = settled;
    out.problems.append(&mut problems);
    out.warnings.append(&mut warnings);
}

/// Reads the `files` (sorted) whose stamp changed, within `limits`, taking from `cache` what each
/// parsed into last time if its content is the same. Files that cannot be read are problems.
fn read_changed(
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
fn parse_changed(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_files_are_not_read_again_but_every_write_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mesh.yaml");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let write = |text: &str| {
            std::fs::write(&file, text).unwrap();
            let f = std::fs::File::options().write(true).open(&file).unwrap();
            f.set_modified(old).unwrap();
        };
        write("kind: Mesh\nmeshName: aaaa\n");
        let mut cache = ParseCache::default();
        let first = load_dir_cached(
            dir.path(),
            &Limits::DEFAULT,
            &mut cache,
            crate::model::check_alone,
        );
        assert_eq!((first.files_read, first.files_parsed), (1, 1));
        let again = load_dir_cached(
            dir.path(),
            &Limits::DEFAULT,
            &mut cache,
            crate::model::check_alone,
        );
        assert_eq!((again.files_read, again.files_parsed), (0, 0));
        assert_eq!(again.documents.len(), 1);

        // Same size, same modification time: the change time still tells.
        write("kind: Mesh\nmeshName: bbbb\n");
        let edited = load_dir_cached(
            dir.path(),
            &Limits::DEFAULT,
            &mut cache,
            crate::model::check_alone,
        );
        assert_eq!((edited.files_read, edited.files_parsed), (1, 1));
        assert_eq!(edited.documents[0].names().mesh, Some("bbbb"));

        // A file modified just now is read again until its time is safely in the past.
        std::fs::write(&file, "kind: Mesh\nmeshName: cccc\n").unwrap();
        let fresh = load_dir_cached(
            dir.path(),
            &Limits::DEFAULT,
            &mut cache,
            crate::model::check_alone,
        );
        assert_eq!((fresh.files_read, fresh.files_parsed), (1, 1));
        let racy = load_dir_cached(
            dir.path(),
            &Limits::DEFAULT,
            &mut cache,
            crate::model::check_alone,
        );
        assert_eq!((racy.files_read, racy.files_parsed), (1, 0));
    }

    #[test]
    fn hidden_and_editor_files_are_ignored() {
        assert!(is_mesh_file(Path::new("a/b.yaml")));
        assert!(is_mesh_file(Path::new("b.json")));
        assert!(!is_mesh_file(Path::new(".b.yaml.swp")));
        assert!(!is_mesh_file(Path::new("b.yaml~")));
        assert!(!is_mesh_file(Path::new(".git/x.yaml")));
        assert!(!is_mesh_file(Path::new("b.yaml.bak")));
        assert!(!is_mesh_file(Path::new("4913")));
    }

    fn k8s_load(files: &[(&str, &str)]) -> LoadOutput {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        load_dir_cached(
            dir.path(),
            &Limits::DEFAULT,
            &mut ParseCache::default(),
            crate::model::check_alone,
        )
    }

    const NODE: &str = "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: v1, namespace: ns}\nspec: {awsName: catalog-v1}\n---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\nmetadata: {name: s, namespace: ns}\nspec:\n  provider: {virtualNode: {virtualNodeRef: {name: v1}}}\n";

    #[test]
    fn k8s_manifests_join_the_only_mesh_and_refer_to_aws_names() {
        let mesh = "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: m}\nspec: {awsName: prod}\n";
        let out = k8s_load(&[("a.yaml", NODE), ("mesh.yaml", mesh)]);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        let vs = out
            .documents
            .iter()
            .find(|d| d.kind == crate::spec::Kind::VirtualService)
            .unwrap();
        assert_eq!(vs.names().mesh, Some("prod"));
        let crate::source::Body::VirtualService(e) = &vs.body else {
            panic!()
        };
        let provider = e.spec.as_ref().unwrap().provider.as_ref().unwrap();
        assert_eq!(
            provider.virtual_node.as_ref().unwrap().virtual_node_name,
            "catalog-v1"
        );
        assert_eq!(
            vs.references(),
            &[crate::change::entity_key(
                crate::spec::Kind::VirtualNode,
                "prod",
                "catalog-v1"
            )]
        );

        // A meshRef names the k8s Mesh; its awsName is the App Mesh name.
        let with_ref = NODE.replace(
            "spec: {awsName: catalog-v1}",
            "spec: {awsName: catalog-v1, meshRef: {name: m, uid: u}}",
        );
        let out = k8s_load(&[("a.yaml", &with_ref), ("mesh.yaml", mesh)]);
        let node = out
            .documents
            .iter()
            .find(|d| d.kind == crate::spec::Kind::VirtualNode)
            .unwrap();
        assert_eq!(node.names().mesh, Some("prod"));
    }

    #[test]
    fn a_k8s_manifest_without_mesh_ref_needs_exactly_one_mesh() {
        let out = k8s_load(&[("a.yaml", NODE)]);
        let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs[0]
                .starts_with("a.yaml:4: spec.meshRef: no `spec.meshRef`, and no Mesh is defined"),
            "{msgs:?}"
        );
        let two = "kind: Mesh\nmeshName: a\n---\nkind: Mesh\nmeshName: b\n";
        let out = k8s_load(&[("a.yaml", NODE), ("m.yaml", two)]);
        assert!(
            out.problems[0]
                .message
                .contains("there are 2 meshes (a, b)"),
            "{:?}",
            out.problems
        );
        assert_eq!(out.documents.len(), 2, "the meshes only");
    }
}
