//! Reloads that no file can crash or stall (issue 9): the hostile files found from outside,
//! generated here, each rejected (or, for links, skipped) with its file and line within seconds,
//! while the server keeps serving the last good configuration and answering `/healthz`; a restart
//! with them present opens its ports at once. Prints each case's reload time and peak memory.

mod support;
// The mesh generator belongs to the binary, not the library: included by path.
#[allow(dead_code)]
#[path = "../src/tools/synth.rs"]
mod synth;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

const FRONTEND: &str = "mesh/demo/virtualNode/frontend";

/// Peak resident memory of this process (`VmHWM`), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Resets `VmHWM` to the current size, so the next reading is this case's own peak.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Writes `lines` copies of `line` to `path`, in large chunks.
fn write_repeated(path: &Path, head: &str, line: &str, lines: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(head.as_bytes()).unwrap();
    for _ in 0..lines {
        f.write_all(line.as_bytes()).unwrap();
    }
    f.flush().unwrap();
}

/// A wide alias bomb of about 50 KB: few aliases per event (it passes the YAML library's own
/// repetition limit), ~10^10 nodes once expanded.
fn alias_bomb() -> String {
    let xs = vec!["x"; 1000].join(", ");
    let a = vec!["*a"; 1000].join(", ");
    let b = vec!["*b"; 10_000].join(", ");
    format!("kind: Mesh\nmeshName: bomb\nspec:\n  a: &a [{xs}]\n  b: &b [{a}]\n  c: [{b}]\n")
}

/// What one hostile case does to the config directory, and what it must produce.
struct Case {
    what: &'static str,
    /// The path (relative to the directory) the problem or warning names.
    file: &'static str,
    line: usize,
    /// Part of the message.
    message: &'static str,
    /// Links are skipped with a warning (the mesh stays valid); files are rejected.
    warning: bool,
    make: fn(&Path),
    /// Undoes `make`.
    path: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "32 MiB of short lines (4x the file limit)",
            file: "big.yaml",
            line: 1,
            message: "--max-file-bytes",
            warning: false,
            make: |d| {
                write_repeated(
                    &d.join("big.yaml"),
                    "kind: Mesh\nmeshName: big\nx:\n",
                    "- a\n",
                    8 << 20,
                )
            },
            path: "big.yaml",
        },
        Case {
            what: "8 MiB of short lines (just within the file limit)",
            file: "within.yaml",
            line: 3,
            message: "unknown field `x`",
            warning: false,
            make: |d| {
                let head = "kind: Mesh\nmeshName: within\nx:\n";
                let n = ((8 << 20) - head.len()) / 4;
                write_repeated(&d.join("within.yaml"), head, "- a\n", n);
            },
            path: "within.yaml",
        },
        Case {
            what: "a 50 KB wide alias bomb",
            file: "bomb.yaml",
            line: 5,
            message: "--max-alias-expansion",
            warning: false,
            make: |d| std::fs::write(d.join("bomb.yaml"), alias_bomb()).unwrap(),
            path: "bomb.yaml",
        },
        Case {
            what: "a 400 KB deeply nested flow mapping",
            file: "deep.yaml",
            line: 1,
            message: "--max-depth",
            warning: false,
            make: |d| {
                let n = 80_000;
                let text = "{a: ".repeat(n) + &"}".repeat(n) + "\n";
                std::fs::write(d.join("deep.yaml"), text).unwrap();
            },
            path: "deep.yaml",
        },
        Case {
            what: "ln -s . x; ln -s . y",
            file: "y",
            line: 0,
            message: "already read",
            warning: true,
            make: |d| {
                std::os::unix::fs::symlink(".", d.join("x")).unwrap();
                std::os::unix::fs::symlink(".", d.join("y")).unwrap();
            },
            path: "x",
        },
        Case {
            what: "ln -s / root",
            file: "root",
            line: 0,
            message: "outside the config directory",
            warning: true,
            make: |d| std::os::unix::fs::symlink("/", d.join("root")).unwrap(),
            path: "root",
        },
    ]
}

fn undo(dir: &Path, case: &Case) {
    let _ = std::fs::remove_file(dir.join(case.path));
    if case.path == "x" {
        let _ = std::fs::remove_file(dir.join("y"));
    }
}

