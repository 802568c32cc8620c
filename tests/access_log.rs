//! Access logs on virtual nodes, with real Envoy: a sidecar with a text format (`client`), one
//! with a json format (`server`) and one without a format on a tcp listener (`db`: App Mesh's
//! default format, Envoy's own), each writing a file in a temporary directory. Traffic goes
//! through the client's egress to the server's ingress, into the client's own ingress, and over
//! TCP into the db's ingress; every line is read back and parsed (json with serde_json, text
//! against its format). The mesh prefers IPv4 (`ipPreference: IPv4_PREFERRED`), so the listeners
//! also take IPv6: one of the calls goes over `::1`. The server is found by Cloud Map: its
//! service `127` in namespace `0.0.1` is published as `127.0.0.1`, which Envoy's STRICT_DNS
//! cluster resolves without a DNS server, so the client's calls take the Cloud Map cluster.
//!
//! Without Envoy: every listener of the golden observability mesh carries its node's log.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
use envoy_types::pb::envoy::config::core::v3::substitution_format_string::Format;
use envoy_types::pb::envoy::config::listener::v3::filter;
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use meshplane::app::Pipeline;
use meshplane::build::NodeResources;
use support::envoy::{free_port, http_get, Envoy, Upstream};
use support::*;

/// The text format of the client's log.
const CLIENT_FORMAT: &str = "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %UPSTREAM_CLUSTER%";

struct Ports {
    client_app: u16,
    client_in: u16,
    client_out: u16,
    server_app: u16,
    server_in: u16,
    db_app: u16,
    db_in: u16,
}

fn mesh(p: &Ports, logs: &Path) -> String {
    let log = |name: &str| logs.join(format!("{name}.log")).display().to_string();
    format!(
        "kind: Mesh\nmeshName: logs\nspec: {{serviceDiscovery: {{ipPreference: IPv4_PREFERRED}}}}\n\
---\nkind: VirtualNode\nmeshName: logs\nvirtualNodeName: client\nspec:\n  listeners: [{{portMapping: {{port: {ca}, protocol: http}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  backends: [{{virtualService: {{virtualServiceName: server.logs.local}}}}]\n  logging: {{accessLog: {{file: {{path: {cl}, format: {{text: \"{CLIENT_FORMAT}\"}}}}}}}}\n  proxy: {{ingressPort: {ci}, egressPort: {co}}}\n\
---\nkind: VirtualNode\nmeshName: logs\nvirtualNodeName: server\nspec:\n  listeners: [{{portMapping: {{port: {sa}, protocol: http}}}}]\n  serviceDiscovery: {{awsCloudMap: {{namespaceName: 0.0.1, serviceName: \"127\"}}}}\n  logging:\n    accessLog:\n      file:\n        path: {sl}\n        format:\n          json:\n            - {{key: method, value: \"%REQ(:METHOD)%\"}}\n            - {{key: path, value: \"%REQ(:PATH)%\"}}\n            - {{key: code, value: \"%RESPONSE_CODE%\"}}\n            - {{key: cluster, value: \"%UPSTREAM_CLUSTER%\"}}\n  proxy: {{ingressPort: {si}}}\n\
---\nkind: VirtualNode\nmeshName: logs\nvirtualNodeName: db\nspec:\n  listeners: [{{portMapping: {{port: {da}, protocol: tcp}}}}]\n  serviceDiscovery: {{static: {{endpoints: [{{address: 127.0.0.1}}]}}}}\n  logging: {{accessLog: {{file: {{path: {dl}}}}}}}\n  proxy: {{ingressPort: {di}}}\n\
---\nkind: VirtualService\nmeshName: logs\nvirtualServiceName: server.logs.local\nspec: {{provider: {{virtualNode: {{virtualNodeName: server}}}}}}\n",
        ca = p.client_app,
        ci = p.client_in,
        co = p.client_out,
        sa = p.server_app,
        si = p.server_in,
        da = p.db_app,
        di = p.db_in,
        cl = log("client"),
        sl = log("server"),
        dl = log("db"),
    )
}

