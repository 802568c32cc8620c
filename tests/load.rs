//! A small load in CI so the load tool keeps working: a few hundred simulated sidecars, SotW and
//! delta, converge on a synthetic mesh and every one of them receives two route edits. Timings are
//! printed, never asserted (machines here are shared and noisy); see PERFORMANCE.md for the figures.

// The load tool and mesh generator belong to the binary, not the library: included by path.
#[path = "../src/tools/loadgen/mod.rs"]
mod loadgen;
mod support;
#[allow(dead_code)]
#[path = "../src/tools/synth.rs"]
mod synth;

use loadgen::{run, LoadMode, LoadOptions};
use synth::SynthParams;

async fn small_load(mode: LoadMode) {
    let dir = tempfile::tempdir().unwrap();
    synth::write(
        dir.path(),
        &SynthParams {
            services: 30,
            clients: 300,
            backends: 5,
            seed: 5,
        },
    )
    .unwrap();
    let server = support::start(dir.path()).await;
    let report = run(LoadOptions {
        xds: server.xds_addr.to_string(),
        clients: 300,
        node_id: "mesh/synth/virtualNode/client-{i}".into(),
        nodes: Some(300),
        mode,
        connect_rate: 2000,
        connections: 0,
        edit_dir: Some(dir.path().to_path_buf()),
        edit_cmd: None,
        edits: 2,
        server_pid: Some(std::process::id()),
        timeout: 60,
        output: "table".into(),
        json: false,
    })
    .await
    .expect("load run");
    assert_eq!(report.converged, 300, "every simulated sidecar converged");
    assert_eq!(report.edits.len(), 2);
    for e in &report.edits {
        assert_eq!(e.clients, 300, "every sidecar received and ACKed each edit");
    }
    assert_eq!(report.nacks, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_sotw_sidecars_converge_and_take_edits() {
    small_load(LoadMode::Sotw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_delta_sidecars_converge_and_take_edits() {
    small_load(LoadMode::Delta).await;
}
