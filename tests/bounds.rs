//! What a client can make the server hold is bounded (issue 9, item 4): cache entries of undefined
//! node ids, request size, node-id length, streams per connection, time to speak, keepalive,
//! idle connections under a low descriptor limit, `/proxies`, and the drain on SIGTERM. The
//! floods run against the `meshplane serve` binary and print its descriptors, RSS and CPU.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_client::ClusterDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use meshplane::app::{ServeConfig, Server};
use meshplane::xds::limits::ClientLimits;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

const FRONTEND: &str = "mesh/demo/virtualNode/frontend";

async fn start_with(dir: &std::path::Path, limits: ClientLimits) -> Server {
    Server::start(ServeConfig {
        xds_listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        debounce: Duration::from_millis(50),
        limits,
        ..ServeConfig::new(dir.to_path_buf())
    })
    .await
    .expect("server starts")
}

fn demo() -> MeshDir {
    MeshDir::copy_of(&repo_path("examples/demo"))
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect")
}

fn cds_request(node_id: &str, names: Vec<String>) -> DiscoveryRequest {
    DiscoveryRequest {
        node: Some(Node {
            id: node_id.into(),
            ..Default::default()
        }),
        type_url: CDS.into(),
        resource_names: names,
        ..Default::default()
    }
}

/// Opens an ADS stream, sends `first`, and returns how the stream ends within `wait`: the status
/// code (`Code::Ok` for a clean end), or `None` while it is still open (keeping the stream).
async fn ads_outcome(
    addr: SocketAddr,
    first: Option<DiscoveryRequest>,
    wait: Duration,
) -> Option<Code> {
    let mut client = AggregatedDiscoveryServiceClient::new(channel(addr).await);
    let (tx, rx) = mpsc::channel(4);
    if let Some(first) = first {
        tx.send(first).await.unwrap();
    }
    let mut stream = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("open stream")
        .into_inner();
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.message()).await {
            Err(_) => return None,
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => return Some(Code::Ok),
            Ok(Err(status)) => return Some(status.code()),
        }
    }
}

