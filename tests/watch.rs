//! The watcher follows every way a config directory changes, and never publishes a file read
//! half-written: real files in a tempdir, an in-process meshplane, and the snapshot it serves to
//! the frontend compared with what a fresh load of the intended files produces. Each test prints
//! the time from the save to the published snapshot.

mod support;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshplane::app::{load, Pipeline, Published, ReloadSettings, ServeConfig, Server};
use support::*;

const FRONTEND: &str = "mesh/demo/virtualNode/frontend";
const CLIENT: &str = "mesh/demo/virtualNode/client-1";
const LIMIT: Duration = Duration::from_secs(10);

type Versions = Vec<String>;

/// The demo mesh with its route in a file of its own (as a team that owns its routing would keep
/// it), `v1` % of the traffic to backend-v1 and the rest to backend-v2.
fn mesh_files(v1: u32) -> Vec<(&'static str, String)> {
    let demo = |f: &str| std::fs::read_to_string(repo_path("examples/demo").join(f)).unwrap();
    // router.yaml holds the router, its route and the virtual service, in that order.
    let docs: Vec<String> = demo("router.yaml")
        .split("---\n")
        .map(str::to_string)
        .collect();
    let [router, route, service] = &docs[..] else {
        panic!("router.yaml: router, route, service");
    };
    let router = format!("{router}---\n{service}");
    let route = route
        .replace("weight: 90", &format!("weight: {v1}"))
        .replace("weight: 10", &format!("weight: {}", 100 - v1));
    vec![
        ("mesh.yaml", demo("mesh.yaml")),
        ("frontend.yaml", demo("frontend.yaml")),
        ("backend.yaml", demo("backend.yaml")),
        ("router.yaml", router),
        ("route.yaml", route),
    ]
}

fn write_files(dir: &Path, files: &[(&str, String)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// What a fresh load of `files` serves the frontend.
fn versions_of(files: &[(&str, String)]) -> Versions {
    let d = tempfile::tempdir().unwrap();
    write_files(d.path(), files);
    let mut p = Pipeline::new(d.path().to_path_buf());
    assert!(p.reload(None), "{:?}", load(d.path()).problems);
    versions(&p.published(), FRONTEND).expect("frontend published")
}

fn versions(p: &Published, node: &str) -> Option<Versions> {
    p.cache
        .get(node)
        .map(|s| s.versions().iter().map(|v| v.to_string()).collect())
}

/// A server with these watch settings, once its first load (which runs after the ports open) is
/// done.
async fn start_with(dir: &Path, reload: ReloadSettings) -> Server {
    let server = Server::start(ServeConfig {
        xds_listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        debounce: Duration::from_millis(50),
        reload,
        ..ServeConfig::new(dir.to_path_buf())
    })
    .await
    .expect("server starts");
    let status = server.pipeline.clone();
    eventually("the first load", LIMIT, move || {
        status.status().reloads >= 1
    })
    .await;
    server
}

/// Waits until the frontend is served `want`; returns how long that took from `since`.
async fn published(server: &Server, want: &Versions, since: Instant, what: &str) -> Duration {
    eventually(what, LIMIT, || {
        versions(&server.pipeline, FRONTEND).as_ref() == Some(want)
    })
    .await;
    let took = since.elapsed();
    println!("{what}: save -> published in {} ms", took.as_millis());
    took
}

/// Every snapshot published for `node`, as it is published.
fn record(server: &Server, node: &str) -> Arc<Mutex<Vec<Option<Versions>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut rx = server.pipeline.cache.subscribe(node);
    let out = seen.clone();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let v = rx
                .borrow_and_update()
                .as_ref()
                .map(|s| s.versions().iter().map(|v| v.to_string()).collect());
            out.lock().unwrap().push(v);
        }
    });
    seen
}

