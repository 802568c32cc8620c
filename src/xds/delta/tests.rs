//! Unit tests of the delta state machine: only what differs goes out, subscriptions (even with a
//! stale nonce), removals, reconnects with initial versions, NACKs, and the ordering rules it shares
//! with SotW.

use super::super::{Resource, TypeSnapshot, TYPE_ORDER};
use super::*;
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status;
use std::sync::Arc;

fn ts(items: &[(&str, &str)], t: usize) -> TypeSnapshot {
    TypeSnapshot::new(
        items
            .iter()
            .map(|(n, body)| {
                let any = Any {
                    type_url: TYPE_ORDER[t].into(),
                    value: body.as_bytes().to_vec(),
                };
                (n.to_string(), Arc::new(Resource::new(n.to_string(), any)))
            })
            .collect(),
    )
}

fn snap(
    c: &[(&str, &str)],
    e: &[(&str, &str)],
    l: &[(&str, &str)],
    r: &[(&str, &str)],
) -> Snapshot {
    Snapshot::new([ts(c, 0), ts(e, 1), ts(l, 2), ts(r, 3)])
}

fn req(t: usize, sub: &[&str], unsub: &[&str], nonce: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: TYPE_ORDER[t].into(),
        resource_names_subscribe: sub.iter().map(|s| s.to_string()).collect(),
        resource_names_unsubscribe: unsub.iter().map(|s| s.to_string()).collect(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

fn names(r: &DeltaDiscoveryResponse) -> Vec<&str> {
    r.resources.iter().map(|r| r.name.as_str()).collect()
}

impl DeltaState {
    fn responses_alone(&mut self, snap: Option<&Snapshot>) -> Vec<DeltaDiscoveryResponse> {
        self.responses(snap, &Peers::default())
            .iter()
            .map(Outgoing::to_delta)
            .collect()
    }
}

#[test]
fn wildcard_then_only_changes() {
    let mut st = DeltaState::new();
    st.on_request(&req(0, &[], &[], ""));
    let out = st.responses_alone(Some(&snap(&[("a", "1"), ("b", "1")], &[], &[], &[])));
    assert_eq!(names(&out[0]), ["a", "b"]);
    st.on_request(&req(0, &[], &[], &out[0].nonce));
    let out = st.responses_alone(Some(&snap(&[("a", "2"), ("b", "1")], &[], &[], &[])));
    assert_eq!(names(&out[0]), ["a"], "only the changed resource");
    st.on_request(&req(0, &[], &[], &out[0].nonce));
    let out = st.responses_alone(Some(&snap(&[("a", "2")], &[], &[], &[])));
    assert!(out[0].resources.is_empty());
    assert_eq!(out[0].removed_resources, ["b"]);
}

#[test]
fn explicit_star_and_mixed_subscriptions() {
    let s = snap(&[], &[], &[], &[("r1", "1"), ("r2", "1"), ("r3", "1")]);
    let mut st = DeltaState::new();
    st.on_request(&req(3, &["r1"], &[], ""));
    let out = st.responses_alone(Some(&s));
    assert_eq!(names(&out[0]), ["r1"]);
    st.on_request(&req(3, &["*"], &[], &out[0].nonce));
    let out = st.responses_alone(Some(&s));
    assert_eq!(names(&out[0]), ["r2", "r3"], "wildcard adds the rest");
    // Unsubscribing an explicit name still covered by wildcard sends it again.
    st.on_request(&req(3, &[], &["r1"], &out[0].nonce));
    let out = st.responses_alone(Some(&s));
    assert_eq!(names(&out[0]), ["r1"]);
}

#[test]
fn unknown_subscribed_names_are_removed_once_and_sent_when_they_appear() {
    let mut st = DeltaState::new();
    st.on_request(&req(1, &["x"], &[], ""));
    let out = st.responses_alone(Some(&snap(&[], &[], &[], &[])));
    assert_eq!(out[0].removed_resources, ["x"]);
    st.on_request(&req(1, &[], &[], &out[0].nonce));
    assert!(
        st.responses_alone(Some(&snap(&[], &[], &[], &[])))
            .is_empty(),
        "said once"
    );
    let out = st.responses_alone(Some(&snap(&[], &[("x", "1")], &[], &[])));
    assert_eq!(names(&out[0]), ["x"]);
}

#[test]
fn reconnect_with_initial_versions_sends_only_what_differs() {
    let s = snap(&[("a", "1"), ("b", "1")], &[], &[], &[]);
    let mut first = DeltaState::new();
    first.on_request(&req(0, &[], &[], ""));
    let out = first.responses_alone(Some(&s));
    let a_version = out[0].resources[0].version.clone();
    let mut st = DeltaState::new();
    let mut r = req(0, &[], &[], "");
    r.initial_resource_versions.insert("a".into(), a_version);
    r.initial_resource_versions
        .insert("gone".into(), "v0".into());
    st.on_request(&r);
    let out = st.responses_alone(Some(&s));
    assert_eq!(names(&out[0]), ["b"]);
    assert_eq!(out[0].removed_resources, ["gone"]);
}

#[test]
fn subscription_changes_count_even_with_a_stale_nonce() {
    let s = snap(&[], &[("a", "1"), ("b", "1")], &[], &[]);
    let mut st = DeltaState::new();
    st.on_request(&req(1, &["a"], &[], ""));
    let out = st.responses_alone(Some(&s));
    assert_eq!(
        st.on_request(&req(1, &["b"], &[], "stale")),
        RequestKind::Stale
    );
    st.on_request(&req(1, &[], &[], &out[0].nonce));
    let out = st.responses_alone(Some(&s));
    assert_eq!(names(&out[0]), ["b"]);
}

#[test]
fn nack_is_not_resent() {
    let s = snap(&[("a", "1")], &[], &[], &[]);
    let mut st = DeltaState::new();
    st.on_request(&req(0, &[], &[], ""));
    let out = st.responses_alone(Some(&s));
    let mut n = req(0, &[], &[], &out[0].nonce);
    n.error_detail = Some(Status {
        code: 3,
        message: "no".into(),
        details: vec![],
    });
    assert!(matches!(st.on_request(&n), RequestKind::Nack { .. }));
    assert!(st.responses_alone(Some(&s)).is_empty());
}

#[test]
fn updated_clusters_get_fresh_endpoints_and_removed_clusters_wait_for_routes() {
    let mut st = DeltaState::new();
    st.on_request(&req(0, &[], &[], ""));
    st.on_request(&req(1, &["a", "b"], &[], ""));
    st.on_request(&req(3, &["r"], &[], ""));
    let s1 = snap(
        &[("a", "1"), ("b", "1")],
        &[("a", "e"), ("b", "e")],
        &[],
        &[("r", "uses a,b")],
    );
    let settle = |st: &mut DeltaState, s: &Snapshot| {
        let mut log = Vec::new();
        loop {
            let out = st.responses_alone(Some(s));
            if out.is_empty() {
                return log;
            }
            for r in out {
                let t = type_index(&r.type_url).unwrap();
                log.push((t, names(&r).join(","), r.removed_resources.join(",")));
                st.on_request(&req(t, &[], &[], &r.nonce));
            }
        }
    };
    settle(&mut st, &s1);
    // Cluster a changes, b is dropped, the route moves off b; endpoints unchanged.
    let s2 = snap(&[("a", "2")], &[("a", "e")], &[], &[("r", "uses a")]);
    let log = settle(&mut st, &s2);
    assert_eq!(
        log,
        vec![
            (0, "a".to_string(), "".to_string()),
            (1, "a".to_string(), "".to_string()),
            (3, "r".to_string(), "".to_string()),
            (0, "".to_string(), "b".to_string()),
            (1, "".to_string(), "b".to_string()),
        ]
    );
}

#[test]
fn endpoints_of_a_new_cluster_go_out_before_cds_is_acknowledged() {
    // Over ADS, Envoy ACKs a CDS update only once the clusters it warms have endpoints.
    let mut st = DeltaState::new();
    st.on_request(&req(0, &[], &[], ""));
    st.on_request(&req(1, &["a"], &[], ""));
    let s1 = snap(&[("a", "1")], &[("a", "e")], &[], &[]);
    for r in st.responses_alone(Some(&s1)) {
        st.on_request(&req(type_index(&r.type_url).unwrap(), &[], &[], &r.nonce));
    }
    let s2 = snap(
        &[("a", "1"), ("b", "1")],
        &[("a", "e"), ("b", "e")],
        &[],
        &[],
    );
    let out = st.responses_alone(Some(&s2));
    assert_eq!(names(&out[0]), ["b"]);
    // Envoy subscribes to b's endpoints, CDS still unacknowledged.
    st.on_request(&req(1, &["b"], &[], ""));
    let out = st.responses_alone(Some(&s2));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].type_url, TYPE_ORDER[1]);
    assert_eq!(names(&out[0]), ["b"]);
}

#[test]
fn reconnect_holding_everything_is_sent_nothing_and_reported_synced() {
    let s = snap(&[("a", "1"), ("b", "1")], &[], &[], &[]);
    let mut first = DeltaState::new();
    first.on_request(&req(0, &[], &[], ""));
    let out = first.responses_alone(Some(&s));
    let mut st = DeltaState::new();
    let mut r = req(0, &[], &[], "");
    for res in &out[0].resources {
        r.initial_resource_versions
            .insert(res.name.clone(), res.version.clone());
    }
    st.on_request(&r);
    assert!(st.responses_alone(Some(&s)).is_empty());
    let status = st.types[0].status();
    assert_eq!(status.sent.as_deref(), Some(s.types[0].version.as_str()));
    assert_eq!(status.acked, status.sent);
}
