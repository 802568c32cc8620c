//! An upper bound on the size of the program RE2 compiles a regular expression to (the number
//! Envoy checks against its runtime's `re2.max_program_size.error_level` and reports as
//! `re2.program_size`). It may over-estimate, never under-estimate, so a regex within the limit
//! here is never NACKed for its size.
//!
//! RE2 compiles (after simplification): a literal byte to one instruction; a class to a byte range
//! per range with a branch between them (the bound counts the UTF-8 byte sequences of the class,
//! at least one per range, plus a branch between sequences); `x{n,m}` to `m` copies of `x` with a
//! branch per optional copy (`x{n,}`: n copies and a loop); an alternation to its branches plus one
//! branch instruction each; a capture to two instructions around its body; an assertion to one.
//! Around all that: a failure and a match
//! instruction and the unanchored-prefix loop. The parse is the `regex` crate's, of the pattern as
//! RE2 in Envoy reads it ([`latin1`]), with RE2's ASCII meaning of `\d`, `\w` and `\s` (the
//! crate's Unicode ones would over-estimate a thousandfold). tests/re2_size.rs compares the bound
//! with what Envoy measures.

use regex_syntax::hir::{Class, Hir, HirKind};
use regex_syntax::utf8::Utf8Sequences;

/// RE2's instructions outside the expression (measured with Envoy 1.40: `(?s).` has 5).
const OVERHEAD: u64 = 5;

/// An upper bound on RE2's program size for `re`; `None` when the `regex` crate cannot parse it
/// (the syntax check reports that).
pub fn program_size_bound(re: &str) -> Option<u64> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(&ascii_perl_classes(&latin1(re)))
        .ok()?;
    Some(OVERHEAD.saturating_add(bound(&hir)))
}

fn bound(h: &Hir) -> u64 {
    let sum = |hs: &[Hir]| hs.iter().map(bound).fold(0u64, u64::saturating_add);
    match h.kind() {
        HirKind::Empty => 1,
        HirKind::Literal(l) => l.0.len() as u64,
        HirKind::Class(Class::Unicode(c)) => {
            // Latin-1 has nothing above U+00FF: RE2 drops the rest of a class (`\p{Greek}` is
            // empty there).
            let latin1 = c
                .iter()
                .filter(|r| r.start() <= '\u{FF}')
                .map(|r| (r.start(), r.end().min('\u{FF}')));
            let seqs = latin1.flat_map(|(a, b)| Utf8Sequences::new(a, b));
            let (n, bytes) = seqs.fold((0u64, 0u64), |(n, b), s| (n + 1, b + s.len() as u64));
            // One byte range per byte of each sequence, one branch between sequences.
            (bytes + n.saturating_sub(1)).max(1)
        }
        HirKind::Class(Class::Bytes(c)) => (2 * c.ranges().len() as u64).max(1),
        HirKind::Look(_) => 1,
        HirKind::Repetition(r) => {
            let sub = bound(&r.sub);
            let (copies, branches) = match r.max {
                // `min` copies, then `max - min` optional ones (a branch each).
                Some(max) => (u64::from(max), u64::from(max.saturating_sub(r.min))),
                // At least one copy, and the loop's branch.
                None => (u64::from(r.min.max(1)), 1),
            };
            // One more, for a `Nop` RE2 may leave where `x{0}` or an empty loop was.
            sub.saturating_mul(copies)
                .saturating_add(branches)
                .saturating_add(1)
        }
        HirKind::Capture(c) => bound(&c.sub).saturating_add(2),
        HirKind::Concat(hs) => sum(hs),
        HirKind::Alternation(hs) => sum(hs).saturating_add(hs.len() as u64),
    }
}

/// `re` as RE2 reads it in Envoy, which compiles patterns as Latin-1 (measured: `\x{100}` is an
/// invalid escape there, `\pL` a handful of ranges): every byte of a non-ASCII character is a
/// character of its own, U+0080 to U+00FF. Parsed as Unicode, each of them costs two bytes where
/// RE2 spends one, and case folding only grows; classes are cut at U+00FF as RE2 cuts them.
fn latin1(re: &str) -> String {
    let mut out = String::with_capacity(re.len() * 2);
    for c in re.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            out.extend(c.encode_utf8(&mut buf).bytes().map(char::from));
        }
    }
    out
}

/// `re` with RE2's ASCII Perl classes written out (`\d` → `[0-9]`, inside a class too: the crate
/// nests classes). Other escapes are kept as they are.
fn ascii_perl_classes(re: &str) -> String {
    let mut out = String::with_capacity(re.len());
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(next) = chars.next() else {
            out.push(c);
            break;
        };
        let class = match next {
            'd' => "[0-9]",
            'D' => "[^0-9]",
            'w' => "[0-9A-Za-z_]",
            'W' => "[^0-9A-Za-z_]",
            's' => r"[\t\n\x0C\r ]",
            'S' => r"[^\t\n\x0C\r ]",
            _ => {
                out.push(c);
                out.push(next);
                continue;
            }
        };
        out.push_str(class);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{ascii_perl_classes, program_size_bound};

    /// Program sizes Envoy 1.40 reported for these (its `re2.program_size` warnings; the real-Envoy
    /// test tests/re2_size.rs measures them again): the bound is never below.
    const MEASURED: &[(&str, u64)] = &[
        ("^/items/[0-9]+$", 6),
        ("^/items/[0-9]{1,6}$", 15),
        (
            "^/(alpha|beta|gamma|delta|epsilon){1,12}/[a-z0-9]{8,32}(-[a-z0-9]{4,16}){2,6}$",
            726,
        ),
        (".*foo.*", 11),
        ("a.*b.*c.*d.*e.*f.*g.*", 25),
        ("x-envoy-(a|b|c)-[grep]{3}", 28),
        (r"(?i)^/users/\w+/orders/\d{1,10}$", 35),
        (r"\pL+", 12),
        ("[^a]", 6),
        (".", 6),
        ("(?s).", 5),
        (r"\bword\b", 10),
        ("^$", 2),
        ("a{1000}", 1004),
        ("(?i)straße", 11),
    ];

    #[test]
    fn the_bound_is_never_below_envoys_measure() {
        for (re, measured) in MEASURED {
            let b = program_size_bound(re).unwrap();
            assert!(b >= *measured, "{re}: bound {b} < {measured}");
        }
    }

    #[test]
    fn perl_classes_are_re2s_ascii_ones() {
        assert_eq!(
            ascii_perl_classes(r"\d+\\d[\w-]\."),
            r"[0-9]+\\d[[0-9A-Za-z_]-]\."
        );
        // Unicode \w would be hundreds of ranges; RE2's is four.
        assert!(program_size_bound(r"\w{1,64}").unwrap() < 64 * 12);
    }
}
