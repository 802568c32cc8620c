//! Tests of the whole validation: a valid mesh builds its model, every problem is reported at once,
//! and cached checks give what fresh checks give.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{validate, validate_with, CheckCache};
use crate::change::{ChangeSet, Identities};
use crate::model::MeshModel;
use crate::source::loader::parse_file;
use crate::source::{Document, LoadOutput};

pub(super) fn check(text: &str) -> Result<MeshModel, Vec<String>> {
    let mut out = LoadOutput::default();
    parse_file(Path::new("m.yaml"), text, &mut out);
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    validate(&out.documents).map_err(|ps| ps.iter().map(|p| p.to_string()).collect())
}

const BASE: &str = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}}]\n  serviceDiscovery: {dns: {hostname: a}}\n---\nkind: VirtualRouter\nmeshName: demo\nvirtualRouterName: r\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}}]\n";

/// Each "file" parsed on its own, so unchanged files keep their documents across steps, as
/// with the loader's parse cache.
fn parse_files(
    files: &[(&str, String)],
    keep: &mut HashMap<String, Vec<Arc<Document>>>,
) -> Vec<Arc<Document>> {
    let mut docs = Vec::new();
    for (name, text) in files {
        let key = format!("{name}\0{text}");
        let parsed = keep.entry(key).or_insert_with(|| {
            let mut out = LoadOutput::default();
            parse_file(Path::new(name), text, &mut out);
            assert!(out.problems.is_empty(), "{:?}", out.problems);
            out.documents
        });
        docs.extend(parsed.iter().cloned());
    }
    docs
}

#[test]
fn cached_checks_follow_changes_to_what_a_document_refers_to() {
    let node = |listeners: &str| {
        format!("kind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners: {listeners}\n  serviceDiscovery: {{dns: {{hostname: a}}}}\n  backends: [{{virtualService: {{virtualServiceName: s}}}}]\n")
    };
    let mesh = "kind: Mesh\nmeshName: demo\n".to_string();
    let router = "kind: VirtualRouter\nmeshName: demo\nvirtualRouterName: r\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}}]\n".to_string();
    let route = "kind: Route\nmeshName: demo\nvirtualRouterName: r\nrouteName: x\nspec:\n  httpRoute:\n    match: {prefix: /}\n    action: {weightedTargets: [{virtualNode: a, weight: 1}]}\n".to_string();
    let service = "kind: VirtualService\nmeshName: demo\nvirtualServiceName: s\nspec: {provider: {virtualRouter: {virtualRouterName: r}}}\n".to_string();
    let with = "[{portMapping: {port: 80, protocol: http}}]";
    let all = ["mesh", "node", "router", "route", "service"];
    // The files present at one step, with the node's listeners.
    let files = |present: &[&str], listeners: &str| -> Vec<(&str, String)> {
        all.iter()
            .filter(|f| present.contains(f))
            .map(|f| {
                let text = match *f {
                    "mesh" => mesh.clone(),
                    "node" => node(listeners),
                    "router" => router.clone(),
                    "route" => route.clone(),
                    _ => service.clone(),
                };
                (*f, text)
            })
            .collect()
    };
    let steps = vec![
        files(&all, with),
        // The route's file is unchanged, but the node it targets lost its listener.
        files(&all, "[]"),
        files(&all, with),
        // The node's file is unchanged, but the service it calls is gone.
        files(&["mesh", "node", "router", "route"], with),
        // The service's file is unchanged, but its router is gone (with its route).
        files(&["mesh", "node", "service"], with),
        files(&all, with),
        // A problem found while the mesh exists must not outlive the mesh.
        files(&all, "[]"),
        files(&["node", "router", "route", "service"], "[]"),
        files(&all, with),
    ];
    // The cache advances after every validation, or (as a server does) only after one that is
    // published: either way it must agree with a fresh validation.
    for commit_rejected in [true, false] {
        let mut keep = HashMap::new();
        let mut cache = CheckCache::default();
        let mut baseline = Identities::default();
        let mut outcomes = Vec::new();
        for (i, files) in steps.iter().enumerate() {
            let docs = parse_files(files, &mut keep);
            let changes = ChangeSet::between(&baseline, Identities::of(&docs));
            let (cached, next) = validate_with(&docs, &cache, &changes);
            let cached = cached
                .map(|_| ())
                .map_err(|p| p.iter().map(|p| p.to_string()).collect::<Vec<_>>());
            if cached.is_ok() || commit_rejected {
                cache = next;
                baseline = changes.current;
            }
            let fresh = validate(&docs)
                .map(|_| ())
                .map_err(|p| p.iter().map(|p| p.to_string()).collect::<Vec<_>>());
            assert_eq!(cached, fresh, "step {i}");
            outcomes.push(cached.is_ok());
        }
        assert_eq!(
            outcomes,
            [true, false, true, false, false, true, false, false, true]
        );
    }
}

