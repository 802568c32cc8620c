//! The two demos of the example mesh: `meshplane demo` run for real (meshplane, three Envoy sidecars
//! and a gateway Envoy, example services, traffic in through the gateway, a live weight edit, Ctrl-C), and `docker-compose.yml` checked against the
//! example mesh (and by `docker-compose config` where installed; CI installs it). `script` runs
//! `scripts/demo.sh` itself, in this binary so that it shares the lock on the demo's fixed ports.

#[path = "demo/script.rs"]
mod script;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;

/// Share of `backend-v2` in a report line like `... backend-v1  90% (36)  backend-v2  10% (4)`.
fn v2_share(line: &str) -> Option<f64> {
    let after = line.split("backend-v2").nth(1)?;
    after.split('%').next()?.trim().parse().ok()
}

/// The demos listen on the example mesh's fixed ports: one at a time.
static DEMO: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `meshplane demo` on `dir` with real Envoy, its stdout piped.
fn spawn_demo(dir: &MeshDir) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_meshplane"))
        .args(["demo", "--rate", "50", "--duration", "60", "--config"])
        .arg(dir.path())
        .env("MESHPLANE_ENVOY", support::envoy::envoy_bin())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A GET of `/` to the example gateway's listener (127.0.0.1:8088) with `headers` (each ending in
