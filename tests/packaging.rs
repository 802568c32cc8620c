//! Packaging that cannot be run here (no Docker engine) but can be checked: the Rust version the
//! Dockerfile builds with is the one `Cargo.toml` declares, and it is new enough for every crate
//! the lock file pins; the compose file starts services in dependency order, restarts them, builds
//! the image once and publishes the admin API on loopback only, and it runs an Envoy for every
//! sidecar and gateway of the demo mesh it serves.

use std::path::Path;
use std::process::Command;

fn repo(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn version(s: &str) -> (u32, u32) {
    let mut parts = s.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn the_image_builds_with_the_rust_the_lock_file_needs() {
    let manifest: toml_like::Manifest = toml_like::parse(&repo("Cargo.toml"));
    let declared = version(&manifest.rust_version);
    let dockerfile = repo("Dockerfile");
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .expect("the Dockerfile builds FROM rust:<version>");
    let image = version(image.split('-').next().unwrap_or(image));
    assert_eq!(
        image, declared,
        "the Dockerfile's Rust {image:?} differs from Cargo.toml's rust-version {declared:?}"
    );
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let needs = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some((version(p["rust_version"].as_str()?), p["name"].as_str()?)))
        .max()
        .expect("some locked crate declares a rust-version");
    println!(
        "locked crates need Rust {:?} ({}); image and Cargo.toml say {declared:?}",
        needs.0, needs.1
    );
    assert!(
        needs.0 <= declared,
        "{} needs Rust {:?}, but Cargo.toml and the Dockerfile say {declared:?}",
        needs.1,
        needs.0
    );
}

#[test]
fn compose_starts_in_order_restarts_and_keeps_admin_on_loopback() {
    let compose: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&repo("docker-compose.yml")).unwrap();
    let services = compose["services"].as_mapping().expect("services");
    let builds = services
        .values()
        .filter(|s| s.get("build").is_some())
        .count();
    assert_eq!(builds, 1, "the meshplane image is built once");
    for (name, s) in services {
        let name = name.as_str().unwrap_or_default();
        assert!(s.get("restart").is_some(), "{name} has no restart policy");
        let image = s["image"].as_str().unwrap_or_default();
        if image.starts_with("envoyproxy/envoy") {
            assert_eq!(
                s["depends_on"]["bootstrap"]["condition"].as_str(),
                Some("service_completed_successfully"),
                "{name} must start after its bootstrap is written"
            );
        }
    }
    assert_eq!(
        compose["services"]["bootstrap"]["restart"].as_str(),
        Some("on-failure"),
        "the bootstrap job runs once"
    );
    let ports: Vec<&str> = compose["services"]["mesh"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(ports.contains(&"18000:18000"), "xDS published: {ports:?}");
    for p in &ports {
        assert!(
            *p == "18000:18000" || p.starts_with("127.0.0.1:"),
            "{p} is published on every interface"
        );
    }
    assert!(
        ports.contains(&"127.0.0.1:18001:18001"),
        "admin on loopback: {ports:?}"
    );
}

#[test]
fn compose_runs_an_envoy_for_every_node_and_gateway_of_the_demo_mesh() {
    let compose: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&repo("docker-compose.yml")).unwrap();
    let script = compose["services"]["bootstrap"]["command"][0]
        .as_str()
        .expect("the bootstrap job's script");
    let mut bootstrapped: Vec<String> = script
        .split("--node-id ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next())
        .map(str::to_string)
        .collect();
    bootstrapped.sort();
    let loaded = meshplane::app::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo"));
    let model = loaded.model.expect("the demo mesh loads");
    let mut proxies = Vec::new();
    for (m, mesh) in &model.meshes {
        proxies.extend(
            mesh.virtual_nodes
                .keys()
                .map(|n| format!("mesh/{m}/virtualNode/{n}")),
        );
        proxies.extend(
            mesh.virtual_gateways
                .keys()
                .map(|g| format!("mesh/{m}/virtualGateway/{g}")),
        );
    }
    proxies.sort();
    assert_eq!(
        bootstrapped, proxies,
        "a bootstrap for every proxy of examples/demo"
    );
    let services = compose["services"].as_mapping().expect("services");
    for (i, id) in proxies.iter().enumerate() {
        let name = id.rsplit('/').next().unwrap_or_default();
        let file = format!("/bootstrap/{name}.yaml");
        let envoy = services.values().find(|s| {
            s["command"]
                .as_sequence()
                .is_some_and(|c| c.iter().any(|a| a.as_str() == Some(file.as_str())))
        });
        assert!(envoy.is_some(), "no Envoy runs {file} ({id}, #{i})");
    }
}

/// Just enough of `Cargo.toml` to read `rust-version` (no TOML parser among our dependencies).
mod toml_like {
    pub struct Manifest {
        pub rust_version: String,
    }

    pub fn parse(text: &str) -> Manifest {
        let rust_version = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == "rust-version").then(|| v.trim().trim_matches('"').to_string())
            })
            .expect("Cargo.toml declares rust-version");
        Manifest { rust_version }
    }
}
