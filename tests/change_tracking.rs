//! Property test of change tracking: on a generated mesh, random edits of every kind of reference
//! (a route's weights and targets, a service's provider, a node's backends, a target node, the
//! mesh, a client's TLS client policy) are reloaded incrementally (one service is TCP: a tcpRoute, tcp
//! listeners, and its clients' TCP egress listeners), and after each one
//! - what the long-lived pipeline serves equals what a fresh pipeline builds from the same files, and
//! - the nodes whose snapshots changed are exactly those that depend on the edited entity (every
//!   edit here is one each dependent sees in its configuration).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use meshplane::app::Pipeline;
use meshplane::change::{entity_key, node_dependencies};
use meshplane::model::{MeshModel, ProxyId};
use meshplane::spec::Kind;

const SERVICES: usize = 6;
const CLIENTS: usize = 10;
const EDITS: usize = 60;

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[derive(Clone)]
struct Service {
    /// Provided by its router (else by its first node).
    routed: bool,
    weights: [u32; 3],
    /// Whether the third version is a route target.
    third: bool,
    /// Per version: the app's port, and whether it has a health check.
    ports: [u16; 3],
    checked: [bool; 3],
    /// A TCP service: tcp listeners, a tcp router listener on 7000 and a tcpRoute.
    tcp: bool,
}

struct Mesh {
    allow_all: bool,
    services: Vec<Service>,
    /// Per client, the services it calls.
    backends: Vec<BTreeSet<usize>>,
    /// Per client, whether it calls them with TLS (a `backendDefaults` client policy).
    tls: Vec<bool>,
}

impl Mesh {
    fn new() -> Mesh {
        let services = (0..SERVICES)
            .map(|i| Service {
                routed: i % 3 != 2,
                weights: [90, 10, 5],
                third: false,
                ports: [8080, 8081, 8082],
                checked: [true, false, false],
                tcp: i == SERVICES - 1,
            })
            .collect();
        let backends = (0..CLIENTS)
            .map(|j| [j % SERVICES, (j * 7 + 1) % SERVICES].into_iter().collect())
            .collect();
        Mesh {
            allow_all: false,
            services,
            backends,
            tls: (0..CLIENTS).map(|j| j % 2 == 0).collect(),
        }
    }

    fn files(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let filter = if self.allow_all {
            "ALLOW_ALL"
        } else {
            "DROP_ALL"
        };
        out.insert(
            "mesh.yaml".into(),
            format!("kind: Mesh\nmeshName: m\nspec:\n  egressFilter: {{type: {filter}}}\n"),
        );
        for (i, s) in self.services.iter().enumerate() {
            out.insert(format!("svc{i}.yaml"), service_file(i, s));
        }
        for (j, b) in self.backends.iter().enumerate() {
            let mut text = format!(
                "kind: VirtualNode\nmeshName: m\nvirtualNodeName: client{j}\nspec:\n  listeners:\n    - portMapping: {{port: 9000, protocol: http}}\n  serviceDiscovery:\n    static:\n      endpoints: [{{address: 127.0.0.1}}]\n"
            );
            if self.tls[j] {
                text.push_str("  backendDefaults: {clientPolicy: {tls: {validation: {trust: {file: {certificateChain: /ca.pem}}}}}}\n");
            }
            if !b.is_empty() {
                text.push_str("  backends:\n");
                for k in b {
                    text.push_str(&format!(
                        "    - virtualService: {{virtualServiceName: svc{k}.local}}\n"
                    ));
                }
            }
            out.insert(format!("client{j}.yaml"), text);
        }
        out
    }
}

fn service_file(i: usize, s: &Service) -> String {
    let mut docs = Vec::new();
    let proto = if s.tcp { "tcp" } else { "http" };
    for v in 0..3 {
        let mut node = format!(
            "kind: VirtualNode\nmeshName: m\nvirtualNodeName: svc{i}-v{v}\nspec:\n  listeners:\n    - portMapping: {{port: {}, protocol: {proto}}}\n",
            s.ports[v]
        );
        if s.checked[v] && s.tcp {
            node.push_str("      healthCheck: {protocol: tcp, healthyThreshold: 2, unhealthyThreshold: 3, intervalMillis: 5000, timeoutMillis: 2000}\n");
        } else if s.checked[v] {
            node.push_str("      healthCheck: {protocol: http, path: /health, healthyThreshold: 2, unhealthyThreshold: 3, intervalMillis: 5000, timeoutMillis: 2000}\n");
        }
        node.push_str(
            "  serviceDiscovery:\n    static:\n      endpoints: [{address: 127.0.0.1}]\n",
        );
        docs.push(node);
    }
    let router_port = if s.tcp { 7000 } else { 80 };
    docs.push(format!(
        "kind: VirtualRouter\nmeshName: m\nvirtualRouterName: r{i}\nspec:\n  listeners:\n    - portMapping: {{port: {router_port}, protocol: {proto}}}\n"
    ));
    let mut targets = format!(
        "          - {{virtualNode: svc{i}-v0, weight: {}}}\n          - {{virtualNode: svc{i}-v1, weight: {}}}\n",
        s.weights[0], s.weights[1]
    );
    if s.third {
        targets.push_str(&format!(
            "          - {{virtualNode: svc{i}-v2, weight: {}}}\n",
            s.weights[2]
        ));
    }
    let route = if s.tcp {
        "tcpRoute:\n"
    } else {
        "httpRoute:\n    match: {prefix: /}\n"
    };
    docs.push(format!(
        "kind: Route\nmeshName: m\nvirtualRouterName: r{i}\nrouteName: main\nspec:\n  {route}    action:\n      weightedTargets:\n{targets}"
    ));
    let provider = if s.routed {
        format!("virtualRouter: {{virtualRouterName: r{i}}}")
    } else {
        format!("virtualNode: {{virtualNodeName: svc{i}-v0}}")
    };
    docs.push(format!(
        "kind: VirtualService\nmeshName: m\nvirtualServiceName: svc{i}.local\nspec:\n  provider:\n    {provider}\n"
    ));
    docs.join("---\n")
}