#[tokio::test]
async fn a_deleted_and_recreated_directory_is_followed() {
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("mesh");
    write_files(&cfg, &mesh_files(90));
    let server = support::start(&cfg).await;
    assert_eq!(
        versions(&server.pipeline, FRONTEND),
        Some(versions_of(&mesh_files(90)))
    );

    std::fs::remove_dir_all(&cfg).unwrap();
    std::fs::create_dir(&cfg).unwrap();
    let saved = Instant::now();
    write_files(&cfg, &mesh_files(50));
    published(
        &server,
        &versions_of(&mesh_files(50)),
        saved,
        "rm -rf + mkdir + rewrite",
    )
    .await;

    // The new directory is watched, not just read once.
    let saved = Instant::now();
    write_files(&cfg, &mesh_files(70));
    published(
        &server,
        &versions_of(&mesh_files(70)),
        saved,
        "edit in the recreated directory",
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_symlinked_directory_swapped_with_ln_sfn_is_followed() {
    let t = tempfile::tempdir().unwrap();
    write_files(&t.path().join("v1"), &mesh_files(90));
    write_files(&t.path().join("v2"), &mesh_files(50));
    symlink("v1", t.path().join("mesh")).unwrap();
    let server = support::start(&t.path().join("mesh")).await;

    let saved = Instant::now();
    let ln = std::process::Command::new("ln")
        .args(["-sfn", "v2", "mesh"])
        .current_dir(t.path())
        .status()
        .expect("run ln");
    assert!(ln.success());
    published(
        &server,
        &versions_of(&mesh_files(50)),
        saved,
        "ln -sfn swap",
    )
    .await;

    // The new target is watched; the old one no longer matters.
    let saved = Instant::now();
    write_files(&t.path().join("v2"), &mesh_files(70));
    published(
        &server,
        &versions_of(&mesh_files(70)),
        saved,
        "edit in the new target",
    )
    .await;
    // The snapshot is published before the reload counts itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reloads = server.pipeline.status().reloads;
    write_files(&t.path().join("v1"), &mesh_files(20));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.pipeline.status().reloads,
        reloads,
        "old target still watched"
    );
    server.shutdown().await;
}

/// Writes `files` the way kubelet's atomic writer updates a ConfigMap volume: a new timestamped
/// directory, a `..data_tmp` link to it renamed over `..data`, the visible links
/// `x.yaml -> ..data/x.yaml`, then the old directory removed.
fn configmap_update(root: &Path, stamp: &str, files: &[(&str, String)]) {
    let ts = format!("..{stamp}");
    write_files(&root.join(&ts), files);
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

#[tokio::test]
async fn a_configmap_data_swap_is_followed() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("config");
    std::fs::create_dir(&root).unwrap();
    configmap_update(&root, "2026_12_01_10_00_00.123", &mesh_files(90));
    let server = support::start(&root).await;
    assert_eq!(
        versions(&server.pipeline, FRONTEND),
        Some(versions_of(&mesh_files(90)))
    );

    let saved = Instant::now();
    configmap_update(&root, "2026_12_01_10_05_00.456", &mesh_files(50));
    published(
        &server,
        &versions_of(&mesh_files(50)),
        saved,
        "ConfigMap ..data swap",
    )
    .await;
    let saved = Instant::now();
    configmap_update(&root, "2026_12_01_10_10_00.789", &mesh_files(70));
    published(
        &server,
        &versions_of(&mesh_files(70)),
        saved,
        "second ConfigMap swap",
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_git_sync_link_flip_is_followed() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("git");
    write_files(&root.join(".worktrees/aaaa"), &mesh_files(90));
    symlink(".worktrees/aaaa", root.join("current")).unwrap();
    let server = support::start(&root.join("current")).await;

    // git-sync, on every new commit: check out the revision, point a temporary link at it,
    // rename that over the old link, remove the old worktree. Twice: the first flip's removal of
    // the watched worktree must not leave the watcher on a deleted directory.
    let revs = [("aaaa", 90), ("bbbb", 50), ("cccc", 70)];
    for pair in revs.windows(2) {
        let [(old, _), (new, weight)] = pair else {
            unreachable!()
        };
        let saved = Instant::now();
        write_files(&root.join(".worktrees").join(new), &mesh_files(*weight));
        symlink(format!(".worktrees/{new}"), root.join("tmp-link")).unwrap();
        std::fs::rename(root.join("tmp-link"), root.join("current")).unwrap();
        std::fs::remove_dir_all(root.join(".worktrees").join(old)).unwrap();
        let what = format!("git-sync link flip to {new}");
        published(&server, &versions_of(&mesh_files(*weight)), saved, &what).await;
    }
    server.shutdown().await;
}

/// Saves `text` in place the way a generator writing to `> route.yaml` does: truncate, and the
/// content follows a few milliseconds later, in two writes.
fn save_in_place(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    std::thread::sleep(Duration::from_millis(4));
    let (a, b) = text.split_at(text.len() / 2);
    f.write_all(a.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(1));
    f.write_all(b.as_bytes()).unwrap();
}

/// 100 saves a second for `secs`, alternating two complete versions of the route; returns the
/// text of the last save and when it ended.
fn storm(
    path: PathBuf,
    a: String,
    b: String,
    secs: u64,
) -> std::thread::JoinHandle<(String, Instant)> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut n = 0u32;
        let mut saved = start;
        while start.elapsed() < Duration::from_secs(secs) {
            let text = if n.is_multiple_of(2) { &a } else { &b };
            save_in_place(&path, text);
            saved = Instant::now();
            n += 1;
            let next = start + Duration::from_millis(10) * n;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let last = if n.is_multiple_of(2) { b } else { a };
        (last, saved)
    })
}

