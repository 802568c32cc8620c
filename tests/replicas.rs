//! Three meshplane replicas (real processes) serving one mesh directory, and a real Envoy whose
//! xDS cluster lists all three, under steady HTTP traffic. Replicas are killed (SIGKILL) or
//! stopped (SIGTERM, drained) and restarted one at a time: no request fails, the Envoy moves to
//! another replica and is sent nothing new (its update counters stay put), and it ends in sync.
//! Also: `--xds-max-stream-age` moves Envoys on its own, and a replica that starts on broken
//! files serves nothing (Envoy keeps its configuration) until they are fixed.
//! `-- --nocapture` prints what was measured.

#[path = "replicas/fleet.rs"]
mod fleet;
mod support;

use std::time::{Duration, Instant};

use fleet::{
    assert_in_sync, connected, envoy_for, envoy_versions, placement, updates, wait_placed, Replica,
    Traffic,
};
use meshplane::bootstrap::XdsMode;
use support::envoy::{free_port, Upstream};
use support::MeshDir;

const NODE: &str = "mesh/r/virtualNode/client";
const HOST: &str = "svc.r.local";

fn mesh(egress: u16, upstream: u16, extra_route: bool) -> String {
    let mut m = format!(
        r#"kind: Mesh
meshName: r
spec: {{}}
---
kind: VirtualNode
meshName: r
virtualNodeName: client
spec:
  backends: [{{virtualService: {{virtualServiceName: {HOST}}}}}]
  proxy: {{egressPort: {egress}}}
---
kind: VirtualNode
meshName: r
virtualNodeName: app
spec:
  listeners: [{{portMapping: {{port: 8080, protocol: http}}}}]
  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}
  proxy: {{ingressPort: {upstream}}}
---
kind: VirtualService
meshName: r
virtualServiceName: {HOST}
spec: {{provider: {{virtualRouter: {{virtualRouterName: svc}}}}}}
---
kind: VirtualRouter
meshName: r
virtualRouterName: svc
spec: {{listeners: [{{portMapping: {{port: 80, protocol: http}}}}]}}
---
kind: Route
meshName: r
virtualRouterName: svc
routeName: all
spec:
  priority: 10
  httpRoute:
    match: {{prefix: /}}
    action: {{weightedTargets: [{{virtualNode: app, weight: 1}}]}}
"#
    );
    if extra_route {
        m.push_str(
            r#"---
kind: Route
meshName: r
virtualRouterName: svc
routeName: extra
spec:
  priority: 1
  httpRoute:
    match: {prefix: /extra}
    action: {weightedTargets: [{virtualNode: app, weight: 1}]}
"#,
        );
    }
    m
}

