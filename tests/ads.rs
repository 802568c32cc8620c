//! gRPC integration tests: a Rust ADS client against an in-process meshplane serving a real mesh dir.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use support::*;

const QUIET: Duration = Duration::from_millis(400);
const FRONTEND: &str = "mesh/demo/virtualNode/frontend";

fn demo() -> MeshDir {
    MeshDir::copy_of(&repo_path("examples/demo"))
}

#[tokio::test]
async fn initial_push_then_ack_is_quiet() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let r = c.recv().await;
    assert_eq!(r.type_url, CDS);
    assert_eq!(
        names_of(&r),
        vec![
            "cds_egress_demo_backend-v1_http_9081",
            "cds_egress_demo_backend-v2_http_9082",
            "cds_ingress_demo_frontend_http_8080"
        ]
    );
    assert!(!r.version_info.is_empty() && !r.nonce.is_empty());
    c.ack(&r, &[]).await;
    assert!(
        c.recv_within(QUIET).await.is_none(),
        "an ACK must not trigger a push"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn full_subscription_in_envoy_order() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let cds = c.recv().await;
    c.ack(&cds, &[]).await;
    let eds_names = [
        "cds_egress_demo_backend-v1_http_9081",
        "cds_egress_demo_backend-v2_http_9082",
    ];
    c.request(EDS, &eds_names, "", "").await;
    let eds = c.recv().await;
    assert_eq!(eds.type_url, EDS);
    assert_eq!(names_of(&eds), eds_names);
    c.ack(&eds, &eds_names).await;
    c.request(LDS, &[], "", "").await;
    let lds = c.recv().await;
    assert_eq!(
        names_of(&lds),
        vec!["lds_egress_127.0.0.1_15001", "lds_ingress_0.0.0.0_15000"]
    );
    c.ack(&lds, &[]).await;
    let rds_names = ["rds_egress_http_15001", "rds_ingress_http_8080"];
    c.request(RDS, &rds_names, "", "").await;
    let rds = c.recv().await;
    assert_eq!(names_of(&rds), rds_names);
    server.shutdown().await;
}

#[tokio::test]
async fn nack_is_recorded_and_not_resent() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let r = c.recv().await;
    c.nack(&r, "", &[]).await;
    assert!(
        c.recv_within(QUIET).await.is_none(),
        "the rejected version must not be resent"
    );
    assert_eq!(server.metrics.nacks.load(Ordering::Relaxed), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn stale_nonce_is_ignored() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let r = c.recv().await;
    c.request(CDS, &[], &r.version_info, "not-a-nonce-we-sent")
        .await;
    assert!(c.recv_within(QUIET).await.is_none());
    assert_eq!(server.metrics.stale.load(Ordering::Relaxed), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn reconnect_gets_the_same_versions_and_a_restart_too() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let first = c.recv().await;
    drop(c);
    // Reconnecting with the version it holds (as Envoy does): nothing to resend.
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], &first.version_info, "").await;
    assert!(c.recv_within(QUIET).await.is_none(), "resent what it holds");
    drop(c);
    // Without a version (a client that lost its state): everything again, at the same version.
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let again = c.recv().await;
    assert_eq!(again.version_info, first.version_info);
    assert_eq!(again.resources, first.resources);
    server.shutdown().await;

    // A restarted server hands out the same content-hash versions.
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    assert_eq!(c.recv().await.version_info, first.version_info);
    server.shutdown().await;
}

async fn subscribed_rds(
    server: &meshplane::app::Server,
) -> (
    AdsClient,
    envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse,
) {
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(RDS, &["rds_egress_http_15001"], "", "").await;
    let r = c.recv().await;
    c.ack(&r, &["rds_egress_http_15001"]).await;
    (c, r)
}

#[tokio::test]
async fn file_edit_pushes_new_routes() {
    let dir = demo();
    let server = start(dir.path()).await;
    let (mut c, first) = subscribed_rds(&server).await;
    let text = dir
        .read("router.yaml")
        .replace("weight: 90", "weight: 50")
        .replace("weight: 10", "weight: 50");
    dir.write_and_rename("router.yaml", &text);
    let pushed = c.recv().await;
    assert_eq!(pushed.type_url, RDS);
    assert_ne!(pushed.version_info, first.version_info);
    server.shutdown().await;
}

