//! A small seeded fuzzer for the loader and validator, on stable Rust: it mutates corpus files (bit
//! flips, splices, YAML tokens, deep nesting, huge numbers, tabs, unicode), loads each result on top
//! of a good mesh, and checks that nothing panics, every load ends within a time bound, and every
//! problem names a file and a line. Used by `tests/fuzz.rs` (a short run) and
//! `examples/fuzz_loader.rs` (a long one).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Tokens that stress the YAML parser and the loader when dropped anywhere.
const TOKENS: &[&str] = &[
    "&a ",
    "*a",
    "&b [*a, *a, *a, *a]",
    "*b",
    "<<: *a\n",
    "[",
    "]",
    "{",
    "}",
    ",",
    ": ",
    "- ",
    "? ",
    "\t",
    "\n",
    "\n  ",
    "---\n",
    "...\n",
    "#",
    "'",
    "\"",
    "\\",
    "|\n",
    ">-\n",
    "!!binary ",
    "!Custom ",
    "%YAML 1.1\n",
    "99999999999999999999999",
    "-1",
    "0x7fffffff",
    "1e400",
    "-0",
    ".nan",
    "~",
    "null",
    "true",
    "é",
    "\u{feff}",
    "\u{2028}",
    "𝕊",
    "\u{0}",
    "\r\n",
    "kind: ",
    "meshName: demo\n",
    "virtualNodeName: ",
    "weight: ",
    "port: ",
    "spec: ",
    "listeners: ",
];

/// xorshift64*: deterministic for a seed, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One random edit of `input`, drawing splices from `corpus`.
fn mutate_once(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let at = rng.below(input.len() + 1);
    match rng.below(9) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        1 if !input.is_empty() => {
            let end = (at + 1 + rng.below(16)).min(input.len());
            input.drain(at.min(end)..end);
        }
        2 => {
            let donor = &corpus[rng.below(corpus.len())];
            let from = rng.below(donor.len());
            let len = rng.below(donor.len() - from + 1).min(512);
            let piece = donor[from..from + len].to_vec();
            input.splice(at..at, piece);
        }
        3 => {
            let depth = 1 + rng.below(200);
            let (open, close) = if rng.below(2) == 0 {
                ("[", "]")
            } else {
                ("{a: ", "}")
            };
            let nest = open.repeat(depth) + &close.repeat(depth);
            input.splice(at..at, nest.into_bytes());
        }
        4 => {
            // Duplicate a line: repeated keys, repeated documents.
            let text = input.clone();
            let start = text[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let end = text[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |i| at + i + 1);
            input.splice(start..start, text[start..end].to_vec());
        }
        5 => {
            // Re-indent a line by a random amount.
            let start = input[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let spaces = vec![b' '; rng.below(9)];
            input.splice(start..start, spaces);
        }
        6 => {
            // A small alias bomb.
            let width = 2 + rng.below(12);
            let mut bomb = String::from("\nz0: &z0 [x]\n");
            for level in 1..=(2 + rng.below(8)) {
                let items = vec![format!("*z{}", level - 1); width].join(", ");
                bomb.push_str(&format!("z{level}: &z{level} [{items}]\n"));
            }
            input.splice(at..at, bomb.into_bytes());
        }
        _ => {
            let token = TOKENS[rng.below(TOKENS.len())];
            input.splice(at..at, token.bytes());
        }
    }
}

/// A mutant of the corpus file `seed`: one to eight edits.
pub fn mutant(rng: &mut Rng, seed: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut input = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        mutate_once(rng, &mut input, corpus);
    }
    input
}

/// The seed corpus: the example mesh, the feature mesh and the hostile corpus, each file with the
/// name a mutant of it is written as: an example file replaces itself (so most mutants are small
/// edits of a valid mesh and reach the validator), the others are added as `fuzz.yaml`/`.json`.
pub fn seed_corpus(repo: &Path) -> Vec<(Option<String>, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in [
        "examples/demo",
        "tests/golden/features/mesh",
        "tests/hostile",
    ] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(repo.join(dir))
            .expect("corpus dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
            .collect();
        names.sort();
        for p in names {
            let name = (dir == "examples/demo")
                .then(|| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .flatten();
            files.push((name, std::fs::read(&p).expect("corpus file")));
        }
    }
    files
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    pub runs: u64,
    pub accepted: u64,
    pub slowest: Duration,
    pub slowest_len: usize,
}

/// Why an input failed; the input was saved to `saved`.
#[derive(Debug)]
pub struct Failure {
    pub saved: PathBuf,
    pub what: String,
}

/// Loads mutants on top of the example mesh until `runs` inputs or `time` have passed, whichever
/// comes first. Every 25th input is also loaded afresh, without the parse cache, and must give the
/// same problems. A failing input is saved under `failures`.
pub fn run(
    repo: &Path,
    seed: u64,
    runs: u64,
    time: Duration,
    max_each: Duration,
    failures: &Path,
) -> Result<Report, Failure> {
    let seeds = seed_corpus(repo);
    let corpus: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(repo.join("examples/demo")).expect("demo") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
    }
    let mut rng = Rng::new(seed);
    let mut cache = meshplane::app::LoadCache::default();
    let mut report = Report::default();
    let started = Instant::now();
    while report.runs < runs && started.elapsed() < time {
        // Half the inputs are edits of the valid meshes, half of the hostile corpus.
        let valid = seeds.iter().take_while(|(t, _)| t.is_some()).count() + 1;
        let pick = if rng.below(2) == 0 {
            rng.below(valid)
        } else {
            rng.below(seeds.len())
        };
        let (target, seed) = &seeds[pick];
        let input = mutant(&mut rng, seed, &corpus);
        let extension = if rng.below(4) == 0 { "json" } else { "yaml" };
        let name = target.clone().unwrap_or(format!("fuzz.{extension}"));
        // The example mesh as it is, plus this one mutant.
        let _ = std::fs::remove_file(dir.path().join("fuzz.yaml"));
        let _ = std::fs::remove_file(dir.path().join("fuzz.json"));
        for (t, original) in &seeds {
            if let Some(t) = t {
                std::fs::write(dir.path().join(t), original).expect("restore");
            }
        }
        std::fs::write(dir.path().join(&name), &input).expect("write input");
        let fail = |what: String| {
            std::fs::create_dir_all(failures).expect("failures dir");
            let hash = xxhash_rust::xxh3::xxh3_64(&input);
            let saved = failures.join(format!("{hash:016x}-{name}"));
            std::fs::write(&saved, &input).expect("save failing input");
            Failure { saved, what }
        };
        let t = Instant::now();
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            meshplane::app::load_with(dir.path(), &mut cache)
        }));
        let took = t.elapsed();
        let Ok(result) = loaded else {
            return Err(fail("the loader panicked".into()));
        };
        if took > max_each {
            return Err(fail(format!("one load took {took:?}")));
        }
        if took > report.slowest {
            report.slowest = took;
            report.slowest_len = input.len();
        }
        if result.model.is_some() != result.problems.is_empty() {
            return Err(fail(
                "a model with problems, or no model and no problem".into(),
            ));
        }
        if let Some(p) = result.problems.iter().find(|p| p.line == 0) {
            return Err(fail(format!("a problem without a line: {p}")));
        }
        if report.runs % 25 == 0 {
            let fresh = meshplane::app::load(dir.path());
            if fresh.problems != result.problems {
                return Err(fail("a fresh load disagrees with the cached one".into()));
            }
        }
        report.runs += 1;
        report.accepted += u64::from(result.model.is_some());
    }
    Ok(report)
}
