//! Unit tests of parsing one file: the native, export and Kubernetes forms, unknown fields and
//! wrong types with their lines and paths, syntax errors, kubectl Lists.

use super::*;

fn parse(text: &str) -> LoadOutput {
    let mut out = LoadOutput::default();
    parse_file(Path::new("mesh.yaml"), text, &mut out);
    out
}

#[test]
fn reads_native_and_export_forms_from_one_file() {
    let out = parse(
        "kind: Mesh\nmeshName: demo\n---\nvirtualNode:\n  meshName: demo\n  virtualNodeName: a\n  metadata: {arn: x, version: 3}\n  status: {status: ACTIVE}\n  spec:\n    listeners:\n      - portMapping: {port: 8080, protocol: http}\n",
    );
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    assert_eq!(out.documents.len(), 2);
    assert_eq!(out.documents[0].kind, Kind::Mesh);
    assert_eq!(out.documents[1].kind, Kind::VirtualNode);
    assert_eq!(out.documents[1].prefix, "virtualNode.");
    assert_eq!(out.documents[1].line(), 4);
}

#[test]
fn reports_every_unknown_field_with_line_and_path() {
    let out = parse(
        "kind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listners: []\n  backends:\n    - virtualService: {virtualServiceName: b, typo: 1}\n",
    );
    let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        msgs,
        vec![
            "mesh.yaml:5: spec.listners: unknown field `listners` (did you mean `listeners`?)",
            "mesh.yaml:7: spec.backends[0].virtualService.typo: unknown field `typo` (did you mean `type`?)",
        ]
    );
}

#[test]
fn gateway_specs_are_typed_and_reject_unknown_fields() {
    let out = parse(
        "kind: VirtualGateway\nmeshName: demo\nvirtualGatewayName: gw\nspec:\n  listeners:\n    - portMapping: {port: 8080, protocol: http}\n      connectionPool: {http: {maxConnections: 5}}\n  logging: {accessLog: {file: {path: /dev/stdout, format: {text: x}}}}\n---\nkind: GatewayRoute\nmeshName: demo\nvirtualGatewayName: gw\ngatewayRouteName: r\nspec:\n  httpRoute:\n    match: {prefix: /a, hostName: {exact: a.com}}\n    action:\n      target: {virtualService: {virtualServiceName: a}}\n      rewrite: {prefix: {defaultPrefix: DISABLED}, hostname: {defaultTargetHostname: ENABLED}}\n",
    );
    let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        msgs,
        vec!["mesh.yaml:16: spec.httpRoute.match.hostName: unknown field `hostName` (did you mean `hostname`?)"]
    );
    let Body::VirtualGateway(gw) = &out.documents[0].body else {
        panic!("a gateway")
    };
    let l = &gw.spec.as_ref().unwrap().listeners[0];
    assert_eq!(l.port_mapping.port, 8080);
    assert_eq!(
        l.connection_pool
            .as_ref()
            .unwrap()
            .http
            .as_ref()
            .unwrap()
            .max_connections,
        5
    );
}

#[test]
fn reports_wrong_types_with_path() {
    let out = parse(
        "virtualNode:\n  meshName: demo\n  virtualNodeName: a\n  spec:\n    listeners:\n      - portMapping:\n          port: eighty\n          protocol: http\n",
    );
    assert_eq!(out.problems.len(), 1);
    let p = &out.problems[0];
    assert_eq!(p.line, 7);
    assert_eq!(p.path, "virtualNode.spec.listeners[0].portMapping.port");
    assert!(p.message.contains("invalid type"), "{}", p.message);
}

#[test]
fn syntax_errors_name_the_line() {
    let out = parse("kind: Mesh\nmeshName: [unclosed\n");
    assert_eq!(out.problems.len(), 1);
    assert!(out.problems[0].message.starts_with("YAML syntax error"));
    assert!(out.problems[0].line >= 2);
}

const K8S: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualRouter\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  meshRef: {name: demo, uid: x}\n  listeners:\n    - portMapping: {port: 80, protocol: http}\n  routes:\n    - name: main\n      httpRoute:\n        match: {prefix: /}\n        action:\n          weightedTargets:\n            - virtualNodeRef: {name: web-v1}\n              weight: 1\n              wieght: 2\n";

#[test]
fn k8s_manifests_load_beside_other_manifests_with_their_own_paths() {
    let out = parse(K8S);
    let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        msgs,
        vec!["mesh.yaml:24: spec.routes[0].httpRoute.action.weightedTargets[0].wieght: unknown field `wieght` (did you mean `weight`?)"]
    );
    let kinds: Vec<Kind> = out.documents.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, vec![Kind::VirtualRouter, Kind::Route]);
    let route = &out.documents[1];
    assert_eq!(route.names().virtual_router, Some("web_shop"));
    assert_eq!(route.names().mesh, Some("demo"));
    assert_eq!(route.line(), 17);
    let p = route.problem("spec.httpRoute.action.weightedTargets[0].virtualNode", "x");
    assert_eq!(
        (p.line, p.path.as_str()),
        (
            22,
            "spec.routes[0].httpRoute.action.weightedTargets[0].virtualNodeRef"
        )
    );
    let p = route.problem("routeName", "x");
    assert_eq!((p.line, p.path.as_str()), (17, "spec.routes[0].name"));
    let p = out.documents[0].problem("virtualRouterName", "x");
    assert_eq!((p.line, p.path.as_str()), (10, "metadata.name"));
}

