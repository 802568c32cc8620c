//! TCP egress placements and tcpRoute rules: collisions are reported at the field to change with
//! the fix to make, `tcpEgress` resolves them, and a change to a backend's router is seen even
//! when the client's own document is unchanged (the check cache does not follow providers).

use std::path::Path;
use std::sync::Arc;

use crate::change::{ChangeSet, Identities};
use crate::model::validate::{validate, validate_with, CheckCache};
use crate::source::loader::parse_file;
use crate::source::{Document, LoadOutput};

fn docs(files: &[(&str, &str)]) -> Vec<Arc<Document>> {
    let mut out = LoadOutput::default();
    for (name, text) in files {
        parse_file(Path::new(name), text, &mut out);
    }
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    out.documents
}

fn problems(files: &[(&str, &str)]) -> Vec<String> {
    match validate(&docs(files)) {
        Ok(_) => Vec::new(),
        Err(ps) => ps.iter().map(|p| p.to_string()).collect(),
    }
}

/// A mesh with TCP services `pg` (a node on 5432), `replica` (a router on `router_port`) and HTTP
/// service `web`; the client calls them with `proxy` as its proxy section.
fn mesh(router_port: &str, proxy: &str) -> String {
    format!(
        r#"kind: Mesh
meshName: m
---
kind: VirtualNode
meshName: m
virtualNodeName: client
spec:
  listeners: [{{portMapping: {{port: 8080, protocol: http}}}}]
  serviceDiscovery: {{dns: {{hostname: client}}}}
  backends:
    - virtualService: {{virtualServiceName: pg}}
    - virtualService: {{virtualServiceName: replica}}
    - virtualService: {{virtualServiceName: web}}
  proxy: {proxy}
---
kind: VirtualNode
meshName: m
virtualNodeName: db
spec:
  listeners: [{{portMapping: {{port: 5432, protocol: tcp}}}}, {{portMapping: {{port: 80, protocol: http}}}}]
  serviceDiscovery: {{dns: {{hostname: db}}}}
---
kind: VirtualService
meshName: m
virtualServiceName: pg
spec: {{provider: {{virtualNode: {{virtualNodeName: db}}}}}}
---
kind: VirtualService
meshName: m
virtualServiceName: web
spec: {{provider: {{virtualNode: {{virtualNodeName: client}}}}}}
---
kind: VirtualService
meshName: m
virtualServiceName: replica
spec: {{provider: {{virtualRouter: {{virtualRouterName: r}}}}}}
---
kind: VirtualRouter
meshName: m
virtualRouterName: r
spec:
  listeners: [{{portMapping: {router_port}}}]
---
kind: Route
meshName: m
virtualRouterName: r
routeName: all
spec:
  tcpRoute:
    action: {{weightedTargets: [{{virtualNode: db, weight: 1, port: 5432}}]}}
"#
    )
}

#[test]
fn a_transparent_node_cannot_tell_two_tcp_backends_on_one_port_apart() {
    let text = mesh("{port: 5432, protocol: tcp}", "{mode: transparent}");
    assert_eq!(
        problems(&[("m.yaml", &text)]),
        ["m.yaml:12: spec.backends[1].virtualService.virtualServiceName: TCP backend `replica` (port 5432) cannot be told apart from TCP backend `pg` (port 5432): this node's sidecar is transparent and picks a TCP destination by its port alone; give one of the services another port"]
    );
    // Its own ports do not matter: the app dials the backend's address, not a local port.
    let text = mesh("{port: 8080, protocol: tcp}", "{mode: transparent}");
    assert_eq!(problems(&[("m.yaml", &text)]), Vec::<String>::new());
}

#[test]
fn two_tcp_backends_on_one_port_ask_for_a_tcp_egress_entry() {
    let text = mesh("{port: 5432, protocol: tcp}", "{}");
    assert_eq!(
        problems(&[("m.yaml", &text)]),
        ["m.yaml:12: spec.backends[1].virtualService.virtualServiceName: TCP backend `replica` (port 5432) would be reached at 127.0.0.1:5432, already taken by TCP backend `pg` (port 5432): give it a port of its own in `spec.proxy.tcpEgress` (`replica: <port>`)"]
    );
    let text = mesh(
        "{port: 5432, protocol: tcp}",
        "{tcpEgress: {replica: 15432}}",
    );
    assert_eq!(problems(&[("m.yaml", &text)]), Vec::<String>::new());
}