/// A TCP app that answers every chunk it reads with the same bytes.
async fn tcp_echo(port: u16) {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind tcp app");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// GETs `path` from `addr` until it answers 200 (the sidecar has its configuration).
async fn get_ok(addr: SocketAddr, host: &str, path: &str) -> String {
    let began = Instant::now();
    loop {
        match http_get(addr, host, path, &[]).await {
            Ok((200, body)) => return body,
            other => assert!(
                began.elapsed() < Duration::from_secs(20),
                "GET {host}{path} at {addr}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lines of `file` once it has at least `n` (Envoy flushes every 100 ms in tests).
async fn lines(file: &Path, n: usize) -> Vec<String> {
    let began = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "{} has {} lines, wanted {n}: {text}",
            file.display(),
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Envoy's default format as a pattern: `[start] "METHOD PATH PROTOCOL" code flags received sent
/// duration upstream-time "xff" "user-agent" "request-id" "authority" "upstream-host"`.
fn default_format_fields(line: &str) -> Option<Vec<String>> {
    let rest = line.strip_prefix('[')?;
    let (start, rest) = rest.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut fields = vec![start.to_string(), request.to_string()];
    let (numbers, quoted) = rest.split_once(" \"")?;
    fields.extend(numbers.split(' ').map(str::to_string));
    let quoted = quoted.strip_suffix('"')?;
    fields.extend(quoted.split("\" \"").map(str::to_string));
    (fields.len() == 13).then_some(fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_write_text_json_and_default_access_logs() {
    let p = Ports {
        client_app: free_port(),
        client_in: free_port(),
        client_out: free_port(),
        server_app: free_port(),
        server_in: free_port(),
        db_app: free_port(),
        db_in: free_port(),
    };
    let _client_app = Upstream::start(p.client_app, "client", 0).await;
    let _server_app = Upstream::start(p.server_app, "server", 0).await;
    tcp_echo(p.db_app).await;
    let logs = tempfile::tempdir().unwrap();
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(&p, logs.path()));
    let server = start(dir.path()).await;
    let status = server.pipeline.status();
    assert!(
        status.last.problems.is_empty(),
        "{:#?}",
        status.last.problems
    );
    let work = tempfile::tempdir().unwrap();
    let mut envoys = Vec::new();
    for name in ["client", "server", "db"] {
        let id = format!("mesh/logs/virtualNode/{name}");
        envoys.push(Envoy::start(&id, server.xds_addr, work.path()).await);
    }
    let v4 = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let v6 = |port: u16| SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));

    // Egress (over IPv6: the egress listener also binds ::1) to the server's ingress, which
    // listens on :: for IPv4 and IPv6.
    assert_eq!(
        get_ok(v6(p.client_out), "server.logs.local", "/out").await,
        "server"
    );
    assert_eq!(
        get_ok(v6(p.server_in), "server.logs.local", "/in6").await,
        "server"
    );
    assert_eq!(get_ok(v4(p.client_in), "client", "/in").await, "client");
    let mut tcp = tokio::net::TcpStream::connect(v4(p.db_in)).await.unwrap();
    tcp.write_all(b"ping\n").await.unwrap();
    let mut echoed = [0u8; 5];
    tcp.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping\n");
    drop(tcp);

    // The client's text lines: its egress (to the server's cluster) and its ingress (to its app).
    let client = lines(&logs.path().join("client.log"), 2).await;
    let egress = format!("GET /out 200 cds_egress_logs_server_http_{}", p.server_app);
    let ingress = format!("GET /in 200 cds_ingress_logs_client_http_{}", p.client_app);
    assert!(client.contains(&egress), "{client:?}");
    assert!(client.contains(&ingress), "{client:?}");
    for l in &client {
        let parts: Vec<&str> = l.split(' ').collect();
        assert_eq!(parts.len(), 4, "{l}");
        assert!(parts[2].parse::<u16>().is_ok(), "{l}");
    }

    // The server's json lines: its ingress, for the client's request and the direct one.
    let server_lines = lines(&logs.path().join("server.log"), 2).await;
    let parsed: Vec<serde_json::Value> = server_lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let cluster = format!("cds_ingress_logs_server_http_{}", p.server_app);
    for path in ["/out", "/in6"] {
        let line = parsed
            .iter()
            .find(|v| v["path"] == path)
            .unwrap_or_else(|| panic!("no line for {path}: {server_lines:?}"));
        assert_eq!(line["method"], "GET", "{line}");
        assert!(line["code"] == 200 || line["code"] == "200", "{line}");
        assert_eq!(line["cluster"], cluster.as_str(), "{line}");
    }

    // The db's tcp_proxy line, in App Mesh's default format: no HTTP fields, 5 bytes each way,
    // the local app as the upstream host.
    let db = lines(&logs.path().join("db.log"), 1).await;
    let f = default_format_fields(&db[0])
        .unwrap_or_else(|| panic!("not the default format: {}", db[0]));
    assert_eq!(f[1], "- - -", "{}", db[0]);
    assert_eq!(
        (f[2].as_str(), f[4].as_str(), f[5].as_str()),
        ("0", "5", "5"),
        "{}",
        db[0]
    );
    assert_eq!(f[12], format!("127.0.0.1:{}", p.db_app), "{}", db[0]);
    drop(envoys);
}

/// The file and format of an access log.
fn describe(l: &AccessLog) -> (String, String) {
    let Some(access_log::ConfigType::TypedConfig(a)) = &l.config_type else {
        panic!("typed")
    };
    let f = FileAccessLog::decode(a.value.as_slice()).unwrap();
    let format = match f.access_log_format {
        Some(file_access_log::AccessLogFormat::LogFormat(sfs)) => match sfs.format {
            Some(Format::JsonFormat(s)) => {
                let mut keys: Vec<&String> = s.fields.keys().collect();
                keys.sort();
                format!("json {keys:?}")
            }
            Some(Format::TextFormatSource(ds)) => format!("text {ds:?}"),
            other => format!("{other:?}"),
        },
        other => format!("{other:?}"),
    };
    (f.path, format)
}

#[test]
fn every_listener_of_a_logging_node_carries_its_log() {
    let mut p = Pipeline::new(repo_path("tests/golden/observability/mesh"));
    assert!(p.reload(None), "{:#?}", p.status().last.problems);
    let mut seen = 0;
    for (node, listeners, path, format) in [
        (
            // Ingress, HTTP egress, and the TCP egress listener of its tcp backend.
            "mesh/obs/virtualNode/web",
            3,
            "/var/log/envoy/web.log",
            "text",
        ),
        (
            "mesh/obs/virtualNode/orders",
            1,
            "/dev/stdout",
            "json [\"code\", \"method\", \"upstream\"]",
        ),
        (
            "mesh/obs/virtualNode/stock",
            2,
            "/dev/stdout",
            "[%START_TIME%]",
        ),
        (
            "mesh/dual/virtualGateway/edge",
            2,
            "/dev/stdout",
            "[%START_TIME%]",
        ),
    ] {
        let snap = p.cache.get(node).expect(node);
        let res = NodeResources::decode(&snap).unwrap();
        assert_eq!(res.listeners.len(), listeners, "{node}");
        for l in &res.listeners {
            let f = &l.filter_chains[0].filters[0];
            let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
                panic!("typed")
            };
            let logs = if f.name.ends_with("tcp_proxy") {
                TcpProxy::decode(any.value.as_slice()).unwrap().access_log
            } else {
                HttpConnectionManager::decode(any.value.as_slice())
                    .unwrap()
                    .access_log
            };
            assert_eq!(logs.len(), 1, "{node} {}", l.name);
            let (file, fmt) = describe(&logs[0]);
            assert_eq!(file, path, "{node} {}", l.name);
            assert!(fmt.contains(format), "{node} {}: {fmt}", l.name);
            seen += 1;
        }
    }
    assert_eq!(seen, 8);
    // A node without logging gets none.
    let snap = p.cache.get("mesh/dual/virtualNode/api").unwrap();
    let res = NodeResources::decode(&snap).unwrap();
    let f = &res.listeners[0].filter_chains[0].filters[0];
    let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
        panic!("typed")
    };
    assert!(HttpConnectionManager::decode(any.value.as_slice())
        .unwrap()
        .access_log
        .is_empty());
}