/// Serialises the scenarios: they share two cores and real processes.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn failover(mode: XdsMode) {
    let _one = SERIAL.lock().await;
    let work = tempfile::tempdir().unwrap();
    let (egress, app) = (free_port(), free_port());
    let _upstream = Upstream::start(app, "app", 0).await;
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(egress, app, false));
    let drain = ["--drain-timeout", "2s"];
    let mut replicas: Vec<Replica> = (0..3)
        .map(|_| Replica::new(dir.path(), work.path(), &drain))
        .collect();
    for r in &mut replicas {
        r.start();
    }
    for r in &replicas {
        r.wait_ready().await;
    }
    // Every replica serves the node the same versions (content hashes, nothing per process).
    let mut versions = Vec::new();
    for r in &replicas {
        versions.push(r.get_json(&format!("/resources?node={NODE}")).await["versions"].clone());
    }
    assert!(
        versions.windows(2).all(|w| w[0] == w[1]),
        "replicas disagree: {versions:?}"
    );

    let refs: Vec<&Replica> = replicas.iter().collect();
    let envoy = envoy_for(NODE, &refs, mode, work.path()).await;
    let mut on = wait_placed(&replicas, "initial sync", |on| !on.is_empty()).await;
    let traffic = Traffic::start(egress, HOST);
    let t = Instant::now();
    while traffic.ok.load(std::sync::atomic::Ordering::Relaxed) < 20 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no traffic through Envoy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let baseline = updates(&envoy).await;
    let delta = matches!(mode, XdsMode::AdsDelta | XdsMode::XdsDelta);
    let held = envoy_versions(&envoy).await;
    assert_in_sync(&envoy, &replicas, delta).await;
    println!("{mode:?}: baseline updates {baseline:?}, streams on replicas {on:?}");
    for round in 0..3 {
        let victim = on[0];
        let how = if round % 2 == 0 { "SIGTERM" } else { "SIGKILL" };
        let goaways = envoy
            .stat("cluster.meshplane_xds.upstream_cx_close_notify")
            .await;
        if round % 2 == 0 {
            let took = replicas[victim].terminate();
            println!("{mode:?} round {round}: replica {victim} drained and exited in {took:?}");
            assert!(
                took < Duration::from_millis(3500),
                "exit took {took:?} with --drain-timeout 2s"
            );
            // The drain told the Envoy to go elsewhere: HTTP/2 GOAWAY on its connection(s).
            let t = Instant::now();
            while envoy
                .stat("cluster.meshplane_xds.upstream_cx_close_notify")
                .await
                <= goaways
            {
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "no GOAWAY reached Envoy"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            replicas[victim].kill();
        }
        on = wait_placed(&replicas, "reconnect", |on| {
            !on.is_empty() && !on.contains(&victim)
        })
        .await;
        // Envoy keeps this gauge for its ADS stream (per-type streams: the replicas' reports above).
        if matches!(mode, XdsMode::Ads | XdsMode::AdsDelta) {
            assert!(connected(&envoy).await, "Envoy's ADS stream reconnected");
        }
        let now = updates(&envoy).await;
        assert_eq!(
            now, baseline,
            "{mode:?} round {round} ({how} of replica {victim}): Envoy re-applied configuration"
        );
        println!("{mode:?} round {round}: {how} replica {victim}, Envoy moved to {on:?}, updates unchanged");
        replicas[victim].start();
        replicas[victim].wait_ready().await;
    }
    assert_in_sync(&envoy, &replicas, delta).await;
    assert_eq!(
        envoy_versions(&envoy).await,
        held,
        "Envoy's versions changed"
    );
    let (ok, errors) = traffic.stop().await;
    println!("{mode:?}: {ok} requests, {} failed", errors.len());
    assert!(
        errors.is_empty(),
        "{} failed requests: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_ads_moves_between_replicas_without_a_re_push() {
    failover(XdsMode::Ads).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_ads_moves_between_replicas_without_a_re_push() {
    failover(XdsMode::AdsDelta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_type_streams_move_between_replicas_without_a_re_push() {
    failover(XdsMode::Xds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_type_delta_streams_move_between_replicas_without_a_re_push() {
    failover(XdsMode::XdsDelta).await;
}

/// Every replica's `--xds-max-stream-age` closes the Envoy's stream: without any replica going
/// away, the Envoy moves between them, and is sent nothing new each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_stream_age_moves_envoys_between_replicas_without_a_re_push() {
    let _one = SERIAL.lock().await;
    let work = tempfile::tempdir().unwrap();
    let (egress, app) = (free_port(), free_port());
    let _upstream = Upstream::start(app, "app", 0).await;
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(egress, app, false));
    let args = ["--xds-max-stream-age", "2s"];
    let mut replicas: Vec<Replica> = (0..3)
        .map(|_| Replica::new(dir.path(), work.path(), &args))
        .collect();
    for r in &mut replicas {
        r.start();
    }
    for r in &replicas {
        r.wait_ready().await;
    }
    let refs: Vec<&Replica> = replicas.iter().collect();
    let envoy = envoy_for(NODE, &refs, XdsMode::Ads, work.path()).await;
    let first = wait_placed(&replicas, "initial sync", |on| !on.is_empty()).await;
    let traffic = Traffic::start(egress, HOST);
    let baseline = updates(&envoy).await;
    let mut seen: std::collections::BTreeSet<usize> = first.iter().copied().collect();
    let t = Instant::now();
    while seen.len() < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "Envoy stayed on {seen:?}"
        );
        let (on, _) = placement(&replicas).await;
        seen.extend(on);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_placed(&replicas, "settled", |on| on.len() == 1).await;
    let mut aged = 0.0;
    for r in &replicas {
        aged += r.metric("meshplane_xds_streams_aged_total").await;
    }
    println!(
        "max stream age 2s: Envoy visited replicas {seen:?} in {:?}; {aged} streams aged out",
        t.elapsed()
    );
    assert!(aged >= 2.0, "streams closed by age: {aged}");
    assert_eq!(
        updates(&envoy).await,
        baseline,
        "Envoy re-applied configuration"
    );
    assert_in_sync(&envoy, &replicas, false).await;
    let (ok, errors) = traffic.stop().await;
    println!("max stream age: {ok} requests, {} failed", errors.len());
    assert!(
        errors.is_empty(),
        "failed requests: {:?}",
        &errors[..errors.len().min(5)]
    );
}

/// A replica that starts while its files are invalid serves nothing: `/readyz` stays 503, the
/// Envoy that reconnects to it is sent nothing and keeps serving traffic with what it has; once
/// the files are fixed (with a change) it gets the new configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_starting_on_broken_files_serves_nothing_until_they_are_fixed() {
    let _one = SERIAL.lock().await;
    let work = tempfile::tempdir().unwrap();
    let (egress, app) = (free_port(), free_port());
    let _upstream = Upstream::start(app, "app", 0).await;
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(egress, app, false));
    let mut replica = Replica::new(dir.path(), work.path(), &[]);
    replica.start();
    replica.wait_ready().await;
    let replicas = std::slice::from_mut(&mut replica);
    let envoy = envoy_for(NODE, &[&replicas[0]], XdsMode::Ads, work.path()).await;
    wait_placed(replicas, "initial sync", |on| !on.is_empty()).await;
    let traffic = Traffic::start(egress, HOST);
    let baseline = updates(&envoy).await;
    let held = envoy_versions(&envoy).await;

    replicas[0].kill();
    dir.write(
        "broken.yaml",
        "kind: VirtualNode\nmeshName: r\nvirtualNodeName: [broken\n",
    );
    replicas[0].start();
    let t = Instant::now();
    while replicas[0].streams_of(NODE).await.is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "Envoy never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Some time with the broken files: never ready, nothing sent, Envoy unchanged.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        assert_eq!(replicas[0].readyz().await, 503, "ready on broken files");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for s in replicas[0].streams_of(NODE).await {
        for (ty, r) in s["types"].as_object().into_iter().flatten() {
            assert_eq!(r["state"], "NOT SENT", "{ty} sent from broken files: {r}");
        }
    }
    assert_eq!(updates(&envoy).await, baseline, "Envoy was sent something");
    assert_eq!(envoy_versions(&envoy).await, held);
    let during = traffic.ok.load(std::sync::atomic::Ordering::Relaxed);

    std::fs::remove_file(dir.path().join("broken.yaml")).unwrap();
    dir.write_and_rename("mesh.yaml", &mesh(egress, app, true));
    replicas[0].wait_ready().await;
    wait_placed(replicas, "sync after the fix", |on| !on.is_empty()).await;
    let after = updates(&envoy).await;
    assert!(after.rds > baseline.rds, "the fix reached Envoy: {after:?}");
    assert_in_sync(&envoy, replicas, false).await;
    let (ok, errors) = traffic.stop().await;
    println!(
        "broken start: {during} requests before the fix, {ok} in all, {} failed",
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "failed requests: {:?}",
        &errors[..errors.len().min(5)]
    );
}
