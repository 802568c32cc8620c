//! What a reload would take away from the configuration being served, and whether that is most
//! of a mesh: a file read empty or half-written, or a directory caught mid-copy, looks exactly like
//! that, and publishing it sends every Envoy 404s until the next reload.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{Mesh, MeshModel};

/// Names listed per kind in the log line; the rest are counted.
const NAMES_SHOWN: usize = 5;

/// One kind of resource of one mesh that would lose more than the threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedPart {
    pub mesh: String,
    pub kind: &'static str,
    pub before: usize,
    pub removed: Vec<String>,
}

/// Everything a reload would remove beyond the threshold, per mesh and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub parts: Vec<RemovedPart>,
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            let shown: Vec<&str> = p
                .removed
                .iter()
                .take(NAMES_SHOWN)
                .map(String::as_str)
                .collect();
            write!(
                f,
                "mesh `{}`: {} of {} {} ({}",
                p.mesh,
                p.removed.len(),
                p.before,
                p.kind,
                shown.join(", ")
            )?;
            if p.removed.len() > NAMES_SHOWN {
                write!(f, ", and {} more", p.removed.len() - NAMES_SHOWN)?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// How many of one map's keys there were, and those the other map lacks (named by `show`). Both
/// maps are sorted: one merge walk, no lookups.
fn diff<K: Ord, V, W>(
    before: &BTreeMap<K, V>,
    after: Option<&BTreeMap<K, W>>,
    show: impl Fn(&K) -> String,
) -> (usize, Vec<String>) {
    let mut kept = after.into_iter().flat_map(|a| a.keys()).peekable();
    let mut removed = Vec::new();
    for k in before.keys() {
        while kept.next_if(|a| *a < k).is_some() {}
        if kept.peek() != Some(&k) {
            removed.push(show(k));
        }
    }
    (before.len(), removed)
}

/// One kind of resource in a mesh: how many `prev` has, and the names `next` lacks. Only removed
/// names are allocated: this runs on every reload of a 10,000-node mesh.
fn removed_of(prev: &Mesh, next: Option<&Mesh>, kind: &str) -> (usize, Vec<String>) {
    match kind {
        VIRTUAL_NODES => diff(&prev.virtual_nodes, next.map(|m| &m.virtual_nodes), |k| {
            k.clone()
        }),
        VIRTUAL_GATEWAYS => diff(
            &prev.virtual_gateways,
            next.map(|m| &m.virtual_gateways),
            |k| k.clone(),
        ),
        VIRTUAL_SERVICES => diff(
            &prev.virtual_services,
            next.map(|m| &m.virtual_services),
            |k| k.clone(),
        ),
        ROUTES => {
            let mut before = 0;
            let mut removed = Vec::new();
            for (r, router) in &prev.virtual_routers {
                let kept = next.and_then(|m| m.virtual_routers.get(r));
                before += router.routes.len();
                let (_, gone) = diff(&router.routes, kept.map(|k| &k.routes), |n| {
                    format!("{r}/{n}")
                });
                removed.extend(gone);
            }
            (before, removed)
        }
        _ => diff(
            &prev.gateway_routes,
            next.map(|m| &m.gateway_routes),
            |(g, n)| format!("{g}/{n}"),
        ),
    }
}

const VIRTUAL_NODES: &str = "virtual nodes";
const VIRTUAL_GATEWAYS: &str = "virtual gateways";
const VIRTUAL_SERVICES: &str = "virtual services";
const ROUTES: &str = "routes";
const GATEWAY_ROUTES: &str = "gateway routes";
const KINDS: [&str; 5] = [
    VIRTUAL_NODES,
    VIRTUAL_GATEWAYS,
    VIRTUAL_SERVICES,
    ROUTES,
    GATEWAY_ROUTES,
];

/// The parts of `prev` that `next` would remove where more than `percent` % of one kind of one
/// mesh goes at once (a removed mesh loses all of each kind); `None` when there are none. 100
/// never holds anything.
pub fn large_removal(prev: &MeshModel, next: &MeshModel, percent: u8) -> Option<Removal> {
    let mut parts = Vec::new();
    for (name, mesh) in &prev.meshes {
        let after = next.meshes.get(name);
        for kind in KINDS {
            let (before, removed) = removed_of(mesh, after, kind);
            if removed.len() * 100 > usize::from(percent) * before {
                parts.push(RemovedPart {
                    mesh: name.clone(),
                    kind,
                    before,
                    removed,
                });
            }
        }
    }
    (!parts.is_empty()).then_some(Removal { parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::loader::parse_file;
    use crate::source::LoadOutput;
    use std::path::Path;

    fn model(nodes: &[&str], routes: &[&str]) -> MeshModel {
        let mut text = String::from("kind: Mesh\nmeshName: m\n");
        for n in nodes {
            text += &format!("---\nkind: VirtualNode\nmeshName: m\nvirtualNodeName: {n}\nspec:\n  listeners: [{{portMapping: {{port: 80, protocol: http}}}}]\n  serviceDiscovery: {{dns: {{hostname: {n}}}}}\n");
        }
        text += "---\nkind: VirtualRouter\nmeshName: m\nvirtualRouterName: r\nspec: {listeners: [{portMapping: {port: 80, protocol: http}}]}\n";
        for r in routes {
            text += &format!("---\nkind: Route\nmeshName: m\nvirtualRouterName: r\nrouteName: {r}\nspec:\n  httpRoute:\n    match: {{prefix: /{r}}}\n    action: {{weightedTargets: [{{virtualNode: {}, weight: 1}}]}}\n", nodes[0]);
        }
        let mut out = LoadOutput::default();
        parse_file(Path::new("m.yaml"), &text, &mut out);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        crate::model::validate(&out.documents).expect("valid")
    }

    #[test]
    fn removing_more_than_the_threshold_of_a_kind_is_large() {
        let prev = model(&["a", "b", "c", "d"], &["x"]);
        // Half the nodes is not more than half.
        assert_eq!(large_removal(&prev, &model(&["a", "b"], &["x"]), 50), None);
        let r = large_removal(&prev, &model(&["a"], &["x"]), 50).expect("3 of 4 nodes");
        assert_eq!(r.to_string(), "mesh `m`: 3 of 4 virtual nodes (b, c, d)");
        // Renaming everything removes everything.
        let renamed = large_removal(&prev, &model(&["e", "f", "g", "h"], &["y"]), 50).unwrap();
        assert_eq!(renamed.parts.len(), 2);
        assert_eq!(renamed.parts[1].removed, vec!["r/x".to_string()]);
        // Adding is never a removal; 100 % holds nothing.
        assert_eq!(
            large_removal(&prev, &model(&["a", "b", "c", "d", "e"], &["x"]), 50),
            None
        );
        assert_eq!(large_removal(&prev, &model(&["a"], &[]), 100), None);
    }

    #[test]
    fn emptying_a_router_or_removing_a_mesh_is_large() {
        let prev = model(&["a", "b"], &["x", "y"]);
        let r = large_removal(&prev, &model(&["a", "b"], &[]), 50).unwrap();
        assert_eq!(r.to_string(), "mesh `m`: 2 of 2 routes (r/x, r/y)");
        let gone = large_removal(&prev, &MeshModel::default(), 50).unwrap();
        assert_eq!(gone.parts.len(), 2);
    }

    #[test]
    fn long_lists_are_shortened() {
        let many: Vec<String> = (0..12).map(|i| format!("n{i:02}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let r = large_removal(&model(&refs, &[]), &model(&["n00"], &[]), 50).unwrap();
        assert_eq!(
            r.to_string(),
            "mesh `m`: 11 of 12 virtual nodes (n01, n02, n03, n04, n05, and 6 more)"
        );
    }
}
