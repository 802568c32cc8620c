//! What saving a directory would change: per node and resource type, the resources added, changed and
//! removed, with route weight and match changes spelled out. Pure: it compares two sets of
//! [`NodeView`]s (what is served now, what the directory would serve), wherever they came from.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::inspect::{NodeView, RouteConfigView, RouteView};

const TYPES: [&str; 4] = ["CDS", "EDS", "LDS", "RDS"];

/// One resource that differs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ResourceChange {
    /// `CDS`, `EDS`, `LDS` or `RDS`.
    pub r#type: &'static str,
    pub name: String,
    /// `added`, `changed` or `removed`.
    pub change: &'static str,
    /// What changed inside it, where the summary can say (route weights, matches, endpoints...).
    pub details: Vec<String>,
}

/// One node that differs: added, removed, or with changed resources.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeChange {
    pub node_id: String,
    /// `added`, `changed` or `removed`.
    pub change: &'static str,
    pub resources: Vec<ResourceChange>,
}

/// Every difference between what is served and what would be.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Diff {
    pub nodes: Vec<NodeChange>,
    pub unchanged_nodes: usize,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Compares `before` (served now) with `after` (what the directory would serve), by node id.
pub fn diff(before: &BTreeMap<String, NodeView>, after: &BTreeMap<String, NodeView>) -> Diff {
    let mut out = Diff::default();
    let empty = NodeView::empty();
    let ids: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for id in ids {
        let (change, old, new) = match (before.get(id), after.get(id)) {
            (None, Some(new)) => ("added", &empty, new),
            (Some(old), None) => ("removed", old, &empty),
            (Some(old), Some(new)) => ("changed", old, new),
            (None, None) => continue,
        };
        let resources = node_changes(old, new);
        if resources.is_empty() {
            out.unchanged_nodes += 1;
            continue;
        }
        out.nodes.push(NodeChange {
            node_id: id.clone(),
            change,
            resources,
        });
    }
    out
}

fn node_changes(old: &NodeView, new: &NodeView) -> Vec<ResourceChange> {
    let mut out = Vec::new();
    for (t, ty) in TYPES.iter().enumerate() {
        let (a, b) = (&old.resource_versions[t], &new.resource_versions[t]);
        let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for name in names {
            let change = match (a.get(name), b.get(name)) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(x), Some(y)) if x != y => "changed",
                _ => continue,
            };
            let details = if change == "changed" {
                details(t, name, old, new)
            } else {
                Vec::new()
            };
            out.push(ResourceChange {
                r#type: ty,
                name: name.clone(),
                change,
                details,
            });
        }
    }
    out
}

/// What changed inside resource `name` of type `t`, as far as the summaries tell.
fn details(t: usize, name: &str, old: &NodeView, new: &NodeView) -> Vec<String> {
    let json = |v: Option<serde_json::Value>| v.unwrap_or(serde_json::Value::Null);
    let pick = |view: &NodeView| -> serde_json::Value {
        match t {
            0 => json(
                view.clusters
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(to_json),
            ),
            1 => json(
                view.endpoints
                    .iter()
                    .find(|c| c.cluster == name)
                    .and_then(to_json),
            ),
            2 => json(
                view.listeners
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(to_json),
            ),
            _ => serde_json::Value::Null,
        }
    };
    if t == 3 {
        let find = |v: &NodeView| v.routes.iter().find(|r| r.name == name).cloned();
        return match (find(old), find(new)) {
            (Some(a), Some(b)) => route_table_changes(&a, &b),
            _ => Vec::new(),
        };
    }
    let (a, b) = (pick(old), pick(new));
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (field, av) in a {
            let bv = b.get(field).unwrap_or(&serde_json::Value::Null);
            if av != bv {
                out.push(format!("{field}: {av} → {bv}"));
            }
        }
    }
    if out.is_empty() {
        out.push("settings not shown in the summary changed".into());
    }
    out
}

fn to_json<T: Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

/// Virtual hosts and routes added or removed, and for each route kept, its match, timeout, retry
/// policy and weighted clusters.
fn route_table_changes(old: &RouteConfigView, new: &RouteConfigView) -> Vec<String> {
    let mut out = Vec::new();
    for vh in &old.virtual_hosts {
        if !new.virtual_hosts.iter().any(|n| n.name == vh.name) {
            out.push(format!("virtual host {} removed", vh.name));
        }
    }
    for vh in &new.virtual_hosts {
        let Some(before) = old.virtual_hosts.iter().find(|o| o.name == vh.name) else {
            out.push(format!(
                "virtual host {} added ({})",
                vh.name,
                vh.domains.join(", ")
            ));
            continue;
        };
        for r in &before.routes {
            if !vh.routes.iter().any(|n| n.name == r.name) {
                out.push(format!("{}: route {} removed", vh.name, r.name));
            }
        }
        for r in &vh.routes {
            match before.routes.iter().find(|o| o.name == r.name) {
                None => out.push(format!(
                    "{}: route {} added: {}",
                    vh.name,
                    r.name,
                    weights(r)
                )),
                Some(o) => out.extend(
                    route_changes(o, r)
                        .into_iter()
                        .map(|c| format!("{}: route {}: {c}", vh.name, r.name)),
                ),
            }
        }
    }
    if out.is_empty() {
        out.push("settings not shown in the summary changed".into());
    }
    out
}

