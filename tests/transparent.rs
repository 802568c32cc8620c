//! The transparent layout for real (issue 12.8, docs/contract.md §2 `proxy.mode: transparent`):
//! two pods, each a network namespace this test creates (`unshare -n`), joined by a veth pair
//! (frontend 10.231.0.1, backend 10.231.0.2). In each: the rules `meshplane iptables` prints,
//! loaded with `iptables-restore`; Envoy running as uid 1337 (the rules' owner match lets its own
//! connections out); an app that knows nothing of meshplane, listening on 127.0.0.1:8080 only (so
//! nothing reaches it but its sidecar's ingress). meshplane serves both Envoys from inside the
//! frontend pod. The frontend app dials an address nobody has (10.231.0.99:8080) with
//! `Host: backend.demo.local:8080`, as it would after resolving the name: its sidecar takes the
//! connection (egress redirect to 15001), routes it by port and Host to the backend node at
//! 10.231.0.2:8080, where the backend pod's rules hand it to that sidecar (ingress redirect to
//! 15000) and on to the backend app; the backend app calls the frontend the same way, and a TCP
//! backend is reached by address and port (10.231.0.77:5432, the backend node's tcp listener; and
//! 10.231.0.76:6380, a service behind a router whose tcpRoute targets the node's listener on 6379). Unknown
//! destinations: refused under DROP_ALL (a closed connection, and 404 for an unknown Host on a
//! mesh port), passed through unchanged once the mesh file says ALLOW_ALL (a connection to the
//! egress port itself excepted: it is closed, not looped).

#[path = "transparent/apps.rs"]
mod apps;
#[path = "transparent/netns.rs"]
mod netns;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apps::{app, call, echo, serve, tcp_call, until};
use netns::{pods, Netns, Proc};

use support::envoy::envoy_bin;
use support::MeshDir;

/// Envoy's uid in App Mesh's task definitions and pods (`meshplane iptables --uid`'s default).
const ENVOY_UID: u32 = 1337;
const FRONTEND_IP: &str = "10.231.0.1";
const BACKEND_IP: &str = "10.231.0.2";
fn mesh(egress: &str) -> String {
    let node = |name: &str, ip: &str, backend: &str| {
        format!(
            "---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: {name}\nspec:\n  listeners:\n    - portMapping: {{port: 8080, protocol: http}}\n  serviceDiscovery:\n    dns: {{hostname: {ip}}}\n  backends:\n    - virtualService: {{virtualServiceName: {backend}.demo.local}}\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: {name}.demo.local\nspec:\n  provider: {{virtualNode: {{virtualNodeName: {name}}}}}\n"
        )
    };
    // The frontend also calls `cache`, a TCP service behind a router whose tcpRoute sends it to
    // the backend node's second tcp listener.
    let cache = "---\nkind: VirtualRouter\nmeshName: demo\nvirtualRouterName: cache\nspec: {listeners: [{portMapping: {port: 6380, protocol: tcp}}]}\n---\nkind: Route\nmeshName: demo\nvirtualRouterName: cache\nrouteName: cache\nspec:\n  tcpRoute:\n    action: {weightedTargets: [{virtualNode: backend, weight: 1, port: 6379}]}\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: cache.demo.local\nspec: {provider: {virtualRouter: {virtualRouterName: cache}}}\n";
    format!(
        "kind: Mesh\nmeshName: demo\nspec:\n  egressFilter: {{type: {egress}}}\n  proxy: {{mode: transparent}}\n{}{}{cache}",
        node("frontend", FRONTEND_IP, "backend").replace(
            "backend.demo.local}\n",
            "backend.demo.local}\n    - virtualService: {virtualServiceName: cache.demo.local}\n",
        ),
        node("backend", BACKEND_IP, "frontend").replace(
            "protocol: http}\n",
            "protocol: http}\n    - portMapping: {port: 5432, protocol: tcp}\n    - portMapping: {port: 6379, protocol: tcp}\n",
        )
    )
}