fn found(st: &meshplane::app::Status, case: &Case) -> bool {
    let list = if case.warning {
        &st.last.warnings
    } else {
        &st.last.problems
    };
    let named = list.iter().any(|p| {
        p.file == Path::new(case.file) && p.line == case.line && p.message.contains(case.message)
    });
    named && (st.last.model.is_some() == case.warning)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_are_rejected_within_seconds_and_the_server_keeps_serving() {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let server = start(dir.path()).await;
    let good = server.pipeline.cache.get(FRONTEND).expect("served");
    for case in cases() {
        let before = server.pipeline.status().reloads;
        reset_peak();
        let base = peak_mib();
        let t = Instant::now();
        (case.make)(dir.path());
        let status = server.pipeline.clone();
        eventually(case.what, Duration::from_secs(60), || {
            let st = status.status();
            st.reloads > before && found(&st, &case)
        })
        .await;
        let took = t.elapsed();
        println!(
            "{:<50} {} in {:>6.0} ms (writing it, 50 ms debounce, reload), peak RSS +{:.0} MiB",
            case.what,
            if case.warning {
                "skipped, warned"
            } else {
                "rejected"
            },
            took.as_secs_f64() * 1e3,
            peak_mib() - base
        );
        // Generous: a debug build on a busy 2-core machine; the figures above are what counts.
        assert!(took < Duration::from_secs(30), "{}: {took:?}", case.what);
        let now = server.pipeline.cache.get(FRONTEND).expect("still served");
        assert_eq!(now.versions(), good.versions(), "{}", case.what);
        let (code, _) = support::envoy::http_get(server.admin_addr, "x", "/healthz", &[])
            .await
            .expect("healthz");
        assert_eq!(code, 200, "{}", case.what);
        undo(dir.path(), &case);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_hostile_files_present_opens_its_ports_at_once() {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    for case in cases() {
        (case.make)(dir.path());
    }
    let t = Instant::now();
    let server = meshplane::app::Server::start(test_config(dir.path()))
        .await
        .expect("starts");
    let (code, _) = support::envoy::http_get(server.admin_addr, "x", "/healthz", &[])
        .await
        .expect("healthz");
    assert_eq!(code, 200);
    let opened = t.elapsed();
    let status = server.pipeline.clone();
    eventually("the first load", Duration::from_secs(60), || {
        status.status().reloads >= 1
    })
    .await;
    println!(
        "restart with every hostile file: ports open in {:.0} ms, first load done in {:.0} ms",
        opened.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
    {
        let st = server.pipeline.status();
        for case in cases().iter().filter(|c| !c.warning) {
            let named = st
                .last
                .problems
                .iter()
                .any(|p| p.file == Path::new(case.file));
            assert!(named, "{}", case.what);
        }
        assert!(!st.ready);
    }
    let (code, _) = support::envoy::http_get(server.admin_addr, "x", "/readyz", &[])
        .await
        .expect("readyz");
    assert_eq!(code, 503);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_load_runs_after_the_ports_open() {
    let dir = MeshDir::new();
    synth::write(
        dir.path(),
        &synth::SynthParams {
            services: 50,
            clients: 1500,
            backends: 4,
            seed: 1,
        },
    )
    .unwrap();
    let t = Instant::now();
    let server = meshplane::app::Server::start(test_config(dir.path()))
        .await
        .expect("starts");
    let opened = t.elapsed();
    // Answered while the first load may still run: healthy, and ready only once it is done.
    let (code, _) = support::envoy::http_get(server.admin_addr, "x", "/healthz", &[])
        .await
        .expect("healthz");
    assert_eq!(code, 200);
    let (early, _) = support::envoy::http_get(server.admin_addr, "x", "/readyz", &[])
        .await
        .expect("readyz");
    let status = server.pipeline.clone();
    eventually("ready", Duration::from_secs(120), || status.status().ready).await;
    let loaded = t.elapsed();
    println!(
        "1,600 nodes: ports open after {:.0} ms, ready after {:.0} ms (readyz said {early} at first)",
        opened.as_secs_f64() * 1e3,
        loaded.as_secs_f64() * 1e3
    );
    assert!(opened < loaded, "the ports opened only after the load");
    assert_eq!(early, 503, "ready before the first load was done");
    let (code, _) = support::envoy::http_get(server.admin_addr, "x", "/readyz", &[])
        .await
        .expect("readyz");
    assert_eq!(code, 200);
    server.shutdown().await;
}
