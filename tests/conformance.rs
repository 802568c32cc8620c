//! xDS conformance suite: a Rust xDS client drives meshplane through every protocol rule of
//! `docs/xds-protocol.md` §1 that applies to a server, and the bugs of §2 other control planes shipped.
//! Each test is named after the rule (`rule_NN_…`) or the bug (`bug_…`) it checks.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use support::*;

const QUIET: Duration = Duration::from_millis(400);
const FRONTEND: &str = "mesh/demo/virtualNode/frontend";
const V1: &str = "cds_egress_demo_backend-v1_http_9081";
const V2: &str = "cds_egress_demo_backend-v2_http_9082";
const EGRESS_RDS: &str = "rds_egress_http_15001";

fn demo() -> MeshDir {
    MeshDir::copy_of(&repo_path("examples/demo"))
}

fn set_weights(dir: &MeshDir, w1: u32, w2: u32) {
    let text = dir.read("router.yaml");
    let text = text
        .lines()
        .map(|l| {
            if l.contains("virtualNode: backend-v1, weight:") {
                format!("          - {{virtualNode: backend-v1, weight: {w1}}}")
            } else if l.contains("virtualNode: backend-v2, weight:") {
                format!("          - {{virtualNode: backend-v2, weight: {w2}}}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    dir.write_and_rename("router.yaml", &text);
}

/// Drops backend-v2 from the route (and so its cluster from the frontend), or puts it back.
fn set_v2_present(dir: &MeshDir, present: bool) {
    let text = dir.read("router.yaml");
    let v2 = "          - {virtualNode: backend-v2, weight: 10}\n";
    let text = if present {
        if text.contains("backend-v2") {
            text
        } else {
            text.replace("weight: 90}\n", &format!("weight: 90}}\n{v2}"))
        }
    } else {
        text.replace(v2, "")
    };
    dir.write_and_rename("router.yaml", &text);
}

// ------------------------------------------------------------------ SotW

#[tokio::test]
async fn rule_01_ads_requests_must_carry_a_type_url() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.send(DiscoveryRequest::default()).await;
    assert!(
        c.closed_within(Duration::from_secs(5)).await,
        "a request without type URL ends the stream"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rule_03_versions_are_per_type() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let cds = c.recv().await;
    c.ack(&cds, &[]).await;
    c.request(RDS, &[EGRESS_RDS], "", "").await;
    let rds = c.recv().await;
    c.ack(&rds, &[EGRESS_RDS]).await;
    set_weights(&dir, 70, 30);
    let pushed = c.recv().await;
    assert_eq!(pushed.type_url, RDS, "only the route type changed");
    assert_ne!(pushed.version_info, rds.version_info);
    c.ack(&pushed, &[EGRESS_RDS]).await;
    assert!(
        c.recv_within(QUIET).await.is_none(),
        "CDS version is untouched by a route edit"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rule_05_a_nonce_is_valid_only_within_its_stream() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut a = AdsClient::connect(server.xds_addr, FRONTEND).await;
    a.request(CDS, &[], "", "").await;
    let r = a.recv().await;
    let mut b = AdsClient::connect(server.xds_addr, FRONTEND).await;
    b.request(CDS, &[], &r.version_info, &r.nonce).await;
    assert!(
        b.recv_within(QUIET).await.is_none(),
        "stream B never sent that nonce: stale"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rule_11_sotw_empty_names_after_names_means_nothing_not_wildcard() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(LDS, &["lds_egress_127.0.0.1_15001"], "", "")
        .await;
    let r = c.recv().await;
    assert_eq!(names_of(&r), ["lds_egress_127.0.0.1_15001"]);
    c.request(LDS, &[], &r.version_info, &r.nonce).await;
    let r = c.recv().await;
    assert!(
        r.resources.is_empty(),
        "unsubscribed from everything: {:?}",
        names_of(&r)
    );
    c.ack(&r, &[]).await;
    c.request(LDS, &["*"], &r.version_info, &r.nonce).await;
    let r = c.recv().await;
    assert_eq!(r.resources.len(), 2, "explicit wildcard");
    server.shutdown().await;
}

#[tokio::test]
async fn rule_12_sotw_newly_requested_names_are_sent() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(EDS, &[V1], "", "").await;
    let r = c.recv().await;
    assert_eq!(names_of(&r), [V1]);
    c.request(EDS, &[V1, V2], &r.version_info, &r.nonce).await;
    let r = c.recv().await;
    assert_eq!(
        names_of(&r),
        [V1, V2],
        "the full requested set, at the same version"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rule_13_requested_but_missing_names_are_sent_when_they_appear() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    let later = "cds_egress_demo_backend-v3_http_9083";
    c.request(EDS, &[later], "", "").await;
    let r = c.recv().await;
    assert!(r.resources.is_empty());
    c.ack(&r, &[later]).await;
    dir.write(
        "v3.yaml",
        "kind: VirtualNode\nmeshName: demo\nvirtualNodeName: backend-v3\nspec:\n  listeners: [{portMapping: {port: 9083, protocol: http}}]\n  serviceDiscovery: {static: {endpoints: [{address: 127.0.0.1}]}}\n  proxy: {ingressPort: 15030, egressPort: 15031}\n",
    );
    dir.write(
        "router.yaml",
        &dir.read("router.yaml").replace(
            "weight: 10}",
            "weight: 5}\n          - {virtualNode: backend-v3, weight: 5}",
        ),
    );
    let r = c.recv().await;
    assert_eq!(names_of(&r), [later]);
    server.shutdown().await;
}

#[tokio::test]
async fn rule_16_sotw_cds_and_lds_carry_the_full_set() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let r = c.recv().await;
    assert_eq!(r.resources.len(), 3);
    c.ack(&r, &[]).await;
    set_v2_present(&dir, false);
    // The removal of v2 reaches CDS as a full set without it (after the routes moved off it).
    let mut last = None;
    for _ in 0..4 {
        let Some(r) = c.recv_within(Duration::from_secs(3)).await else {
            break;
        };
        c.ack(&r, &[]).await;
        last = Some(r);
    }
    let last = last.expect("a CDS push");
    assert_eq!(
        names_of(&last),
        [
            "cds_egress_demo_backend-v1_http_9081",
            "cds_ingress_demo_frontend_http_8080"
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rule_20_eds_answered_after_every_cds_change_even_with_unchanged_endpoints() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let cds = c.recv().await;
    c.ack(&cds, &[]).await;
    c.request(EDS, &[V1, V2], "", "").await;
    let eds = c.recv().await;
    c.ack(&eds, &[V1, V2]).await;
    // Change a cluster (outlier detection of backend-v1) but not its endpoints.
    dir.write(
        "backend.yaml",
        &dir.read("backend.yaml")
            .replace("maxServerErrors: 5", "maxServerErrors: 6"),
    );
    let cds2 = c.recv().await;
    assert_eq!(cds2.type_url, CDS);
    c.ack(&cds2, &[]).await;
    let eds2 = c.recv().await;
    assert_eq!(eds2.type_url, EDS, "EDS follows the cluster update");
    assert_eq!(
        eds2.version_info, eds.version_info,
        "same endpoints, sent again"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rule_20a_eds_for_new_clusters_answered_before_the_cds_ack() {
    // Over ADS, Envoy withholds the ACK of a CDS update until the clusters it warms have their
    // endpoints, and asks for those endpoints first. A server that holds EDS until the CDS ACK
    // stalls both until Envoy's 15 s initial-fetch timeout: every canary step that adds a target.
    let dir = demo();
    set_v2_present(&dir, false);
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let cds = c.recv().await;
    assert_eq!(names_of(&cds).iter().filter(|n| *n == V2).count(), 0);
    c.ack(&cds, &[]).await;
    c.request(EDS, &[V1], "", "").await;
    let eds = c.recv().await;
    c.ack(&eds, &[V1]).await;
    set_v2_present(&dir, true);
    let cds2 = c.recv().await;
    assert_eq!(cds2.type_url, CDS);
    assert!(
        names_of(&cds2).iter().any(|n| n == V2),
        "v2's cluster is new"
    );
    // Like Envoy: subscribe to the new cluster's endpoints, echoing the last EDS nonce processed,
    // and do not ACK the CDS response.
    c.request(EDS, &[V1, V2], &eds.version_info, &eds.nonce)
        .await;
    loop {
        let r = c
            .recv_within(Duration::from_secs(3))
            .await
            .expect("endpoints for the new cluster, with CDS unacknowledged");
        assert_eq!(r.type_url, EDS, "nothing but EDS until CDS is acknowledged");
        if names_of(&r).iter().any(|n| n == V2) {
            break;
        }
        c.ack(&r, &[V1, V2]).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn rule_22_make_before_break_order_clusters_endpoints_listeners_routes() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    let names_for = |t: &str| -> Vec<&'static str> {
        match t {
            EDS => vec![V1, V2],
            RDS => vec![EGRESS_RDS, "rds_ingress_http_8080"],
            _ => vec![],
        }
    };
    for t in [CDS, EDS, LDS, RDS] {
        c.request(t, &names_for(t), "", "").await;
    }
    while let Some(r) = c.recv_within(QUIET).await {
        c.ack(&r, &names_for(&r.type_url)).await;
    }
    // One save burst that changes a cluster, its endpoints, a listener and the routes.
    dir.write(
        "backend.yaml",
        &dir.read("backend.yaml")
            .replacen("maxServerErrors: 5", "maxServerErrors: 6", 1)
            .replacen(
                "endpoints: [{address: 127.0.0.1}]",
                "endpoints: [{address: 127.0.0.2}]",
                1,
            ),
    );
    dir.write(
        "frontend.yaml",
        &dir.read("frontend.yaml")
            .replace("ingressPort: 15000", "ingressPort: 15005"),
    );
    set_weights(&dir, 75, 25);
    let mut order = Vec::new();
    while let Some(r) = c.recv_within(QUIET).await {
        order.push(
            r.type_url
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_string(),
        );
        c.ack(&r, &names_for(&r.type_url)).await;
    }
    assert_eq!(
        order,
        [
            "Cluster",
            "ClusterLoadAssignment",
            "Listener",
            "RouteConfiguration"
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bug_remove_and_readd_a_cluster_gets_endpoints_again() {
    // go-control-plane #583: after remove + re-add, Envoy re-requests EDS with the old version and
    // the server never answered, leaving the cluster with no endpoints (503).
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let cds = c.recv().await;
    c.ack(&cds, &[]).await;
    c.request(EDS, &[V1, V2], "", "").await;
    let eds = c.recv().await;
    c.ack(&eds, &[V1, V2]).await;
    set_v2_present(&dir, false);
    let mut eds_names = vec![V1, V2];
    let mut seen_without = false;
    let mut seen_again = false;
    for _ in 0..12 {
        let Some(r) = c.recv_within(Duration::from_secs(2)).await else {
            if !seen_without {
                continue;
            }
            if !seen_again {
                set_v2_present(&dir, true);
                seen_again = true;
                continue;
            }
            break;
        };
        if r.type_url == CDS {
            let has_v2 = names_of(&r).iter().any(|n| n == V2);
            if !has_v2 {
                seen_without = true;
                eds_names = vec![V1];
            } else if seen_without {
                eds_names = vec![V1, V2];
            }
        }
        if r.type_url == EDS && seen_again && names_of(&r).iter().any(|n| n == V2) {
            server.shutdown().await;
            return; // endpoints for the re-added cluster arrived
        }
        let names: Vec<&str> = if r.type_url == EDS {
            eds_names.clone()
        } else {
            vec![]
        };
        c.ack(&r, &names).await;
        if r.type_url == CDS {
            // Envoy re-requests EDS with its old version after a CDS change.
            c.request(EDS, &eds_names, &eds.version_info, &r.nonce)
                .await;
        }
    }
    panic!("the re-added cluster never got its endpoints (seen_without={seen_without}, readded={seen_again})");
}

#[tokio::test]
async fn bug_eds_request_for_an_unknown_name_is_answered_once_not_looped() {
    // go-control-plane #1319: a non-wildcard request naming a resource not in the cache looped.
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(EDS, &["nope"], "", "").await;
    let r = c.recv().await;
    assert!(r.resources.is_empty());
    c.ack(&r, &["nope"]).await;
    assert!(c.recv_within(QUIET).await.is_none());
    assert_eq!(server.metrics.responses.load(Ordering::Relaxed), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn bug_nack_storm_is_not_answered_with_resends() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], "", "").await;
    let r = c.recv().await;
    for _ in 0..100 {
        c.nack(&r, "", &[]).await;
    }
    assert!(
        c.recv_within(QUIET).await.is_none(),
        "no resend of the rejected version"
    );
    // Every NACK carries the latest nonce: each is counted, none is answered.
    eventually("100 NACKs counted", Duration::from_secs(5), || {
        server.metrics.nacks.load(Ordering::Relaxed) == 100
    })
    .await;
    assert_eq!(server.metrics.responses.load(Ordering::Relaxed), 1);
    // The next version still goes out.
    dir.write(
        "backend.yaml",
        &dir.read("backend.yaml")
            .replace("maxServerErrors: 5", "maxServerErrors: 7"),
    );
    assert_eq!(c.recv().await.type_url, CDS);
    server.shutdown().await;
}

#[tokio::test]
async fn bug_reconnect_churn_leaves_no_streams_behind() {
    let dir = demo();
    let server = start(dir.path()).await;
    for i in 0..100 {
        if i % 2 == 0 {
            let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
            c.request(CDS, &[], "", "").await;
            let _ = c.recv().await;
        } else {
            let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
            c.request(CDS, &[], &[], "").await;
            let _ = c.recv().await;
        }
    }
    eventually("every stream task to end", Duration::from_secs(10), || {
        server.metrics.streams_open.load(Ordering::Relaxed) == 0 && server.registry.is_empty()
    })
    .await;
    assert_eq!(server.metrics.streams_total.load(Ordering::Relaxed), 100);
    server.shutdown().await;
}

#[tokio::test]
async fn bug_a_client_that_never_reads_does_not_hold_up_others_or_leak() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut stuck = AdsClient::connect(server.xds_addr, FRONTEND).await;
    stuck.request(CDS, &[], "", "").await;
    stuck.request(RDS, &[EGRESS_RDS], "", "").await;
    let mut ok = AdsClient::connect(server.xds_addr, FRONTEND).await;
    ok.request(RDS, &[EGRESS_RDS], "", "").await;
    let r = ok.recv().await;
    ok.ack(&r, &[EGRESS_RDS]).await;
    for w in 1..=20 {
        set_weights(&dir, 100 - w, w);
        let r = ok.recv().await;
        ok.ack(&r, &[EGRESS_RDS]).await;
    }
    drop(stuck);
    drop(ok);
    eventually("streams to end", Duration::from_secs(10), || {
        server.registry.is_empty()
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn bug_superseded_response_not_delivered_after_unsubscribe() {
    // go-control-plane #1498: an ordered ADS server delivered a response for a resource the client
    // had just unsubscribed from.
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = AdsClient::connect(server.xds_addr, FRONTEND).await;
    c.request(RDS, &[EGRESS_RDS], "", "").await;
    let r = c.recv().await;
    c.request(RDS, &["rds_ingress_http_8080"], &r.version_info, &r.nonce)
        .await;
    let r = c.recv().await;
    assert_eq!(names_of(&r), ["rds_ingress_http_8080"]);
    c.ack(&r, &["rds_ingress_http_8080"]).await;
    set_weights(&dir, 60, 40); // changes only the egress routes, no longer subscribed
    if let Some(r) = c.recv_within(QUIET).await {
        assert!(
            !names_of(&r).iter().any(|n| n == EGRESS_RDS),
            "unsubscribed route delivered"
        );
    }
    server.shutdown().await;
}

// ------------------------------------------------------------------ delta

#[tokio::test]
async fn rule_07_delta_subscription_changes_honoured_with_a_stale_nonce() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.request(EDS, &[V1], &[], "").await;
    let r = c.recv().await;
    c.request(EDS, &[V2], &[], "not-ours").await;
    c.ack(&r).await;
    let r = c.recv().await;
    assert_eq!(delta_names(&r), [V2]);
    server.shutdown().await;
}

#[tokio::test]
async fn rule_09_delta_nack_keeps_the_last_good_and_is_not_resent() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], &[], "").await;
    let r = c.recv().await;
    let mut nack = DeltaReq {
        type_url: CDS.into(),
        response_nonce: r.nonce.clone(),
        ..Default::default()
    };
    nack.error_detail = Some(envoy_types::pb::google::rpc::Status {
        code: 3,
        message: "no".into(),
        details: vec![],
    });
    c.send(nack).await;
    assert!(c.recv_within(QUIET).await.is_none());
    assert_eq!(server.metrics.nacks.load(Ordering::Relaxed), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn rule_11_delta_wildcard_by_legacy_empty_request_and_by_star() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], &[], "").await;
    assert_eq!(c.recv().await.resources.len(), 3);
    let mut d = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    d.request(LDS, &["*"], &[], "").await;
    assert_eq!(d.recv().await.resources.len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn rule_12_delta_subscribed_names_are_sent_even_if_the_client_has_them() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.request(EDS, &[V1], &[], "").await;
    let r = c.recv().await;
    c.request(EDS, &[V1], &[], &r.nonce).await;
    let r = c.recv().await;
    assert_eq!(delta_names(&r), [V1]);
    server.shutdown().await;
}

#[tokio::test]
async fn rule_14_delta_unsubscribe_needs_no_response() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.request(EDS, &[V1, V2], &[], "").await;
    let r = c.recv().await;
    c.ack(&r).await;
    c.request(EDS, &[], &[V2], "").await;
    assert!(c.recv_within(QUIET).await.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn rule_15_delta_reconnect_with_initial_versions_sends_only_differences() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], &[], "").await;
    let r = c.recv().await;
    let versions: std::collections::HashMap<String, String> = r
        .resources
        .iter()
        .map(|x| (x.name.clone(), x.version.clone()))
        .collect();
    drop(c);
    dir.write(
        "backend.yaml",
        &dir.read("backend.yaml")
            .replace("maxServerErrors: 5", "maxServerErrors: 8"),
    );
    eventually("reload", Duration::from_secs(5), || {
        server.pipeline.status().reloads >= 2
    })
    .await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.send(DeltaReq {
        type_url: CDS.into(),
        initial_resource_versions: versions,
        ..Default::default()
    })
    .await;
    let r = c.recv().await;
    assert_eq!(delta_names(&r), [V1], "only the changed cluster");
    server.shutdown().await;
}

#[tokio::test]
async fn rule_17_delta_removed_resources_for_deleted_and_unknown_names() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.request(EDS, &[V1, "unknown"], &[], "").await;
    let r = c.recv().await;
    assert_eq!(delta_names(&r), [V1]);
    assert_eq!(r.removed_resources, ["unknown"]);
    c.ack(&r).await;
    let mut cds = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    cds.request(CDS, &[], &[], "").await;
    let first = cds.recv().await;
    cds.ack(&first).await;
    set_v2_present(&dir, false);
    let r = cds.recv().await;
    assert_eq!(r.removed_resources, [V2]);
    server.shutdown().await;
}

#[tokio::test]
async fn bug_delta_wildcard_transitions() {
    // go-control-plane #559: `*` plus named subscriptions, and leaving wildcard.
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.request(RDS, &[EGRESS_RDS], &[], "").await;
    let r = c.recv().await;
    assert_eq!(delta_names(&r), [EGRESS_RDS]);
    c.request(RDS, &["*"], &[], &r.nonce).await;
    let r = c.recv().await;
    assert_eq!(
        delta_names(&r),
        ["rds_ingress_http_8080"],
        "wildcard adds what was missing"
    );
    c.request(RDS, &[], &["*"], &r.nonce).await;
    assert!(
        c.recv_within(QUIET).await.is_none(),
        "leaving wildcard needs no response"
    );
    set_weights(&dir, 55, 45);
    let r = c.recv().await;
    assert_eq!(
        delta_names(&r),
        [EGRESS_RDS],
        "the explicit name still gets updates"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bug_delta_only_changed_resources_on_update() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.request(RDS, &[EGRESS_RDS, "rds_ingress_http_8080"], &[], "")
        .await;
    let r = c.recv().await;
    assert_eq!(r.resources.len(), 2);
    c.ack(&r).await;
    set_weights(&dir, 30, 70);
    let r = c.recv().await;
    assert_eq!(delta_names(&r), [EGRESS_RDS]);
    server.shutdown().await;
}

#[tokio::test]
async fn rule_20a_delta_eds_for_new_clusters_answered_before_the_cds_ack() {
    let dir = demo();
    set_v2_present(&dir, false);
    let server = start(dir.path()).await;
    let mut c = DeltaClient::connect(server.xds_addr, FRONTEND).await;
    c.request(CDS, &[], &[], "").await;
    let cds = c.recv().await;
    c.ack(&cds).await;
    c.request(EDS, &[V1], &[], "").await;
    let eds = c.recv().await;
    c.ack(&eds).await;
    set_v2_present(&dir, true);
    let cds2 = c.recv().await;
    assert_eq!(cds2.type_url, CDS);
    assert!(delta_names(&cds2).iter().any(|n| n == V2));
    c.request(EDS, &[V2], &[], &eds.nonce).await;
    let r = c
        .recv_within(Duration::from_secs(3))
        .await
        .expect("endpoints for the new cluster, with CDS unacknowledged");
    assert_eq!(r.type_url, EDS);
    assert_eq!(delta_names(&r), [V2]);
    server.shutdown().await;
}
