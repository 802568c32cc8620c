//! `--strict` on `validate` and `serve`: a field that is loaded but not translated into Envoy
//! configuration (Cloud Map attributes: the only such field left) is a problem, so `validate` exits 1
//! and `serve` publishes nothing; without it, the same files are valid with warnings. A field
//! App Mesh itself ignored (a path on a tcp health check, a gateway listener's health check)
//! stays a warning either way.

use std::process::Output;
use std::time::{Duration, Instant};

use super::meshplane;
use super::support::envoy::{free_port, http_get};
use super::support::MeshDir;

const MESH: &str = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners:\n    - portMapping: {port: 80, protocol: http}\n  serviceDiscovery:\n    awsCloudMap: {namespaceName: demo.local, serviceName: a, attributes: [{key: stage, value: prod}]}\n---\nkind: VirtualGateway\nmeshName: demo\nvirtualGatewayName: gw\nspec:\n  listeners:\n    - portMapping: {port: 8080, protocol: http}\n      healthCheck: {healthyThreshold: 2, unhealthyThreshold: 2, intervalMillis: 5000, timeoutMillis: 2000, protocol: http, path: /ping}\n";

fn validate(dir: &MeshDir, extra: &[&str]) -> Output {
    meshplane()
        .arg("validate")
        .arg(dir.path())
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn validate_strict_exits_1_for_untranslated_fields() {
    let dir = MeshDir::new();
    dir.write("mesh.yaml", MESH);
    let lenient = validate(&dir, &[]);
    assert_eq!(lenient.status.code(), Some(0), "{lenient:?}");
    let warned = String::from_utf8_lossy(&lenient.stderr);
    assert!(warned.contains("warning: "), "{warned}");
    assert!(warned.contains("awsCloudMap.attributes"), "{warned}");

    let strict = validate(&dir, &["--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{strict:?}");
    let out = String::from_utf8_lossy(&strict.stdout);
    for want in [
        "mesh.yaml:11: spec.serviceDiscovery.awsCloudMap.attributes: Cloud Map instance attributes cannot be honoured",
        "(an error with --strict)",
        "1 problem(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let json = validate(&dir, &["--strict", "-o", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{v}");

    // What App Mesh ignored stays a warning, and a mesh with everything translated passes.
    dir.write("mesh.yaml", "kind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners:\n    - portMapping: {port: 80, protocol: grpc}\n      healthCheck: {healthyThreshold: 2, unhealthyThreshold: 2, intervalMillis: 5000, timeoutMillis: 2000, protocol: grpc, path: /p}\n  serviceDiscovery: {awsCloudMap: {namespaceName: demo.local, serviceName: a}}\n  logging: {accessLog: {file: {path: /dev/stdout}}}\n");
    let ok = validate(&dir, &["--strict"]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stderr)
        .contains("healthCheck.path: a grpc health check has no path"));
    let demo = meshplane()
        .args(["validate", "--strict", "examples/demo"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(demo.status.code(), Some(0), "{demo:?}");
}

/// `serve` on `dir` (with `extra` flags) until its first load is reported: the `/load` report and
/// whether `/readyz` answered 200.
async fn serve_once(dir: &MeshDir, extra: &[&str]) -> (serde_json::Value, bool) {
    let (xds, admin) = (free_port(), free_port());
    let mut child = meshplane()
        .arg("serve")
        .arg("--config")
        .arg(dir.path())
        .args(["--xds-listen", &format!("127.0.0.1:{xds}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .args(extra)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], admin).into();
    let began = Instant::now();
    let report = loop {
        if let Ok((200, body)) = http_get(addr, "127.0.0.1", "/load", &[]).await {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let loads = v["reloads_accepted"].as_u64().unwrap_or(0)
                + v["reloads_rejected"].as_u64().unwrap_or(0);
            if loads >= 1 {
                break v;
            }
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "serve never loaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ready = matches!(
        http_get(addr, "127.0.0.1", "/readyz", &[]).await,
        Ok((200, _))
    );
    let _ = child.kill();
    let _ = child.wait();
    (report, ready)
}

#[tokio::test]
async fn serve_strict_publishes_nothing_with_untranslated_fields() {
    let dir = MeshDir::new();
    dir.write("mesh.yaml", MESH);
    let (report, ready) = serve_once(&dir, &["--strict"]).await;
    assert_eq!(report["valid"], false, "{report}");
    assert!(!ready, "{report}");
    let problems = report["problems"].to_string();
    assert!(problems.contains("(an error with --strict)"), "{problems}");
    let (report, ready) = serve_once(&dir, &[]).await;
    assert_eq!(report["valid"], true, "{report}");
    assert!(ready, "{report}");
    // Cloud Map attributes, and the gateway's health check (ignored, as App Mesh did).
    assert_eq!(report["warnings"].as_array().unwrap().len(), 2, "{report}");
}
