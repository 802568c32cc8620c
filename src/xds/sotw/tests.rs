//! Unit tests of the SotW state machine, request by request over hand-built snapshots: ACKs, NACKs
//! and stale nonces, EDS after CDS, make-before-break (over one stream and across an Envoy's
//! per-type streams), and names requested before they exist.

use super::super::{Resource, TypeSnapshot, TYPE_ORDER};
use super::*;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status;
use std::collections::BTreeMap;
use std::sync::Arc;

fn snap(clusters: &[&str], eps: &[&str], listeners: &[&str], routes: &[&str]) -> Snapshot {
    let ts = |names: &[&str], t: usize| {
        let m: BTreeMap<String, Arc<Resource>> = names
            .iter()
            .map(|n| {
                let any = Any {
                    type_url: TYPE_ORDER[t].into(),
                    value: n.as_bytes().to_vec(),
                };
                (n.to_string(), Arc::new(Resource::new(n.to_string(), any)))
            })
            .collect();
        TypeSnapshot::new(m)
    };
    Snapshot::new([ts(clusters, 0), ts(eps, 1), ts(listeners, 2), ts(routes, 3)])
}

fn req(t: usize, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: TYPE_ORDER[t].into(),
        resource_names: names.iter().map(|s| s.to_string()).collect(),
        version_info: version.into(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

fn nack(t: usize, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        error_detail: Some(Status {
            code: 3,
            message: "bad".into(),
            details: vec![],
        }),
        ..req(t, &[], "", nonce)
    }
}

impl SotwState {
    fn responses_alone(&mut self, snap: Option<&Snapshot>) -> Vec<DiscoveryResponse> {
        self.responses(snap, &Peers::default())
            .iter()
            .map(Outgoing::to_sotw)
            .collect()
    }
}

#[test]
fn initial_request_gets_everything_and_ack_gets_nothing() {
    let s = snap(&["a", "b"], &["a"], &["l"], &["r"]);
    let mut st = SotwState::new();
    assert_eq!(st.on_request(&req(0, &[], "", "")), RequestKind::Initial);
    let out = st.responses_alone(Some(&s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].resources.len(), 2);
    let v = out[0].version_info.clone();
    assert!(matches!(
        st.on_request(&req(0, &[], &v, &out[0].nonce)),
        RequestKind::Ack { .. }
    ));
    assert!(st.responses_alone(Some(&s)).is_empty());
}

#[test]
fn stale_nonce_is_ignored() {
    let s = snap(&["a"], &[], &[], &[]);
    let mut st = SotwState::new();
    st.on_request(&req(0, &[], "", ""));
    let first = st.responses_alone(Some(&s));
    assert_eq!(
        st.on_request(&req(0, &["x"], "", "999")),
        RequestKind::Stale
    );
    // Still awaiting the ACK of the first response: nothing more goes out.
    assert!(st.responses_alone(Some(&s)).is_empty());
    assert!(matches!(
        st.on_request(&req(0, &[], &first[0].version_info, &first[0].nonce)),
        RequestKind::Ack { .. }
    ));
}

#[test]
fn nack_is_not_resent_until_the_version_changes() {
    let s1 = snap(&["a"], &[], &[], &[]);
    let mut st = SotwState::new();
    st.on_request(&req(0, &[], "", ""));
    let out = st.responses_alone(Some(&s1));
    let kind = st.on_request(&nack(0, &out[0].nonce));
    assert!(matches!(kind, RequestKind::Nack { .. }));
    assert!(
        st.responses_alone(Some(&s1)).is_empty(),
        "the rejected version must not be resent"
    );
    let s2 = snap(&["a", "b"], &[], &[], &[]);
    assert_eq!(st.responses_alone(Some(&s2)).len(), 1);
}

/// A stream that holds cluster `a` and its endpoints, both acknowledged; and the EDS response.
fn settled_on_cluster_a() -> (SotwState, DiscoveryResponse) {
    let s1 = snap(&["a"], &["a"], &[], &[]);
    let mut st = SotwState::new();
    st.on_request(&req(0, &[], "", ""));
    let c = st.responses_alone(Some(&s1));
    st.on_request(&req(0, &[], &c[0].version_info, &c[0].nonce));
    st.on_request(&req(1, &["a"], "", ""));
    let e = st.responses_alone(Some(&s1));
    assert_eq!(e.len(), 1);
    st.on_request(&req(1, &["a"], &e[0].version_info, &e[0].nonce));
    (st, e.into_iter().next().unwrap())
}

#[test]
fn eds_is_answered_again_after_a_cds_push() {
    let (mut st, e) = settled_on_cluster_a();
    // Cluster changes, endpoints do not.
    let mut s2 = snap(&["a"], &["a"], &[], &[]);
    s2.types[0] = snap(&["a", "z"], &[], &[], &[]).types[0].clone();
    let out = st.responses_alone(Some(&s2));
    let types: Vec<&str> = out.iter().map(|r| r.type_url.as_str()).collect();
    assert_eq!(
        types,
        [TYPE_ORDER[0], TYPE_ORDER[1]],
        "CDS, then EDS behind it"
    );
    assert_eq!(
        out[1].version_info, e.version_info,
        "EDS re-sent at the same version after CDS"
    );
}

#[test]
fn eds_for_a_new_cluster_is_answered_before_cds_is_acknowledged() {
    // Over ADS, Envoy ACKs a CDS update only once the clusters it warms have endpoints.
    let (mut st, _) = settled_on_cluster_a();
    let s2 = snap(&["a", "b"], &["a", "b"], &[], &[]);
    let out = st.responses_alone(Some(&s2));
    assert_eq!(out.len(), 2, "CDS and the forced EDS");
    // Envoy asks for b's endpoints (echoing the EDS nonce it last processed) before its CDS ACK.
    let eds = &out[1];
    st.on_request(&req(1, &["a", "b"], &eds.version_info, &eds.nonce));
    let out = st.responses_alone(Some(&s2));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].type_url, TYPE_ORDER[1]);
    assert_eq!(
        out[0].resources.len(),
        2,
        "b's endpoints, with CDS still unacknowledged"
    );
}

