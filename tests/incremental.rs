//! An edit rebuilds only the nodes it touches, and what it publishes is exactly what a full rebuild
//! of the same files would publish.

use std::collections::BTreeMap;

use meshplane::app::Pipeline;
use synth::SynthParams;

mod support;

// The mesh generator belongs to the binary, not the library: included by path.
#[allow(dead_code)]
#[path = "../src/tools/synth.rs"]
mod synth;

fn versions(p: &Pipeline) -> BTreeMap<String, [String; 4]> {
    p.cache.versions()
}

fn full(dir: &std::path::Path) -> BTreeMap<String, [String; 4]> {
    let mut p = Pipeline::new(dir.to_path_buf());
    assert!(p.reload(None));
    versions(&p)
}

#[test]
fn incremental_reloads_match_full_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let params = SynthParams {
        services: 20,
        clients: 200,
        backends: 4,
        seed: 11,
    };
    synth::write(dir.path(), &params).unwrap();
    let mut p = Pipeline::new(dir.path().to_path_buf());
    assert!(p.reload(None));
    assert_eq!(p.status().last_rebuilt_nodes, params.nodes());

    let svc7 = dir.path().join("svc-7.yaml");
    let clients0 = dir.path().join("clients/clients-00000.yaml");
    type Edit<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let edits: Vec<Edit> = vec![
        (
            "shared route weights",
            Box::new(|| synth::edit_weights(dir.path(), 1).unwrap()),
        ),
        (
            "one service's route",
            Box::new(|| {
                let t = std::fs::read_to_string(&svc7).unwrap();
                std::fs::write(&svc7, t.replace("maxRetries: 2", "maxRetries: 3")).unwrap();
            }),
        ),
        (
            "a service version's health check",
            Box::new(|| {
                let t = std::fs::read_to_string(&svc7).unwrap();
                std::fs::write(
                    &svc7,
                    t.replacen("healthyThreshold: 2", "healthyThreshold: 4", 1),
                )
                .unwrap();
            }),
        ),
        (
            "a client's backends",
            Box::new(|| {
                let t = std::fs::read_to_string(&clients0).unwrap();
                let t = t.replacen(
                    "  backends:\n",
                    "  backends:\n    - virtualService: {virtualServiceName: svc-19.synth.local}\n",
                    1,
                );
                std::fs::write(&clients0, t).unwrap();
            }),
        ),
        (
            "a target node's listener port (its clients' clusters and hosts)",
            Box::new(|| {
                let t = std::fs::read_to_string(&svc7).unwrap();
                std::fs::write(
                    &svc7,
                    t.replacen(
                        "{port: 8080, protocol: http}",
                        "{port: 9090, protocol: http}",
                        1,
                    ),
                )
                .unwrap();
            }),
        ),
        (
            "a service's provider switched from its router to one node",
            Box::new(|| {
                let t = std::fs::read_to_string(&svc7).unwrap();
                std::fs::write(
                    &svc7,
                    t.replace(
                        "{provider: {virtualRouter: {virtualRouterName: svc-7}}}",
                        "{provider: {virtualNode: {virtualNodeName: svc-7-v2}}}",
                    ),
                )
                .unwrap();
            }),
        ),
        (
            "a new client",
            Box::new(|| {
                std::fs::write(
                    dir.path().join("extra.yaml"),
                    "kind: VirtualNode\nmeshName: synth\nvirtualNodeName: extra\nspec:\n  backends: [{virtualService: {virtualServiceName: svc-3.synth.local}}]\n",
                )
                .unwrap();
            }),
        ),
        (
            "a removed client",
            Box::new(|| std::fs::remove_file(dir.path().join("extra.yaml")).unwrap()),
        ),
    ];
    for (what, edit) in edits {
        let before = versions(&p);
        edit();
        assert!(p.reload(None), "{what}: reload rejected");
        let rebuilt = p.status().last_rebuilt_nodes;
        let after = versions(&p);
        assert_eq!(
            after,
            full(dir.path()),
            "{what}: incremental result differs from a full rebuild"
        );
        // The edit must have changed something, and only among the nodes it rebuilt.
        let changed = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .count();
        let removed = before.keys().filter(|k| !after.contains_key(*k)).count();
        println!(
            "{what}: rebuilt {rebuilt}, changed {changed}, removed {removed} of {} nodes",
            params.nodes()
        );
        assert!(
            changed + removed > 0,
            "{what}: the edit changed no node's output"
        );
        assert!(
            changed <= rebuilt,
            "{what}: {changed} nodes changed but only {rebuilt} were rebuilt"
        );
        assert!(rebuilt < params.nodes(), "{what}: rebuilt everything");
    }

    // A mesh-wide change touches every node, and every cached part must go with it.
    let mesh = dir.path().join("mesh.yaml");
    let t = std::fs::read_to_string(&mesh).unwrap();
    std::fs::write(&mesh, t.replace("DROP_ALL", "ALLOW_ALL")).unwrap();
    assert!(p.reload(None), "egress filter: reload rejected");
    assert_eq!(versions(&p), full(dir.path()), "egress filter");
    assert_eq!(p.status().last_rebuilt_nodes, params.nodes());
}

