//! Times reloads after edits of a synthetic mesh, with the log line that splits each reload into
//! load, build and publish — a harness to run under `perf record`:
//!
//! ```sh
//! cargo run --release --example prof_edit -- shared 10000   # svc-0's route: every client's table
//! cargo run --release --example prof_edit -- one 10000      # svc-1's route: a few clients
//! ```

// The mesh generator belongs to the binary, not the library: included by path.
#[allow(dead_code)]
#[path = "../src/tools/synth.rs"]
mod synth;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "shared".into());
    let nodes: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let dir = tempfile::tempdir()?;
    synth::write(dir.path(), &synth::SynthParams::for_nodes(nodes, 1))?;
    // Files written less than 2 s before a load are re-read on every reload (their timestamps
    // cannot yet be trusted to show a later write), which is not the steady state being timed.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let mut p = meshplane::app::Pipeline::new(dir.path().to_path_buf());
    p.reload(None);
    let file = dir.path().join("svc-1.yaml");
    let original = std::fs::read_to_string(&file)?;
    for step in 1..=20u64 {
        let t = std::time::Instant::now();
        if which == "shared" {
            synth::edit_weights(dir.path(), step)?;
        } else {
            let r = if step % 2 == 0 {
                "maxRetries: 2"
            } else {
                "maxRetries: 3"
            };
            std::fs::write(&file, original.replace("maxRetries: 2", r))?;
        }
        p.reload(None);
        println!("edit {step}: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}
