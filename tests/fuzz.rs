//! A short fuzz run in the normal test suite: 2,000 mutants of the corpus files, each
//! loaded on top of the example mesh, must not panic, must load within a bound, and must report
//! every problem with a line. `cargo run --release --example fuzz_loader -- --seconds 600` runs
//! the same fuzzer for longer (README, "Fuzzing").

#[path = "support/fuzz.rs"]
mod fuzz;

use std::path::Path;
use std::time::Duration;

#[test]
fn mutated_corpus_files_never_crash_or_stall_the_loader() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runs = std::env::var("MESHPLANE_FUZZ_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let report = fuzz::run(
        repo,
        1,
        runs,
        Duration::from_secs(12),
        // Inputs are at most a few hundred KiB; a debug build loads them in milliseconds.
        Duration::from_secs(5),
        &repo.join("target/fuzz-failures"),
    )
    .unwrap_or_else(|f| panic!("{} (input saved to {})", f.what, f.saved.display()));
    println!(
        "fuzz: {} inputs, {} accepted, slowest {:?} ({} bytes)",
        report.runs, report.accepted, report.slowest, report.slowest_len
    );
    assert!(
        report.runs >= 200,
        "only {} inputs in the time",
        report.runs
    );
}

#[test]
fn mutants_are_deterministic_for_a_seed() {
    let seeds = fuzz::seed_corpus(Path::new(env!("CARGO_MANIFEST_DIR")));
    let corpus: Vec<Vec<u8>> = seeds.into_iter().map(|(_, b)| b).collect();
    let mutants = |seed| {
        let mut rng = fuzz::Rng::new(seed);
        (0..50)
            .map(|i| fuzz::mutant(&mut rng, &corpus[i % corpus.len()], &corpus))
            .collect::<Vec<_>>()
    };
    let a = mutants(7);
    assert_eq!(a, mutants(7));
    assert_ne!(a, mutants(8));
    assert!(a.iter().all(|m| !corpus.contains(m)), "every mutant is new");
}
