//! Maps field paths (`spec.listeners[0].portMapping.port`) to the 1-based line where they appear.
//!
//! serde's YAML deserializers keep no positions once a document becomes a value, so a second,
//! event-level pass records the line of every key and sequence item. Nodes are kept as a tree
//! (parent, key) rather than as full path strings, so the index is linear in the file's size
//! however deep and however long its keys.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use xxhash_rust::xxh3::Xxh3Builder;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Field path → line, for one YAML document.
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    /// The line of each recorded node; node 0 is the document's root.
    lines: Vec<usize>,
    /// (mapping node, key) → the key's node; the first occurrence of a duplicate key wins.
    keys: HashMap<(usize, Box<str>), usize, Xxh3Builder>,
    /// Sequence node → its items' nodes, in order (a long list costs no hashing per item).
    items: HashMap<usize, Vec<usize>, Xxh3Builder>,
    start: usize,
}

impl LineIndex {
    /// The deepest recorded node along `path`, and whether it is the whole path.
    fn walk(&self, path: &str) -> (Option<usize>, bool) {
        let (mut node, mut rest, mut found) = (0, path, None);
        while !rest.is_empty() {
            let next = if let Some(r) = rest.strip_prefix('[') {
                let Some((n, after)) = r.split_once(']') else {
                    break;
                };
                let Ok(i) = n.parse::<usize>() else { break };
                self.items
                    .get(&node)
                    .and_then(|items| items.get(i))
                    .map(|&c| (c, after))
            } else {
                let r = rest.strip_prefix('.').unwrap_or(rest);
                // A key may itself contain `.` or `[`: try each place the path could split.
                r.char_indices()
                    .filter(|&(_, c)| c == '.' || c == '[')
                    .map(|(i, _)| i)
                    .chain([r.len()])
                    .find_map(|i| {
                        self.keys
                            .get(&(node, Box::from(&r[..i])))
                            .map(|&c| (c, &r[i..]))
                    })
            };
            let Some((child, after)) = next else { break };
            (node, rest, found) = (child, after, Some(child));
        }
        (found, rest.is_empty() && found.is_some())
    }

    /// Line of `path`, or of its closest recorded ancestor, or of the document start.
    pub fn line_of(&self, path: &str) -> usize {
        match self.walk(path).0 {
            Some(node) => self.lines[node],
            None => self.start,
        }
    }

    /// Whether `path` itself was recorded.
    fn contains(&self, path: &str) -> bool {
        self.walk(path).1
    }

    pub fn start(&self) -> usize {
        self.start
    }
}

enum Frame {
    /// A mapping: its node, and the node of the key whose value comes next.
    Map {
        node: usize,
        key: Option<usize>,
    },
    Seq {
        node: usize,
        items: Vec<usize>,
    },
}

#[derive(Default)]
struct Collector {
    docs: Vec<LineIndex>,
    stack: Vec<Frame>,
    current: Option<LineIndex>,
}

impl Collector {
    /// Records a node at `line`; the caller links it to its parent.
    fn node(&mut self, line: usize) -> usize {
        let Some(doc) = self.current.as_mut() else {
            return 0;
        };
        doc.lines.push(line);
        doc.lines.len() - 1
    }

    /// The node of key `key` of mapping `parent`: a new one, or the first of a duplicate.
    fn key(&mut self, parent: usize, key: String, line: usize) -> usize {
        let Some(doc) = self.current.as_mut() else {
            return 0;
        };
        let next = doc.lines.len();
        match doc.keys.entry((parent, key.into())) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                e.insert(next);
                doc.lines.push(line);
                next
            }
        }
    }

    /// The node of the value that is about to start, or `None` when a mapping key is expected.
    fn value_node(&mut self, line: usize) -> Option<usize> {
        match self.stack.last_mut() {
            None => Some(0),
            Some(Frame::Map {
                key: key @ Some(_), ..
            }) => key.take(),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Seq { .. }) => {
                let item = self.node(line);
                if let Some(Frame::Seq { items, .. }) = self.stack.last_mut() {
                    items.push(item);
                }
                Some(item)
            }
        }
    }

    /// A scalar: a value, or a key whose value comes next.
    fn scalar(&mut self, value: String, line: usize) {
        if self.value_node(line).is_some() {
            return;
        }
        let parent = match self.stack.last() {
            Some(Frame::Map { node, .. }) => *node,
            _ => 0,
        };
        let key = self.key(parent, value, line);
        if let Some(Frame::Map { key: k, .. }) = self.stack.last_mut() {
            *k = Some(key);
        }
    }

    /// The node of a collection that starts here: a value, or (a complex key) a node no path
    /// reaches.
    fn collection_node(&mut self, line: usize) -> usize {
        match self.value_node(line) {
            Some(n) => n,
            None => self.node(line),
        }
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::DocumentStart => {
                self.stack.clear();
                self.current = Some(LineIndex {
                    lines: vec![line],
                    start: line,
                    ..LineIndex::default()
                });
            }
            Event::DocumentEnd => {
                if let Some(doc) = self.current.take() {
                    self.docs.push(doc);
                }
            }
            Event::Scalar(value, ..) => self.scalar(value, line),
            Event::Alias(_) => {
                let _ = self.value_node(line);
            }
            Event::MappingStart(..) => {
                let node = self.collection_node(line);
                self.stack.push(Frame::Map { node, key: None });
            }
            Event::SequenceStart(..) => {
                let node = self.collection_node(line);
                self.stack.push(Frame::Seq {
                    node,
                    items: Vec::new(),
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let (Some(Frame::Seq { node, items }), Some(doc)) =
                    (self.stack.pop(), self.current.as_mut())
                {
                    doc.items.entry(node).or_insert(items);
                }
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
            if l == ix.start() && !ix.contains(path) {
                self.first_key.max(l)
            } else {
                l
            }
        })
    }

    /// The same document, with the resource starting at `path` (an inline route of a manifest).
    pub fn starting_at(&self, path: &str) -> DocLines {
        DocLines {
            file: self.file.clone(),
            doc: self.doc,
            first_key: self.line_of(path),
        }
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
    fn keys_with_dots_and_brackets_are_found() {
        let text =
            "spec:\n  proxy:\n    tcpEgress:\n      db.demo.local: 5432\n      \"a[0]\": 1\n";
        let d = &index_documents(text)[0];
        assert_eq!(d.line_of("spec.proxy.tcpEgress.db.demo.local"), 4);
        assert_eq!(d.line_of("spec.proxy.tcpEgress.a[0]"), 5);
        assert_eq!(d.line_of("spec.proxy.tcpEgress.db.other"), 3);
        assert!(d.contains("spec.proxy"));
        assert!(!d.contains("spec.proxy.nope"));
    }

    #[test]
    fn long_keys_deep_down_cost_linear_time() {
        // 60 nested 10 KB keys above 100,000 leaves: as full path strings, 60 GB.
        let key = format!("\"{}\"", "k".repeat(10_000));
        let leaves: Vec<String> = (0..100_000).map(|i| format!("a{i}: 1")).collect();
        let text = "{".to_string()
            + &format!("{key}: {{\n").repeat(60)
            + &leaves.join(", ")
            + "\n"
            + &"}".repeat(61);
        let started = std::time::Instant::now();
        let docs = index_documents(&text);
        let path = format!("{}a99999", format!("{}.", "k".repeat(10_000)).repeat(60));
        assert_eq!(docs[0].line_of(&path), 61);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
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
