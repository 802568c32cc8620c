use super::*;
use crate::spec::{Duration as MeshDuration, DurationUnit};

fn ms(value: u64) -> Option<MeshDuration> {
    Some(MeshDuration {
        unit: DurationUnit::Millis,
        value,
    })
}

#[test]
fn timeouts_equal_to_envoys_defaults_are_left_out_and_others_kept() {
    // App Mesh's defaults are Envoy's: nothing to send.
    assert_eq!(timeouts(None), (None, None));
    let t = |per_request, idle| HttpTimeout { per_request, idle };
    assert_eq!(timeouts(Some(&t(ms(15_000), ms(300_000)))), (None, None));
    // 0 disables, in App Mesh and in Envoy: it must be sent.
    assert_eq!(
        timeouts(Some(&t(ms(0), ms(0)))),
        (Some(millis(0)), Some(millis(0)))
    );
    assert_eq!(
        timeouts(Some(&t(ms(1500), None))),
        (Some(millis(1500)), None)
    );
    assert_eq!(
        timeouts(Some(&t(None, ms(60_000)))),
        (None, Some(millis(60_000)))
    );
}

#[test]
fn one_weighted_target_is_a_plain_cluster_and_a_split_stays_weighted() {
    use route_action::ClusterSpecifier as C;
    assert_eq!(
        cluster_specifier(vec![("a".into(), 1)]),
        C::Cluster("a".into())
    );
    // Weight 0 alone is not a route to `a` (Envoy refuses a split with no weight): kept as given.
    assert!(matches!(
        cluster_specifier(vec![("a".into(), 0)]),
        C::WeightedClusters(_)
    ));
    let C::WeightedClusters(w) = cluster_specifier(vec![("a".into(), 80), ("b".into(), 20)]) else {
        panic!("a split")
    };
    let weights: Vec<(&str, u32)> = w
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight.map_or(0, |w| w.value)))
        .collect();
    assert_eq!(weights, [("a", 80), ("b", 20)]);
}