#[test]
fn listeners_wait_for_clusters_to_be_acknowledged() {
    let s = snap(&["a"], &[], &["l"], &["r"]);
    let mut st = SotwState::new();
    st.on_request(&req(0, &[], "", ""));
    st.on_request(&req(2, &[], "", ""));
    let out = st.responses_alone(Some(&s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].type_url, TYPE_ORDER[0]);
    st.on_request(&req(0, &[], &out[0].version_info, &out[0].nonce));
    // EDS is forced after CDS but not subscribed yet, so listeners may go.
    let out = st.responses_alone(Some(&s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].type_url, TYPE_ORDER[2]);
}

#[test]
fn removed_clusters_go_last() {
    let s1 = snap(&["a", "b"], &[], &["l"], &["r1"]);
    let mut st = SotwState::new();
    st.on_request(&req(0, &[], "", ""));
    st.on_request(&req(2, &[], "", ""));
    st.on_request(&req(3, &["r1"], "", ""));
    let ack_all = |st: &mut SotwState, snap: &Snapshot| -> Vec<(String, usize)> {
        let mut sent = Vec::new();
        loop {
            let out = st.responses_alone(Some(snap));
            if out.is_empty() {
                return sent;
            }
            for r in out {
                sent.push((r.type_url.clone(), r.resources.len()));
                let t = type_index(&r.type_url).unwrap();
                let names: Vec<&str> = if t == 3 { vec!["r1"] } else { vec![] };
                st.on_request(&req(t, &names, &r.version_info, &r.nonce));
            }
        }
    };
    ack_all(&mut st, &s1);
    // Cluster b goes away and the route changes with it.
    let s2 = snap(&["a"], &[], &["l"], &["r1"]);
    let mut s2 = s2;
    s2.types[3] = snap(&[], &[], &[], &["r1", "r1"]).types[3].clone();
    Arc::make_mut(&mut s2.types[3]).version = "new-routes".into();
    let sent = ack_all(&mut st, &s2);
    let types: Vec<(&str, usize)> = sent
        .iter()
        .map(|(t, n)| (t.rsplit('.').next().unwrap(), *n))
        .collect();
    assert_eq!(
        types,
        vec![("Cluster", 2), ("RouteConfiguration", 1), ("Cluster", 1)],
        "b stays until the routes moved off it"
    );
}

#[test]
fn missing_names_are_remembered_and_sent_when_they_appear() {
    let s1 = snap(&[], &[], &[], &[]);
    let mut st = SotwState::new();
    st.on_request(&req(3, &["r"], "", ""));
    let out = st.responses_alone(Some(&s1));
    assert_eq!(out.len(), 1);
    assert!(out[0].resources.is_empty());
    st.on_request(&req(3, &["r"], &out[0].version_info, &out[0].nonce));
    let s2 = snap(&[], &[], &[], &["r", "other"]);
    let out = st.responses_alone(Some(&s2));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].resources.len(), 1, "only the requested name");
}

#[test]
fn unknown_node_gets_nothing_until_its_snapshot_appears() {
    let mut st = SotwState::new();
    st.on_request(&req(0, &[], "", ""));
    assert!(st.responses_alone(None).is_empty());
    assert_eq!(
        st.responses_alone(Some(&snap(&["a"], &[], &[], &[]))).len(),
        1
    );
}

