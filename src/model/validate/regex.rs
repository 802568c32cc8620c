//! Regular expressions, judged as Envoy will compile them: RE2 syntax (`safe_regex` with the
//! Google RE2 engine), so a bad one is a problem at its file, line and field instead of a NACK.
//!
//! The `regex` crate's syntax is RE2's with a few extensions, which RE2 rejects and are rejected
//! here too: flags other than `i`, `m`, `s` and `U` (`x`, `u`, `R`), and counted repetitions above
//! RE2's limit of 1000. Both reject backreferences and look-around. (What remains different: the
//! crate rejects `\Q…\E`, `\C` and an unescaped `[` inside a class, which RE2 accepts.) And its
//! size: an upper bound on its compiled RE2 program ([`size`]) must be within the limit Envoy is
//! given, so the regex is never NACKed.

use crate::diag::Problem;
use crate::source::Document;

mod size;
pub use size::program_size_bound;

/// RE2's largest counted repetition (`a{1000}`).
const MAX_REPEAT: u32 = 1000;

/// `re`, found at `path`, must be a regular expression RE2 accepts, and small enough for the
/// program size limit meshplane's bootstrap gives Envoy ([`crate::model::RE2_MAX_PROGRAM_SIZE`]).
pub(super) fn check_regex(doc: &Document, path: &str, re: &str, out: &mut Vec<Problem>) {
    if let Some(why) = re2_error(re) {
        out.push(doc.problem(path, format!("invalid regular expression (RE2): {why}")));
        return;
    }
    let limit = crate::model::RE2_MAX_PROGRAM_SIZE;
    match program_size_bound(re) {
        Some(n) if n <= u64::from(limit) => {}
        n => out.push(doc.problem(
            path,
            format!(
                "regular expression too large: its RE2 program may reach {} instructions, over \
                 the limit of {limit} that Envoy gets from `meshplane bootstrap` \
                 (re2.max_program_size.error_level); simplify it or split the route",
                n.map_or("more".into(), |n| n.to_string())
            ),
        )),
    }
}

/// Why RE2 would reject `re`, if it would.
fn re2_error(re: &str) -> Option<String> {
    if let Err(e) = regex::Regex::new(re) {
        // The crate's message spans lines (the pattern, a caret, the error): keep its last line.
        let text = e.to_string();
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        return Some(
            last.unwrap_or(&text)
                .trim()
                .trim_start_matches("error: ")
                .to_string(),
        );
    }
    extension_used(re)
}

/// The first of the crate's extensions to RE2 syntax that `re` uses (`re` already parsed, so
/// escapes, classes and groups are well formed).
fn extension_used(re: &str) -> Option<String> {
    let chars: Vec<char> = re.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if let Some(why) = wide_hex_escape(&chars[i + 1..]) {
                    return Some(why);
                }
                i += 1;
            }
            '[' if !in_class => {
                in_class = true;
                // A `]` right after `[` or `[^` is a literal.
                if chars.get(i + 1) == Some(&'^') {
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    i += 1;
                }
            }
            ']' if in_class => in_class = false,
            '(' if !in_class && chars.get(i + 1) == Some(&'?') => {
                let flags: String = chars[i + 2..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic() || **c == '-')
                    .collect();
                // Flags end with `)` or `:`; `(?P<` and `(?<` open named groups.
                let ends = chars.get(i + 2 + flags.chars().count());
                let is_flags = matches!(ends, Some(')' | ':'));
                if let Some(f) = flags.chars().find(|c| is_flags && !"imsU-".contains(*c)) {
                    return Some(format!("flag `{f}` is not supported by RE2"));
                }
            }
            '{' if !in_class => {
                if let Some(n) = repetition_bound(&chars[i + 1..]) {
                    if n > MAX_REPEAT {
                        return Some(format!(
                            "repetition count {n} is over RE2's limit of {MAX_REPEAT}"
                        ));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Envoy's RE2 reads patterns as Latin-1 (tests/re2_size.rs): an escape `\x{…}` above `FF` is
/// an invalid escape there, though the crate and RE2's UTF-8 mode take it. `rest` follows a `\`.
fn wide_hex_escape(rest: &[char]) -> Option<String> {
    let hex = rest.strip_prefix(&['x', '{'])?;
    let end = hex.iter().position(|c| *c == '}')?;
    let digits: String = hex[..end].iter().collect();
    let value = u32::from_str_radix(&digits, 16).ok()?;
    (value > 0xFF).then(|| {
        format!("escape \\x{{{digits}}} is above \\x{{FF}}: Envoy's RE2 reads patterns as Latin-1")
    })
}

/// The largest number of a counted repetition `n}`, `n,}` or `n,m}` that `rest` starts with.
fn repetition_bound(rest: &[char]) -> Option<u32> {
    let end = rest.iter().position(|c| *c == '}')?;
    let body: String = rest[..end].iter().collect();
    let mut parts = body.splitn(2, ',');
    let lo = parts.next()?;
    if lo.is_empty() || !lo.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hi = parts.next().unwrap_or("");
    if !hi.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let big = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
    Some(if hi.is_empty() {
        big(lo)
    } else {
        big(lo).max(big(hi))
    })
}

#[cfg(test)]
mod tests {
    use super::re2_error;

    #[test]
    fn re2_syntax_is_accepted() {
        for re in [
            "^/api/v[0-9]+/.*$",
            "(?i)^/Users/[a-z]{1,36}$",
            r"\d+\.\d+",
            r"^[]a]+$",
            r"^[^]a]$",
            r"\pL+",
            "(?P<id>[0-9]+)",
            "(?s:.)",
            "a{1000}",
            r"x\{2000\}",
            "[{]2000}",
            r"\x{FF}\x{41}",
        ] {
            assert_eq!(re2_error(re), None, "{re}");
        }
    }

    #[test]
    fn what_re2_rejects_is_rejected() {
        for (re, why) in [
            ("(a", "unclosed group"),
            ("[a-", "unclosed character class"),
            ("*a", "repetition operator missing expression"),
            (r"(a)\1", "backreferences are not supported"),
            ("(?=a)", "look-around"),
            ("(?<!a)b", "look-around"),
            ("(?x) a b", "flag `x`"),
            ("(?u:a)", "flag `u`"),
            ("a{1001}", "1001 is over RE2's limit"),
            ("a{2,5000}", "5000"),
            (r"\x{100}", "above \\x{FF}"),
        ] {
            let got = re2_error(re).unwrap_or_else(|| panic!("{re} accepted"));
            assert!(got.contains(why), "{re}: {got}");
        }
    }
}
