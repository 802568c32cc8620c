//! Maps field paths (`spec.listeners[0].portMapping.port`) to the 1-based line where they appear.
//!
//! serde's YAML deserializers keep no positions once a document becomes a value, so a second,
//! event-level pass records the line of every key and sequence item.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Field path → line, for one YAML document.
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
    start: usize,
}

impl LineIndex {
    /// Line of `path`, or of its closest recorded ancestor, or of the document start.
    pub fn line_of(&self, path: &str) -> usize {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return *l;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.start,
            }
        }
    }

    pub fn start(&self) -> usize {
        self.start
    }
}

enum Frame {
    Map { key: Option<String>, base: String },
    Seq { index: usize, base: String },
}

#[derive(Default)]
struct Collector {
    docs: Vec<LineIndex>,
    stack: Vec<Frame>,
    current: Option<LineIndex>,
}

impl Collector {
    /// The path of the node that is about to start, or `None` when a mapping key is expected.
    fn node_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { key: Some(k), base }) => {
                let p = join(base, k);
                self.stack_take_key();
                Some(p)
            }
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Seq { index, base }) => {
                let p = format!("{base}[{index}]");
                *index += 1;
                Some(p)
            }
        }
    }

    fn stack_take_key(&mut self) {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = None;
        }
    }

    fn record(&mut self, path: &str, line: usize) {
        if let Some(doc) = self.current.as_mut() {
            doc.lines.entry(path.to_string()).or_insert(line);
        }
    }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::DocumentStart => {
                self.stack.clear();
                self.current = Some(LineIndex {
                    lines: HashMap::new(),
                    start: mark.line(),
                });
            }
            Event::DocumentEnd => {
                if let Some(doc) = self.current.take() {
                    self.docs.push(doc);
                }
            }
            Event::Scalar(value, ..) => match self.node_path() {
                Some(p) => self.record(&p, mark.line()),
                None => {
                    let base = match self.stack.last() {
                        Some(Frame::Map { base, .. }) => base.clone(),
                        _ => String::new(),
                    };
                    self.record(&join(&base, &value), mark.line());
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(value);
                    }
                }
            },
            Event::Alias(_) => {
                let _ = self.node_path();
            }
            Event::MappingStart(..) => {
                let base = self.node_path().unwrap_or_default();
                self.record(&base, mark.line());
                self.stack.push(Frame::Map { key: None, base });
            }
            Event::SequenceStart(..) => {
                let base = self.node_path().unwrap_or_default();
                self.record(&base, mark.line());
                self.stack.push(Frame::Seq { index: 0, base });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// One line index per YAML document in `text`, in document order. A syntax error yields the
/// documents read before it; the syntax error itself is reported by the serde parser.
pub fn index_documents(text: &str) -> Vec<LineIndex> {
    let mut c = Collector::default();
    let mut parser = Parser::new_from_str(text);
    let _ = parser.load(&mut c, true);
    c.docs
}

/// A file's text and, built only when a message needs a line, its per-document line indexes.
/// Most loads report nothing, so most files never pay for the index.
#[derive(Debug)]
pub struct FileLines {
    text: Arc<str>,
    index: OnceLock<Vec<LineIndex>>,
}

impl FileLines {
    pub fn new(text: &str) -> Arc<FileLines> {
        Arc::new(FileLines {
            text: text.into(),
            index: OnceLock::new(),
        })
    }
}

/// The lines of one document of a file.
#[derive(Debug, Clone)]
pub struct DocLines {
    file: Arc<FileLines>,
    doc: usize,
    first_key: usize,
}

impl DocLines {
    pub fn new(file: Arc<FileLines>, doc: usize, first_key: usize) -> DocLines {
        DocLines {
            file,
            doc,
            first_key,
        }
    }

    /// Line of `path`, or of its closest recorded ancestor, or of the document's first key.
    pub fn line_of(&self, path: &str) -> usize {
        if path.is_empty() {
            return self.first_key;
        }
        let index = self
            .file
            .index
            .get_or_init(|| index_documents(&self.file.text));
        index.get(self.doc).map_or(self.first_key, |ix| {
            let l = ix.line_of(path);
            if l == ix.start() && !ix.lines.contains_key(path) {
                self.first_key.max(l)
            } else {
                l
            }
        })
    }

    /// Line of the document's first key: where the resource starts.
    pub fn start(&self) -> usize {
        self.first_key
    }
}

/// For each YAML document of `text` (as a YAML parser splits them), the line of its first content
/// line. A cheap scan: no parsing.
pub fn first_key_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    // The open document: the line it started on and its first content line, if any yet.
    let mut current: Option<(usize, Option<usize>)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim_end();
        if t.starts_with("---") && (t.len() == 3 || t[3..].starts_with(char::is_whitespace)) {
            if let Some((start, content)) = current.take() {
                out.push(content.unwrap_or(start));
            }
            let rest = t[3..].trim();
            current = Some((n, (!rest.is_empty() && !rest.starts_with('#')).then_some(n)));
            continue;
        }
        let content = !t.trim().is_empty()
            && !t.trim_start().starts_with('#')
            && !t.starts_with('%')
            && t != "...";
        match &mut current {
            None if content => current = Some((n, Some(n))),
            Some((_, slot @ None)) if content => *slot = Some(n),
            _ => {}
        }
    }
    if let Some((start, content)) = current {
        out.push(content.unwrap_or(start));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_sequence_items() {
        let text = "kind: VirtualNode\nspec:\n  listeners:\n    - portMapping:\n        port: 8080\n        protocol: http\n  backends: [{virtualService: {virtualServiceName: a}}]\n---\nkind: Mesh\n";
        let docs = index_documents(text);
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d.line_of("kind"), 1);
        assert_eq!(d.line_of("spec.listeners"), 3);
        assert_eq!(d.line_of("spec.listeners[0].portMapping.port"), 5);
        assert_eq!(d.line_of("spec.listeners[0].portMapping.protocol"), 6);
        assert_eq!(
            d.line_of("spec.backends[0].virtualService.virtualServiceName"),
            7
        );
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(d.line_of("spec.listeners[0].portMapping.nope"), 4);
        assert_eq!(docs[1].line_of("kind"), 9);
        assert_eq!(first_key_lines(text), vec![1, 9]);
    }

    #[test]
    fn first_key_lines_follow_document_markers() {
        assert_eq!(
            first_key_lines("# c\n---\n\nkind: A\n---\nkind: B\n"),
            vec![4, 6]
        );
        assert_eq!(
            first_key_lines("kind: A\n--- # x\n# only a comment\n---\nkind: C\n"),
            vec![1, 2, 5]
        );
        assert_eq!(first_key_lines("{\"kind\": \"Mesh\"}"), vec![1]);
    }
}
