//! A streaming pass over a file's YAML events that rejects what the deserializer must never see:
//! nesting deeper than the limit and aliases that expand past it.
//!
//! It takes the text and [`Limits`], holds a few counters per open collection and per anchor (and a
//! mapping's keys), and returns the first breach with its line. The expanded size of every anchor is
//! computed from its events, so an alias bomb is caught without being expanded.

use std::collections::HashSet;

use yaml_rust2::parser::{Event, Parser};

use super::limits::{Limits, ReadError};

/// An open mapping or sequence: its anchor, the nodes it holds so far (aliases expanded), the depth
/// of the deepest collection inside it, and for a mapping the scalar keys seen so far.
struct Open {
    anchor: usize,
    nodes: u64,
    height: usize,
    /// xxh3 hashes, not the keys: one allocation per mapping instead of one per key (a collision
    /// would reject the file, with odds of ~n²/2^64 for n keys in one mapping).
    keys: Option<HashSet<u64>>,
    /// In a mapping: whether the next node is a key.
    expect_key: bool,
}

/// The pass over one file: the open collections, and the nodes and height of each completed anchor
/// by yaml-rust2's anchor id (ids are never reused).
struct Pass<'a> {
    limits: &'a Limits,
    stack: Vec<Open>,
    anchors: Vec<Option<(u64, usize)>>,
    /// Nodes aliases added to the current document.
    expansion: u64,
}

impl Pass<'_> {
    /// A node starts: as a key, a duplicate scalar key is an error (libyaml's own message for it
    /// has no line for a top-level mapping).
    fn node(&mut self, key: Option<&str>, line: usize) -> Result<(), ReadError> {
        let Some(parent) = self.stack.last_mut() else {
            return Ok(());
        };
        if let Some(keys) = parent.keys.as_mut() {
            if let (true, Some(k)) = (parent.expect_key, key) {
                if !keys.insert(xxhash_rust::xxh3::xxh3_64(k.as_bytes())) {
                    let key = k.chars().take(64).collect();
                    return Err(ReadError::DuplicateKey { line, key });
                }
            }
            parent.expect_key = !parent.expect_key;
        }
        Ok(())
    }

    fn open(&mut self, anchor: usize, mapping: bool, line: usize) -> Result<(), ReadError> {
        self.node(None, line)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(ReadError::TooDeep {
                line,
                max: self.limits.max_depth,
            });
        }
        self.stack.push(Open {
            anchor,
            nodes: 1,
            height: 1,
            keys: mapping.then(HashSet::new),
            expect_key: true,
        });
        Ok(())
    }

    fn alias(&mut self, id: usize, line: usize) -> Result<(u64, usize), ReadError> {
        self.node(None, line)?;
        let Some((nodes, height)) = self.anchors.get(id).copied().flatten() else {
            // yaml-rust2 resolves names to ids; an id without a completed node is one still
            // open around this alias.
            return Err(ReadError::RecursiveAlias { line });
        };
        self.expansion = self.expansion.saturating_add(nodes);
        if self.expansion > self.limits.max_alias_expansion {
            return Err(ReadError::AliasExpansion {
                line,
                max: self.limits.max_alias_expansion,
            });
        }
        if self.stack.len() + height > self.limits.max_depth {
            return Err(ReadError::TooDeep {
                line,
                max: self.limits.max_depth,
            });
        }
        Ok((nodes, height))
    }

    fn anchor(&mut self, id: usize, nodes: u64, height: usize) {
        if id == 0 {
            return;
        }
        if self.anchors.len() <= id {
            self.anchors.resize(id + 1, None);
        }
        self.anchors[id] = Some((nodes, height));
    }

    /// Handles one event; `Ok(false)` at the end of the stream.
    fn event(&mut self, event: Event, line: usize) -> Result<bool, ReadError> {
        // The finished node's nodes and height, to add to its parent.
        let finished = match event {
            Event::StreamEnd => return Ok(false),
            Event::DocumentStart => {
                self.stack.clear();
                self.expansion = 0;
                None
            }
            Event::MappingStart(anchor, _) => self.open(anchor, true, line).map(|()| None)?,
            Event::SequenceStart(anchor, _) => self.open(anchor, false, line).map(|()| None)?,
            Event::MappingEnd | Event::SequenceEnd => self.stack.pop().map(|open| {
                self.anchor(open.anchor, open.nodes, open.height);
                (open.nodes, open.height)
            }),
            Event::Scalar(value, _, anchor, _) => {
                self.node(Some(&value), line)?;
                self.anchor(anchor, 1, 0);
                Some((1, 0))
            }
            Event::Alias(id) => Some(self.alias(id, line)?),
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => None,
        };
        if let (Some((nodes, height)), Some(parent)) = (finished, self.stack.last_mut()) {
            parent.nodes = parent.nodes.saturating_add(nodes);
            parent.height = parent.height.max(height + 1);
        }
        Ok(true)
    }
}

/// yaml-rust2's scanner reads ahead through flow collections and stops at 255 levels with
/// "recursion limit exceeded", before the parser emits the events that would trip `max_depth`.
fn syntax(e: &yaml_rust2::ScanError, limits: &Limits) -> ReadError {
    let line = e.marker().line();
    if e.info() == "recursion limit exceeded" {
        return ReadError::TooDeep {
            line,
            max: limits.max_depth.min(usize::from(u8::MAX)),
        };
    }
    ReadError::Syntax {
        line,
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    }
}

