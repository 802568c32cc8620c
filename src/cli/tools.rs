//! The tool subcommands: `generate`, `load` and `demo`, each a thin runner of its tool in
//! `src/tools/`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::tools::demo::{self, DemoOptions};
use crate::tools::loadgen::{self, LoadOptions};
use crate::tools::synth::{self, SynthParams};

/// `meshplane generate DIR`: write a synthetic mesh.
pub fn generate(dir: &Path, p: SynthParams) -> anyhow::Result<ExitCode> {
    synth::write(dir, &p).with_context(|| format!("writing {}", dir.display()))?;
    println!(
        "{}: {} virtual nodes ({} services x 2 versions + {} clients)",
        dir.display(),
        p.nodes(),
        p.services,
        p.clients
    );
    Ok(ExitCode::SUCCESS)
}

/// `meshplane load`: exits 1 unless every client converged and saw every edit.
pub fn load(opts: LoadOptions) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(loadgen::run(opts))?;
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `meshplane demo`: until Ctrl-C, SIGTERM or `--duration`.
pub fn demo(opts: DemoOptions) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(demo::run(opts))?;
    Ok(ExitCode::SUCCESS)
}