#[test]
fn a_tcp_backend_on_one_of_the_nodes_own_ports_is_a_collision() {
    for (port, by) in [
        ("8080", "the app's own port of spec.listeners[0]"),
        ("15000", "the ingress port of spec.listeners[0]"),
        ("15001", "the node's egress port"),
    ] {
        let text = mesh(&format!("{{port: {port}, protocol: tcp}}"), "{}");
        let errs = problems(&[("m.yaml", &text)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("m.yaml:12: spec.backends[1].virtualService.virtualServiceName: TCP backend `replica`")
                && errs[0].contains(&format!("127.0.0.1:{port}, already taken by {by}")),
            "{errs:?}"
        );
    }
    // A tcpEgress entry on a taken port is reported where it is written.
    let text = mesh(
        "{port: 6000, protocol: tcp}",
        "{tcpEgress: {replica: 15001}}",
    );
    assert_eq!(
        problems(&[("m.yaml", &text)]),
        ["m.yaml:14: spec.proxy.tcpEgress.replica: 127.0.0.1:15001 is already taken by the node's egress port: choose another port"]
    );
}

#[test]
fn tcp_egress_entries_name_tcp_backends_of_the_node() {
    let text = mesh(
        "{port: 6000, protocol: tcp}",
        "\n    tcpEgress:\n      web: 9000\n      ghost: 9001\n      pg: 0",
    );
    assert_eq!(
        problems(&[("m.yaml", &text)]),
        [
            "m.yaml:16: spec.proxy.tcpEgress.web: `web` has no tcp listener: HTTP, HTTP/2 and gRPC backends are reached through the egress port",
            "m.yaml:17: spec.proxy.tcpEgress.ghost: `ghost` is not a backend of this virtual node",
            "m.yaml:18: spec.proxy.tcpEgress.pg: 0 is out of range: must be 1 to 65535",
        ]
    );
}

#[test]
fn a_routers_change_is_seen_by_its_clients_cached_checks() {
    // The client's file never changes; the router's listener moves onto pg's port.
    let text = mesh("{port: 6000, protocol: tcp}", "{}");
    let (nodes, router) = text.split_at(text.find("kind: VirtualRouter").unwrap());
    let step1 = docs(&[("nodes.yaml", nodes), ("router.yaml", router)]);
    let changes = ChangeSet::between(&Identities::default(), Identities::of(&step1));
    let (first, cache) = validate_with(&step1, &CheckCache::default(), &changes);
    assert!(first.is_ok(), "{first:?}");
    let moved = router.replace("port: 6000", "port: 5432");
    let mut step2: Vec<Arc<Document>> = step1
        .iter()
        .filter(|d| &*d.file == Path::new("nodes.yaml"))
        .cloned()
        .collect();
    step2.extend(docs(&[("router.yaml", &moved)]));
    let changes = ChangeSet::between(&changes.current, Identities::of(&step2));
    let (second, _) = validate_with(&step2, &cache, &changes);
    let errs: Vec<String> = second.unwrap_err().iter().map(|p| p.to_string()).collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("nodes.yaml:12: spec.backends[1]"),
        "{errs:?}"
    );
}

#[test]
fn a_tcp_route_needs_a_tcp_listener_on_both_ends() {
    // On an http router listener, and to an http listener of its target.
    let text = mesh("{port: 6000, protocol: http}", "{}")
        .replace("weight: 1, port: 5432", "weight: 1, port: 80");
    assert_eq!(
        problems(&[("m.yaml", &text)]),
        [
            "m.yaml:49: spec.tcpRoute: a tcpRoute needs a tcp router listener; port 6000 is http",
            "m.yaml:50: spec.tcpRoute.action.weightedTargets[0]: a tcp route can only target a tcp listener; port 80 of `db` is http",
        ]
    );
    // `match.port` names a listener of the router, and is required when it has several.
    let text = mesh("{port: 6000, protocol: tcp}", "{}")
        .replace("  tcpRoute:\n", "  tcpRoute:\n    match: {port: 7000}\n");
    assert_eq!(
        problems(&[("m.yaml", &text)]),
        ["m.yaml:50: spec.tcpRoute.match.port: port 7000 is not a listener of the virtual router (listeners: [6000])"]
    );
    let text = mesh(
        "{port: 6000, protocol: tcp}}, {portMapping: {port: 6001, protocol: tcp}",
        "{}",
    );
    assert_eq!(
        problems(&[("m.yaml", &text)]),
        ["m.yaml:49: spec.tcpRoute.match.port: required: the virtual router has several listeners"]
    );
}