/// The characters YAML allows in a stream (YAML 1.1 `c-printable`, as libyaml checks them).
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// libyaml refuses control characters without saying on which line; find them first.
fn check_characters(text: &str) -> Result<(), ReadError> {
    match text.char_indices().find(|&(_, c)| !printable(c)) {
        None => Ok(()),
        Some((offset, c)) => Err(ReadError::Character {
            line: 1 + text.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            code: u32::from(c),
        }),
    }
}

/// Checks `text` against the size, depth and alias limits, and for what the deserializer would
/// reject without a line (control characters, duplicate keys). A text yaml-rust2 cannot parse is a
/// syntax error: what cannot be measured is not handed on.
pub fn check(text: &str, limits: &Limits) -> Result<(), ReadError> {
    let len = text.len() as u64;
    if len > limits.max_file_bytes {
        return Err(ReadError::TooLarge {
            len,
            max: limits.max_file_bytes,
        });
    }
    check_characters(text)?;
    let mut parser = Parser::new_from_str(text);
    let mut pass = Pass {
        limits,
        stack: Vec::new(),
        anchors: Vec::new(),
        expansion: 0,
    };
    loop {
        let (event, mark) = parser.next_token().map_err(|e| syntax(&e, limits))?;
        if !pass.event(event, mark.line())? {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(depth: usize, aliases: u64) -> Limits {
        Limits {
            max_depth: depth,
            max_alias_expansion: aliases,
            ..Limits::DEFAULT
        }
    }

    #[test]
    fn ordinary_documents_pass() {
        let text = "kind: VirtualNode\nspec:\n  listeners:\n    - portMapping: {port: 8080, protocol: http}\n---\nkind: Mesh\n";
        assert_eq!(check(text, &limits(5, 0)), Ok(()));
        assert_eq!(
            check("{\"kind\": \"Mesh\", \"a\": [1, [2]]}", &limits(3, 0)),
            Ok(())
        );
    }

    #[test]
    fn nesting_beyond_the_limit_names_its_line() {
        let text = "a:\n  b:\n    c: [1, {d: 2}]\n";
        assert_eq!(check(text, &limits(5, 0)), Ok(()));
        assert_eq!(
            check(text, &limits(4, 0)),
            Err(ReadError::TooDeep { line: 3, max: 4 })
        );
    }

    #[test]
    fn a_deep_flow_mapping_is_rejected_quickly() {
        let depth = 100_000;
        let text = "{a: ".repeat(depth) + &"}".repeat(depth);
        let started = std::time::Instant::now();
        let err = check(&text, &limits(64, 100)).unwrap_err();
        assert!(matches!(err, ReadError::TooDeep { line: 1, .. }), "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn alias_bombs_are_measured_not_expanded() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d")] {
            let items = vec![format!("*{prev}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{items}]\n"));
        }
        // e expands to 10^5 scalars; the document then holds ~111,110 expanded nodes.
        let err = check(&text, &limits(64, 100_000)).unwrap_err();
        assert!(
            matches!(err, ReadError::AliasExpansion { line: 5, .. }),
            "{err:?}"
        );
        assert_eq!(check(&text, &limits(64, 1_000_000)), Ok(()));
        // Documents are counted apart.
        let two = "a: &a [1, 2]\nb: *a\n---\na: &a [1, 2]\nb: *a\n";
        assert_eq!(check(two, &limits(64, 3)), Ok(()));
        assert!(check("a: &a [1, 2]\nb: *a\nc: *a\n", &limits(64, 5)).is_err());
    }

    #[test]
    fn an_alias_counts_as_deep_as_its_anchor() {
        let text = "a: &a [[[1]]]\nb: [*a]\n";
        assert_eq!(check(text, &limits(5, 100)), Ok(()));
        assert_eq!(
            check(text, &limits(4, 100)),
            Err(ReadError::TooDeep { line: 2, max: 4 })
        );
    }

    #[test]
    fn recursive_aliases_and_syntax_errors_are_rejected() {
        assert_eq!(
            check("a: &a [1, *a]\n", &Limits::DEFAULT),
            Err(ReadError::RecursiveAlias { line: 1 })
        );
        let err = check("kind: Mesh\nmeshName: [unclosed\n", &Limits::DEFAULT).unwrap_err();
        assert!(matches!(err, ReadError::Syntax { .. }), "{err:?}");
        assert!(err.line() >= 2, "{err:?}");
    }

    #[test]
    fn control_characters_and_duplicate_keys_name_their_line() {
        assert_eq!(
            check("kind: Mesh\nmeshName: a\u{7}b\n", &Limits::DEFAULT),
            Err(ReadError::Character { line: 2, code: 7 })
        );
        assert_eq!(
            check(
                "kind: Mesh\nmeshName: a\nspec: {}\nmeshName: b\n",
                &Limits::DEFAULT
            ),
            Err(ReadError::DuplicateKey {
                line: 4,
                key: "meshName".into()
            })
        );
        // Values may repeat, and so may keys of different mappings.
        let fine = "a: {x: 1, y: 1}\nb: {x: 1, y: [x, x]}\n";
        assert_eq!(check(fine, &Limits::DEFAULT), Ok(()));
        assert_eq!(check("a: \u{feff}é𝕊\t\n", &Limits::DEFAULT), Ok(()));
    }

    #[test]
    fn size_is_checked_first() {
        let l = Limits {
            max_file_bytes: 4,
            ..Limits::DEFAULT
        };
        assert_eq!(
            check("a: b\n", &l),
            Err(ReadError::TooLarge { len: 5, max: 4 })
        );
    }
}
