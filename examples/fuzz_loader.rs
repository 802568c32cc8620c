//! Long fuzz runs of the loader and validator on stable Rust (the short run is `tests/fuzz.rs`):
//!
//! ```sh
//! cargo run --release --example fuzz_loader -- --seconds 600 [--seed N]
//! ```
//!
//! Prints a line per seed round; a failing input is saved under `target/fuzz-failures/` and the run
//! exits 1.

#[path = "../tests/support/fuzz.rs"]
mod fuzz;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 60);
    let mut seed = arg(&args, "--seed", 1);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let failures = repo.join("target/fuzz-failures");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut accepted, mut slowest) = (0, 0, Duration::ZERO);
    // Rounds of 20,000 inputs, each with its own seed, so a failure can be replayed from its seed.
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match fuzz::run(repo, seed, 20_000, left, Duration::from_secs(2), &failures) {
            Ok(r) => {
                println!(
                    "seed {seed}: {} inputs, {} accepted, slowest {:?} ({} bytes)",
                    r.runs, r.accepted, r.slowest, r.slowest_len
                );
                runs += r.runs;
                accepted += r.accepted;
                slowest = slowest.max(r.slowest);
            }
            Err(f) => {
                eprintln!(
                    "seed {seed}: {} (input saved to {})",
                    f.what,
                    f.saved.display()
                );
                return ExitCode::from(1);
            }
        }
        seed += 1;
    }
    println!("total: {runs} inputs, {accepted} accepted, slowest {slowest:?}");
    ExitCode::SUCCESS
}