#[test]
fn a_valid_mesh_builds_a_model() {
    let text = format!(
        "{BASE}---\nkind: Route\nmeshName: demo\nvirtualRouterName: r\nrouteName: x\nspec:\n  httpRoute:\n    match: {{prefix: /}}\n    action: {{weightedTargets: [{{virtualNode: a, weight: 1}}]}}\n"
    );
    let model = check(&text).unwrap();
    let mesh = &model.meshes["demo"];
    assert_eq!(mesh.virtual_routers["r"].routes.len(), 1);
    assert_eq!(mesh.virtual_nodes["a"].origin.line, 4);
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = format!(
        "{BASE}---\nkind: Route\nmeshName: demo\nvirtualRouterName: r\nrouteName: x\nspec:\n  priority: 1001\n  httpRoute:\n    match: {{prefix: nope}}\n    action:\n      weightedTargets:\n        - {{virtualNode: a, weight: 0}}\n        - {{virtualNode: ghost, weight: 0}}\n        - {{virtualNode: a, weight: 101}}\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: s\nspec: {{provider: {{virtualRouter: {{virtualRouterName: missing}}}}}}\n---\nkind: VirtualNode\nmeshName: other\nvirtualNodeName: z\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\n"
    );
    let errs = check(&text).unwrap_err();
    let want = [
        "m.yaml:22: spec.priority: 1001 is out of range: must be 0 to 1000",
        "m.yaml:24: spec.httpRoute.match.prefix: must start with `/`",
        "m.yaml:28: spec.httpRoute.action.weightedTargets[1].virtualNode: VirtualNode `ghost` is not defined in mesh `demo`",
        "m.yaml:29: spec.httpRoute.action.weightedTargets[2].weight: 101 is out of range: must be 0 to 100",
        "m.yaml:34: spec.provider.virtualRouter.virtualRouterName: VirtualRouter `missing` is not defined in mesh `demo`",
        "m.yaml:37: meshName: mesh `other` is not defined (every mesh needs its Mesh document)",
        "m.yaml:40: duplicate VirtualNode `a`; first defined at m.yaml:4",
    ];
    for w in want {
        assert!(errs.iter().any(|e| e == w), "missing {w:?} in {errs:#?}");
    }
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
}

#[test]
fn all_zero_weights_and_health_check_ranges() {
    let text = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners:\n    - portMapping: {port: 80, protocol: http}\n      healthCheck: {healthyThreshold: 1, unhealthyThreshold: 11, intervalMillis: 10, timeoutMillis: 2000, protocol: http, path: /h}\n  serviceDiscovery: {dns: {hostname: a}}\n---\nkind: VirtualRouter\nmeshName: demo\nvirtualRouterName: r\nspec: {listeners: [{portMapping: {port: 80, protocol: http}}]}\n---\nkind: Route\nmeshName: demo\nvirtualRouterName: r\nrouteName: x\nspec:\n  httpRoute:\n    match: {prefix: /}\n    action: {weightedTargets: [{virtualNode: a, weight: 0}]}\n";
    let errs = check(text).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.contains("healthyThreshold: 1 is out of range: must be 2 to 10")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("unhealthyThreshold: 11 is out of range")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("intervalMillis: 10 is out of range: must be 5000 to 300000")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("all weights are 0")),
        "{errs:#?}"
    );
}

#[test]
fn an_empty_configuration_or_one_without_proxies_is_invalid() {
    assert_eq!(
        validate(&[]).map(|_| ()).map_err(|p| p[0].to_string()),
        Err(".:0: no mesh defined: no App Mesh resources found".into())
    );
    assert_eq!(
        check("kind: Mesh\nmeshName: demo\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: s\n").map(|_| ()),
        Err(vec!["m.yaml:1: mesh `demo` defines no virtual nodes or gateways".to_string()])
    );
    // One mesh with a node is enough; an empty second mesh is allowed.
    assert!(check("kind: Mesh\nmeshName: empty\n---\nkind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\n").is_ok());
}