fn route_of(files: &[(&str, String)]) -> String {
    files
        .iter()
        .find(|(n, _)| *n == "route.yaml")
        .unwrap()
        .1
        .clone()
}

/// A torn read of the route file is either empty or its first half. Empty is a valid mesh (a
/// router without routes: every request a 404), which only the watcher and the removal guard
/// keep from being published; the first half must be invalid, or this test could not tell.
fn assert_torn_reads_are_what_the_test_expects() {
    let d = tempfile::tempdir().unwrap();
    let files = mesh_files(80);
    write_files(d.path(), &files);
    std::fs::write(d.path().join("route.yaml"), "").unwrap();
    assert!(
        load(d.path()).model.is_some(),
        "an empty route file is a valid mesh: {:?}",
        load(d.path()).problems
    );
    let route = route_of(&files);
    std::fs::write(d.path().join("route.yaml"), &route[..route.len() / 2]).unwrap();
    assert!(
        load(d.path()).model.is_none(),
        "half a route file is invalid"
    );
}

async fn write_in_place_storm(reload: ReloadSettings, what: &str) -> Server {
    assert_torn_reads_are_what_the_test_expects();
    let dir = MeshDir::new();
    write_files(dir.path(), &mesh_files(90));
    let server = start_with(dir.path(), reload).await;
    let seen = record(&server, FRONTEND);
    let allowed = [90, 80, 70].map(|w| versions_of(&mesh_files(w)));
    let before = server.pipeline.status().reloads;

    let path = dir.path().join("route.yaml");
    let writer = storm(
        path,
        route_of(&mesh_files(80)),
        route_of(&mesh_files(70)),
        3,
    );
    let (last, saved) = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    let want = if last == route_of(&mesh_files(80)) {
        &allowed[1]
    } else {
        &allowed[2]
    };
    // Until a reload after the last save has published it (the storm may have left it in place).
    let attempts = |s: &Server| {
        let st = s.pipeline.status();
        st.reloads + st.reloads_held
    };
    let during = attempts(&server);
    eventually("a reload after the storm", LIMIT, || {
        attempts(&server) > during
    })
    .await;
    let took = published(&server, want, saved, what).await;
    assert!(
        took < Duration::from_secs(2),
        "{what}: published {took:?} after the last save"
    );

    let st = server.pipeline.status();
    println!(
        "{what}: {} reloads during and after the storm ({} accepted, {} rejected, {} held)",
        st.reloads - before,
        st.reloads_accepted - 1,
        st.reloads_rejected,
        st.reloads_held
    );
    drop(st);
    for v in seen.lock().unwrap().iter() {
        assert!(
            v.as_ref().is_some_and(|v| allowed.contains(v)),
            "{what}: published a snapshot of no complete file: {v:?}"
        );
    }
    server
}