#[test]
fn a_per_type_route_stream_waits_for_the_cluster_stream_of_its_envoy() {
    use super::super::group::Groups;
    let groups = Groups::default();
    let (cds, rds) = (
        groups.join("peer", "node", 1),
        groups.join("peer", "node", 2),
    );
    let s1 = snap(&["a"], &[], &[], &["r"]);
    let (mut c, mut r) = (SotwState::new(), SotwState::new());
    c.on_request(&req(0, &[], "", ""));
    r.on_request(&req(3, &["r"], "", ""));
    let out: Vec<_> = c
        .responses(Some(&s1), &cds.peers())
        .iter()
        .map(Outgoing::to_sotw)
        .collect();
    cds.update(c.member(0));
    assert!(
        r.responses(Some(&s1), &rds.peers()).is_empty(),
        "CDS is in flight"
    );
    assert!(r.held_by_peers);
    c.on_request(&req(0, &[], &out[0].version_info, &out[0].nonce));
    cds.update(c.member(0));
    assert_eq!(
        r.responses(Some(&s1), &rds.peers()).len(),
        1,
        "clusters settled"
    );
    assert!(!r.held_by_peers);
}

/// A stream that acknowledged everything, answered from `s`: the versions it holds, per type.
fn synced_versions(s: &Snapshot) -> [String; 4] {
    let mut st = SotwState::new();
    let mut held: [String; 4] = Default::default();
    for t in 0..4 {
        let names: &[&str] = if t == EDS || t == RDS { &["a"] } else { &[] };
        st.on_request(&req(t, names, "", ""));
        for r in st.responses_alone(Some(s)) {
            let ti = type_index(&r.type_url).unwrap();
            held[ti] = r.version_info.clone();
            st.on_request(&req(ti, names, &r.version_info, &r.nonce));
        }
    }
    held
}

#[test]
fn reconnect_holding_the_current_versions_is_sent_nothing() {
    let s = snap(&["a", "b"], &["a"], &["l"], &["a"]);
    let held = synced_versions(&s);
    assert!(held.iter().all(|v| !v.is_empty()), "{held:?}");
    // The same Envoy on a new stream (another replica): each first request carries its version.
    let mut st = SotwState::new();
    for (t, version) in held.iter().enumerate() {
        let names: &[&str] = if t == EDS || t == RDS { &["a"] } else { &[] };
        assert_eq!(
            st.on_request(&req(t, names, version, "")),
            RequestKind::Initial
        );
        assert!(st.responses_alone(Some(&s)).is_empty(), "type {t} resent");
        assert_eq!(st.types[t].acked_version.as_deref(), Some(version.as_str()));
    }
    // Later changes still go out, and clusters it held are kept make-before-break.
    let s2 = snap(&["a"], &["a"], &["l2"], &["a"]);
    let out = st.responses_alone(Some(&s2));
    assert_eq!(out.len(), 2, "CDS and EDS");
    assert_eq!(out[0].resources.len(), 2, "b kept until listeners move");
}

#[test]
fn reconnect_holding_an_older_version_gets_the_current_one() {
    let old = snap(&["a"], &["a"], &["l"], &["a"]);
    let held = synced_versions(&old);
    let s = snap(&["a", "b"], &["a"], &["l"], &["a"]);
    let mut st = SotwState::new();
    st.on_request(&req(CDS, &[], &held[CDS], ""));
    let out = st.responses_alone(Some(&s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].resources.len(), 2);
    // The CDS push owes fresh endpoints even though the Envoy holds the current EDS version.
    st.on_request(&req(EDS, &["a"], &held[EDS], ""));
    let out = st.responses_alone(Some(&s));
    assert_eq!(out.len(), 1, "EDS after a CDS push");
    assert_eq!(out[0].type_url, TYPE_ORDER[EDS]);
}

#[test]
fn a_claimed_version_waits_for_the_first_snapshot() {
    let s = snap(&["a"], &[], &[], &[]);
    let held = synced_versions(&s);
    let mut st = SotwState::new();
    st.on_request(&req(CDS, &[], &held[CDS], ""));
    assert!(st.responses_alone(None).is_empty(), "no configuration yet");
    assert!(
        st.responses_alone(Some(&s)).is_empty(),
        "same version: nothing"
    );
    let s2 = snap(&["a", "c"], &[], &[], &[]);
    assert_eq!(st.responses_alone(Some(&s2)).len(), 1);
}

#[test]
fn an_ack_naming_the_same_set_in_any_order_changes_nothing_and_repeats_do_not_fool_it() {
    let s = snap(&[], &["a", "b", "c"], &[], &[]);
    let mut st = SotwState::new();
    st.on_request(&req(1, &["b", "a", "c"], "", ""));
    let out = st.responses_alone(Some(&s));
    assert_eq!(out[0].resources.len(), 3);
    let (v, n) = (out[0].version_info.clone(), out[0].nonce.clone());
    // The same names out of order: an ACK, nothing to send.
    st.on_request(&req(1, &["c", "a", "b"], &v, &n));
    assert!(st.responses_alone(Some(&s)).is_empty());
    // As many names as before, one repeated: a smaller set, answered with two endpoints.
    st.on_request(&req(1, &["a", "b", "a"], &v, &n));
    let out = st.responses_alone(Some(&s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].resources.len(), 2);
}
