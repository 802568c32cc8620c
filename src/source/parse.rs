//! One file's text → typed App Mesh documents. Each YAML document is detected as native (`kind:`)
//! or export form (`virtualNode:` …) and deserialized into the `spec` types; every unknown field and
//! the first wrong type is reported with its file, line and field path. Nothing here judges a
//! document: that is `model`.
//!
//! This module splits the file into documents and detects each one's form; `typed` deserializes
//! one into its kind's body and reports its unknown fields and type errors.

#[cfg(test)]
mod tests;
mod typed;

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::document::{Body, Document};
use super::limits::Limits;
use super::lines::{first_key_lines, DocLines, FileLines};
use super::loader::LoadOutput;
use super::references::compute_references;
use crate::diag::Problem;
use crate::spec::Kind;
use typed::{empty_envelope, typed_body};

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

fn content_hash(value: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    value.hash(&mut h);
    h.finish()
}

fn parse_document(file: &Arc<Path>, value: Value, lines: DocLines, out: &mut LoadOutput) {
    if let Value::Mapping(map) = value {
        if super::k8s::is_manifest(&map) {
            return parse_manifest(file, map, lines, out);
        }
        return parse_resource(file, Value::Mapping(map), lines, out);
    }
    parse_resource(file, value, lines, out)
}

/// A Kubernetes manifest: skipped unless it is one of the App Mesh controller's, else translated
/// into the App Mesh documents it stands for (a router with inline routes is several). A `List`
/// (what `kubectl get -o yaml` prints) is each of its items.
fn parse_manifest(
    file: &Arc<Path>,
    mut map: serde_yaml_ng::Mapping,
    lines: DocLines,
    out: &mut LoadOutput,
) {
    let is_list = map.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && map.get("kind").and_then(Value::as_str) == Some("List");
    if !is_list {
        return parse_item(file, map, &lines, "", out);
    }
    let Some(Value::Sequence(items)) = map.shift_remove("items") else {
        return;
    };
    for (i, item) in items.into_iter().enumerate() {
        let base = format!("items[{i}]");
        match item {
            Value::Mapping(m) if super::k8s::is_manifest(&m) => {
                parse_item(file, m, &lines.starting_at(&base), &format!("{base}."), out)
            }
            _ => out.problems.push(Problem {
                file: file.to_path_buf(),
                line: lines.line_of(&base),
                path: base,
                message: "a List item must be a manifest (`apiVersion`, `kind`, ...)".into(),
            }),
        }
    }
}

/// One manifest, at `base` (`""`, or `items[3].` in a List).
fn parse_item(
    file: &Arc<Path>,
    map: serde_yaml_ng::Mapping,
    lines: &DocLines,
    base: &str,
    out: &mut LoadOutput,
) {
    let m = super::k8s::translate(map);
    if let Some((api, kind)) = &m.skipped {
        tracing::debug!(file = %file.display(), line = lines.start(), api, kind, "not an App Mesh manifest; skipped");
        return;
    }
    let at = |path: &str, message: String| {
        let path = format!("{base}{path}");
        Problem {
            file: file.to_path_buf(),
            line: lines.line_of(&path),
            path,
            message,
        }
    };
    let failed = !m.problems.is_empty();
    out.problems
        .extend(m.problems.into_iter().map(|(p, msg)| at(&p, msg)));
    out.warnings
        .extend(m.warnings.into_iter().map(|(p, msg)| at(&p, msg)));
    for t in m.resources {
        let paths = t
            .paths
            .into_iter()
            .map(|(from, to)| (from, format!("{base}{to}")))
            .collect();
        let mut doc = Document {
            file: file.clone(),
            kind: t.kind,
            body: Body::Mesh(empty_envelope()),
            prefix: base.to_string(),
            paths,
            mesh_implicit: t.mesh_implicit,
            renamed: t.renamed,
            by_ref: t.by_ref,
            lines: match &t.start {
                Some(path) => lines.starting_at(&format!("{base}{path}")),
                None => lines.clone(),
            },
            entity: 0,
            references: Vec::new(),
            content: content_hash(&(t.kind, &t.envelope)),
        };
        let Some(body) = typed_body(&doc, t.envelope, out) else {
            continue;
        };
        if failed {
            continue; // read only for the rest of its problems
        }
        doc.body = body;
        doc.entity = doc.compute_entity_key();
        doc.references = compute_references(&doc);
        out.documents.push(Arc::new(doc));
    }
}

/// A document of the native or export form.
fn parse_resource(file: &Arc<Path>, value: Value, lines: DocLines, out: &mut LoadOutput) {
    let content = content_hash(&value);
    let (kind, prefix, inner) = match detect_form(value) {
        Ok(form) => form,
        Err((path, message)) => {
            out.problems.push(Problem {
                file: file.to_path_buf(),
                line: lines.line_of(path),
                path: path.to_string(),
                message,
            });
            return;
        }
    };
    let mut doc = Document {
        file: file.clone(),
        kind,
        body: Body::Mesh(empty_envelope()),
        prefix,
        paths: Vec::new(),
        mesh_implicit: false,
        renamed: None,
        by_ref: Vec::new(),
        lines,
        entity: 0,
        references: Vec::new(),
        content,
    };
    let Some(body) = typed_body(&doc, inner, out) else {
        return;
    };
    doc.body = body;
    doc.entity = doc.compute_entity_key();
    doc.references = compute_references(&doc);
    out.documents.push(Arc::new(doc));
}

/// The kind of a document, the prefix of its field paths and the resource inside it: native form
/// (`kind:`) or export form (one top-level key such as `virtualNode:`). Otherwise the field path
/// and message of why it is not an App Mesh resource.
fn detect_form(value: Value) -> Result<(Kind, String, Value), (&'static str, String)> {
    let Value::Mapping(mut map) = value else {
        return Err((
            "",
            "a document must be a mapping (one App Mesh resource)".into(),
        ));
    };
    if let Some(k) = map.remove("kind") {
        let name = k.as_str().unwrap_or_default();
        let Some(kind) = Kind::from_native(name) else {
            return Err((
                "kind",
                format!(
                    "unknown kind `{}`, expected one of Mesh, VirtualService, VirtualNode, VirtualRouter, Route, VirtualGateway, GatewayRoute",
                    serde_yaml_ng::to_string(&k).unwrap_or_default().trim()
                ),
            ));
        };
        return Ok((kind, String::new(), Value::Mapping(map)));
    }
    let found = map
        .iter()
        .find_map(|(k, _)| k.as_str().and_then(Kind::from_export_key));
    match (found, map.len()) {
        (Some(kind), 1) => {
            let inner = map.remove(kind.export_key()).unwrap_or(Value::Null);
            Ok((kind, format!("{}.", kind.export_key()), inner))
        }
        (Some(kind), _) => {
            let extra: Vec<String> = map
                .iter()
                .filter_map(|(k, _)| k.as_str())
                .filter(|k| *k != kind.export_key())
                .map(|k| format!("`{k}`"))
                .collect();
            Err((
                "",
                format!(
                    "export-form document must have only the `{}` key; also found {}",
                    kind.export_key(),
                    extra.join(", ")
                ),
            ))
        }
        (None, _) => Err((
            "",
            "not an App Mesh resource: expected a `kind` field (native form) or one top-level key \
             such as `virtualNode` (export form)"
                .into(),
        )),
    }
}
