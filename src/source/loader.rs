//! Reads every mesh file below a directory into typed App Mesh documents.
//!
//! Each YAML document is detected as native (`kind:`) or export form (`virtualNode:` …), deserialized
//! into the `spec` types, and every unknown field and wrong type is reported with its file, line and
//! field path. Nothing here judges a document: its names and untranslated sections are checked by
//! `model::check_alone` (asked for per parsed file, so cached with the parse), references and
//! ranges by `model::validate`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::limits::{read_text, Limits, ReadError};
use super::lines::{first_key_lines, DocLines, FileLines};
use crate::diag::Problem;
use crate::spec::{
    Envelope, GatewayRouteSpec, Kind, MeshSpec, RouteSpec, VirtualGatewaySpec, VirtualNodeSpec,
    VirtualRouterSpec, VirtualServiceSpec,
};

/// A typed resource body, one variant per kind.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per document; boxing buys nothing
pub enum Body {
    Mesh(Envelope<MeshSpec>),
    VirtualService(Envelope<VirtualServiceSpec>),
    VirtualNode(Envelope<VirtualNodeSpec>),
    VirtualRouter(Envelope<VirtualRouterSpec>),
    Route(Envelope<RouteSpec>),
    VirtualGateway(Envelope<VirtualGatewaySpec>),
    GatewayRoute(Envelope<GatewayRouteSpec>),
}

/// One App Mesh resource as read from disk.
#[derive(Debug, Clone)]
pub struct Document {
    /// Path relative to the config directory; shared by the file's documents and the model.
    pub file: Arc<Path>,
    pub kind: Kind,
    pub body: Body,
    /// `""` for the native form, `"virtualNode."` (etc.) for the export form: field paths in messages
    /// are written as the user sees them in the file.
    pub prefix: String,
    pub lines: DocLines,
    /// [`Document::entity_key`] and [`Document::references`], computed once when the file is parsed:
    /// every reload asks for them, and unchanged files are not parsed again.
    entity: u64,
    references: Vec<u64>,
    content: u64,
}

impl Document {
    /// A problem about `field` (relative to the resource, e.g. `spec.listeners[0]`).
    pub fn problem(&self, field: &str, message: impl Into<String>) -> Problem {
        let path = format!("{}{}", self.prefix, field);
        Problem {
            file: self.file.to_path_buf(),
            line: self.lines.line_of(&path),
            path,
            message: message.into(),
        }
    }

    /// Line where the document's resource starts.
    pub fn line(&self) -> usize {
        self.lines.start()
    }

    /// The model entity this document defines or belongs to (routes belong to their router), in the
    /// form of [`crate::spec::entity_key`].
    pub fn entity_key(&self) -> u64 {
        self.entity
    }

    /// The other entities this document names: a service's provider, a node's backend services, a
    /// route's target nodes (as [`crate::spec::entity_key`]s).
    pub fn references(&self) -> &[u64] {
        &self.references
    }

    /// A hash of the document's content: a file edited elsewhere is parsed again, and its other
    /// documents come out with new identities but the same content hashes.
    pub fn content_hash(&self) -> u64 {
        self.content
    }

    fn compute_entity_key(&self) -> u64 {
        let n = self.names();
        let mesh = n.mesh.unwrap_or_default();
        let (kind, name) = match self.kind {
            Kind::Mesh => (Kind::Mesh, mesh),
            Kind::VirtualService => (Kind::VirtualService, n.virtual_service.unwrap_or_default()),
            Kind::VirtualNode => (Kind::VirtualNode, n.virtual_node.unwrap_or_default()),
            Kind::VirtualRouter | Kind::Route => {
                (Kind::VirtualRouter, n.virtual_router.unwrap_or_default())
            }
            Kind::VirtualGateway | Kind::GatewayRoute => {
                (Kind::VirtualGateway, n.virtual_gateway.unwrap_or_default())
            }
        };
        crate::spec::entity_key(kind, mesh, name)
    }

    /// The name fields of the envelope, whatever the kind.
    pub fn names(&self) -> Names<'_> {
        macro_rules! n {
            ($e:expr) => {
                Names {
                    mesh: $e.mesh_name.as_deref(),
                    virtual_service: $e.virtual_service_name.as_deref(),
                    virtual_node: $e.virtual_node_name.as_deref(),
                    virtual_router: $e.virtual_router_name.as_deref(),
                    route: $e.route_name.as_deref(),
                    virtual_gateway: $e.virtual_gateway_name.as_deref(),
                    gateway_route: $e.gateway_route_name.as_deref(),
                }
            };
        }
        match &self.body {
            Body::Mesh(e) => n!(e),
            Body::VirtualService(e) => n!(e),
            Body::VirtualNode(e) => n!(e),
            Body::VirtualRouter(e) => n!(e),
            Body::Route(e) => n!(e),
            Body::VirtualGateway(e) => n!(e),
            Body::GatewayRoute(e) => n!(e),
        }
    }
}

