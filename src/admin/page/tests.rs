use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::admin::{SyncState, TypeReport};

fn demo() -> Arc<MeshModel> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    crate::app::load(&dir)
        .model
        .expect("the demo mesh is valid")
}

fn model_of(yaml: &str) -> Arc<MeshModel> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("mesh.yaml"), yaml).expect("write");
    let loaded = crate::app::load(dir.path());
    loaded
        .model
        .unwrap_or_else(|| panic!("valid: {:?}", loaded.problems))
}

fn valid() -> ConfigState {
    ConfigState {
        valid: true,
        files: 4,
        reloads_accepted: 1,
        reloaded_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        accepted_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        ..Default::default()
    }
}

/// A proxy report with one state per type (CDS, EDS, LDS, RDS) and NACK messages where given.
fn proxy(node_id: &str, types: [(SyncState, Option<&str>); 4]) -> ProxyReport {
    let types: BTreeMap<String, TypeReport> = ["CDS", "EDS", "LDS", "RDS"]
        .iter()
        .zip(types)
        .map(|(ty, (state, nack))| {
            let r = TypeReport {
                state,
                sent: Some("v2".into()),
                acked: Some("v1".into()),
                nack: nack.map(str::to_owned),
            };
            (ty.to_string(), r)
        })
        .collect();
    ProxyReport {
        node_id: node_id.into(),
        mesh: None,
        node: None,
        known: true,
        peer: "127.0.0.1:40000".into(),
        mode: "ADS".into(),
        connected_since: 1_700_000_000,
        types,
        xds_identity: None,
        sds: None,
        certificate: None,
    }
}

const SYNCED: (SyncState, Option<&str>) = (SyncState::Synced, None);

/// The page's text: tags removed, whitespace collapsed, entities left as they are.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn page(model: Option<&MeshModel>, config: &ConfigState, proxies: &[ProxyReport]) -> String {
    render(&PageData {
        serving: model,
        config,
        proxies,
    })
}

/// The text of the card with `id` (up to the next card), for checks about one resource.
fn card(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no card {id}"));
    let rest = &html[start..];
    let end = rest[1..].find("class=\"card").map_or(rest.len(), |e| e + 1);
    text(&rest[..end])
}

#[test]
fn demo_shows_router_weights_providers_and_unconnected_nodes() {
    let model = demo();
    let html = page(Some(&model), &valid(), &[]);
    let router = card(&html, "vr-demo-backend-router");
    assert!(router.contains("canary priority 100 · http"), "{router}");
    assert!(router.contains("prefix /"), "{router}");
    assert!(router.contains("backend-v1 90"), "{router}");
    assert!(router.contains("backend-v2 10"), "{router}");
    assert!(router.contains("2 retries, 2s per try"), "{router}");
    assert!(html.contains("style=\"width:90.0%\""));
    assert!(html.contains("style=\"width:10.0%\""));
    let service = card(&html, "vs-demo-backend.demo.local");
    assert!(
        service.contains("provided by router backend-router used by frontend"),
        "{service}"
    );
    for node in ["backend-v1", "backend-v2", "frontend"] {
        let c = card(&html, &format!("vn-demo-{node}"));
        assert!(c.contains("NOT CONNECTED"), "{c}");
    }
    assert!(text(&html).contains("egress DROP_ALL"));
    // The three nodes and the gateway `edge`, which is listed with its route.
    assert!(text(&html).contains("0 SYNCED 0 NACKED 0 STALE 0 NOT SENT 4 NOT CONNECTED"));
    assert!(text(&html).contains("to-frontend"), "{}", text(&html));
}

#[test]
fn connected_sidecars_show_per_type_state_and_envoys_nack_message() {
    let model = demo();
    let nack = "Proto constraint validation failed: <regex> & more";
    let proxies = [
        proxy("mesh/demo/virtualNode/frontend", [SYNCED; 4]),
        proxy(
            "arn:aws:appmesh:eu-west-1:1:mesh/demo/virtualNode/backend-v2",
            [SYNCED, SYNCED, SYNCED, (SyncState::Nacked, Some(nack))],
        ),
    ];
    let html = page(Some(&model), &valid(), &proxies);
    let frontend = card(&html, "vn-demo-frontend");
    assert!(!frontend.contains("NOT CONNECTED"), "{frontend}");
    assert!(
        frontend.contains("frontend 1 sidecar SYNCED app 8080 http"),
        "{frontend}"
    );
    assert!(frontend.contains("ADS from 127.0.0.1:40000 since 22:13:20 UTC"));
    assert!(frontend.contains("CDS SYNCED EDS SYNCED LDS SYNCED RDS SYNCED"));
    let v2 = card(&html, "vn-demo-backend-v2");
    assert!(v2.contains("backend-v2 1 sidecar NACKED"), "{v2}");
    assert!(v2.contains("RDS NACKED"), "{v2}");
    assert!(
        v2.contains(
            "RDS rejected by Envoy: Proto constraint validation failed: &lt;regex&gt; &amp; more"
        ),
        "{v2}"
    );
    assert!(card(&html, "vn-demo-backend-v1").contains("NOT CONNECTED"));
    // backend-v1 and the gateway `edge`.
    assert!(text(&html).contains("1 SYNCED 1 NACKED 0 STALE 0 NOT SENT 2 NOT CONNECTED"));
}

