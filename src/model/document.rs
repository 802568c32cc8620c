//! The rules one document must satisfy on its own, before any model exists: exactly the name
//! fields of its kind, each 1 to 255 characters; and a warning for every section that loads but is
//! not translated yet (`untranslated`). The loader runs these as each file is parsed, so their
//! verdict is cached with the parse and a file's problems and warnings keep their order.

use super::untranslated::report_untranslated;
use crate::diag::Problem;
use crate::source::Document;

/// Judges `doc` on its own: problems with its names go to `problems`, sections that are not
/// translated into Envoy configuration yet to `warnings`.
pub fn check_alone(doc: &Document, problems: &mut Vec<Problem>, warnings: &mut Vec<Problem>) {
    check_names(doc, problems);
    report_untranslated(doc, warnings);
    super::validate::ignored::report_ignored(doc, warnings);
}

/// Like [`check_alone`] for `--strict`: a section that is loaded but not translated into Envoy
/// configuration is a problem, not a warning. (Fields App Mesh itself ignored stay warnings.)
pub fn check_alone_strict(
    doc: &Document,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    check_names(doc, problems);
    let mut untranslated = Vec::new();
    report_untranslated(doc, &mut untranslated);
    problems.extend(untranslated.into_iter().map(|mut p| {
        p.message.push_str(" (an error with --strict)");
        p
    }));
    super::validate::ignored::report_ignored(doc, warnings);
}

/// Every kind needs exactly its own name fields.
fn check_names(doc: &Document, problems: &mut Vec<Problem>) {
    let names = doc.names();
    let wanted = doc.kind.name_fields();
    for field in [
        "meshName",
        "virtualServiceName",
        "virtualNodeName",
        "virtualRouterName",
        "routeName",
        "virtualGatewayName",
        "gatewayRouteName",
    ] {
        match (wanted.contains(&field), names.get(field)) {
            (true, None) => problems.push(doc.problem(
                field,
                format!("missing field `{field}` (required for {})", doc.kind),
            )),
            (true, Some(v)) if v.is_empty() || v.len() > 255 => {
                problems.push(doc.problem(field, format!("`{field}` must be 1 to 255 characters")))
            }
            (false, Some(_)) => problems
                .push(doc.problem(field, format!("unknown field `{field}` for {}", doc.kind))),
            _ => {}
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use crate::source::loader::parse_file;
    use crate::source::LoadOutput;

    /// Parses like the loader does: each document, then what it says on its own.
    pub(crate) fn parse(text: &str) -> LoadOutput {
        let mut out = LoadOutput::default();
        parse_file(Path::new("mesh.yaml"), text, &mut out);
        for doc in &out.documents {
            super::check_alone(doc, &mut out.problems, &mut out.warnings);
        }
        out
    }

    #[test]
    fn unknown_kind_and_missing_names_are_problems() {
        let out = parse("kind: Gateway\nmeshName: x\n---\nkind: Route\nmeshName: demo\nrouteName: r\nspec: {}\n");
        let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            msgs[0].starts_with("mesh.yaml:1: kind: unknown kind `Gateway`"),
            "{msgs:?}"
        );
        assert!(
            msgs[1].contains("missing field `virtualRouterName`"),
            "{msgs:?}"
        );
    }
}