/// A mesh-wide `ipPreference` edit changes every node's listeners and the clusters that reach
/// other nodes (their DNS lookup family): an incremental reload publishes what a full one would,
/// and a node's own preference keeps its own.
#[test]
fn a_mesh_ip_preference_edit_reaches_every_node() {
    let dir = support::MeshDir::copy_of(&support::repo_path("tests/golden/observability/mesh"));
    let mut p = Pipeline::new(dir.path().to_path_buf());
    assert!(p.reload(None));
    let before = versions(&p);
    let text = dir.read("all.yaml").replace(
        "spec: {egressFilter: {type: DROP_ALL}}",
        "spec: {egressFilter: {type: DROP_ALL}, serviceDiscovery: {ipPreference: IPv6_PREFERRED}}",
    );
    dir.write("all.yaml", &text);
    assert!(p.reload(None), "{:#?}", p.status().last.problems);
    let after = versions(&p);
    assert_eq!(after, full(dir.path()));
    for node in ["mesh/obs/virtualNode/orders", "mesh/obs/virtualNode/web"] {
        assert_ne!(before[node], after[node], "{node}");
    }
    // The other mesh is untouched.
    assert_eq!(
        before["mesh/dual/virtualNode/api"],
        after["mesh/dual/virtualNode/api"]
    );
}

/// A transparent client's egress listener has a filter chain per backend port, so it is part of
/// the client's own resources yet follows its backends: an edit of a backend's port, its mode, a
/// TCP router's route or target, or the mesh's egress filter must reach it on an incremental reload
/// exactly as a full rebuild.
#[test]
fn transparent_clients_follow_their_backends_ports_and_modes() {
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/transparent/mesh");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.yaml");
    std::fs::copy(src.join("all.yaml"), &file).unwrap();
    let mut p = Pipeline::new(dir.path().to_path_buf());
    assert!(p.reload(None));
    let edit = |from: &str, to: &str| {
        let t = std::fs::read_to_string(&file).unwrap();
        assert!(t.contains(from), "{from}");
        std::fs::write(&file, t.replacen(from, to, 1)).unwrap();
    };
    let front = "mesh/store/virtualNode/front";
    for (what, from, to) in [
        (
            "a backend's second port",
            "{port: 9090, protocol: http2}",
            "{port: 9191, protocol: http2}",
        ),
        (
            "a backend's mode",
            "  proxy: {mode: explicit}",
            "  proxy: {mode: transparent}",
        ),
        (
            "a TCP router's route weights",
            "{virtualNode: cache-a, weight: 70}",
            "{virtualNode: cache-a, weight: 60}",
        ),
        (
            "a TCP target's static endpoint",
            "{address: 10.1.0.9}",
            "{address: 10.1.0.10}",
        ),
        (
            "the mesh's egress filter",
            "{type: ALLOW_ALL}",
            "{type: DROP_ALL}",
        ),
    ] {
        let before = versions(&p);
        edit(from, to);
        assert!(p.reload(None), "{what}: reload rejected");
        let after = versions(&p);
        assert_eq!(
            after,
            full(dir.path()),
            "{what}: differs from a full rebuild"
        );
        assert_ne!(before[front], after[front], "{what}: front unchanged");
    }
}
