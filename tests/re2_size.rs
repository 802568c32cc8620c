//! RE2 program sizes with real Envoy 1.40 (docs/contract.md §2, regular expressions): validation's
//! upper bound (`meshplane::model::re2_program_size_bound`) is never below the size Envoy
//! measures, over a corpus of App Mesh style regexes (ASCII, Unicode, case folding, counted and
//! nested repetitions, captures, one near the limit); and an Envoy started from `meshplane
//! bootstrap` accepts a route regex far over Envoy's default limit of 100.

mod support;

use std::time::{Duration, Instant};

use support::envoy::{free_port, http_get, Envoy, Upstream};
use support::*;

fn corpus() -> Vec<String> {
    let mut c: Vec<String> = [
        "^/items/[0-9]+$",
        "^/(alpha|beta|gamma|delta|epsilon){1,12}/[a-z0-9]{8,32}(-[a-z0-9]{4,16}){2,6}$",
        ".*foo.*",
        "a.*b.*c.*d.*e.*f.*g.*",
        r"(?i)^/users/\w+/orders/\d{1,10}$",
        r"\pL+",
        r"\p{Greek}{2,5}",
        r"(?i)\pL{1,20}",
        r"\pN{1,50}",
        "(?i)[a-zé]{3,9}",
        "[α-ω]{2,4}",
        "(?i)ΣΑΣ",
        "(?i)€€€€€€€€",
        "(?i)[à-ÿ]{2,8}",
        r"[^\x00-\x7F]+",
        r"[\x{41}-\x{FF}]+",
        "[^a]",
        ".",
        "(?s).",
        ".{0,200}",
        "(?:ab|cd){2,3}",
        "((a|b){2}){3}",
        "(?P<id>[0-9]+)-(?P<v>v[0-9])",
        "[^/]+/[^/]+",
        r"\S+@\S+\.\w{2,}",
        "(?m)^a$",
        "(?U)a+b*",
        "(a*)*",
        "[[:^alpha:]]",
        r"\bword\b",
        "^$",
        "a{1000}",
        "(?i)straße",
        "x{0}y",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Near meshplane's limit of 50,000: about 5,000 instructions per part.
    c.push(format!("^{}$", "/[a-z0-9_]{1000}".repeat(9)));
    c
}

/// A static Envoy with a route per regex; the runtime lets any size compile and warns for each
/// (`re2.max_program_size.warn_level: 1`), which logs its program size.
fn measuring_bootstrap(port: u16, regexes: &[String]) -> String {
    let routes: Vec<_> = regexes
        .iter()
        .map(|r| serde_json::json!({"match": {"safe_regex": {"regex": r}}, "direct_response": {"status": 200}}))
        .collect();
    serde_json::json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "layered_runtime": {"layers": [{"name": "sizes", "static_layer": {
            "re2.max_program_size.error_level": u32::MAX,
            "re2.max_program_size.warn_level": 1}}]},
        "static_resources": {"listeners": [{"name": "sizes",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "sizes",
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_is_never_below_the_size_envoy_measures() {
    let regexes = corpus();
    let work = tempfile::tempdir().unwrap();
    let yaml = measuring_bootstrap(free_port(), &regexes);
    let _envoy = Envoy::start_bootstrap("re2-sizes", work.path(), &yaml).await;
    // Envoy's log reaches its file a little after it is ready: until the last regex is in it.
    let last = format!("regex '{}' RE2 program size", regexes[regexes.len() - 1]);
    let read = || std::fs::read_to_string(work.path().join("re2-sizes.log")).unwrap_or_default();
    let began = Instant::now();
    while !read().contains(&last) {
        assert!(began.elapsed() < Duration::from_secs(10), "{}", read());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = read();
    let (mut worst, limit) = (0.0f64, meshplane::model::RE2_MAX_PROGRAM_SIZE);
    for re in &regexes {
        let needle = format!("regex '{re}' RE2 program size of ");
        // Envoy warns of sizes above the warn level (1) only: no line is a size of 1.
        let measured: u64 = log
            .lines()
            .find_map(|l| l.split_once(&needle))
            .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
            .unwrap_or(1);
        let bound = meshplane::model::re2_program_size_bound(re).unwrap();
        let ratio = bound as f64 / measured as f64;
        worst = worst.max(ratio);
        println!("{measured:>6} measured, {bound:>6} bound ({ratio:.2}x)  {re}");
        assert!(
            bound >= measured,
            "{re}: bound {bound} < Envoy's {measured}"
        );
        assert!(
            measured <= u64::from(limit),
            "{re} is a corpus of accepted regexes"
        );
    }
    println!(
        "largest over-estimate: {worst:.2}x over {} regexes",
        regexes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meshplanes_bootstrap_lets_envoy_take_app_mesh_sized_regexes() {
    const BIG: &str =
        "^/(alpha|beta|gamma|delta|epsilon){1,12}/[a-z0-9]{8,32}(-[a-z0-9]{4,16}){2,6}$";
    let (egress, app, ingress) = (free_port(), free_port(), free_port());
    let _api = Upstream::start(app, "api", 0).await;
    let dir = MeshDir::new();
    dir.write(
        "mesh.yaml",
        &format!(
            "kind: Mesh\nmeshName: re\n---\nkind: VirtualNode\nmeshName: re\nvirtualNodeName: client\nspec:\n  backends: [{{virtualService: {{virtualServiceName: api.re.local}}}}]\n  proxy: {{egressPort: {egress}}}\n---\nkind: VirtualNode\nmeshName: re\nvirtualNodeName: api\nspec:\n  listeners: [{{portMapping: {{port: {app}, protocol: http}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  proxy: {{ingressPort: {ingress}}}\n---\nkind: VirtualService\nmeshName: re\nvirtualServiceName: api.re.local\nspec: {{provider: {{virtualRouter: {{virtualRouterName: api}}}}}}\n---\nkind: VirtualRouter\nmeshName: re\nvirtualRouterName: api\nspec: {{listeners: [{{portMapping: {{port: 80, protocol: http}}}}]}}\n---\nkind: Route\nmeshName: re\nvirtualRouterName: api\nrouteName: big\nspec:\n  httpRoute:\n    match: {{path: {{regex: '{BIG}'}}}}\n    action: {{weightedTargets: [{{virtualNode: api, weight: 1}}]}}\n"
        ),
    );
    let server = start(dir.path()).await;
    let last = &server.pipeline.status().last;
    assert!(last.problems.is_empty(), "{last:#?}");
    let work = tempfile::tempdir().unwrap();
    let client = Envoy::start("mesh/re/virtualNode/client", server.xds_addr, work.path()).await;
    let _api_envoy = Envoy::start("mesh/re/virtualNode/api", server.xds_addr, work.path()).await;
    let egress_addr = std::net::SocketAddr::from(([127, 0, 0, 1], egress));
    let path = "/gammadelta/abcdefgh-abcd-1234";
    let what = format!("the big regex's route; see {}", work.path().display());
    eventually_async(&what, Duration::from_secs(20), async || {
        let r = http_get(egress_addr, "api.re.local", path, &[]).await;
        matches!(&r, Ok((200, b)) if b == "api")
    })
    .await;
    // The route took it (nothing else matches), and no route table was rejected.
    let (status, _) = http_get(egress_addr, "api.re.local", "/other", &[])
        .await
        .unwrap();
    assert_eq!(status, 404);
    let stats = client.admin_get("/stats?filter=update_rejected").await;
    assert!(stats.lines().all(|l| l.ends_with(": 0")), "{stats}");
}