/// The name fields of one document.
#[derive(Debug, Clone, Copy, Default)]
pub struct Names<'a> {
    pub mesh: Option<&'a str>,
    pub virtual_service: Option<&'a str>,
    pub virtual_node: Option<&'a str>,
    pub virtual_router: Option<&'a str>,
    pub route: Option<&'a str>,
    pub virtual_gateway: Option<&'a str>,
    pub gateway_route: Option<&'a str>,
}

impl Names<'_> {
    /// The value of the camelCase name field `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        match field {
            "meshName" => self.mesh,
            "virtualServiceName" => self.virtual_service,
            "virtualNodeName" => self.virtual_node,
            "virtualRouterName" => self.virtual_router,
            "routeName" => self.route,
            "virtualGatewayName" => self.virtual_gateway,
            "gatewayRouteName" => self.gateway_route,
            _ => None,
        }
    }
}

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
    load_dir_cached(root, &Limits::DEFAULT, &mut ParseCache::default())
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

/// Like [`load_dir`], reusing `cache` for files whose content is unchanged: files whose metadata is
/// unchanged are not even read, the others are read and hashed, and only changed content is parsed.
/// Nothing larger than `limits` is read or parsed.
pub fn load_dir_cached(root: &Path, limits: &Limits, cache: &mut ParseCache) -> LoadOutput {
    let mut out = LoadOutput::default();
    let walk = super::walk::collect_files(root, limits);
    let mut files = walk.files;
    out.problems = walk.problems;
    out.warnings = walk.warnings;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    // Read what may have changed, then parse the changed files on every core.
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
        let Some(text) = read_within(root, &path, limits, &mut out) else {
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
            check_alone(&mut one);
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
    let mut parsed_new: HashMap<usize, ParsedFile> = parsed_new.into_iter().collect();
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
    out
}

/// What each document of a freshly parsed file says on its own (its names, sections not translated
/// yet) is judged by `model`; asked for here so the verdict is cached with the parse.
fn check_alone(out: &mut LoadOutput) {
    for doc in &out.documents {
        crate::model::check_alone(doc, &mut out.problems, &mut out.warnings);
    }
}

/// Parses one file's text into documents and the problems of parsing, within the default
/// [`Limits`]. Judging the documents (names, ranges, references) is `model`'s.
pub fn parse_file(file: &Path, text: &str, out: &mut LoadOutput) {
    parse_file_with(file, text, &Limits::DEFAULT, out)
}

/// Like [`parse_file`]. A text beyond `limits` (size, depth, aliases) or that the streaming
/// pre-pass cannot parse is one problem and no documents.
pub fn parse_file_with(file: &Path, text: &str, limits: &Limits, out: &mut LoadOutput) {
    if let Some(p) = super::syntax::json_error(file, text) {
        out.problems.push(p);
        return;
    }
    if let Err(e) = super::prepass::check(text, limits) {
        let message = super::syntax::with_hint(e.to_string(), text, e.line());
        out.problems.push(Problem {
            file: file.to_path_buf(),
            line: e.line(),
            path: String::new(),
            message,
        });
        return;
    }
    let shared: Arc<Path> = Arc::from(file);
    let file_lines = FileLines::new(text);
    let starts = first_key_lines(text);
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let lines = DocLines::new(file_lines.clone(), i, starts.get(i).copied().unwrap_or(1));
        let value = match Value::deserialize(de) {
            Ok(v) => v,
            Err(e) => {
                let line = e.location().map(|l| l.line()).unwrap_or(lines.start());
                out.problems.push(Problem {
                    file: file.to_path_buf(),
                    line,
                    path: String::new(),
                    message: super::syntax::with_hint(
                        format!("YAML syntax error: {e}"),
                        text,
                        line,
                    ),
                });
                // The rest of the file cannot be trusted after a syntax error.
                return;
            }
        };
        if value.is_null() {
            continue; // empty document, e.g. a trailing `---`
        }
        parse_document(&shared, value, lines, out);
    }
}