#[test]
fn k8s_problems_name_the_manifest_field() {
    let out = parse("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: a}\nspec:\n  podSelector: {matchLabels: {app: a}}\n  backends:\n    - virtualService:\n        virtualServiceRf: {name: b}\n  listners: []\n");
    let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        msgs,
        vec![
            "mesh.yaml:7: spec.backends[0].virtualService: missing `virtualServiceRef` (or `virtualServiceARN`)",
            "mesh.yaml:8: spec.backends[0].virtualService.virtualServiceRf: unknown field `virtualServiceRf` (did you mean `virtualServiceRef`?)",
            "mesh.yaml:9: spec.listners: unknown field `listners` (did you mean `listeners`?)",
        ]
    );
    let out = parse("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: a}\nspec:\n  listners: []\n");
    assert_eq!(
        out.problems[0].to_string(),
        "mesh.yaml:5: spec.listners: unknown field `listners` (did you mean `listeners`?)"
    );
    assert_eq!(out.documents[0].names().virtual_node, Some("a_default"));
}

#[test]
fn k8s_gateways_load_with_their_names_and_refs() {
    let out = parse("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualGateway\nmetadata: {name: ingress, namespace: edge}\nspec:\n  meshRef: {name: demo, uid: u}\n  namespaceSelector: {matchLabels: {gateway: ingress}}\n  podSelector: {matchLabels: {app: ingress}}\n  gatewayRouteSelector: {matchLabels: {gateway: ingress}}\n  listeners:\n    - portMapping: {port: 8088, protocol: http}\n---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: GatewayRoute\nmetadata: {name: shop, namespace: edge}\nspec:\n  meshRef: {name: demo, uid: u}\n  virtualGatewayRef: {name: ingress, namespace: edge, uid: v}\n  httpRoute:\n    match: {prefix: /shop}\n    action:\n      target:\n        virtualService:\n          virtualServiceRef: {name: web, namespace: shop}\n");
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    let [gw, route] = &out.documents[..] else {
        panic!("{:?}", out.documents)
    };
    assert_eq!(
        (gw.kind, gw.names().virtual_gateway),
        (Kind::VirtualGateway, Some("ingress_edge"))
    );
    assert_eq!(route.kind, Kind::GatewayRoute);
    assert_eq!(route.names().gateway_route, Some("shop_edge"));
    assert_eq!(route.names().virtual_gateway, Some("ingress_edge"));
    let Body::GatewayRoute(e) = &route.body else {
        panic!()
    };
    let target = e.spec.as_deref().and_then(|s| s.target()).unwrap();
    assert_eq!(target.virtual_service.virtual_service_name, "web.shop");
    let Body::VirtualGateway(e) = &gw.body else {
        panic!()
    };
    // The selectors are gone (no unknown field); the listener is typed.
    assert_eq!(e.spec.as_deref().unwrap().listeners.len(), 1);
    let p = route.problem(
        "spec.httpRoute.action.target.virtualService.virtualServiceName",
        "x",
    );
    assert_eq!(
        (p.line, p.path.as_str()),
        (
            23,
            "spec.httpRoute.action.target.virtualService.virtualServiceRef"
        )
    );
}

#[test]
fn a_kubectl_get_list_is_each_of_its_items() {
    let out = parse("apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n  - apiVersion: appmesh.k8s.aws/v1beta2\n    kind: VirtualNode\n    metadata:\n      name: a\n      namespace: shop\n      uid: 1b2c\n      annotations: {kubectl.kubernetes.io/last-applied-configuration: \"{}\"}\n    spec:\n      meshRef: {name: demo, uid: x}\n      listeners:\n        - portMapping: {port: 80, protocol: htp}\n    status:\n      virtualNodeARN: arn:aws:appmesh:us-west-2:1:mesh/demo/virtualNode/a_shop\n  - apiVersion: v1\n    kind: Service\n    metadata: {name: a}\n  - apiVersion: appmesh.k8s.aws/v1beta2\n    kind: VirtualService\n    metadata: {name: a, namespace: shop}\n    spec:\n      meshRef: {name: demo, uid: x}\n      provider: {virtualNode: {virtualNodeRef: {name: a}}}\n");
    let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].starts_with(
            "mesh.yaml:15: items[0].spec.listeners[0].portMapping.protocol: unknown variant `htp`"
        ),
        "{msgs:?}"
    );
    let [vs] = &out.documents[..] else {
        panic!("{:?}", out.documents)
    };
    assert_eq!(vs.names().virtual_service, Some("a.shop"));
    assert_eq!(vs.line(), 21);
    let p = vs.problem("spec.provider.virtualNode.virtualNodeName", "x");
    assert_eq!(
        (p.line, p.path.as_str()),
        (26, "items[2].spec.provider.virtualNode.virtualNodeRef")
    );
    assert_eq!(
        vs.problem("virtualServiceName", "x").path,
        "items[2].metadata.name"
    );
}
