//! Golden tests of the translation: each mesh in `tests/golden/<name>/mesh` (and the bundled example)
//! goes through the pipeline the server runs (load, validate, translate, build), and what each node
//! would be served, decoded from the built bytes, is compared with `tests/golden/<name>/<node>.txt`.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use meshplane::app::Pipeline;
use meshplane::build::NodeResources;
use meshplane::model::ProxyId;

/// A pipeline for `dir` with a CA of its own, as `serve --ca-dir` has one: a mesh that names `acm`
/// certificates needs it. (Its certificates are random; the golden files hold no secrets.)
fn pipeline(dir: &Path) -> Pipeline {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = meshplane::ca::CaDir::open_or_create(&ca_dir.path().join("ca"), "meshplane.local")
        .expect("a CA");
    let validity = std::time::Duration::from_secs(24 * 3600);
    let ca = std::sync::Arc::new(meshplane::ca::Authority::new(ca, validity));
    Pipeline::new(dir.to_path_buf()).with_ca(Some(ca))
}

fn check(mesh_dir: &Path, golden_dir: &Path) {
    let mut p = pipeline(mesh_dir);
    let loaded = p.reload(None);
    assert!(
        loaded,
        "{} is invalid: {:#?}",
        mesh_dir.display(),
        p.status().last.problems
    );
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let nodes = p.cache.keys();
    assert!(!nodes.is_empty());
    for key in nodes {
        let id = ProxyId::parse(&key).expect("a node id");
        let snap = p.cache.get(&key).expect("published");
        snap.consistent().expect("consistent");
        let res = NodeResources::decode(&snap).expect("decodes");
        let file = golden_dir.join(format!("{}_{}.txt", id.mesh, id.name));
        let text = format!("{res:#?}\n");
        if update {
            std::fs::create_dir_all(golden_dir).unwrap();
            std::fs::write(&file, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "missing golden file {}; run with UPDATE_GOLDEN=1",
                file.display()
            )
        });
        if want != text {
            let line = want
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{} differs from the translation at line {}:\n  golden: {:?}\n  now:    {:?}\nrun with UPDATE_GOLDEN=1 and review the diff",
                file.display(),
                line + 1,
                want.lines().nth(line),
                text.lines().nth(line)
            );
        }
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn demo_example() {
    check(
        &root().join("examples/demo"),
        &root().join("tests/golden/demo"),
    );
}

#[test]
fn every_http_feature() {
    check(
        &root().join("tests/golden/features/mesh"),
        &root().join("tests/golden/features"),
    );
}

/// Every node's served versions (content hashes of the encoded resources), after a full load.
fn served_versions(dir: &Path) -> BTreeMap<String, [String; 4]> {
    let mut p = Pipeline::new(dir.to_path_buf());
    assert!(p.reload(None), "{} does not load", dir.display());
    p.cache.versions()
}

const CHILD: &str = "MESHPLANE_GOLDEN_CHILD_DIR";

/// [`served_versions`] of `mesh`, computed by this test binary run again.
fn in_another_process(mesh: &Path) -> BTreeMap<String, [String; 4]> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "served_bytes_do_not_depend_on_process_or_document_order",
            "--nocapture",
        ])
        .env(CHILD, mesh)
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("VERSIONS "))
        .unwrap_or_else(|| panic!("child printed no versions: {stdout}"));
    serde_json::from_str(json).unwrap()
}

/// The same files give the same bytes in another process (another hash seed, another
/// allocation order) and whatever order their documents come in.
#[test]
fn served_bytes_do_not_depend_on_process_or_document_order() {
    if let Some(dir) = std::env::var_os(CHILD) {
        let v = served_versions(Path::new(&dir));
        println!("VERSIONS {}", serde_json::to_string(&v).unwrap());
        return;
    }
    let mesh = root().join("tests/golden/features/mesh");
    let here = served_versions(&mesh);
    assert!(here.len() >= 3);
    assert_eq!(
        here,
        in_another_process(&mesh),
        "another process served other bytes"
    );
    let gateway = root().join("tests/golden/gateway/mesh");
    assert_eq!(
        served_versions(&gateway),
        in_another_process(&gateway),
        "another process served a gateway other bytes"
    );

    // Each document in a file of its own, in reverse order.
    let text = std::fs::read_to_string(mesh.join("all.yaml")).unwrap();
    let docs: Vec<&str> = text.split("\n---\n").collect();
    assert!(docs.len() > 5);
    let shuffled = tempfile::tempdir().unwrap();
    for (i, doc) in docs.iter().rev().enumerate() {
        std::fs::write(shuffled.path().join(format!("{i:03}.yaml")), doc).unwrap();
    }
    assert_eq!(
        here,
        served_versions(shuffled.path()),
        "reordered documents served other bytes"
    );
}