#[tokio::test]
async fn unchanged_resave_pushes_nothing() {
    let dir = demo();
    let server = start(dir.path()).await;
    let (mut c, _) = subscribed_rds(&server).await;
    let before = server.pipeline.status().reloads;
    let text = dir.read("router.yaml");
    dir.write("router.yaml", &text);
    eventually("reload", Duration::from_secs(5), || {
        server.pipeline.status().reloads > before
    })
    .await;
    assert!(
        c.recv_within(QUIET).await.is_none(),
        "same content, same version: nothing to push"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_edit_keeps_the_last_good_config() {
    let dir = demo();
    let server = start(dir.path()).await;
    let (mut c, _) = subscribed_rds(&server).await;
    let text = dir.read("router.yaml").replace("weight: 90", "weight: 900");
    dir.write("router.yaml", &text);
    eventually("rejected reload", Duration::from_secs(5), || {
        server.pipeline.status().reloads_rejected == 1
    })
    .await;
    assert!(c.recv_within(QUIET).await.is_none());
    {
        let st = server.pipeline.status();
        assert!(st.ready);
        let p = &st.last.problems[0];
        assert_eq!(p.file.to_str(), Some("router.yaml"));
        assert_eq!(
            p.path,
            "route.spec.httpRoute.action.weightedTargets[0].weight"
        );
    }
    // The next valid save is picked up.
    dir.write("router.yaml", &text.replace("weight: 900", "weight: 80"));
    assert_eq!(c.recv().await.type_url, RDS);
    server.shutdown().await;
}

#[tokio::test]
async fn one_burst_of_saves_is_one_reload() {
    let dir = demo();
    let server = start(dir.path()).await;
    let before = server.pipeline.status().reloads;
    let text = dir.read("router.yaml");
    // Write in place, write-and-rename, delete-and-recreate: one burst.
    dir.write("router.yaml", &text);
    dir.write_and_rename("router.yaml", &text.replace("weight: 10", "weight: 11"));
    std::fs::remove_file(dir.path().join("router.yaml")).unwrap();
    dir.write("router.yaml", &text.replace("weight: 10", "weight: 12"));
    eventually("reload", Duration::from_secs(5), || {
        server.pipeline.status().reloads > before
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.pipeline.status().reloads, before + 1);
    assert_eq!(server.pipeline.status().reloads_rejected, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_node_waits_then_gets_its_config() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, "mesh/demo/virtualNode/late").await;
    c.request(CDS, &[], "", "").await;
    assert!(c.recv_within(QUIET).await.is_none());
    dir.write(
        "late.yaml",
        "kind: VirtualNode\nmeshName: demo\nvirtualNodeName: late\nspec:\n  backends: [{virtualService: {virtualServiceName: backend.demo.local}}]\n  proxy: {egressPort: 15031}\n",
    );
    let r = c.recv().await;
    assert_eq!(r.type_url, CDS);
    assert_eq!(r.resources.len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_stuck_envoy_does_not_delay_others() {
    use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
    let dir = demo();
    let server = start(dir.path()).await;
    // The stuck client never reads a response, yet keeps the server sending: its nonces are
    // predictable, so it acknowledges response n blindly with a changed subscription, which asks
    // for response n + 1. The server's sends pile up in the stream's queue and HTTP/2 window until
    // its stream task blocks.
    let mut raw = AggregatedDiscoveryServiceClient::connect(format!("http://{}", server.xds_addr))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<DiscoveryRequest>(1);
    let stuck = tokio::spawn(async move {
        let _unread = raw
            .stream_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
        std::future::pending::<()>().await
    });
    const ASKED: usize = 20_000;
    let feeder = tokio::spawn(async move {
        for n in 0..ASKED {
            let names = if n % 2 == 0 {
                vec!["rds_egress_http_15001".to_string()]
            } else {
                vec![
                    "rds_egress_http_15001".to_string(),
                    "rds_ingress_http_8080".to_string(),
                ]
            };
            let req = DiscoveryRequest {
                type_url: RDS.into(),
                resource_names: names,
                response_nonce: if n == 0 { String::new() } else { n.to_string() },
                node: (n == 0).then(|| envoy_types::pb::envoy::config::core::v3::Node {
                    id: FRONTEND.into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            if tx.send(req).await.is_err() {
                return;
            }
        }
    });
    // Wait until the stuck stream stops getting responses out: back-pressure has built.
    let mut last = 0;
    let mut still = 0;
    while still < 10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let sent = server.metrics.responses.load(Ordering::Relaxed);
        still = if sent == last { still + 1 } else { 0 };
        last = sent;
    }
    assert!(
        (last as usize) < ASKED - 1,
        "the stuck stream never blocked: {last} responses sent"
    );
    println!("stuck stream blocked after {last} unread responses");

    // Another Envoy of the same node still gets every change at once.
    let (mut c, _) = subscribed_rds(&server).await;
    let text = dir.read("router.yaml");
    for w in [20, 30, 40] {
        let saved = std::time::Instant::now();
        dir.write(
            "router.yaml",
            &text.replace("weight: 10", &format!("weight: {w}")),
        );
        let r = c.recv().await;
        assert!(
            saved.elapsed() < Duration::from_secs(2),
            "delayed by the stuck stream"
        );
        c.ack(&r, &["rds_egress_http_15001"]).await;
    }
    feeder.abort();
    stuck.abort();
    eventually("the stuck stream to end", Duration::from_secs(10), || {
        server.registry.len() == 1
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let _ = c.recv().await;
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown completes with a stream open");
    assert!(c.closed_within(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn admin_grpc_status_reports_nodes_and_problems() {
    use meshplane::proto::admin::admin_client::AdminClient;
    let dir = demo();
    let server = start(dir.path()).await;
    let mut admin = AdminClient::connect(format!("http://{}", server.xds_addr))
        .await
        .unwrap();
    let st = admin
        .get_status(meshplane::proto::admin::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(st.ready && st.valid);
    // The demo's three nodes and its gateway.
    assert_eq!(st.nodes.len(), 4);
    server.shutdown().await;
}

/// The aggregated service is served by meshplane's own gRPC glue (small codec buffers): a method it
/// does not have must still get gRPC's UNIMPLEMENTED, as the generated server would answer.
#[tokio::test]
async fn unknown_ads_method_is_unimplemented() {
    let dir = demo();
    let server = support::start(dir.path()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.xds_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/envoy.service.discovery.v3.AggregatedDiscoveryService/NoSuchMethod",
    );
    let status = grpc
        .unary(
            tonic::Request::new(
                envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest::default(),
            ),
            path,
            tonic_prost::ProstCodec::<
                envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest,
                envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse,
            >::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    server.shutdown().await;
}