#[tokio::test]
async fn a_request_over_the_size_limit_ends_its_stream_with_resource_exhausted() {
    let dir = demo();
    let limits = ClientLimits {
        max_request_bytes: 64 << 10,
        ..ClientLimits::default()
    };
    let server = start_with(dir.path(), limits).await;
    let addr = server.xds_addr;
    let big = || vec!["x".repeat(1000); 80];
    let small = || vec!["x".repeat(1000); 50];
    // Under the limit: served (the stream stays open after its response).
    assert_eq!(
        ads_outcome(
            addr,
            Some(cds_request(FRONTEND, small())),
            Duration::from_millis(500)
        )
        .await,
        None
    );
    assert_eq!(
        ads_outcome(
            addr,
            Some(cds_request(FRONTEND, big())),
            Duration::from_secs(5)
        )
        .await,
        Some(Code::ResourceExhausted),
        "ADS SotW"
    );
    // Delta ADS and a per-type service go through other glue: the same answer.
    let mut delta = AggregatedDiscoveryServiceClient::new(channel(addr).await);
    let req = DeltaDiscoveryRequest {
        node: cds_request(FRONTEND, vec![]).node,
        type_url: CDS.into(),
        resource_names_subscribe: big(),
        ..Default::default()
    };
    let mut rx = delta
        .delta_aggregated_resources(tokio_stream::once(req))
        .await
        .unwrap()
        .into_inner();
    let end = tokio::time::timeout(Duration::from_secs(5), rx.message()).await;
    assert!(
        matches!(&end, Ok(Err(s)) if s.code() == Code::ResourceExhausted),
        "ADS delta: {end:?}"
    );
    let mut cds = ClusterDiscoveryServiceClient::new(channel(addr).await);
    let mut rx = cds
        .stream_clusters(tokio_stream::once(cds_request(FRONTEND, big())))
        .await
        .unwrap()
        .into_inner();
    let end = tokio::time::timeout(Duration::from_secs(5), rx.message()).await;
    assert!(
        matches!(&end, Ok(Err(s)) if s.code() == Code::ResourceExhausted),
        "per-type CDS: {end:?}"
    );
    let text =
        meshplane::admin::render_metrics(&server.pipeline, &server.metrics, &server.registry);
    assert!(
        text.contains("meshplane_xds_streams_refused_total{reason=\"request_too_large\"} 3"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_default_request_limit_is_4_mib() {
    let dir = demo();
    let server = start(dir.path()).await;
    let names = vec!["x".repeat(1 << 10); 5 << 10];
    assert_eq!(
        ads_outcome(
            server.xds_addr,
            Some(cds_request(FRONTEND, names)),
            Duration::from_secs(10)
        )
        .await,
        Some(Code::ResourceExhausted)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_node_id_over_the_limit_is_refused_with_invalid_argument() {
    let dir = demo();
    let server = start(dir.path()).await;
    let addr = server.xds_addr;
    let id = |len: usize| {
        let prefix = "mesh/demo/virtualNode/";
        format!("{prefix}{}", "n".repeat(len - prefix.len()))
    };
    // Beyond the limit: refused. At the limit: an (unknown) node that keeps its stream.
    for (len, wait, want) in [
        (4096, Duration::from_secs(5), Some(Code::InvalidArgument)),
        (1025, Duration::from_secs(5), Some(Code::InvalidArgument)),
        (1024, Duration::from_millis(500), None),
    ] {
        let got = ads_outcome(addr, Some(cds_request(&id(len), vec![])), wait).await;
        assert_eq!(got, want, "a node id of {len} bytes");
    }
    let mut fetch = ClusterDiscoveryServiceClient::new(channel(addr).await);
    let err = fetch
        .fetch_clusters(cds_request(&id(4096), vec![]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_or_connection_that_does_not_speak_is_closed_after_the_handshake_timeout() {
    let dir = demo();
    let limits = ClientLimits {
        handshake_timeout: Duration::from_millis(300),
        ..ClientLimits::default()
    };
    let server = start_with(dir.path(), limits).await;
    let started = Instant::now();
    assert_eq!(
        ads_outcome(server.xds_addr, None, Duration::from_secs(5)).await,
        Some(Code::DeadlineExceeded)
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // The server speaks first (its SETTINGS frame); it must then close the silent connection.
    let mut silent = TcpStream::connect(server.xds_addr).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "still open"
    );
    // A stream that spoke keeps going past the timeout.
    assert_eq!(
        ads_outcome(
            server.xds_addr,
            Some(cds_request(FRONTEND, vec![])),
            Duration::from_millis(800)
        )
        .await,
        None
    );
    server.shutdown().await;
}

#[tokio::test]
async fn streams_per_connection_are_capped_by_http2_settings() {
    let dir = demo();
    let limits = ClientLimits {
        max_streams_per_connection: 4,
        ..ClientLimits::default()
    };
    let server = start_with(dir.path(), limits).await;
    let ch = channel(server.xds_addr).await;
    let open = |ch: Channel| async move {
        let mut client = AggregatedDiscoveryServiceClient::new(ch);
        let (tx, rx) = mpsc::channel(4);
        tx.send(cds_request(FRONTEND, vec![])).await.unwrap();
        let stream = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
            .expect("open stream")
            .into_inner();
        (tx, stream)
    };
    let mut streams = Vec::new();
    for _ in 0..4 {
        streams.push(open(ch.clone()).await);
    }
    eventually("4 streams", Duration::from_secs(5), || {
        server.registry.len() == 4
    })
    .await;
    let fifth = tokio::spawn(open(ch.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !fifth.is_finished(),
        "a fifth stream opened on one connection"
    );
    assert_eq!(server.registry.len(), 4);
    drop(streams.pop());
    let fifth = tokio::time::timeout(Duration::from_secs(5), fifth)
        .await
        .expect("the fifth stream opens once one closes")
        .unwrap();
    eventually("4 streams again", Duration::from_secs(5), || {
        server.registry.len() == 4
    })
    .await;
    drop(fifth);
    server.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_does_not_answer_keepalive_pings_is_dropped() {
    let dir = demo();
    let limits = ClientLimits {
        keepalive_interval: Duration::from_millis(200),
        keepalive_timeout: Duration::from_millis(200),
        ..ClientLimits::default()
    };
    let server = start_with(dir.path(), limits).await;
    let mut c = TcpStream::connect(server.xds_addr).await.unwrap();
    // The preface and an empty SETTINGS frame; then nothing, not even a PING acknowledgement.
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut c, Duration::from_secs(5)).await,
        "a silent peer was kept for 5 s"
    );
    println!("silent HTTP/2 peer dropped after {:?}", started.elapsed());
    server.shutdown().await;
}

#[tokio::test]
async fn proxies_are_listed_up_to_a_limit_with_the_count_of_the_rest() {
    let dir = demo();
    let server = start(dir.path()).await;
    let mut clients = Vec::new();
    for i in 0..5 {
        let mut c =
            AdsClient::connect(server.xds_addr, &format!("mesh/demo/virtualNode/ghost-{i}")).await;
        c.request(CDS, &[], "", "").await;
        clients.push(c);
    }
    eventually("5 streams", Duration::from_secs(5), || {
        server.registry.len() == 5
    })
    .await;
    let (head, body) = raw_get(server.admin_addr, "/proxies?limit=2").await;
    let page: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["node_id"], "mesh/demo/virtualNode/ghost-0");
    assert!(
        head.to_ascii_lowercase().contains("x-total-count: 5"),
        "{head}"
    );
    let (_, body) = raw_get(server.admin_addr, "/proxies").await;
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&body)
            .unwrap()
            .len(),
        5
    );

    let admin = server.admin_addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_meshplane"))
            .args(["status", "--admin", &admin, "--limit", "2"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("... and 3 more proxies"), "{stdout}");
    assert_eq!(stdout.matches("ghost-").count(), 2, "{stdout}");
    server.shutdown().await;
}

/// Whether the server closes `c` within `wait`, reading (and ignoring) whatever it sends first.
async fn closed_within(c: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// GET over plain HTTP/1.1: the header lines and the body.
async fn raw_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// `meshplane serve` on the demo mesh under `sh -c 'ulimit ...'`, stopped (by PID) when dropped.
struct Serve {
    child: Child,
    xds: SocketAddr,
    admin: SocketAddr,
}

impl Serve {
    async fn start(ulimit: &str, extra: &[&str]) -> Serve {
        let (xds, admin) = (support::envoy::free_port(), support::envoy::free_port());
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("{ulimit} exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_meshplane"))
            .args(["serve", "--config", "examples/demo"])
            .args(["--xds-listen", &format!("127.0.0.1:{xds}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
            .args(extra)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s = Serve {
            child,
            xds: ([127, 0, 0, 1], xds).into(),
            admin: ([127, 0, 0, 1], admin).into(),
        };
        let started = Instant::now();
        while !matches!(
            support::envoy::http_get(s.admin, "127.0.0.1", "/readyz", &[]).await,
            Ok((200, _))
        ) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s
    }

    fn proc(&self, file: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{file}", self.child.id())).unwrap_or_default()
    }

    fn descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, |d| d.count())
    }

    fn rss_mb(&self) -> f64 {
        let kb: f64 = self
            .proc("status")
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        kb / 1024.0
    }

    /// User plus system CPU time, in seconds (Linux clock ticks are 1/100 s).
    fn cpu_seconds(&self) -> f64 {
        let stat = self.proc("stat");
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (tick(11) + tick(12)) / 100.0
    }

    async fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = support::envoy::http_get(self.admin, "127.0.0.1", "/metrics", &[])
            .await
            .ok()?;
        body.lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .find_map(|v| v.trim().parse().ok())
    }

    async fn streams(&self) -> f64 {
        let (_, body) = support::envoy::http_get(self.admin, "127.0.0.1", "/metrics", &[])
            .await
            .unwrap_or_default();
        body.lines()
            .filter(|l| l.starts_with("meshplane_connected_proxies{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn undefined_node_ids_leave_the_cache_when_their_streams_end() {
    let s = Serve::start("", &[]).await;
    let defined = s.metric("meshplane_nodes").await.expect("meshplane_nodes");
    let rss_before = s.rss_mb();
    // Ids just under the 1 KiB limit; 2,000 streams, 100 at a time.
    let pad = "g".repeat(900);
    let mut rss_peak: f64 = 0.0;
    for batch in 0..20 {
        let mut open = Vec::new();
        for i in 0..100 {
            let id = format!("mesh/demo/virtualNode/ghost-{batch}-{i}-{pad}");
            let xds = s.xds;
            open.push(tokio::spawn(async move {
                let mut c = AdsClient::connect(xds, &id).await;
                c.request(CDS, &[], "", "").await;
                c
            }));
        }
        let mut clients = Vec::new();
        for t in open {
            clients.push(t.await.unwrap());
        }
        eventually_async("100 streams open", Duration::from_secs(20), async || {
            s.streams().await == 100.0
        })
        .await;
        rss_peak = rss_peak.max(s.rss_mb());
        drop(clients);
        eventually_async(
            "the streams to close",
            Duration::from_secs(20),
            async || s.streams().await == 0.0,
        )
        .await;
    }
    let nodes = s.metric("meshplane_nodes").await;
    let entries = s.metric("meshplane_cache_entries").await;
    println!(
        "node-id flood (2,000 streams, 1 KB ids): RSS {rss_before:.1} MB before, {rss_peak:.1} MB peak, \
         {:.1} MB after; descriptors {}; meshplane_nodes {nodes:?}, cache entries {entries:?} (defined: {defined})",
        s.rss_mb(),
        s.descriptors()
    );
    assert_eq!(
        nodes,
        Some(defined),
        "meshplane_nodes grew with undefined ids"
    );
    assert_eq!(
        entries,
        Some(defined),
        "cache entries of undefined ids were kept"
    );
}

#[tokio::test]
async fn idle_connections_beyond_the_descriptor_limit_block_no_envoy_and_spin_no_cpu() {
    meshplane::xds::limits::raise_descriptor_limit();
    // A hard limit of 1,024 (the usual default) and a lower soft one, which the server raises.
    let s = Serve::start(
        "ulimit -S -n 256 && ulimit -H -n 1024 &&",
        &["--handshake-timeout", "60s"],
    )
    .await;
    let limits = s.proc("limits");
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or("");
    assert_eq!(
        open_files.split_whitespace().collect::<Vec<_>>(),
        ["Max", "open", "files", "1024", "1024", "files"],
        "soft limit not raised to the hard one"
    );
    let (fd_before, rss_before) = (s.descriptors(), s.rss_mb());
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        idle.push(TcpStream::connect(s.xds).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = s.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_share = (s.cpu_seconds() - cpu) / 2.0;
    let (fds, rss) = (s.descriptors(), s.rss_mb());

    let started = Instant::now();
    let health = tokio::time::timeout(
        Duration::from_secs(2),
        support::envoy::http_get(s.admin, "127.0.0.1", "/healthz", &[]),
    )
    .await;
    let health_time = started.elapsed();
    assert!(matches!(health, Ok(Ok((200, _)))), "/healthz: {health:?}");
    let started = Instant::now();
    let served = tokio::time::timeout(Duration::from_secs(5), async {
        let mut c = AdsClient::connect(s.xds, FRONTEND).await;
        c.request(CDS, &[], "", "").await;
        c.recv().await
    })
    .await;
    let ads_time = started.elapsed();
    let evicted = s.metric("meshplane_xds_connections_evicted_total").await;
    println!(
        "idle flood (1,100 silent connections, descriptor limit 1,024): descriptors {fd_before} -> {fds}, \
         RSS {rss_before:.1} -> {rss:.1} MB, CPU {:.0}% over 2 s, /healthz in {health_time:?}, \
         ADS CDS response in {ads_time:?}, evicted {evicted:?}",
        cpu_share * 100.0
    );
    assert!(served.is_ok(), "a real ADS client was not served");
    assert!(fds < 1024, "descriptors at the limit: {fds}");
    assert!(
        cpu_share < 0.2,
        "server spins: {:.0}% CPU",
        cpu_share * 100.0
    );
    assert!(health_time < Duration::from_secs(1) && ads_time < Duration::from_secs(2));
    drop(idle);
}

#[tokio::test]
async fn sigterm_drains_within_the_timeout_whatever_clients_do() {
    let s = Serve::start("", &["--drain-timeout", "2s"]).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(s.xds).await.unwrap());
    }
    // An HTTP/2 connection with no stream, a stream that never sends a request, and one whose
    // client never reads: a 1-byte stream window, so its first response can never be delivered.
    let quiet = channel(s.xds).await;
    let (_mute_tx, mute_rx) = mpsc::channel::<DiscoveryRequest>(1);
    let mut client = AggregatedDiscoveryServiceClient::new(channel(s.xds).await);
    let _mute = client
        .stream_aggregated_resources(ReceiverStream::new(mute_rx))
        .await
        .unwrap();
    let tiny = Endpoint::from_shared(format!("http://{}", s.xds))
        .unwrap()
        .initial_stream_window_size(Some(1))
        .connect()
        .await
        .unwrap();
    let (stuck_tx, stuck_rx) = mpsc::channel(1);
    stuck_tx.send(cds_request(FRONTEND, vec![])).await.unwrap();
    let _stuck = AggregatedDiscoveryServiceClient::new(tiny)
        .stream_aggregated_resources(ReceiverStream::new(stuck_rx))
        .await
        .unwrap();
    // Only the stream that sent a request has a node to be counted by.
    eventually_async(
        "the stuck stream open",
        Duration::from_secs(5),
        async || s.streams().await == 1.0,
    )
    .await;

    let mut s = s;
    let killed = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "meshplane serve still running 10 s after SIGTERM (drain timeout 2 s)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = started.elapsed();
    println!("SIGTERM with 20 idle connections, a quiet connection, a mute and a stuck stream: exited in {took:?}");
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(4),
        "took {took:?} for a 2 s drain timeout"
    );
    drop((idle, quiet, stuck_tx));
}