/// Makes one random edit; returns what it did and the entity it changed.
fn edit(mesh: &mut Mesh, rng: &mut Rng) -> (String, u64) {
    let i = rng.below(SERVICES);
    let key = |kind, name: &str| entity_key(kind, "m", name);
    match rng.below(7) {
        0 => {
            let s = &mut mesh.services[i];
            s.weights[0] = 1 + (s.weights[0] + 7) % 99;
            (
                format!("weights of r{i}"),
                key(Kind::VirtualRouter, &format!("r{i}")),
            )
        }
        1 => {
            let s = &mut mesh.services[i];
            s.third = !s.third;
            (
                format!("third target of r{i}"),
                key(Kind::VirtualRouter, &format!("r{i}")),
            )
        }
        2 => {
            let s = &mut mesh.services[i];
            s.routed = !s.routed;
            let vs = format!("svc{i}.local");
            (format!("provider of {vs}"), key(Kind::VirtualService, &vs))
        }
        3 => {
            let j = rng.below(CLIENTS);
            let b = &mut mesh.backends[j];
            if !b.remove(&i) {
                b.insert(i);
            }
            let node = format!("client{j}");
            (
                format!("backend svc{i} of {node}"),
                key(Kind::VirtualNode, &node),
            )
        }
        4 => {
            let v = rng.below(3);
            let s = &mut mesh.services[i];
            s.ports[v] += 1;
            s.checked[v] = !s.checked[v];
            let node = format!("svc{i}-v{v}");
            (format!("listener of {node}"), key(Kind::VirtualNode, &node))
        }
        5 => {
            let j = rng.below(CLIENTS);
            mesh.tls[j] = !mesh.tls[j];
            let node = format!("client{j}");
            (
                format!("client TLS of {node}"),
                key(Kind::VirtualNode, &node),
            )
        }
        _ => {
            mesh.allow_all = !mesh.allow_all;
            ("egress filter".into(), key(Kind::Mesh, "m"))
        }
    }
}

/// Writes the files whose content differs from what is on disk.
fn write(dir: &Path, mesh: &Mesh) {
    for (name, text) in mesh.files() {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(path, text).unwrap();
        }
    }
}

/// The nodes whose snapshot depends on `entity`, per the model.
fn dependents(model: &MeshModel, entity: u64) -> BTreeSet<String> {
    let mesh = &model.meshes["m"];
    mesh.virtual_nodes
        .keys()
        .map(|n| ProxyId::virtual_node("m", n))
        .filter(|id| node_dependencies(mesh, id).contains(&entity))
        .map(|id| id.to_string())
        .collect()
}

fn fresh_versions(dir: &Path) -> BTreeMap<String, [String; 4]> {
    let mut p = Pipeline::new(dir.to_path_buf());
    assert!(p.reload(None));
    p.cache.versions()
}

#[test]
fn incremental_reloads_equal_full_rebuilds_and_change_exactly_the_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let mut mesh = Mesh::new();
    write(dir.path(), &mesh);
    let mut p = Pipeline::new(dir.path().to_path_buf());
    assert!(p.reload(None), "{:#?}", p.status().last.problems);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut kinds = BTreeSet::new();
    for step in 0..EDITS {
        let before_model = p.status().serving.clone().expect("serving");
        let before = p.cache.versions();
        let (what, entity) = edit(&mut mesh, &mut rng);
        kinds.insert(what.split(' ').next().unwrap_or_default().to_string());
        write(dir.path(), &mesh);
        assert!(
            p.reload(None),
            "step {step} ({what}): {:#?}",
            p.status().last.problems
        );
        let after = p.cache.versions();
        assert_eq!(
            after,
            fresh_versions(dir.path()),
            "step {step} ({what}): incremental differs from a full rebuild"
        );
        let after_model = p.status().serving.clone().expect("serving");
        let expected: BTreeSet<String> = dependents(&before_model, entity)
            .into_iter()
            .chain(dependents(&after_model, entity))
            .collect();
        let changed: BTreeSet<String> = after
            .iter()
            .filter(|(n, v)| before.get(*n) != Some(*v))
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(changed, expected, "step {step} ({what}): changed nodes");
        assert!(
            p.status().last_rebuilt_nodes >= changed.len(),
            "step {step} ({what})"
        );
    }
    assert_eq!(kinds.len(), 7, "every kind of edit was made: {kinds:?}");
}
