//! `meshplane diff DIR`: builds what DIR would serve and compares it with what the running server
//! serves (or with another directory), before anything is saved or pushed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::admin_client::{admin_get, admin_json, Admin, Output};
use meshplane::admin::NodeEntry;
use meshplane::app::Pipeline;
use meshplane::diff::{self, Diff};
use meshplane::inspect::{node_view, NodeView};

/// What a directory serves: every node's versions, and a way to summarise the nodes asked for.
struct Built {
    pipeline: Pipeline,
}

impl Built {
    /// Loads `dir` the way `serve` would; `Err` with every problem when it is not valid.
    fn load(dir: &Path) -> anyhow::Result<Result<Built, Vec<String>>> {
        if !dir.is_dir() {
            anyhow::bail!("{} is not a directory", dir.display());
        }
        let mut pipeline = Pipeline::new(dir.to_path_buf());
        if !pipeline.reload(None) {
            let problems = pipeline
                .status()
                .last
                .problems
                .iter()
                .map(|p| p.to_string())
                .collect();
            return Ok(Err(problems));
        }
        Ok(Ok(Built { pipeline }))
    }

    fn versions(&self) -> BTreeMap<String, [String; 4]> {
        self.pipeline.cache.versions()
    }

    fn view(&self, node: &str) -> Option<NodeView> {
        self.pipeline.cache.get(node).map(|s| node_view(node, &s))
    }
}

/// Views of the nodes whose versions differ between `before` and `after` (all four types equal
/// means the same bytes: versions are content hashes).
fn differing(
    before: &BTreeMap<String, [String; 4]>,
    after: &BTreeMap<String, [String; 4]>,
) -> (Vec<String>, usize) {
    let mut ids: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
    ids.sort();
    ids.dedup();
    let total = ids.len();
    ids.retain(|id| before.get(id) != after.get(id));
    let same = total - ids.len();
    (ids, same)
}

pub fn run(
    dir: &Path,
    against: Option<&Path>,
    admin: &Admin,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let new = match Built::load(dir)? {
        Ok(b) => b,
        Err(problems) => {
            eprintln!("{} is not valid; nothing would change:", dir.display());
            for p in problems {
                eprintln!("  {p}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    let after_versions = new.versions();
    let mut before: BTreeMap<String, NodeView> = BTreeMap::new();
    let mut after: BTreeMap<String, NodeView> = BTreeMap::new();
    let unchanged = match against {
        Some(other) => {
            let old = Built::load(other)?.map_err(|p| {
                anyhow::anyhow!("{} is not valid:\n  {}", other.display(), p.join("\n  "))
            })?;
            let (ids, same) = differing(&old.versions(), &after_versions);
            for id in ids {
                before.extend(old.view(&id).map(|v| (id.clone(), v)));
                after.extend(new.view(&id).map(|v| (id.clone(), v)));
            }
            same
        }
        None => {
            let served: Vec<NodeEntry> = admin_json(admin, "/nodes")?;
            let served: BTreeMap<String, [String; 4]> = served
                .into_iter()
                .map(|n| (n.node_id, n.versions))
                .collect();
            let (ids, same) = differing(&served, &after_versions);
            for id in ids {
                if served.contains_key(&id) {
                    before.insert(id.clone(), served_view(admin, &id)?);
                }
                after.extend(new.view(&id).map(|v| (id.clone(), v)));
            }
            same
        }
    };
    let mut d: Diff = diff::diff(&before, &after);
    d.unchanged_nodes += unchanged;
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", diff::render(&d));
    }
    Ok(if d.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn served_view(admin: &Admin, node: &str) -> anyhow::Result<NodeView> {
    let (code, body) = admin_get(admin, &format!("/resources?node={node}"))?;
    if code != 200 {
        anyhow::bail!("/resources?node={node}: HTTP {code}: {}", body.trim());
    }
    serde_json::from_str(&body)
        .with_context(|| format!("/resources?node={node}: unexpected answer"))
}