#[test]
fn everything_from_files_and_envoy_is_escaped() {
    assert_eq!(
        esc("<a href=\"x\">'&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    let model = model_of(
        "kind: Mesh\nmeshName: m\n---\nkind: VirtualNode\nmeshName: m\nvirtualNodeName: n\n\
         spec:\n  serviceDiscovery: {dns: {hostname: \"<img src=x onerror=alert(1)>\"}}\n",
    );
    let config = ConfigState {
        warnings: vec![ProblemReport {
            file: "<dir>/a.yaml".into(),
            line: 3,
            path: "spec.<x>".into(),
            message: "not translated yet: <tls>".into(),
        }],
        ..valid()
    };
    let stranger = proxy("<script>alert(1)</script>", [SYNCED; 4]);
    let html = page(Some(&model), &config, &[stranger]);
    let body = &html[html.find("<main").expect("main")..html.find("</main>").expect("end")];
    assert!(!body.contains("<img"), "{body}");
    assert!(!body.contains("<script"), "{body}");
    assert!(!body.contains("<tls>") && !body.contains("<dir>") && !body.contains("<x>"));
    assert!(body.contains("DNS &lt;img src=x onerror=alert(1)&gt;"));
    assert!(body.contains("&lt;dir&gt;/a.yaml:3"));
    let t = text(body);
    assert!(
        t.contains("Sidecars naming nothing loaded"),
        "an unknown node id is listed: {t}"
    );
    assert!(t.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn weights_not_summing_to_100_also_show_each_share() {
    let model = model_of(
        "kind: Mesh\nmeshName: m\n---\nkind: VirtualNode\nmeshName: m\nvirtualNodeName: a\n\
         spec: {listeners: [{portMapping: {port: 80, protocol: http}}], serviceDiscovery: {dns: {hostname: a}}}\n---\n\
         kind: VirtualNode\nmeshName: m\nvirtualNodeName: b\n\
         spec: {listeners: [{portMapping: {port: 80, protocol: http}}], serviceDiscovery: {dns: {hostname: b}}}\n---\n\
         kind: VirtualRouter\nmeshName: m\nvirtualRouterName: r\n\
         spec: {listeners: [{portMapping: {port: 80, protocol: http}}]}\n---\n\
         kind: Route\nmeshName: m\nvirtualRouterName: r\nrouteName: split\nspec:\n  httpRoute:\n    \
         match: {prefix: /api, headers: [{name: x-v, match: {exact: \"2\"}}, {name: x-b, invert: true, \
         match: {prefix: t}}], queryParameters: [{name: q, match: {exact: \"1\"}}]}\n    \
         action: {weightedTargets: [{virtualNode: a, weight: 1}, {virtualNode: b, weight: 3}]}\n",
    );
    let html = page(Some(&model), &valid(), &[]);
    let router = card(&html, "vr-m-r");
    assert!(router.contains("split no priority · http"), "{router}");
    assert!(
        router
            .contains("prefix /api · header x-v = 2 · header not x-b starts with t · query q = 1"),
        "{router}"
    );
    assert!(router.contains("a 1 25%"), "{router}");
    assert!(router.contains("b 3 75%"), "{router}");
    assert!(html.contains("style=\"width:75.0%\""));
}

#[test]
fn grpc_routes_show_their_method_metadata_port_and_targets() {
    let model = model_of(
        "kind: Mesh\nmeshName: m\n---\nkind: VirtualNode\nmeshName: m\nvirtualNodeName: a\n\
         spec: {listeners: [{portMapping: {port: 50051, protocol: grpc}}], serviceDiscovery: {dns: {hostname: a}}}\n---\n\
         kind: VirtualRouter\nmeshName: m\nvirtualRouterName: r\n\
         spec: {listeners: [{portMapping: {port: 50051, protocol: grpc}}]}\n---\n\
         kind: Route\nmeshName: m\nvirtualRouterName: r\nrouteName: add\nspec:\n  priority: 4\n  grpcRoute:\n    \
         match: {serviceName: shop.Cart, methodName: Add, port: 50051, metadata: [{name: x-t, match: {exact: \"1\"}}]}\n    \
         action: {weightedTargets: [{virtualNode: a, weight: 100}]}\n",
    );
    let html = page(Some(&model), &valid(), &[]);
    let router = card(&html, "vr-m-r");
    assert!(router.contains("add priority 4 · grpc"), "{router}");
    assert!(
        router.contains("method /shop.Cart/Add · header x-t = 1 · port 50051"),
        "{router}"
    );
    assert!(router.contains("a 100"), "{router}");
}

#[test]
fn invalid_files_list_problems_and_say_what_is_still_served() {
    let model = demo();
    let config = ConfigState {
        valid: false,
        problems: vec![ProblemReport {
            file: "mesh/router.yaml".into(),
            line: 17,
            path: "spec.httpRoute.action.weightedTargets[0].virtualNode".into(),
            message: "virtual node backend-v9 does not exist".into(),
        }],
        reloads_rejected: 1,
        ..valid()
    };
    let t = text(&page(Some(&model), &config, &[]));
    assert!(t.contains("Configuration invalid: 1 problem"), "{t}");
    assert!(t.contains(
        "mesh/router.yaml:17 spec.httpRoute.action.weightedTargets[0].virtualNode \
         virtual node backend-v9 does not exist"
    ));
    assert!(
        t.contains("Still serving the last valid configuration, accepted 22:13:20 UTC"),
        "{t}"
    );
    assert!(
        t.contains("backend-v1 90"),
        "the served topology is still shown"
    );

    let never = ConfigState {
        accepted_at: None,
        ..config
    };
    let t = text(&page(None, &never, &[]));
    assert!(t.contains("Nothing is served yet"), "{t}");
    assert!(!t.contains("Still serving"), "{t}");
}

#[test]
fn gateways_are_listed_with_their_routes() {
    let model = model_of(
        "kind: Mesh\nmeshName: m\n---\nkind: VirtualNode\nmeshName: m\nvirtualNodeName: shop\n\
         spec: {listeners: [{portMapping: {port: 80, protocol: http}}], serviceDiscovery: {dns: {hostname: shop}}}\n---\n\
         kind: VirtualService\nmeshName: m\nvirtualServiceName: shop.local\n\
         spec: {provider: {virtualNode: {virtualNodeName: shop}}}\n---\n\
         kind: VirtualGateway\nmeshName: m\nvirtualGatewayName: edge\n\
         spec: {listeners: [{portMapping: {port: 8443, protocol: http}}]}\n---\n\
         kind: GatewayRoute\nmeshName: m\nvirtualGatewayName: edge\ngatewayRouteName: to-shop\n\
         spec: {httpRoute: {match: {prefix: /shop}, action: {target: {virtualService: \
         {virtualServiceName: shop.local}}}}}\n",
    );
    let gw = proxy(
        "mesh/m/virtualGateway/edge",
        [(SyncState::NotSent, None); 4],
    );
    let t = text(&page(Some(&model), &valid(), &[gw]));
    assert!(
        t.contains("Virtual gateways 1 Each gateway Envoy listens"),
        "{t}"
    );
    assert!(
        t.contains(
            "edge 1 sidecar NOT SENT listeners 8443 http routes to-shop: http /shop → shop.local"
        ),
        "{t}"
    );
    assert!(t.contains("sidecar NOT SENT"), "{t}");
    // The summary counts the gateway and its Envoy like a node's.
    assert!(
        t.contains("Sidecars 1 virtual node and 1 virtual gateway in 1 mesh"),
        "{t}"
    );
    assert!(
        t.contains("1 NOT CONNECTED"),
        "the node has no sidecar: {t}"
    );
    assert!(!t.contains("Sidecars naming nothing loaded"), "{t}");
    assert!(t.contains("provided by node shop"), "{t}");
}

#[test]
fn times_are_utc_dates() {
    let mut out = String::new();
    time(&mut out, UNIX_EPOCH + Duration::from_secs(951_827_696));
    assert_eq!(
        out,
        "<time datetime=\"2000-02-29T12:34:56Z\" title=\"2000-02-29 12:34:56 UTC\">12:34:56 UTC</time>"
    );
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(civil_from_days(19_723), (2024, 1, 1));
}

#[test]
fn long_lists_are_cut_with_a_note() {
    let config = ConfigState {
        valid: false,
        problems: (0..LIST_LIMIT + 5)
            .map(|i| ProblemReport {
                file: "a.yaml".into(),
                line: i,
                path: String::new(),
                message: "bad".into(),
            })
            .collect(),
        ..valid()
    };
    let html = page(None, &config, &[]);
    assert_eq!(html.matches("<li>").count(), LIST_LIMIT);
    assert!(text(&html).contains("… and 5 more (GET /load lists them all)"));
}
