//! A streaming pass over a file's YAML events that rejects what the deserializer must never see:
//! nesting deeper than the limit and aliases that expand past it.
//!
//! It takes the text and [`Limits`], holds only one counter per open collection and one per anchor,
//! and returns the first breach with its line. The expanded size of every anchor is computed from
//! its events, so an alias bomb is caught without being expanded.

use yaml_rust2::parser::{Event, Parser};

use super::limits::{Limits, ReadError};

/// An open mapping or sequence: its anchor, the nodes it holds so far (aliases expanded) and the
/// depth of the deepest collection inside it.
struct Open {
    anchor: usize,
    nodes: u64,
    height: usize,
}

/// Nodes and height of each completed anchor, by yaml-rust2's anchor id (ids are never reused).
#[derive(Default)]
struct Anchors {
    done: Vec<Option<(u64, usize)>>,
}

impl Anchors {
    fn set(&mut self, id: usize, nodes: u64, height: usize) {
        if self.done.len() <= id {
            self.done.resize(id + 1, None);
        }
        self.done[id] = Some((nodes, height));
    }

    fn get(&self, id: usize) -> Option<(u64, usize)> {
        self.done.get(id).copied().flatten()
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

/// Checks `text` against the size, depth and alias limits. A text yaml-rust2 cannot parse is a
/// syntax error: what cannot be measured is not handed on.
pub fn check(text: &str, limits: &Limits) -> Result<(), ReadError> {
    let len = text.len() as u64;
    if len > limits.max_file_bytes {
        return Err(ReadError::TooLarge {
            len,
            max: limits.max_file_bytes,
        });
    }
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors = Anchors::default();
    // Nodes aliases added to the current document.
    let mut expansion: u64 = 0;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| syntax(&e, limits))?;
        let line = mark.line();
        // The finished node's nodes and height, to add to its parent.
        let finished = match event {
            Event::StreamEnd => return Ok(()),
            Event::DocumentStart => {
                stack.clear();
                expansion = 0;
                None
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                if stack.len() >= limits.max_depth {
                    return Err(ReadError::TooDeep {
                        line,
                        max: limits.max_depth,
                    });
                }
                stack.push(Open {
                    anchor,
                    nodes: 1,
                    height: 1,
                });
                None
            }
            Event::MappingEnd | Event::SequenceEnd => stack.pop().map(|open| {
                if open.anchor != 0 {
                    anchors.set(open.anchor, open.nodes, open.height);
                }
                (open.nodes, open.height)
            }),
            Event::Scalar(_, _, anchor, _) => {
                if anchor != 0 {
                    anchors.set(anchor, 1, 0);
                }
                Some((1, 0))
            }
            Event::Alias(id) => {
                let Some((nodes, height)) = anchors.get(id) else {
                    // yaml-rust2 resolves names to ids; an id without a completed node is one
                    // still open around this alias.
                    return Err(ReadError::RecursiveAlias { line });
                };
                expansion = expansion.saturating_add(nodes);
                if expansion > limits.max_alias_expansion {
                    return Err(ReadError::AliasExpansion {
                        line,
                        max: limits.max_alias_expansion,
                    });
                }
                if stack.len() + height > limits.max_depth {
                    return Err(ReadError::TooDeep {
                        line,
                        max: limits.max_depth,
                    });
                }
                Some((nodes, height))
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => None,
        };
        if let (Some((nodes, height)), Some(parent)) = (finished, stack.last_mut()) {
            parent.nodes = parent.nodes.saturating_add(nodes);
            parent.height = parent.height.max(height + 1);
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
