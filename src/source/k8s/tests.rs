//! Unit tests of the translation: the controller's naming, inline routes, skipped and bad
//! manifests, ARNs.

use super::refs::arn_name;
use super::*;

fn manifest(text: &str) -> Manifest {
    let Value::Mapping(m) = serde_yaml_ng::from_str(text).unwrap() else {
        panic!("not a mapping")
    };
    translate(m)
}

fn names(t: &Translated) -> String {
    let e = &t.envelope;
    [
        "meshName",
        "virtualServiceName",
        "virtualNodeName",
        "virtualRouterName",
        "routeName",
    ]
    .iter()
    .filter_map(|k| {
        e.get(*k)
            .and_then(Value::as_str)
            .map(|v| format!("{k}={v}"))
    })
    .collect::<Vec<_>>()
    .join(" ")
}

#[test]
fn names_follow_the_controller() {
    let m = manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: front, namespace: shop}\nspec:\n  meshRef: {name: demo, uid: x}\n");
    assert_eq!(
        names(&m.resources[0]),
        "meshName=demo virtualNodeName=front_shop"
    );
    let m = manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\nmetadata: {name: api}\nspec: {awsName: api.local, meshRef: {name: demo}}\n");
    assert_eq!(
        names(&m.resources[0]),
        "meshName=demo virtualServiceName=api.local"
    );
    let m = manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\nmetadata: {name: api}\nspec: {}\n");
    assert_eq!(names(&m.resources[0]), "virtualServiceName=api.default");
    assert!(m.resources[0].mesh_implicit);
    let m = manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: demo}\nspec: {namespaceSelector: {matchLabels: {mesh: demo}}}\n");
    assert_eq!(names(&m.resources[0]), "meshName=demo");
}

#[test]
fn inline_routes_become_routes_with_resolved_targets() {
    let m = manifest(
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualRouter\nmetadata: {name: r, namespace: ns}\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}}]\n  routes:\n    - name: a\n      httpRoute:\n        match: {prefix: /}\n        action:\n          weightedTargets:\n            - {virtualNodeRef: {name: v1}, weight: 9}\n            - {virtualNodeARN: 'arn:aws:appmesh:eu-west-1:1:mesh/m/virtualNode/v2_other', weight: 1}\n",
    );
    assert!(m.problems.is_empty(), "{:?}", m.problems);
    assert_eq!(m.resources.len(), 2);
    assert_eq!(names(&m.resources[1]), "virtualRouterName=r_ns routeName=a");
    let t = &m.resources[1].envelope["spec"]["httpRoute"]["action"]["weightedTargets"];
    assert_eq!(t[0]["virtualNode"].as_str(), Some("v1_ns"));
    assert_eq!(t[1]["virtualNode"].as_str(), Some("v2_other"));
    assert!(m.resources[1].paths.contains(&(
        "spec.httpRoute.action.weightedTargets[1].virtualNode".into(),
        "spec.routes[0].httpRoute.action.weightedTargets[1].virtualNodeARN".into()
    )));
}

#[test]
fn other_manifests_are_skipped_and_bad_ones_reported() {
    let m = manifest(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2}\n",
    );
    assert!(m.resources.is_empty() && m.problems.is_empty());
    assert_eq!(m.skipped, Some(("apps/v1".into(), "Deployment".into())));
    let m =
        manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetdata: {name: x}\n");
    assert!(
        m.problems
            .iter()
            .any(|p| p.1.contains("did you mean `metadata`")),
        "{:?}",
        m.problems
    );
    let m = manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: x}\nspec:\n  backends:\n    - virtualService: {virtualServiceName: y}\n");
    assert_eq!(
        m.problems[0].0,
        "spec.backends[0].virtualService.virtualServiceName"
    );
    assert!(m.problems[0].1.contains("did you mean `virtualServiceRef`"));
}

#[test]
fn arns_name_their_resource() {
    assert_eq!(
        arn_name(
            "arn:aws:appmesh:us-west-2:123:mesh/m/virtualService/a.b.svc",
            "virtualService"
        ),
        Some("a.b.svc".into())
    );
    assert_eq!(
        arn_name(
            "arn:aws:appmesh:us-west-2:123:mesh/m/virtualNode/a",
            "virtualService"
        ),
        None
    );
    assert_eq!(arn_name("nonsense", "virtualNode"), None);
}