fn parse_document(file: &Arc<Path>, value: Value, lines: DocLines, out: &mut LoadOutput) {
    let content = {
        use std::hash::{Hash, Hasher};
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        value.hash(&mut h);
        h.finish()
    };
    let doc_problem = |path: &str, message: String| Problem {
        file: file.to_path_buf(),
        line: lines.line_of(path),
        path: path.to_string(),
        message,
    };
    let Value::Mapping(mut map) = value else {
        out.problems.push(doc_problem(
            "",
            "a document must be a mapping (one App Mesh resource)".into(),
        ));
        return;
    };
    let (kind, prefix, inner) = if let Some(k) = map.remove("kind") {
        let name = k.as_str().unwrap_or_default();
        let Some(kind) = Kind::from_native(name) else {
            out.problems.push(doc_problem(
                "kind",
                format!(
                    "unknown kind `{}`, expected one of Mesh, VirtualService, VirtualNode, VirtualRouter, Route, VirtualGateway, GatewayRoute",
                    serde_yaml_ng::to_string(&k).unwrap_or_default().trim()
                ),
            ));
            return;
        };
        (kind, String::new(), Value::Mapping(map))
    } else {
        let found = map
            .iter()
            .find_map(|(k, _)| k.as_str().and_then(Kind::from_export_key));
        match (found, map.len()) {
            (Some(kind), 1) => {
                let inner = map.remove(kind.export_key()).unwrap_or(Value::Null);
                (kind, format!("{}.", kind.export_key()), inner)
            }
            (Some(kind), _) => {
                let extra: Vec<String> = map
                    .iter()
                    .filter_map(|(k, _)| k.as_str())
                    .filter(|k| *k != kind.export_key())
                    .map(|k| format!("`{k}`"))
                    .collect();
                out.problems.push(doc_problem(
                    "",
                    format!(
                        "export-form document must have only the `{}` key; also found {}",
                        kind.export_key(),
                        extra.join(", ")
                    ),
                ));
                return;
            }
            (None, _) => {
                out.problems.push(doc_problem(
                    "",
                    "not an App Mesh resource: expected a `kind` field (native form) or one top-level key \
                     such as `virtualNode` (export form)"
                        .into(),
                ));
                return;
            }
        }
    };

    let mut doc = Document {
        file: file.clone(),
        kind,
        body: Body::Mesh(empty_envelope()),
        prefix,
        lines,
        entity: 0,
        references: Vec::new(),
        content,
    };
    let body = match kind {
        Kind::Mesh => typed(&doc, inner, out).map(Body::Mesh),
        Kind::VirtualService => typed(&doc, inner, out).map(Body::VirtualService),
        Kind::VirtualNode => typed(&doc, inner, out).map(Body::VirtualNode),
        Kind::VirtualRouter => typed(&doc, inner, out).map(Body::VirtualRouter),
        Kind::Route => typed(&doc, inner, out).map(Body::Route),
        Kind::VirtualGateway => typed(&doc, inner, out).map(Body::VirtualGateway),
        Kind::GatewayRoute => typed(&doc, inner, out).map(Body::GatewayRoute),
    };
    let Some(body) = body else { return };
    doc.body = body;
    doc.entity = doc.compute_entity_key();
    doc.references = compute_references(&doc);
    out.documents.push(Arc::new(doc));
}

fn compute_references(doc: &Document) -> Vec<u64> {
    use crate::spec::entity_key;
    let mesh = doc.names().mesh.unwrap_or_default();
    let mut refs = Vec::new();
    match &doc.body {
        Body::VirtualService(e) => {
            if let Some(p) = e.spec.as_ref().and_then(|s| s.provider.as_ref()) {
                if let Some(vn) = &p.virtual_node {
                    refs.push(entity_key(Kind::VirtualNode, mesh, &vn.virtual_node_name));
                }
                if let Some(vr) = &p.virtual_router {
                    refs.push(entity_key(
                        Kind::VirtualRouter,
                        mesh,
                        &vr.virtual_router_name,
                    ));
                }
            }
        }
        Body::VirtualNode(e) => {
            for b in e.spec.iter().flat_map(|s| &s.backends) {
                if let Some(vs) = &b.virtual_service {
                    refs.push(entity_key(
                        Kind::VirtualService,
                        mesh,
                        &vs.virtual_service_name,
                    ));
                }
            }
        }
        Body::Route(e) => {
            for h in e
                .spec
                .iter()
                .flat_map(|s| [s.http_route.as_ref(), s.http2_route.as_ref()])
                .flatten()
            {
                for t in &h.action.weighted_targets {
                    refs.push(entity_key(Kind::VirtualNode, mesh, &t.virtual_node));
                }
            }
        }
        Body::Mesh(_)
        | Body::VirtualRouter(_)
        | Body::VirtualGateway(_)
        | Body::GatewayRoute(_) => {}
    }
    refs.sort_unstable();
    refs.dedup();
    refs
}

