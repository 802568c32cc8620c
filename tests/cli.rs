//! The command line of docs/contract.md §4, run as a real process; `flags` checks the flag rules
//! across every subcommand.

#[path = "cli/flags.rs"]
mod flags;
#[path = "cli/strict.rs"]
mod strict;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn meshplane() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshplane"))
}

#[test]
fn validate_accepts_the_example_and_lists_every_problem_otherwise() {
    let ok = meshplane()
        .args(["validate", "examples/demo"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let text = dir
        .read("router.yaml")
        .replace("weight: 90", "weight: 900")
        .replace("priority: 100", "priority: 5000");
    dir.write("router.yaml", &text);
    dir.write(
        "broken.yaml",
        "kind: VirtualNode\nmeshName: demo\nvirtualNodeName: x\nspec:\n  listners: []\n",
    );
    let out = meshplane()
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "broken.yaml:5: spec.listners: unknown field `listners` (did you mean `listeners`?)",
        "router.yaml:16: route.spec.priority: 5000 is out of range: must be 0 to 1000",
        "router.yaml:21: route.spec.httpRoute.action.weightedTargets[0].weight: 900 is out of range: must be 0 to 100",
        "3 problem(s)",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
}

#[test]
fn bootstrap_prints_an_envoy_bootstrap() {
    let out = meshplane()
        .args([
            "bootstrap",
            "--node-id",
            "mesh/demo/virtualNode/frontend",
            "--xds",
            "127.0.0.1:18000",
            "--admin-port",
            "9901",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    assert_eq!(
        y["node"]["id"].as_str(),
        Some("mesh/demo/virtualNode/frontend")
    );
    assert_eq!(
        y["admin"]["address"]["socket_address"]["port_value"].as_u64(),
        Some(9901)
    );

    let bad = meshplane()
        .args([
            "bootstrap",
            "--node-id",
            "frontend",
            "--xds",
            "127.0.0.1:18000",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("mesh/<mesh>/virtualNode/<name>"));
}

/// A gateway is bootstrapped like a sidecar: its node id (either form) and ADS, no listeners of its
/// own (a gateway has no ingressPort or egressPort flags: its listeners arrive over LDS, checked
/// with real Envoy in tests/gateway.rs).
#[test]
fn bootstrap_takes_gateway_node_ids() {
    for id in [
        "mesh/edge/virtualGateway/ingress",
        "arn:aws:appmesh:eu-west-1:123456789012:mesh/edge/virtualGateway/ingress",
    ] {
        let out = meshplane()
            .args(["bootstrap", "--node-id", id, "--xds", "meshplane:18000"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let y: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
        assert_eq!(y["node"]["id"].as_str(), Some(id));
        assert_eq!(y["node"]["cluster"].as_str(), Some(id));
        assert_eq!(
            y["admin"]["address"]["socket_address"]["port_value"].as_u64(),
            Some(9901)
        );
        assert!(y["dynamic_resources"]["ads_config"].is_mapping());
        assert!(y["static_resources"]["listeners"].is_null());
    }
    let help = meshplane().args(["bootstrap", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("mesh/<mesh>/virtualGateway/<name>"));
}

/// `meshplane serve` on the example mesh with free ports, once its xDS port accepts: the child,
/// the xDS address and the admin port.
async fn serve_demo(stderr: Stdio) -> (std::process::Child, std::net::SocketAddr, u16) {
    let xds = support::envoy::free_port();
    let admin = support::envoy::free_port();
    let child = meshplane()
        .args(["serve", "--config", "examples/demo"])
        .args([
            "--xds-listen",
            &format!("127.0.0.1:{xds}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(stderr)
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], xds).into();
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (child, addr, admin)
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm_with_streams_open() {
    let (mut child, addr, admin) = serve_demo(Stdio::null()).await;
    let started = Instant::now();
    // The ports open before the first load is done: ready follows.
    loop {
        let (status, body) =
            support::envoy::http_get(([127, 0, 0, 1], admin).into(), "127.0.0.1", "/readyz", &[])
                .await
                .unwrap();
        if status == 200 {
            assert_eq!(body, "ready\n");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut c = AdsClient::connect(addr, "mesh/demo/virtualNode/frontend").await;
    c.request(CDS, &[], "", "").await;
    let _ = c.recv().await;

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "meshplane did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert!(
        c.closed_within(Duration::from_secs(5)).await,
        "the open stream was not closed"
    );
}

/// `serve --debounce-ms` sets the quiet time that ends a burst of changes: with 600 ms, an edit is
/// not reloaded 300 ms later, and is reloaded soon after the quiet time.
#[tokio::test]
async fn serve_debounce_flag_sets_the_quiet_time() {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let xds = support::envoy::free_port();
    let admin = support::envoy::free_port();
    /// Stops the server even when an assertion fails, so no orphan keeps the test's output open.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Stop(
        meshplane()
            .args(["serve", "--config"])
            .arg(dir.path())
            .args([
                "--xds-listen",
                &format!("127.0.0.1:{xds}"),
                "--admin-listen",
                &format!("127.0.0.1:{admin}"),
                "--debounce-ms",
                "600",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let admin_addr: std::net::SocketAddr = ([127, 0, 0, 1], admin).into();
    let accepted = || async move {
        let (_, body) = support::envoy::http_get(admin_addr, "127.0.0.1", "/metrics", &[])
            .await
            .unwrap_or_default();
        body.lines()
            .find_map(|l| l.strip_prefix("meshplane_reloads_total{result=\"accepted\"} "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let started = Instant::now();
    while accepted().await != Some(1) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = dir
        .read("router.yaml")
        .replace("weight: 90", "weight: 80")
        .replace("weight: 10", "weight: 20");
    dir.write_and_rename("router.yaml", &text);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        accepted().await,
        Some(1),
        "reloaded before the quiet time ended"
    );
    let edited = Instant::now();
    while accepted().await != Some(2) {
        assert!(
            edited.elapsed() < Duration::from_secs(10),
            "edit never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let (child, _, _) = serve_demo(Stdio::piped()).await;
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("INFO"), "no log lines: {log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a pipe: {log}");
}

/// The demo's router with the canary at `w1`/`w2`.
fn demo_with_weights(w1: u32, w2: u32) -> MeshDir {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let text = dir
        .read("router.yaml")
        .replace("weight: 90", &format!("weight: {w1}"))
        .replace("weight: 10", &format!("weight: {w2}"));
    dir.write("router.yaml", &text);
    dir
}

#[test]
fn diff_against_another_directory_spells_out_weights_and_exits_1() {
    let (old, new) = (demo_with_weights(90, 10), demo_with_weights(50, 50));
    let out = meshplane()
        .arg("diff")
        .arg(new.path())
        .arg("--against")
        .arg(old.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains("INFO"),
        "a report command logs only warnings unless asked: {log}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("mesh/demo/virtualNode/frontend (changed)"),
        "{text}"
    );
    assert!(text.contains("RDS changed rds_egress_http_15001"), "{text}");
    assert!(
        text.contains("cds_egress_demo_backend-v1_http_9081 weight 90 → 50"),
        "{text}"
    );
    // The backends and the gateway (which does not call the backend) are unchanged.
    assert!(text.contains("1 node would change, 3 unchanged"), "{text}");
    let same = meshplane()
        .arg("diff")
        .arg(old.path())
        .arg("--against")
        .arg(old.path())
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&same.stdout).contains("0 nodes would change, 4 unchanged"));
}

#[tokio::test]
async fn diff_against_the_running_server() {
    let served = demo_with_weights(90, 10);
    let server = start(served.path()).await;
    let admin = server.admin_addr.to_string();
    let edited = demo_with_weights(50, 50);
    let out = tokio::task::spawn_blocking({
        let (dir, admin) = (edited.path().to_path_buf(), admin.clone());
        move || {
            meshplane()
                .args(["diff", "-o", "json", "--admin", &admin])
                .arg(dir)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert_eq!(
        json["nodes"][0]["node_id"],
        "mesh/demo/virtualNode/frontend"
    );
    let details = json["nodes"][0]["resources"][0]["details"].to_string();
    assert!(details.contains("weight 10 → 50"), "{details}");
    // Nothing to change when the directory is what is served.
    let out = tokio::task::spawn_blocking({
        let (dir, admin) = (served.path().to_path_buf(), admin.clone());
        move || {
            meshplane()
                .args(["diff", "--admin", &admin])
                .arg(dir)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // No server: a connection error, exit 2.
    server.shutdown().await;
    let out = meshplane()
        .args(["diff", "--admin", &admin])
        .arg(served.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn status_watch_refreshes_until_stopped() {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let server = start(dir.path()).await;
    let admin = server.admin_addr.to_string();
    let mut child = meshplane()
        .args(["status", "--watch", "--admin", &admin])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let refreshes = text.matches("configuration: valid").count();
    assert!(refreshes >= 2, "{refreshes} refreshes in 4.5 s:\n{text}");
    assert!(text.contains("NOT CONNECTED"), "{text}");
    server.shutdown().await;
}

#[test]
fn validate_takes_one_file_and_json_and_shows_paths_as_typed() {
    let dir = MeshDir::new();
    let file = dir.write(
        "one.yaml",
        "kind: Mesh\nmeshName: m\n---\nkind: VirtualNode\nmeshName: m\nvirtualNodeName: a\nspec:\n  listners: []\n",
    );
    let out = meshplane()
        .args(["validate", "-o", "json"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["files"], 1);
    assert_eq!(v["problems"][0]["file"], file.display().to_string());
    assert_eq!(v["problems"][0]["line"], 8);
    assert_eq!(v["problems"][0]["path"], "spec.listners");
    // The same file fixed is valid on its own.
    let fixed = dir.write(
        "one.yaml",
        "kind: Mesh\nmeshName: m\n---\nkind: VirtualNode\nmeshName: m\nvirtualNodeName: a\nspec:\n  listeners: [{portMapping: {port: 8080, protocol: http}}]\n  serviceDiscovery: {dns: {hostname: a}}\n",
    );
    let ok = meshplane().arg("validate").arg(&fixed).output().unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // A directory's problems name files below the directory as it was typed.
    let out = meshplane()
        .args(["validate", "tests/hostile"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.starts_with("tests/hostile/")),
        "{text}"
    );
}

#[test]
fn validate_lists_causes_before_their_consequences() {
    // The router's file is broken, so the service that names the router dangles: the broken file
    // comes first, the dangling reference after it, marked as a likely consequence.
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    dir.write(
        "router.yaml",
        "kind: VirtualRouter\nmeshName: demo\n  bad: [\n",
    );
    let out = meshplane()
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let cause = lines.iter().position(|l| l.contains("router.yaml:"));
    let consequence = lines.iter().position(|l| l.contains("is not defined"));
    assert!(
        matches!((cause, consequence), (Some(a), Some(b)) if a < b),
        "{text}"
    );
    assert!(text.contains("perhaps a consequence"), "{text}");
}
