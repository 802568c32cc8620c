//! The `meshplane` binary: parse the command line, set up logging, run. The command line (`cli`)
//! and the tools (`tools`: load tool, mesh generator, demo) live here, outside the serving library.
#![forbid(unsafe_code)]

mod cli;
mod tools;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use cli::{init_tracing, run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_json, cli.log_level.as_deref(), cli.reports());
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