#[test]
fn backends_must_name_defined_services() {
    let text = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: c\nspec:\n  backends:\n    - virtualService: {virtualServiceName: nowhere}\n";
    let errs = check(text).unwrap_err();
    assert_eq!(
        errs,
        vec!["m.yaml:9: spec.backends[0].virtualService.virtualServiceName: VirtualService `nowhere` is not defined in mesh `demo`"]
    );
}

const GATEWAY_BASE: &str = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}}]\n  serviceDiscovery: {dns: {hostname: a}}\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: a.local\nspec: {provider: {virtualNode: {virtualNodeName: a}}}\n---\nkind: VirtualGateway\nmeshName: demo\nvirtualGatewayName: gw\nspec:\n  listeners:\n    - portMapping: {port: 8080, protocol: http}\n    - portMapping: {port: 9090, protocol: grpc}\n";

fn gateway_route(name: &str, spec: &str) -> String {
    format!("---\nkind: GatewayRoute\nmeshName: demo\nvirtualGatewayName: gw\ngatewayRouteName: {name}\nspec:\n{spec}")
}

#[test]
fn a_valid_gateway_with_its_routes_builds() {
    let text = format!(
        "{GATEWAY_BASE}{}{}",
        gateway_route(
            "web",
            "  priority: 1\n  httpRoute:\n    match: {prefix: /web/, hostname: {suffix: example.com}, headers: [{name: x, match: {range: {start: 1, end: 5}}, invert: true}]}\n    action:\n      target: {virtualService: {virtualServiceName: a.local}}\n      rewrite: {prefix: {value: /v2/}, hostname: {defaultTargetHostname: ENABLED}}\n"
        ),
        gateway_route(
            "rpc",
            "  grpcRoute:\n    match: {serviceName: shop.Cart, port: 9090}\n    action: {target: {virtualService: {virtualServiceName: a.local}}}\n"
        ),
    );
    let model = check(&text).expect("valid");
    assert_eq!(model.meshes["demo"].gateway_routes.len(), 2);
}

#[test]
fn every_gateway_problem_is_reported_with_its_path() {
    let text = format!(
        "{GATEWAY_BASE}{}{}{}{}{}",
        gateway_route(
            "dangling",
            "  priority: 1001\n  httpRoute:\n    match: {prefix: /aws-appmesh/x}\n    action: {target: {virtualService: {virtualServiceName: nope.local}}}\n"
        ),
        gateway_route(
            "h2",
            "  http2Route:\n    match: {prefix: /}\n    action: {target: {virtualService: {virtualServiceName: a.local}}}\n"
        ),
        gateway_route(
            "rewrites",
            "  httpRoute:\n    match: {path: {exact: /a}, port: 7070}\n    action:\n      target: {virtualService: {virtualServiceName: a.local}}\n      rewrite: {prefix: {defaultPrefix: ENABLED, value: v}}\n"
        ),
        gateway_route(
            "grpc-on-http",
            "  grpcRoute:\n    match: {serviceName: aws.appmesh.x, port: 8080}\n    action: {target: {virtualService: {virtualServiceName: a.local}}}\n"
        ),
        gateway_route(
            "h2",
            "  httpRoute:\n    match: {prefix: /}\n    action: {target: {virtualService: {virtualServiceName: a.local}}}\n"
        ),
    );
    let problems = check(&text).expect_err("invalid");
    let want = [
        "spec.priority: 1001 is out of range",
        "spec.httpRoute.match.prefix: `/aws-appmesh/x` is reserved",
        "spec.httpRoute.action.target.virtualService.virtualServiceName: VirtualService `nope.local` is not defined",
        "spec.http2Route: the virtual gateway has no http2 listener to serve a http2Route",
        "spec.httpRoute.match.port: the virtual gateway has no listener on port 7070",
        "spec.httpRoute.action.rewrite.prefix: a prefix rewrite needs a `match.prefix`",
        "spec.httpRoute.action.rewrite.prefix: give either `defaultPrefix` or `value`, not both",
        "spec.grpcRoute.match.serviceName: `aws.appmesh.x` is reserved",
        "spec.grpcRoute.match.port: the gateway listener on port 8080 is http: a grpcRoute needs a grpc listener",
        ": duplicate GatewayRoute `h2`",
    ];
    for w in want {
        assert!(
            problems.iter().any(|p| p.contains(w)),
            "missing {w:?} in {problems:#?}"
        );
    }
    assert!(
        problems.iter().all(|p| p.starts_with("m.yaml:")),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), want.len(), "{problems:#?}");
}

