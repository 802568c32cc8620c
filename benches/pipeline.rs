//! Benchmarks of each pipeline stage at 100, 1,000 and 10,000 virtual nodes (synthetic meshes from
//! `src/tools/synth.rs`): load + validate, the build stage from scratch (translate + encode), and
//! encoding one node's full SotW response set. Run with `cargo bench`; see PERFORMANCE.md.

use std::path::PathBuf;
use std::sync::OnceLock;

use divan::Bencher;
use synth::SynthParams;

// The mesh generator belongs to the binary, not the library: included by path.
#[allow(dead_code)]
#[path = "../src/tools/synth.rs"]
mod synth;

/// The allocator the `meshplane` binary uses, so the numbers match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

const SIZES: [usize; 3] = [100, 1_000, 10_000];

/// One generated directory per size, made once per process.
fn mesh_dir(nodes: usize) -> PathBuf {
    static DIRS: OnceLock<std::sync::Mutex<std::collections::HashMap<usize, PathBuf>>> =
        OnceLock::new();
    let dirs = DIRS.get_or_init(Default::default);
    let mut dirs = dirs.lock().unwrap();
    dirs.entry(nodes)
        .or_insert_with(|| {
            let dir = std::env::temp_dir()
                .join(format!("meshplane-bench-{nodes}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            synth::write(&dir, &SynthParams::for_nodes(nodes, 1)).unwrap();
            // Files younger than 2 s are re-read on every reload (see `source::loader`); let them
            // settle so the benchmarks time the steady state.
            std::thread::sleep(std::time::Duration::from_millis(2100));
            dir
        })
        .clone()
}

#[divan::bench(args = SIZES, sample_count = 5)]
fn load_and_validate(bencher: Bencher, nodes: usize) {
    let dir = mesh_dir(nodes);
    bencher.bench(|| meshplane::app::load(&dir));
}

/// Translating and encoding every node from scratch (no parts cached), in the build stage the
/// server runs.
#[divan::bench(args = SIZES, sample_count = 5)]
fn build_from_scratch(bencher: Bencher, nodes: usize) {
    let model = meshplane::app::load(&mesh_dir(nodes)).model.unwrap();
    let ids = all_nodes(&model);
    bencher.bench(|| {
        meshplane::build::Builder::default()
            .build(&model, &ids, &[])
            .len()
    });
}

fn all_nodes(model: &meshplane::model::MeshModel) -> Vec<meshplane::model::ProxyId> {
    let m = &model.meshes["synth"];
    m.virtual_nodes
        .keys()
        .map(|n| meshplane::model::ProxyId::virtual_node("synth", n))
        .collect()
}

#[divan::bench(args = SIZES, sample_count = 5)]
fn full_reload(bencher: Bencher, nodes: usize) {
    let dir = mesh_dir(nodes);
    bencher.bench(|| {
        let mut p = meshplane::app::Pipeline::new(dir.clone());
        p.reload(None)
    });
}

#[divan::bench(args = SIZES, sample_count = 20)]
fn encode_node_responses(bencher: Bencher, nodes: usize) {
    let mut p = meshplane::app::Pipeline::new(mesh_dir(nodes));
    p.reload(None);
    let snap = p.cache.get("mesh/synth/virtualNode/client-0").unwrap();
    bencher.bench(|| {
        let mut st = meshplane::xds::sotw::SotwState::new();
        let mut bytes = 0;
        for t in meshplane::xds::TYPE_ORDER {
            st.on_request(
                &envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest {
                    type_url: t.into(),
                    resource_names: snap.types[meshplane::xds::type_index(t).unwrap()]
                        .resources
                        .keys()
                        .cloned()
                        .collect(),
                    ..Default::default()
                },
            );
        }
        for r in st.responses(Some(&snap), &meshplane::xds::group::Peers::default()) {
            let e = r.encode();
            bytes += e.head.len() + e.body.len();
        }
        bytes
    });
}

/// The one-route edit path: a reload after `svc-0`'s route changed (a service every client calls,
/// so every client's route table is rebuilt).
#[divan::bench(args = SIZES, sample_count = 5)]
fn edit_shared_route(bencher: Bencher, nodes: usize) {
    let dir = mesh_dir(nodes);
    let mut p = meshplane::app::Pipeline::new(dir.clone());
    p.reload(None);
    let mut step = 0;
    bencher.bench_local(|| {
        step += 1;
        synth::edit_weights(&dir, step).unwrap();
        p.reload(None)
    });
}

/// A one-route edit of an ordinary service (called by a few clients).
#[divan::bench(args = SIZES, sample_count = 5)]
fn edit_one_service_route(bencher: Bencher, nodes: usize) {
    let dir = mesh_dir(nodes);
    let mut p = meshplane::app::Pipeline::new(dir.clone());
    p.reload(None);
    let file = dir.join("svc-1.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let mut step = 0;
    bencher.bench_local(|| {
        step += 1;
        let retries = if step % 2 == 0 {
            "maxRetries: 2"
        } else {
            "maxRetries: 3"
        };
        std::fs::write(&file, original.replace("maxRetries: 2", retries)).unwrap();
        p.reload(None)
    });
}

/// Reading and parsing only (no validation), for the cost split of `load_and_validate`.
#[divan::bench(args = SIZES, sample_count = 5)]
fn parse_only(bencher: Bencher, nodes: usize) {
    let dir = mesh_dir(nodes);
    bencher.bench(|| meshplane::source::load_dir(&dir));
}

/// Validation only, on parsed documents.
#[divan::bench(args = SIZES, sample_count = 5)]
fn validate_only(bencher: Bencher, nodes: usize) {
    let docs = meshplane::source::load_dir(&mesh_dir(nodes)).documents;
    bencher.bench(|| meshplane::model::validate(&docs).is_ok());
}