#[test]
fn every_gateway_feature() {
    check(
        &root().join("tests/golden/gateway/mesh"),
        &root().join("tests/golden/gateway"),
    );
}

#[test]
fn every_tcp_feature() {
    check(
        &root().join("tests/golden/tcp/mesh"),
        &root().join("tests/golden/tcp"),
    );
    tcp_proxies(
        &root().join("tests/golden/tcp/mesh"),
        &root().join("tests/golden/tcp/tcp_proxies.txt"),
    );
}

/// The `tcp_proxy` filters of every node's listeners, decoded (the node files show them as
/// bytes), compared with `file`.
fn tcp_proxies(mesh_dir: &Path, file: &Path) {
    use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
    use prost::Message;
    let mut p = Pipeline::new(mesh_dir.to_path_buf());
    assert!(p.reload(None), "{} is invalid", mesh_dir.display());
    let mut text = String::new();
    for key in p.cache.keys() {
        let snap = p.cache.get(&key).expect("published");
        let res = NodeResources::decode(&snap).expect("decodes");
        for l in &res.listeners {
            let filters = l.filter_chains.iter().flat_map(|c| &c.filters);
            for f in filters {
                let Some(ConfigType::TypedConfig(any)) = &f.config_type else {
                    continue;
                };
                if !f.name.ends_with("tcp_proxy") {
                    continue;
                }
                if let Ok(t) = TcpProxy::decode(any.value.as_slice()) {
                    text.push_str(&format!("{key} {}:\n{t:#?}\n", l.name));
                }
            }
        }
    }
    compare_or_update(file, &text);
}

/// gRPC and HTTP/2 routes and services on several ports (tests/golden/grpc/mesh).
#[test]
fn every_grpc_feature() {
    check(
        &root().join("tests/golden/grpc/mesh"),
        &root().join("tests/golden/grpc"),
    );
}

/// Access logs, Cloud Map and ipPreference (tests/golden/observability/mesh).
#[test]
fn access_logs_cloud_map_and_ip_preference() {
    check(
        &root().join("tests/golden/observability/mesh"),
        &root().join("tests/golden/observability"),
    );
}

/// App Mesh's iptables layout (tests/golden/transparent/mesh), with its decoded `tcp_proxy`s and
/// the access logs of every chain.
#[test]
fn transparent_layout() {
    let mesh = root().join("tests/golden/transparent/mesh");
    check(&mesh, &root().join("tests/golden/transparent"));
    tcp_proxies(
        &mesh,
        &root().join("tests/golden/transparent/tcp_proxies.txt"),
    );
    chain_logs(
        &mesh,
        &root().join("tests/golden/transparent/access_logs.txt"),
    );
}