#[test]
fn gateway_listener_rules() {
    let text = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualGateway\nmeshName: demo\nvirtualGatewayName: gw\nspec:\n  listeners:\n    - portMapping: {port: 15001, protocol: tcp}\n      connectionPool: {http2: {maxRequests: 0}}\n  logging: {accessLog: {file: {path: /dev/stdout, format: {text: a, json: [{key: k, value: v}]}}}}\n";
    let problems = check(text).expect_err("invalid");
    let want = [
        "m.yaml:9: spec.listeners[0].portMapping.protocol: a virtual gateway listener must be http, http2 or grpc",
        "spec.listeners[0].connectionPool.http2: connection pool `http2` does not match",
        "spec.listeners[0].connectionPool.http2.maxRequests: 0 is out of range",
        "spec.logging.accessLog.file.format: give exactly one of `text` or `json`",
        "spec.listeners[0].portMapping.port: port 15001 is the gateway's default egress port",
    ];
    for w in want {
        assert!(
            problems.iter().any(|p| p.contains(w)),
            "missing {w:?} in {problems:#?}"
        );
    }
}

#[test]
fn a_gateway_route_target_port_must_be_a_listener_of_the_provider() {
    // Node `b` listens on 80 and 81: a route to its service must say which.
    let two = "---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: b\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}}, {portMapping: {port: 81, protocol: http}}]\n  serviceDiscovery: {dns: {hostname: b}}\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: b.local\nspec: {provider: {virtualNode: {virtualNodeName: b}}}\n";
    let route = |name: &str, target: &str| {
        gateway_route(
            name,
            &format!(
                "  httpRoute:\n    match: {{prefix: /{name}}}\n    action: {{target: {target}}}\n"
            ),
        )
    };
    let text = format!(
        "{GATEWAY_BASE}{two}{}{}{}{}",
        route(
            "ok",
            "{virtualService: {virtualServiceName: b.local}, port: 81}"
        ),
        route("single", "{virtualService: {virtualServiceName: a.local}}"),
        route(
            "wrong",
            "{virtualService: {virtualServiceName: a.local}, port: 81}"
        ),
        route("which", "{virtualService: {virtualServiceName: b.local}}"),
    );
    let problems = check(&text).expect_err("invalid");
    let want = [
        "spec.httpRoute.action.target.port: the provider of virtual service a.local has no listener on port 81 (it listens on 80)",
        "spec.httpRoute.action.target: the provider of virtual service b.local has several listeners (80, 81): give `port`",
    ];
    for w in want {
        assert!(
            problems.iter().any(|p| p.contains(w)),
            "missing {w:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), want.len(), "{problems:#?}");
}

#[test]
fn a_cached_gateway_route_check_follows_its_target_providers_listeners() {
    let gateway = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualGateway\nmeshName: demo\nvirtualGatewayName: gw\nspec: {listeners: [{portMapping: {port: 8080, protocol: http}}]}\n---\nkind: GatewayRoute\nmeshName: demo\nvirtualGatewayName: gw\ngatewayRouteName: r\nspec:\n  httpRoute:\n    match: {prefix: /}\n    action: {target: {virtualService: {virtualServiceName: b.local}}}\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: b.local\nspec: {provider: {virtualNode: {virtualNodeName: b}}}\n".to_string();
    let node = |listeners: &str| {
        format!("kind: VirtualNode\nmeshName: demo\nvirtualNodeName: b\nspec:\n  listeners: {listeners}\n  serviceDiscovery: {{dns: {{hostname: b}}}}\n")
    };
    let one = "[{portMapping: {port: 80, protocol: http}}]";
    let two =
        "[{portMapping: {port: 80, protocol: http}}, {portMapping: {port: 81, protocol: http}}]";
    let mut keep = HashMap::new();
    let mut cache = CheckCache::default();
    let mut baseline = Identities::default();
    let mut outcomes = Vec::new();
    // Only the node's file changes; the gateway route's is parsed once.
    for listeners in [one, two, one] {
        let files = [("gw.yaml", gateway.clone()), ("node.yaml", node(listeners))];
        let docs = parse_files(&files, &mut keep);
        let changes = ChangeSet::between(&baseline, Identities::of(&docs));
        let (cached, next) = validate_with(&docs, &cache, &changes);
        cache = next;
        baseline = changes.current;
        let fresh = validate(&docs).is_ok();
        assert_eq!(cached.is_ok(), fresh);
        outcomes.push(fresh);
    }
    assert_eq!(outcomes, [true, false, true]);
}