/// The pod's rules, as `meshplane iptables` prints them, loaded into `ns`.
fn load_rules(ns: &Netns, dir: &Path, node: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_meshplane"))
        .args([
            "iptables",
            "--node-id",
            &format!("mesh/demo/virtualNode/{node}"),
        ])
        .arg("--config")
        .arg(dir)
        .output()
        .expect("meshplane iptables");
    assert!(out.status.success(), "{out:?}");
    let rules = String::from_utf8(out.stdout).expect("utf-8");
    ns.run(&["iptables-restore"], &rules);
    rules
}

/// Envoy for `node` in `ns` as uid 1337, its bootstrap pointing at meshplane on `xds`.
fn envoy(ns: &Netns, work: &Path, node: &str, xds: &str) -> Proc {
    let yaml = meshplane::bootstrap::render(&meshplane::bootstrap::BootstrapParams {
        mode: meshplane::bootstrap::XdsMode::Ads,
        node_id: format!("mesh/demo/virtualNode/{node}"),
        xds_host: xds.into(),
        xds_port: 18000,
        admin_port: 0,
        admin_address: "127.0.0.1".into(),
    });
    let bootstrap = work.join(format!("{node}.yaml"));
    std::fs::write(&bootstrap, yaml).expect("bootstrap");
    let child = ns
        .command(&envoy_bin().to_string_lossy(), Some(ENVOY_UID))
        .arg("-c")
        .arg(&bootstrap)
        .args(["--disable-hot-restart", "-l", "info", "--log-path"])
        .arg(work.join(format!("{node}.log")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start envoy");
    Proc(child)
}
/// meshplane and the two Envoys, stopped when dropped (the work directory with them).
struct Running {
    _meshplane: Proc,
    _envoys: [Proc; 2],
    _work: tempfile::TempDir,
}

/// meshplane serving `dir` from inside the frontend pod, and each pod's Envoy.
fn start(front: &Netns, back: &Netns, dir: &Path) -> Running {
    // Envoy (uid 1337) writes its log into the work directory.
    let work = tempfile::tempdir().expect("tempdir");
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(work.path(), mode).expect("chmod");
    let log = std::fs::File::create(work.path().join("meshplane.log")).expect("log");
    let meshplane = Proc(
        front
            .command(env!("CARGO_BIN_EXE_meshplane"), None)
            .arg("serve")
            .arg("--config")
            .arg(dir)
            .args(["--xds-listen", "0.0.0.0:18000", "--debounce", "50ms"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("meshplane serve"),
    );
    let envoys = [
        envoy(front, work.path(), "frontend", "127.0.0.1"),
        envoy(back, work.path(), "backend", FRONTEND_IP),
    ];
    Running {
        _meshplane: meshplane,
        _envoys: envoys,
        _work: work,
    }
}

#[test]
fn an_unchanged_app_is_routed_by_iptables_and_its_sidecar() {
    if Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        println!("SKIPPED: cannot create a network namespace here (`unshare -n` needs root or user namespaces)");
        return;
    }
    let (front, back) = pods().expect("network namespaces");
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh("DROP_ALL"));
    let rules = load_rules(&front, dir.path(), "frontend");
    assert!(
        rules.contains("--dports 8080 -j REDIRECT --to-ports 15000"),
        "{rules}"
    );
    load_rules(&back, dir.path(), "backend");

    let _running = start(&front, &back, dir.path());
    app(&front, "127.0.0.1:8080", "frontend");
    app(&back, "127.0.0.1:8080", "backend");
    serve(&back, "127.0.0.1:5432", "ledger", echo);
    serve(&back, "127.0.0.1:6379", "cache", echo);
    // Not in the mesh: reached only by passing through.
    app(&back, "0.0.0.0:9999", "outside");

    mesh_calls(&front, &back);
    drop_all(&front, &back);
    dir.write("mesh.yaml", &mesh("ALLOW_ALL"));
    allow_all(&front);
}

/// Calls to the mesh, both ways, HTTP by Host and TCP by port.
fn mesh_calls(front: &Netns, back: &Netns) {
    // Outbound by Host through both sidecars; the backend app sees its own sidecar as the peer.
    let nowhere = "10.231.0.99:8080";
    let got = until(front, nowhere, "backend.demo.local:8080", 200, "backend ");
    assert_eq!(got, "backend host=backend.demo.local:8080 peer=127.0.0.1");
    println!("frontend app -> {nowhere} (Host backend.demo.local:8080) -> {got}");
    let got = until(front, nowhere, "backend.demo.local", 200, "backend ");
    assert_eq!(got, "backend host=backend.demo.local peer=127.0.0.1");
    // A TCP backend by address and port: the port picks the backend node's tcp listener, or (for
    // a service behind a router) the router's tcpRoute.
    for (dest, want) in [
        ("10.231.0.77:5432", "ledger ping peer=127.0.0.1"),
        ("10.231.0.76:6380", "cache ping peer=127.0.0.1"),
    ] {
        let tcp = tcp_until(front, dest);
        assert_eq!(tcp, want);
        println!("frontend app -> {dest} (tcp) -> {tcp}");
    }
    // The inbound side of the frontend pod likewise, from the backend app.
    let got = until(
        back,
        "10.231.0.98:8080",
        "frontend.demo.local:8080",
        200,
        "frontend ",
    );
    assert_eq!(got, "frontend host=frontend.demo.local:8080 peer=127.0.0.1");
    println!("backend app -> 10.231.0.98:8080 (Host frontend.demo.local:8080) -> {got}");
}

/// The first non-empty answer of a TCP exchange with `dest` from `ns` (the sidecars may still be
/// getting their configuration).
fn tcp_until(ns: &Netns, dest: &str) -> String {
    let started = Instant::now();
    loop {
        match tcp_call(ns, dest, "ping") {
            Ok(got) if !got.is_empty() => return got,
            other => assert!(
                started.elapsed() < Duration::from_secs(30),
                "{dest}: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// DROP_ALL: what the mesh does not know is refused.
fn drop_all(front: &Netns, back: &Netns) {
    // DROP_ALL: an address and port outside the mesh is refused by the sidecar (the backend pod
    // itself reaches it directly), and an unknown Host on a mesh port gets 404.
    let outside = format!("{BACKEND_IP}:9999");
    let direct = call(back, &outside, "outside", "/");
    assert!(
        matches!(&direct, Ok((200, b)) if b.starts_with("outside ")),
        "{direct:?}"
    );
    let refused = call(front, &outside, "outside", "/");
    assert!(
        refused.is_err(),
        "DROP_ALL let {outside} through: {refused:?}"
    );
    let mesh_port = format!("{BACKEND_IP}:8080");
    let unknown = call(front, &mesh_port, "unknown.example:8080", "/");
    assert!(matches!(unknown, Ok((404, _))), "{unknown:?}");
    println!("DROP_ALL: {outside} -> {refused:?}; unknown Host on 8080 -> 404");
}

/// ALLOW_ALL (just saved): what the mesh does not know passes through.
fn allow_all(front: &Netns) {
    let (outside, mesh_port) = (format!("{BACKEND_IP}:9999"), format!("{BACKEND_IP}:8080"));
    // ALLOW_ALL: both pass through to where the app sent them.
    let got = until(front, &outside, "outside", 200, "outside ");
    assert_eq!(got, format!("outside host=outside peer={FRONTEND_IP}"));
    let host = until(front, &mesh_port, "unknown.example:8080", 200, "backend ");
    assert_eq!(host, "backend host=unknown.example:8080 peer=127.0.0.1");
    println!("ALLOW_ALL: {outside} -> {got}; unknown Host on 8080 -> {host}");
    // An app still using the egress port as its proxy is closed at once, not passed through to
    // the egress port again and again.
    let started = Instant::now();
    let looped = call(front, "127.0.0.1:15001", "backend.demo.local:8080", "/");
    assert!(looped.is_err(), "{looped:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{looped:?} after {:?}",
        started.elapsed()
    );
}