/// CRLF): the whole response.
fn gateway_get(headers: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", 8088)).expect("the gateway listens");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:8088\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The Envoy pid in a line like `started Envoy for ... (pid 123)` (`started gateway Envoy ...`).
fn sidecar_pid(line: &str) -> Option<u32> {
    line.split("(pid ")
        .nth(1)
        .and_then(|p| p.trim_end_matches(')').parse::<u32>().ok())
}

#[test]
fn local_demo_shows_the_split_follow_an_edit_and_stops_everything_on_ctrl_c() {
    let _one = DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let mut child = spawn_demo(&dir);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut output = Vec::new();
    let mut next = |limit: Duration| -> Option<String> {
        let line = rx.recv_timeout(limit).ok()?;
        output.push(line.clone());
        Some(line)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pids = Vec::new();
    let mut before = Vec::new();
    // Three seconds of 90/10, the traffic entering through the gateway.
    while before.len() < 3 {
        let line = next(Duration::from_secs(30)).expect("demo output");
        if let Some(pid) = sidecar_pid(&line) {
            pids.push(pid);
        }
        if line.contains("frontend -> backend.demo.local") {
            assert!(
                line.contains("] edge -> frontend -> backend.demo.local: "),
                "{line}"
            );
            before.push(v2_share(&line).unwrap_or(0.0));
        }
        assert!(Instant::now() < deadline);
    }
    assert_eq!(
        pids.len(),
        4,
        "three sidecars and the gateway's Envoy started"
    );
    // The gateway Envoy itself answers on the example's port: to the frontend, whose app calls
    // the backend (as the demo's traffic asks it to) through its sidecar.
    let via_gateway = gateway_get("x-demo-call: backend.demo.local\r\n");
    assert!(
        via_gateway.ends_with("\r\n\r\nbackend-v1") || via_gateway.ends_with("\r\n\r\nbackend-v2"),
        "{via_gateway}"
    );
    assert!(gateway_get("").ends_with("\r\n\r\nfrontend"));
    let text = dir
        .read("router.yaml")
        .replace("weight: 90", "weight: 50")
        .replace("weight: 10", "weight: 50");
    dir.write("router.yaml", &text);
    // Skip the second that straddles the edit, then average three.
    let mut after = Vec::new();
    let mut skipped = 0;
    while after.len() < 3 {
        let line = next(Duration::from_secs(30)).expect("demo output");
        if line.contains("frontend -> backend.demo.local") {
            if skipped < 2 {
                skipped += 1;
            } else {
                after.push(v2_share(&line).unwrap_or(0.0));
            }
        }
        assert!(Instant::now() < deadline);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!("backend-v2 share before the edit {before:?}, after {after:?}");
    assert!(mean(&before) < 25.0, "90/10 before the edit: {before:?}");
    assert!(
        mean(&after) > 35.0 && mean(&after) < 65.0,
        "50/50 after the edit: {after:?}"
    );

    // Ctrl-C stops everything it started.
    assert!(Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    while let Some(line) = next(Duration::from_secs(5)) {
        if line.starts_with("stopped") {
            break;
        }
    }
    assert!(status.success(), "{status}: {output:#?}");
    assert!(
        output
            .iter()
            .any(|l| l == "stopped 3 Envoy sidecars, 1 gateway Envoy and meshplane"),
        "{output:#?}"
    );
    for pid in pids {
        let alive = Command::new("kill")
            .arg("-0")
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(!alive, "Envoy {pid} is still running");
    }
}

/// SIGTERM while the sidecars are still warming up: every Envoy stops and the work files go.
#[test]
fn local_demo_stops_everything_on_sigterm_during_warm_up() {
    let _one = DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let mut child = spawn_demo(&dir);
    let work = std::env::temp_dir().join(format!("meshplane-demo-{}", child.id()));
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let mut pids = Vec::new();
    for line in lines.by_ref() {
        if let Some(pid) = sidecar_pid(&line) {
            pids.push(pid);
            break; // the first sidecar is up, the others are not: warm-up
        }
    }
    assert_eq!(pids.len(), 1, "the demo started no sidecar");
    assert!(work.is_dir(), "{} was never made", work.display());
    assert!(Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success());
    let rest: Vec<String> = lines.collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {rest:#?}");
    assert!(
        rest.iter().any(|l| l.starts_with("stopped ")),
        "no stop report: {rest:#?}"
    );
    for line in &rest {
        if let Some(pid) = sidecar_pid(line) {
            pids.push(pid);
        }
    }
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "Envoy {pid} is still running"
        );
    }
    assert!(!work.exists(), "{} was left behind", work.display());
}

#[test]
fn compose_file_matches_the_example_mesh() {
    let compose: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(repo_path("docker-compose.yml")).unwrap())
            .unwrap();
    let model = meshplane::app::load(&repo_path("examples/demo"))
        .model
        .expect("example mesh is valid");
    let mesh = &model.meshes["demo"];
    let services = compose["services"].as_mapping().expect("services");
    let text = |v: &serde_yaml_ng::Value| serde_yaml_ng::to_string(v).unwrap_or_default();

    // Every virtual node has an Envoy sidecar bootstrapped with its node id, and every app port of the
    // mesh is served by one of the example services.
    let all = text(&compose["services"]);
    for (name, node) in &mesh.virtual_nodes {
        let id = format!("mesh/demo/virtualNode/{name}");
        assert!(
            all.contains(&format!("--node-id {id} ")),
            "no bootstrap for {id}"
        );
        assert!(
            services.contains_key(format!("{name}-envoy").as_str()),
            "no sidecar service for {name}"
        );
        for l in &node.spec.listeners {
            assert!(
                all.contains(&format!("-listen=127.0.0.1:{}", l.port_mapping.port)),
                "nothing listens on {}",
                l.port_mapping.port
            );
        }
    }
    // The published egress port is the frontend's, and meshplane reads the example mesh.
    let egress = mesh.virtual_nodes["frontend"].spec.egress_port();
    assert!(
        text(&compose["services"]["mesh"]["ports"]).contains(&format!("\"{egress}:{egress}\""))
            || text(&compose["services"]["mesh"]["ports"]).contains(&format!("{egress}:{egress}"))
    );
    assert!(text(&compose["services"]["meshplane"]["volumes"]).contains("./examples/demo:/mesh"));

    // `docker-compose config` validates the file; CI installs docker-compose, so there it must run.
    match Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "docker-compose config: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => assert!(
            std::env::var_os("CI").is_none(),
            "docker-compose is required in CI: {e}"
        ),
    }
}