fn empty_envelope<S>() -> Envelope<S> {
    Envelope {
        mesh_name: None,
        virtual_service_name: None,
        virtual_node_name: None,
        virtual_router_name: None,
        route_name: None,
        virtual_gateway_name: None,
        gateway_route_name: None,
        spec: None,
        metadata: None,
        status: None,
    }
}

/// Deserializes into `Envelope<S>`, collecting every unknown field and the first type error.
fn typed<S: DeserializeOwned>(
    doc: &Document,
    inner: Value,
    out: &mut LoadOutput,
) -> Option<Envelope<S>> {
    let mut unknown = Vec::new();
    let mut on_unknown = |p: serde_ignored::Path<'_>| unknown.push(ignored_path(&p));
    let result: Result<Envelope<S>, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(inner, &mut on_unknown));
    for path in unknown {
        let field = path.rsplit(['.', '[']).next().unwrap_or(&path).to_string();
        let hint = super::suggest::field(&field)
            .map(|w| format!(" (did you mean `{w}`?)"))
            .unwrap_or_default();
        out.problems
            .push(doc.problem(&path, format!("unknown field `{field}`{hint}")));
    }
    match result {
        Ok(env) => Some(env),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            out.problems
                .push(doc.problem(&path, e.into_inner().to_string()));
            None
        }
    }
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let base = ignored_path(parent);
            if base.is_empty() {
                key.to_string()
            } else {
                format!("{base}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LoadOutput {
        let mut out = LoadOutput::default();
        parse_file(Path::new("mesh.yaml"), text, &mut out);
        out
    }

    #[test]
    fn reads_native_and_export_forms_from_one_file() {
        let out = parse(
            "kind: Mesh\nmeshName: demo\n---\nvirtualNode:\n  meshName: demo\n  virtualNodeName: a\n  metadata: {arn: x, version: 3}\n  status: {status: ACTIVE}\n  spec:\n    listeners:\n      - portMapping: {port: 8080, protocol: http}\n",
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert_eq!(out.documents.len(), 2);
        assert_eq!(out.documents[0].kind, Kind::Mesh);
        assert_eq!(out.documents[1].kind, Kind::VirtualNode);
        assert_eq!(out.documents[1].prefix, "virtualNode.");
        assert_eq!(out.documents[1].line(), 4);
    }

    #[test]
    fn reports_every_unknown_field_with_line_and_path() {
        let out = parse(
            "kind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listners: []\n  backends:\n    - virtualService: {virtualServiceName: b, typo: 1}\n",
        );
        let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "mesh.yaml:5: spec.listners: unknown field `listners` (did you mean `listeners`?)",
                "mesh.yaml:7: spec.backends[0].virtualService.typo: unknown field `typo` (did you mean `type`?)",
            ]
        );
    }

    #[test]
    fn reports_wrong_types_with_path() {
        let out = parse(
            "virtualNode:\n  meshName: demo\n  virtualNodeName: a\n  spec:\n    listeners:\n      - portMapping:\n          port: eighty\n          protocol: http\n",
        );
        assert_eq!(out.problems.len(), 1);
        let p = &out.problems[0];
        assert_eq!(p.line, 7);
        assert_eq!(p.path, "virtualNode.spec.listeners[0].portMapping.port");
        assert!(p.message.contains("invalid type"), "{}", p.message);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let out = parse("kind: Mesh\nmeshName: [unclosed\n");
        assert_eq!(out.problems.len(), 1);
        assert!(out.problems[0].message.starts_with("YAML syntax error"));
        assert!(out.problems[0].line >= 2);
    }

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
        let first = load_dir_cached(dir.path(), &Limits::DEFAULT, &mut cache);
        assert_eq!((first.files_read, first.files_parsed), (1, 1));
        let again = load_dir_cached(dir.path(), &Limits::DEFAULT, &mut cache);
        assert_eq!((again.files_read, again.files_parsed), (0, 0));
        assert_eq!(again.documents.len(), 1);

        // Same size, same modification time: the change time still tells.
        write("kind: Mesh\nmeshName: bbbb\n");
        let edited = load_dir_cached(dir.path(), &Limits::DEFAULT, &mut cache);
        assert_eq!((edited.files_read, edited.files_parsed), (1, 1));
        assert_eq!(edited.documents[0].names().mesh, Some("bbbb"));

        // A file modified just now is read again until its time is safely in the past.
        std::fs::write(&file, "kind: Mesh\nmeshName: cccc\n").unwrap();
        let fresh = load_dir_cached(dir.path(), &Limits::DEFAULT, &mut cache);
        assert_eq!((fresh.files_read, fresh.files_parsed), (1, 1));
        let racy = load_dir_cached(dir.path(), &Limits::DEFAULT, &mut cache);
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
}
