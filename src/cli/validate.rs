//! `meshplane validate PATH`: a directory of mesh files, or one file on its own; every problem with
//! the path as the user typed it, as text or JSON. `--strict` makes every field that is loaded but
//! not translated a problem.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::Output;
use meshplane::app::{self, LoadResult};
use meshplane::diag::Problem;
use meshplane::source::Limits;

#[derive(Serialize)]
struct Report {
    valid: bool,
    path: String,
    files: usize,
    problems: Vec<meshplane::admin::ProblemReport>,
    warnings: Vec<meshplane::admin::ProblemReport>,
}

/// A single file is validated as a mesh of its own, from a private copy in a directory of its own
/// (removed when dropped), so the loader's directory rules apply unchanged.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(path: &Path, limits: Limits, strict: bool) -> anyhow::Result<(LoadResult, PathBuf)> {
    if path.is_dir() {
        return Ok((app::load_strict(path, limits, strict), path.to_path_buf()));
    }
    if !path.is_file() {
        anyhow::bail!("{} is neither a directory nor a file", path.display());
    }
    let name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} has no file name", path.display()))?;
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "meshplane-validate-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )));
    std::fs::create_dir_all(&scratch.0)?;
    std::fs::copy(path, scratch.0.join(name))?;
    let result = app::load_strict(&scratch.0, limits, strict);
    let shown = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((result, shown))
}

/// A problem with its file as the user would open it: below the path they gave.
fn shown(base: &Path, p: &Problem) -> meshplane::admin::ProblemReport {
    meshplane::admin::ProblemReport {
        file: base.join(&p.file).display().to_string(),
        line: p.line,
        path: p.path.clone(),
        message: p.message.clone(),
    }
}

/// With `strict`, fields loaded but not translated are problems rather than warnings.
pub fn run(path: &Path, limits: Limits, output: Output, strict: bool) -> anyhow::Result<ExitCode> {
    let (result, base) = load(path, limits, strict)?;
    let report = Report {
        valid: result.model.is_some(),
        path: path.display().to_string(),
        files: result.files.len(),
        problems: result.problems.iter().map(|p| shown(&base, p)).collect(),
        warnings: result.warnings.iter().map(|p| shown(&base, p)).collect(),
    };
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        if report.valid {
            println!("{}: valid ({} files)", report.path, report.files);
        } else {
            for p in &report.problems {
                println!("{p}");
            }
            println!("{}: {} problem(s)", report.path, report.problems.len());
        }
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
