//! Syntax errors a person can act on: a `.json` file's error named as JSON (with line and column),
//! and a tab in the indentation explained instead of "cannot start any token".

use std::path::Path;

use crate::diag::Problem;

/// The JSON syntax error of a `.json` file, if it has one. JSON files are then read like YAML
/// (JSON is YAML), but their errors are the JSON parser's: line, column, what was expected.
pub fn json_error(file: &Path, text: &str) -> Option<Problem> {
    if file.extension().and_then(|e| e.to_str()) != Some("json") {
        return None;
    }
    // A stream of JSON values, so a file may hold several, like YAML documents.
    let stream = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    for value in stream {
        if let Err(e) = value {
            return Some(Problem {
                file: file.to_path_buf(),
                line: e.line().max(1),
                path: String::new(),
                message: format!("JSON syntax error: {e}"),
            });
        }
    }
    None
}

/// `message`, with a hint when line `line` of `text` is indented with a tab (YAML allows only
/// spaces there, and its parsers say so obscurely).
pub fn with_hint(message: String, text: &str, line: usize) -> String {
    let indented_with_tab = text.lines().nth(line.saturating_sub(1)).is_some_and(|l| {
        l.chars()
            .take_while(|c| c.is_whitespace())
            .any(|c| c == '\t')
    });
    if indented_with_tab {
        format!("{message} (this line is indented with a tab; YAML indentation must be spaces)")
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_are_named_as_json_with_line_and_column() {
        let p = json_error(
            Path::new("m.json"),
            "{\n  \"kind\": \"Mesh\",\n  \"meshName\": \n}\n",
        )
        .expect("an error");
        assert_eq!(p.line, 4);
        assert!(
            p.message.starts_with("JSON syntax error: "),
            "{}",
            p.message
        );
        assert!(p.message.contains("line 4 column 1"), "{}", p.message);
        assert!(json_error(Path::new("m.json"), "{\"a\": 1}\n{\"b\": 2}\n").is_none());
        assert!(
            json_error(Path::new("m.yaml"), "{").is_none(),
            "YAML files are YAML's business"
        );
    }

    #[test]
    fn a_tab_in_the_indentation_is_explained() {
        let text = "kind: Mesh\nspec:\n\tegressFilter: {}\n";
        assert!(with_hint("x".into(), text, 3).contains("indented with a tab"));
        assert_eq!(with_hint("x".into(), text, 2), "x");
    }
}
