//! The Kubernetes deployment in deploy/kubernetes: every manifest validates (strictly: unknown
//! fields are errors) against Kubernetes' schemas with `kubernetes-validate` (PyPI, schemas
//! bundled, offline; scripts/test.sh installs it into .venv), the Deployment's flags are ones
//! `meshplane serve` takes and its probes are the admin API's, and the ConfigMap's files, laid
//! out the way kubelet mounts them, load and follow an update by atomic `..data` swap.

mod support;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_yaml_ng::Value;

const DEPLOY: &str = "deploy/kubernetes";

fn deploy_files() -> Vec<PathBuf> {
    let dir = support::repo_path(DEPLOY);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn doc(name: &str) -> Value {
    let p = support::repo_path(DEPLOY).join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `$MESHPLANE_KUBERNETES_VALIDATE`, .venv's, or the one on PATH. Panics with instructions when
/// there is none: this check never skips silently.
fn validator() -> PathBuf {
    if let Some(p) = std::env::var_os("MESHPLANE_KUBERNETES_VALIDATE") {
        return PathBuf::from(p);
    }
    let venv = support::repo_path(".venv/bin/kubernetes-validate");
    if venv.is_file() {
        return venv;
    }
    if Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok()
    {
        return PathBuf::from("kubernetes-validate");
    }
    panic!(
        "kubernetes-validate is required to check deploy/kubernetes and was not found.\n\
         Run ./scripts/test.sh (it pip-installs kubernetes-validate into .venv),\n\
         or set MESHPLANE_KUBERNETES_VALIDATE."
    );
}

fn validate(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(validator())
        .args(["--strict", "--no-warn"])
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_manifest_validates_against_the_kubernetes_schemas() {
    let files: Vec<PathBuf> = deploy_files()
        .into_iter()
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    assert!(files.len() >= 5, "{files:?}");
    let (ok, out) = validate(&files);
    println!("{out}");
    assert!(ok, "deploy/kubernetes does not validate:\n{out}");
    assert_eq!(out.matches("passed").count(), files.len(), "{out}");

    // The validator is live: an unknown field fails it.
    let t = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(support::repo_path(DEPLOY).join("pdb.yaml")).unwrap();
    let bad = t.path().join("pdb.yaml");
    std::fs::write(&bad, text.replace("maxUnavailable:", "maxUnavailabel:")).unwrap();
    let (ok, out) = validate(&[bad]);
    assert!(!ok, "a misspelt field passed:\n{out}");
}

#[test]
fn the_kustomization_lists_every_manifest_but_the_git_sync_variant() {
    let k = doc("kustomization.yaml");
    let listed: Vec<&str> = k["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in deploy_files() {
        let name = f.file_name().unwrap().to_str().unwrap();
        let expected = !matches!(name, "kustomization.yaml" | "deployment-git-sync.yaml");
        assert_eq!(listed.contains(&name), expected, "{name} in {listed:?}");
    }
}

/// The `--flag`s a container passes to `meshplane`.
fn flags(container: &Value) -> Vec<String> {
    container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .collect()
}

#[test]
fn the_deployments_run_flags_meshplane_takes_and_probe_the_admin_api() {
    let help = Command::new(env!("CARGO_BIN_EXE_meshplane"))
        .args(["serve", "--help"])
        .output()
        .expect("meshplane serve --help");
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    for name in ["deployment.yaml", "deployment-git-sync.yaml"] {
        let d = doc(name);
        let spec = &d["spec"]["template"]["spec"];
        let c = spec["containers"]
            .as_sequence()
            .and_then(|cs| cs.iter().find(|c| c["name"] == "meshplane"))
            .expect("meshplane container");
        let f = flags(c);
        for flag in &f {
            assert!(
                help.contains(&format!("--{flag}")),
                "{name}: serve has no --{flag}"
            );
        }
        for needed in [
            "config",
            "xds-listen",
            "admin-listen",
            "xds-max-stream-age",
            "drain-timeout",
        ] {
            assert!(
                f.iter().any(|x| x == needed),
                "{name}: no --{needed} in {f:?}"
            );
        }
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"], true,
            "{name}"
        );
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(d["spec"]["replicas"], 3, "{name}");
        // The drain ends before kubelet's SIGKILL would.
        let drain = c["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .find_map(|a| a.strip_prefix("--drain-timeout="))
            .expect("--drain-timeout=");
        let drain = meshplane::xds::limits::parse_duration(drain).unwrap();
        let grace = spec["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("grace");
        assert!(
            drain < Duration::from_secs(grace),
            "{name}: drain {drain:?} vs grace {grace}s"
        );
    }
}

/// kubelet's atomic writer: the files in a new timestamped directory, `..data` swapped to it by
/// a rename, each visible name a link through `..data`, then the old directory removed.
fn kubelet_update(root: &Path, stamp: &str, files: &[(String, String)]) {
    let ts = format!("..{stamp}");
    std::fs::create_dir_all(root.join(&ts)).unwrap();
    for (name, text) in files {
        std::fs::write(root.join(&ts).join(name), text).unwrap();
    }
    symlink(&ts, root.join("..data_tmp")).unwrap();
    let old = std::fs::read_link(root.join("..data")).ok();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    for (name, _) in files {
        if std::fs::symlink_metadata(root.join(name)).is_err() {
            symlink(format!("..data/{name}"), root.join(name)).unwrap();
        }
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(root.join(old)).unwrap();
    }
}

fn configmap_files() -> Vec<(String, String)> {
    let cm = doc("configmap.yaml");
    cm["data"]
        .as_mapping()
        .expect("data")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_configmap_mounted_as_kubelet_does_loads_and_follows_an_update() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("mesh");
    std::fs::create_dir(&root).unwrap();
    let files = configmap_files();
    kubelet_update(&root, "2026_12_02_03_00_00.000000001", &files);
    let server = support::start(&root).await;
    let status = server.pipeline.status();
    assert!(
        status.ready,
        "the ConfigMap's mesh does not load: {status:?}"
    );
    let node = "mesh/demo/virtualNode/frontend";
    let before = server
        .pipeline
        .cache
        .get(node)
        .expect("frontend served")
        .versions()
        .map(str::to_string);

    // `kubectl apply` of the ConfigMap with other weights: kubelet swaps `..data`.
    let edited: Vec<(String, String)> = files
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.replace("weight: 90", "weight: 50")
                    .replace("weight: 10", "weight: 50"),
            )
        })
        .collect();
    assert_ne!(edited, files, "the ConfigMap has the demo's 90/10 canary");
    let saved = Instant::now();
    kubelet_update(&root, "2026_12_02_03_01_00.000000002", &edited);
    loop {
        let now = server
            .pipeline
            .cache
            .get(node)
            .map(|s| s.versions().map(str::to_string));
        if now.as_ref().is_some_and(|v| v[3] != before[3]) {
            let v = now.unwrap();
            assert_eq!(v[0], before[0], "only the routes changed");
            break;
        }
        assert!(
            saved.elapsed() < Duration::from_secs(20),
            "the ..data swap was not followed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("ConfigMap ..data swap applied in {:?}", saved.elapsed());
    assert!(server.pipeline.status().ready);
    server.shutdown().await;
}