#[tokio::test]
async fn saves_in_place_are_never_published_half_written() {
    // The storm is shorter than the maximum wait: nothing is read until the file holds still.
    let server = write_in_place_storm(ReloadSettings::default(), "write-in-place storm").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_storm_longer_than_the_maximum_wait_publishes_only_complete_files() {
    // Reads are forced every 300 ms mid-storm: torn reads must be rejected or held, never served.
    let settings = ReloadSettings {
        max_wait: Duration::from_millis(300),
        ..ReloadSettings::default()
    };
    let server = write_in_place_storm(settings, "storm past the maximum wait").await;
    let attempts = {
        let st = server.pipeline.status();
        st.reloads + st.reloads_held
    };
    assert!(attempts > 3, "reads were forced mid-storm");
    server.shutdown().await;
}

/// Four client nodes nothing refers to: with the demo's three, removing them removes 4 of 7.
fn clients() -> String {
    (1..=4)
        .map(|i| format!("kind: VirtualNode\nmeshName: demo\nvirtualNodeName: client-{i}\nspec:\n  backends: [{{virtualService: {{virtualServiceName: backend.demo.local}}}}]\n  proxy: {{egressPort: {}}}\n", 15100 + i))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[tokio::test]
async fn a_file_deleted_and_recreated_never_publishes_the_removal() {
    let dir = MeshDir::new();
    write_files(dir.path(), &mesh_files(90));
    dir.write("clients.yaml", &clients());
    let server = support::start(dir.path()).await;
    let seen = record(&server, CLIENT);

    // Deleted, and back 600 ms later (well past the debounce): most of the mesh would have gone.
    std::fs::remove_file(dir.path().join("clients.yaml")).unwrap();
    eventually("the removal held", LIMIT, || {
        server.pipeline.status().reloads_held > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    dir.write("clients.yaml", &clients());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        seen.lock().unwrap().iter().all(Option::is_some),
        "the removal was published: {:?}",
        seen.lock().unwrap()
    );
    assert!(server.pipeline.cache.get(CLIENT).is_some());

    // Deleted for good: applied once the directory has stayed still for the hold (2 s).
    let deleted = Instant::now();
    std::fs::remove_file(dir.path().join("clients.yaml")).unwrap();
    eventually("the removal applied", LIMIT, || {
        server.pipeline.cache.get(CLIENT).is_none()
    })
    .await;
    let took = deleted.elapsed();
    println!(
        "delete of 4 of 7 nodes: held, then published in {} ms",
        took.as_millis()
    );
    assert!(took >= Duration::from_secs(2), "applied after {took:?}");

    // Editors' saves: delete and recreate, write and rename.
    let saved = Instant::now();
    std::fs::remove_file(dir.path().join("route.yaml")).unwrap();
    dir.write("route.yaml", &route_of(&mesh_files(50)));
    published(
        &server,
        &versions_of(&mesh_files(50)),
        saved,
        "delete and recreate",
    )
    .await;
    let saved = Instant::now();
    dir.write_and_rename("route.yaml", &route_of(&mesh_files(70)));
    published(
        &server,
        &versions_of(&mesh_files(70)),
        saved,
        "write and rename",
    )
    .await;
    server.shutdown().await;
}

async fn readyz(server: &Server) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server.admin_addr)
        .await
        .unwrap();
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn problems(server: &Server) -> Vec<String> {
    let st = server.pipeline.status();
    st.last.problems.iter().map(|p| p.to_string()).collect()
}

#[tokio::test]
async fn an_empty_directory_or_a_mesh_of_nothing_is_not_ready() {
    let dir = MeshDir::new();
    let server = support::start(dir.path()).await;
    assert_eq!(readyz(&server).await, 503);
    assert_eq!(
        problems(&server),
        [".:0: no mesh defined: no App Mesh resources found"]
    );

    let mesh = std::fs::read_to_string(repo_path("examples/demo/mesh.yaml")).unwrap();
    dir.write("mesh.yaml", &mesh);
    eventually("reload", LIMIT, || server.pipeline.status().reloads >= 2).await;
    assert_eq!(readyz(&server).await, 503);
    assert_eq!(
        problems(&server),
        ["mesh.yaml:2: mesh `demo` defines no virtual nodes or gateways"]
    );

    let saved = Instant::now();
    write_files(dir.path(), &mesh_files(90));
    published(
        &server,
        &versions_of(&mesh_files(90)),
        saved,
        "first valid files",
    )
    .await;
    assert_eq!(readyz(&server).await, 200);

    // Back to only the Mesh: rejected, and the last good configuration keeps serving.
    let rejected = server.pipeline.status().reloads_rejected;
    for (name, _) in mesh_files(90).iter().filter(|(n, _)| *n != "mesh.yaml") {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    eventually("rejected", LIMIT, || {
        server.pipeline.status().reloads_rejected > rejected
    })
    .await;
    assert_eq!(readyz(&server).await, 200);
    assert_eq!(
        versions(&server.pipeline, FRONTEND),
        Some(versions_of(&mesh_files(90)))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_rescan_sees_what_no_event_reports_and_reloads_nothing_else() {
    // The route lives in a hidden directory reached through a visible link: the loader reads it
    // through the link, but events in hidden directories are ignored (they are `.git` churn and
    // editors' swap files), so an edit there stands for an event the kernel dropped.
    let dir = MeshDir::new();
    let files = mesh_files(90);
    let (routes, rest): (Vec<_>, Vec<_>) = files.into_iter().partition(|(n, _)| *n == "route.yaml");
    write_files(dir.path(), &rest);
    write_files(&dir.path().join(".shared"), &routes);
    symlink(".shared", dir.path().join("shared")).unwrap();
    let settings = ReloadSettings {
        rescan: Duration::from_millis(300),
        ..ReloadSettings::default()
    };
    let server = start_with(dir.path(), settings).await;
    assert_eq!(
        versions(&server.pipeline, FRONTEND),
        Some(versions_of(&mesh_files(90)))
    );

    // Re-scans that find nothing new are not reloads.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(server.pipeline.status().reloads, 1);

    let saved = Instant::now();
    write_files(
        &dir.path().join(".shared"),
        &[("route.yaml", route_of(&mesh_files(50)))],
    );
    published(
        &server,
        &versions_of(&mesh_files(50)),
        saved,
        "edit no event reports, by re-scan",
    )
    .await;
    server.shutdown().await;
}
