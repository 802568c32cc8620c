//! `app::run` on listeners the caller bound, stopped by the caller's shutdown future: it serves
//! xDS and the admin API meanwhile, and once told to stop it ends within the drain timeout even
//! while an Envoy keeps its stream open.

mod support;

use std::time::{Duration, Instant};

use meshplane::app::{run, Listeners};
use support::{repo_path, test_config, AdsClient, MeshDir, CDS};

#[tokio::test]
async fn run_serves_on_the_callers_listeners_until_its_shutdown_then_drains() {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let mut cfg = test_config(dir.path());
    cfg.limits.drain_timeout = Duration::from_millis(500);
    let listeners = Listeners::bind(&cfg).await.expect("bind");
    let xds = listeners.xds.local_addr().unwrap();
    let admin = listeners.admin.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(cfg, listeners, async move {
        let _ = stopped.await;
    }));

    let mut envoy = AdsClient::connect(xds, "mesh/demo/virtualNode/frontend").await;
    envoy.request(CDS, &[], "", "").await;
    let resp = envoy.recv().await;
    assert_eq!(resp.type_url, CDS);
    let ready = tokio::task::spawn_blocking(move || std::net::TcpStream::connect(admin).is_ok())
        .await
        .unwrap();
    assert!(ready, "admin API answers");

    let t = Instant::now();
    stop.send(()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("run ends after its shutdown future");
    done.unwrap().expect("run returns Ok");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "drained in {:?}",
        t.elapsed()
    );
    assert!(
        envoy.closed_within(Duration::from_secs(2)).await,
        "the stream was closed"
    );
}
