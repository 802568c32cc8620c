//! The hostile-input corpus (`tests/hostile/`, one case per file, expectations in
//! `tests/hostile/expected.txt`): each file, added to a good mesh, is rejected with its own file
//! name, the line of the offending node and a message saying what is wrong, while a running server
//! keeps serving the last good configuration and answering `/healthz`.

mod support;

use std::path::Path;
use std::time::Duration;

use meshplane::diag::Problem;
use support::*;

const FRONTEND: &str = "mesh/demo/virtualNode/frontend";

/// One case: a file of the corpus, the line its problem must name and a part of the message.
struct Case {
    file: String,
    line: usize,
    message: String,
}

fn corpus() -> Vec<Case> {
    let dir = repo_path("tests/hostile");
    let listing = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
    let cases: Vec<Case> = listing
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (file, line, message) = (f.next(), f.next(), f.next());
            Case {
                file: file.expect("file").to_string(),
                line: line.and_then(|n| n.parse().ok()).expect("line number"),
                message: message.expect("message").to_string(),
            }
        })
        .collect();
    // Every file is a case and every case a file.
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.txt")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = cases.iter().map(|c| c.file.clone()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "tests/hostile/ and expected.txt differ");
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    cases
}

/// Whether `problems` has the case's problem: its file, its line and its message.
fn names_the_case(problems: &[Problem], case: &Case) -> bool {
    problems.iter().any(|p| {
        p.file == Path::new(&case.file) && p.line == case.line && p.message.contains(&case.message)
    })
}

fn describe(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn each_hostile_file_is_rejected_with_its_file_line_and_reason() {
    for case in corpus() {
        let dir = MeshDir::copy_of(&repo_path("examples/demo"));
        std::fs::copy(
            repo_path("tests/hostile").join(&case.file),
            dir.path().join(&case.file),
        )
        .unwrap();
        let result = meshplane::app::load(dir.path());
        assert!(result.model.is_none(), "{} was accepted", case.file);
        assert!(
            names_the_case(&result.problems, &case),
            "{}: expected line {} and `{}`, got:\n{}",
            case.file,
            case.line,
            case.message,
            describe(&result.problems)
        );
        // Nothing points at line 0 or at another file.
        for p in &result.problems {
            assert_eq!(p.file, Path::new(&case.file), "{p}");
            assert!(p.line >= 1, "{p}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_rejects_each_and_keeps_serving_the_last_good_config() {
    let cases = corpus();
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let server = start(dir.path()).await;
    let good = server
        .pipeline
        .cache
        .get(FRONTEND)
        .expect("frontend served");
    let mut ads = AdsClient::connect(server.xds_addr, FRONTEND).await;
    ads.request(CDS, &[], "", "").await;
    let first = ads.recv().await;
    ads.ack(&first, &[]).await;
    let started = std::time::Instant::now();
    for case in &cases {
        let before = server.pipeline.status().reloads;
        std::fs::copy(
            repo_path("tests/hostile").join(&case.file),
            dir.path().join(&case.file),
        )
        .unwrap();
        let status = server.pipeline.clone();
        eventually(&case.file, Duration::from_secs(20), || {
            let st = status.status();
            st.reloads > before && names_the_case(&st.last.problems, case)
        })
        .await;
        let now = server.pipeline.cache.get(FRONTEND).expect("still served");
        assert_eq!(now.versions(), good.versions(), "{}", case.file);
        let (code, body) = support::envoy::http_get(server.admin_addr, "x", "/healthz", &[])
            .await
            .expect("healthz answers");
        assert_eq!((code, body.as_str()), (200, "ok\n"), "{}", case.file);
        std::fs::remove_file(dir.path().join(&case.file)).unwrap();
    }
    println!(
        "{} hostile files rejected in {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    // The good mesh alone is accepted again, and the Envoy was sent nothing meanwhile.
    let status = server.pipeline.clone();
    eventually("accepted again", Duration::from_secs(20), || {
        let st = status.status();
        st.last.model.is_some() && st.last.problems.is_empty()
    })
    .await;
    assert!(ads.recv_within(Duration::from_millis(300)).await.is_none());
    server.shutdown().await;
}