/// For every chain of every node's listeners (the default one too), each filter's access log
/// paths, decoded (the node files show them as bytes), compared with `file`.
fn chain_logs(mesh_dir: &Path, file: &Path) {
    use envoy_types::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
    use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
    use envoy_types::pb::envoy::extensions::access_loggers::file::v3::FileAccessLog;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
    use prost::Message;
    let paths = |logs: &[AccessLog]| -> Vec<String> {
        let file = |l: &AccessLog| match &l.config_type {
            Some(access_log::ConfigType::TypedConfig(a)) => {
                FileAccessLog::decode(a.value.as_slice())
                    .map(|f| f.path)
                    .unwrap_or_default()
            }
            None => String::new(),
        };
        logs.iter().map(file).collect()
    };
    let mut p = Pipeline::new(mesh_dir.to_path_buf());
    assert!(p.reload(None), "{} is invalid", mesh_dir.display());
    let mut text = String::new();
    for key in p.cache.keys() {
        let res = NodeResources::decode(&p.cache.get(&key).expect("published")).expect("decodes");
        for l in &res.listeners {
            let chains = l.filter_chains.iter().chain(&l.default_filter_chain);
            for c in chains {
                let port = c
                    .filter_chain_match
                    .as_ref()
                    .and_then(|m| m.destination_port);
                let port = port.map_or("default".into(), |p| p.value.to_string());
                for f in &c.filters {
                    let Some(ConfigType::TypedConfig(any)) = &f.config_type else {
                        continue;
                    };
                    let logs = if f.name.ends_with("tcp_proxy") {
                        TcpProxy::decode(any.value.as_slice()).map(|t| t.access_log)
                    } else {
                        HttpConnectionManager::decode(any.value.as_slice()).map(|h| h.access_log)
                    };
                    let logs = paths(&logs.expect("decodes"));
                    text.push_str(&format!(
                        "{key} {} port {port} {}: {logs:?}\n",
                        l.name, f.name
                    ));
                }
            }
        }
    }
    compare_or_update(file, &text);
}

/// `text` is `file`'s content (with UPDATE_GOLDEN set, it becomes it).
fn compare_or_update(file: &Path, text: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(file, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(file).expect("golden file; run with UPDATE_GOLDEN=1");
    assert_eq!(
        want,
        text,
        "{} differs; run with UPDATE_GOLDEN=1 and review the diff",
        file.display()
    );
}

/// TLS on listeners and client policies (tests/golden/tls/mesh).
#[test]
fn tls_listeners_and_client_policies() {
    let (mesh, golden) = (
        root().join("tests/golden/tls/mesh"),
        root().join("tests/golden/tls"),
    );
    check(&mesh, &golden);
    check_tls(&mesh, &golden.join("tls"));
}

/// The TLS contexts of every node's listener chains and clusters, decoded (the node files show
/// them as bytes), in `<golden>/<mesh>_<node>.txt`.
fn check_tls(mesh_dir: &Path, golden_dir: &Path) {
    use envoy_types::pb::envoy::config::core::v3::{transport_socket, TransportSocket};
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        DownstreamTlsContext, UpstreamTlsContext,
    };
    use prost::Message;
    fn any(ts: &Option<TransportSocket>) -> &[u8] {
        match ts.as_ref().and_then(|t| t.config_type.as_ref()) {
            Some(transport_socket::ConfigType::TypedConfig(a)) => &a.value,
            None => &[],
        }
    }
    let mut p = pipeline(mesh_dir);
    assert!(p.reload(None));
    for key in p.cache.keys() {
        let id = ProxyId::parse(&key).expect("a node id");
        let res = NodeResources::decode(&p.cache.get(&key).unwrap()).unwrap();
        let mut text = String::new();
        for l in &res.listeners {
            let filters: Vec<_> = l.listener_filters.iter().map(|f| &f.name).collect();
            text += &format!("listener {} filters {filters:?}\n", l.name);
            for c in &l.filter_chains {
                let ctx = c.transport_socket.as_ref().map(|_| {
                    DownstreamTlsContext::decode(any(&c.transport_socket)).expect("decodes")
                });
                text += &format!("  chain {:?}\n  {ctx:#?}\n", c.filter_chain_match);
            }
        }
        for c in &res.clusters {
            let ctx = c
                .transport_socket
                .as_ref()
                .map(|_| UpstreamTlsContext::decode(any(&c.transport_socket)).expect("decodes"));
            text += &format!("cluster {}\n  {ctx:#?}\n", c.name);
        }
        let file = golden_dir.join(format!("{}_{}.txt", id.mesh, id.name));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(golden_dir).unwrap();
            std::fs::write(&file, &text).unwrap();
        } else {
            let want = std::fs::read_to_string(&file).expect("golden TLS file; UPDATE_GOLDEN=1");
            assert!(
                want == text,
                "{} differs; UPDATE_GOLDEN=1 and review",
                file.display()
            );
        }
    }
}
