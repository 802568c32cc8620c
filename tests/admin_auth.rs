//! The admin API's bearer token (PRODUCT.md §5): `serve` refuses a non-loopback `--admin-listen`
//! without `--admin-token` (exit 2); with a token every request but `/healthz` and `/readyz`
//! needs `Authorization: Bearer`, and `status`/`config` pass it with `--admin-token(-file)`. Keys
//! and the token never show in the admin API or the logs.

mod support;

#[path = "xds_tls/pki.rs"]
mod pki;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meshplane::app::{AdminToken, Security, Server};
use support::envoy::{free_port, http_get};
use support::*;

const TOKEN: &str = "s3cret-admin-token";

fn meshplane() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshplane"))
}

fn mesh_dir() -> MeshDir {
    let dir = MeshDir::new();
    dir.write(
        "mesh.yaml",
        "kind: Mesh\nmeshName: a\nspec: {}\n---\nkind: VirtualNode\nmeshName: a\nvirtualNodeName: web\nspec:\n  listeners: [{portMapping: {port: 8080, protocol: http}}]\n  serviceDiscovery: {dns: {hostname: web}}\n",
    );
    dir
}

#[tokio::test]
async fn off_loopback_the_admin_api_needs_a_token_to_start() {
    let dir = mesh_dir();
    let open = meshplane::app::ServeConfig {
        admin_listen: "0.0.0.0:0".parse().unwrap(),
        ..test_config(dir.path())
    };
    let err = Server::start(open.clone()).await.err().expect("refused");
    assert!(err.to_string().contains("--admin-token"), "{err}");
    let with_token = meshplane::app::ServeConfig {
        security: Security {
            admin_token: AdminToken::new(TOKEN),
            ..Security::default()
        },
        ..open
    };
    Server::start(with_token)
        .await
        .expect("starts")
        .shutdown()
        .await;

    // The binary: exit 2 and the reason.
    let out = meshplane()
        .args(["serve", "--config"])
        .arg(dir.path())
        .args(["--xds-listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--admin-token"), "{stderr}");
}

#[tokio::test]
async fn with_a_token_every_request_but_the_probes_must_carry_it() {
    let dir = mesh_dir();
    let cfg = meshplane::app::ServeConfig {
        security: Security {
            admin_token: AdminToken::new(TOKEN),
            ..Security::default()
        },
        ..test_config(dir.path())
    };
    let server = Server::start(cfg).await.expect("starts");
    let a = server.admin_addr;
    let bearer = format!("Bearer {TOKEN}");
    for path in [
        "/",
        "/nodes",
        "/load",
        "/metrics",
        "/proxies",
        "/resources?node=mesh/a/virtualNode/web",
    ] {
        let (code, body) = http_get(a, "x", path, &[]).await.unwrap();
        assert_eq!(code, 401, "{path} without a token: {body}");
        let (code, _) = http_get(a, "x", path, &[("Authorization", "Bearer wrong")])
            .await
            .unwrap();
        assert_eq!(code, 401, "{path} with a wrong token");
        let (code, body) = http_get(a, "x", path, &[("Authorization", &bearer)])
            .await
            .unwrap();
        assert!(
            code == 200 || code == 404,
            "{path} with the token: {code} {body}"
        );
        assert!(!body.contains(TOKEN), "{path} shows the token");
    }
    for probe in ["/healthz", "/readyz"] {
        let status = server.pipeline.clone();
        eventually("ready", Duration::from_secs(30), move || {
            status.status().ready
        })
        .await;
        let (code, _) = http_get(a, "x", probe, &[]).await.unwrap();
        assert_eq!(code, 200, "{probe} stays open for probes");
    }
    server.shutdown().await;
}

/// Waits until `addr` accepts connections.
fn wait_for(addr: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_cli_passes_the_token_and_nothing_shows_a_secret() {
    let dir = mesh_dir();
    let work = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("mesh CA");
    let server_cert = ca.server();
    let (cert, key, ca_file, token_file) = (
        work.path().join("server.pem"),
        work.path().join("server-key.pem"),
        work.path().join("ca.pem"),
        work.path().join("token"),
    );
    std::fs::write(&cert, &server_cert.cert).unwrap();
    std::fs::write(&key, &server_cert.key).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let mut serve = meshplane()
        .args(["--log-level", "debug", "serve", "--config"])
        .arg(dir.path())
        .args(["--xds-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin-listen", &admin])
        .arg("--xds-tls-cert")
        .arg(&cert)
        .arg("--xds-tls-key")
        .arg(&key)
        .arg("--xds-client-ca")
        .arg(&ca_file)
        .arg("--admin-token-file")
        .arg(&token_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&admin);
    std::thread::sleep(Duration::from_millis(500));

    let status = |extra: &[&str]| {
        meshplane()
            .args(["status", "--admin", &admin])
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = status(&[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
    let ok = status(&["--admin-token", TOKEN]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let ok = status(&["--admin-token-file", token_file.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let config = meshplane()
        .args([
            "config",
            "web",
            "-o",
            "json",
            "--admin",
            &admin,
            "--admin-token",
            TOKEN,
        ])
        .output()
        .unwrap();
    assert_eq!(config.status.code(), Some(0), "{config:?}");
    let shown = String::from_utf8_lossy(&config.stdout).to_string();
    assert!(shown.contains("mesh/a/virtualNode/web"), "{shown}");

    let _ = serve.kill();
    let _ = serve.wait();
    let mut log = String::new();
    serve
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("meshplane serving"), "{log}");
    for secret in [TOKEN, "PRIVATE KEY", key_body(&server_cert.key)] {
        assert!(!log.contains(secret), "the log shows {secret:?}");
        assert!(!shown.contains(secret), "config shows {secret:?}");
    }
}

/// A line from the middle of a PEM key: its bytes, not its armour.
fn key_body(pem: &str) -> &str {
    pem.lines().nth(1).unwrap_or("")
}