fn weights(r: &RouteView) -> String {
    r.clusters
        .iter()
        .map(|(c, w)| format!("{c} {w}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn route_changes(old: &RouteView, new: &RouteView) -> Vec<String> {
    let mut out = Vec::new();
    if old.r#match != new.r#match {
        out.push(format!("match {} → {}", old.r#match, new.r#match));
    }
    for (cluster, w) in &new.clusters {
        match old.clusters.iter().find(|(c, _)| c == cluster) {
            Some((_, was)) if was != w => out.push(format!("{cluster} weight {was} → {w}")),
            Some(_) => {}
            None => out.push(format!("{cluster} added with weight {w}")),
        }
    }
    for (cluster, w) in &old.clusters {
        if !new.clusters.iter().any(|(c, _)| c == cluster) {
            out.push(format!("{cluster} (weight {w}) removed"));
        }
    }
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    if old.timeout != new.timeout {
        out.push(format!(
            "timeout {} → {}",
            opt(&old.timeout),
            opt(&new.timeout)
        ));
    }
    if old.retry != new.retry {
        out.push(format!("retries {} → {}", opt(&old.retry), opt(&new.retry)));
    }
    out
}

/// The diff as text, one node per block; the last line counts what is unchanged.
pub fn render(d: &Diff) -> String {
    let mut s = String::new();
    for n in &d.nodes {
        s.push_str(&format!("{} ({})\n", n.node_id, n.change));
        for r in &n.resources {
            s.push_str(&format!("  {} {} {}\n", r.r#type, r.change, r.name));
            for line in &r.details {
                s.push_str(&format!("      {line}\n"));
            }
        }
    }
    let changed = d.nodes.len();
    s.push_str(&format!(
        "{changed} node{} would change, {} unchanged\n",
        if changed == 1 { "" } else { "s" },
        d.unchanged_nodes
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(routes: Vec<(&str, u32)>, version: &str) -> NodeView {
        let mut v = NodeView::empty();
        v.node_id = "mesh/m/virtualNode/a".into();
        v.routes = vec![RouteConfigView {
            name: "rds".into(),
            virtual_hosts: vec![crate::inspect::VirtualHostView {
                name: "svc".into(),
                domains: vec!["svc.local".into()],
                routes: vec![RouteView {
                    name: "canary".into(),
                    r#match: "prefix /".into(),
                    clusters: routes
                        .into_iter()
                        .map(|(c, w)| (c.to_string(), w))
                        .collect(),
                    timeout: None,
                    retry: None,
                }],
            }],
        }];
        v.resource_versions[3].insert("rds".into(), version.into());
        v
    }

    #[test]
    fn weight_changes_are_spelled_out() {
        let before = BTreeMap::from([("a".to_string(), view(vec![("v1", 90), ("v2", 10)], "1"))]);
        let after = BTreeMap::from([("a".to_string(), view(vec![("v1", 50), ("v2", 50)], "2"))]);
        let d = diff(&before, &after);
        let text = render(&d);
        assert!(text.contains("RDS changed rds"), "{text}");
        assert!(
            text.contains("svc: route canary: v1 weight 90 → 50"),
            "{text}"
        );
        assert!(
            text.contains("svc: route canary: v2 weight 10 → 50"),
            "{text}"
        );
        assert!(
            text.ends_with("1 node would change, 0 unchanged\n"),
            "{text}"
        );
    }

    #[test]
    fn same_versions_are_no_change_and_new_nodes_are_added() {
        let a = view(vec![("v1", 100)], "1");
        let before = BTreeMap::from([("a".to_string(), a.clone())]);
        assert!(diff(&before, &before).is_empty());
        let after = BTreeMap::from([("a".to_string(), a.clone()), ("b".to_string(), a)]);
        let d = diff(&before, &after);
        assert_eq!(d.nodes.len(), 1);
        assert_eq!(
            (d.nodes[0].node_id.as_str(), d.nodes[0].change),
            ("b", "added")
        );
        assert_eq!(d.unchanged_nodes, 1);
    }
}
