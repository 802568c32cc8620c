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
//! 15000) and on to the backend app; the backend app calls the frontend the same way. Unknown
//! destinations: refused under DROP_ALL (a closed connection, and 404 for an unknown Host on a
//! mesh port), passed through unchanged once the mesh file says ALLOW_ALL (a connection to the
//! egress port itself excepted: it is closed, not looped).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::envoy::envoy_bin;
use support::MeshDir;

/// Envoy's uid in App Mesh's task definitions and pods (`meshplane iptables --uid`'s default).
const ENVOY_UID: u32 = 1337;
const FRONTEND_IP: &str = "10.231.0.1";
const BACKEND_IP: &str = "10.231.0.2";

/// A child process, killed (by its PID) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace, held open by a `sleep` that `unshare -n` started in it.
struct Netns {
    holder: Proc,
    path: String,
}

impl Netns {
    /// A new namespace, or `None` when this machine cannot make one.
    fn new() -> Option<Netns> {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .ok()?;
        let holder = Proc(child);
        let pid = holder.0.id();
        let path = format!("/proc/{pid}/ns/net");
        // The namespace exists once the holder's differs from ours.
        let started = Instant::now();
        while std::fs::read_link(&path).ok()? == std::fs::read_link("/proc/self/ns/net").ok()? {
            if started.elapsed() > Duration::from_secs(5) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(Netns { holder, path })
    }

    fn pid(&self) -> u32 {
        self.holder.0.id()
    }

    fn command(&self, program: &str, uid: Option<u32>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path));
        if let Some(uid) = uid {
            c.args(["-S", &uid.to_string(), "-G", &uid.to_string()]);
        }
        c.arg("--").arg(program);
        c
    }

    /// Runs `args` in the namespace (as root), with `stdin`; panics unless it succeeds.
    fn run(&self, args: &[&str], stdin: &str) {
        let mut c = self.command(args[0], None);
        c.args(&args[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("nsenter");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{args:?}: {out:?}");
    }

    /// Runs `f` on a thread of its own that has joined the namespace: its sockets are the
    /// namespace's.
    fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path.clone();
        std::thread::spawn(move || {
            join(&path);
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

/// Moves the calling thread into the network namespace at `path` (setns affects one thread).
fn join(path: &str) {
    let file = std::fs::File::open(path).expect("open netns");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: a valid namespace fd; CLONE_NEWNET changes only this thread's network namespace.
    let rc = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// An app without a sidecar of its own making: answers `<name> host=<Host> peer=<peer ip>`.
fn app(ns: &Netns, addr: &'static str, name: &'static str) {
    let path = ns.path.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        join(&path);
        let listener = TcpListener::bind(addr).expect("bind app");
        tx.send(()).expect("ready");
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || answer(conn, name));
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("app bound");
}

fn answer(mut conn: TcpStream, name: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    let host = text
        .lines()
        .find_map(|l| l.strip_prefix("host: ").or(l.strip_prefix("Host: ")))
        .unwrap_or("")
        .to_string();
    let peer = conn
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let body = format!("{name} host={host} peer={peer}");
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// `GET path` with `Host: host` to `addr`, from a thread in `ns` (as root, so the rules apply).
fn call(ns: &Netns, addr: &str, host: &str, path: &str) -> Result<(u16, String), String> {
    let (addr, host, path) = (addr.to_string(), host.to_string(), path.to_string());
    ns.enter(move || {
        let addr: SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .map_err(|e| format!("connect: {e}"))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| format!("write: {e}"))?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)
            .map_err(|e| format!("read: {e}"))?;
        let status = resp
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no response ({resp:?})"))?;
        let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Ok((status, body.to_string()))
    })
}

/// Polls `call` until it answers `status` with a body starting with `body`, for up to 30 s.
fn until(ns: &Netns, addr: &str, host: &str, status: u16, body: &str) -> String {
    let started = Instant::now();
    loop {
        let got = call(ns, addr, host, "/");
        if let Ok((s, b)) = &got {
            if *s == status && b.starts_with(body) {
                return b.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{addr} (Host {host}) never answered {status} {body}: last {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn mesh(egress: &str) -> String {
    let node = |name: &str, ip: &str, backend: &str| {
        format!(
            "---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: {name}\nspec:\n  listeners:\n    - portMapping: {{port: 8080, protocol: http}}\n  serviceDiscovery:\n    dns: {{hostname: {ip}}}\n  backends:\n    - virtualService: {{virtualServiceName: {backend}.demo.local}}\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: {name}.demo.local\nspec:\n  provider: {{virtualNode: {{virtualNodeName: {name}}}}}\n"
        )
    };
    format!(
        "kind: Mesh\nmeshName: demo\nspec:\n  egressFilter: {{type: {egress}}}\n  proxy: {{mode: transparent}}\n{}{}",
        node("frontend", FRONTEND_IP, "backend"),
        node("backend", BACKEND_IP, "frontend")
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

/// Two namespaces joined by a veth pair, loopback up in each; `None` when namespaces cannot be
/// made here.
fn pods() -> Option<(Netns, Netns)> {
    let (a, b) = (Netns::new()?, Netns::new()?);
    let peer = b.pid().to_string();
    let veth = [
        "ip", "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b",
    ];
    a.run(&[&veth[..], &["netns", &peer]].concat(), "");
    for (ns, dev, ip) in [(&a, "veth-a", FRONTEND_IP), (&b, "veth-b", BACKEND_IP)] {
        ns.run(&["ip", "link", "set", "lo", "up"], "");
        ns.run(&["ip", "addr", "add", &format!("{ip}/24"), "dev", dev], "");
        ns.run(&["ip", "link", "set", dev, "up"], "");
    }
    Some((a, b))
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
    // Not in the mesh: reached only by passing through.
    app(&back, "0.0.0.0:9999", "outside");

    // Outbound by Host through both sidecars; the backend app sees its own sidecar as the peer.
    let nowhere = "10.231.0.99:8080";
    let got = until(&front, nowhere, "backend.demo.local:8080", 200, "backend ");
    assert_eq!(got, "backend host=backend.demo.local:8080 peer=127.0.0.1");
    println!("frontend app -> {nowhere} (Host backend.demo.local:8080) -> {got}");
    let got = until(&front, nowhere, "backend.demo.local", 200, "backend ");
    assert_eq!(got, "backend host=backend.demo.local peer=127.0.0.1");
    // The inbound side of the frontend pod likewise, from the backend app.
    let got = until(
        &back,
        "10.231.0.98:8080",
        "frontend.demo.local:8080",
        200,
        "frontend ",
    );
    assert_eq!(got, "frontend host=frontend.demo.local:8080 peer=127.0.0.1");
    println!("backend app -> 10.231.0.98:8080 (Host frontend.demo.local:8080) -> {got}");

    // DROP_ALL: an address and port outside the mesh is refused by the sidecar (the backend pod
    // itself reaches it directly), and an unknown Host on a mesh port gets 404.
    let outside = format!("{BACKEND_IP}:9999");
    let direct = call(&back, &outside, "outside", "/");
    assert!(
        matches!(&direct, Ok((200, b)) if b.starts_with("outside ")),
        "{direct:?}"
    );
    let refused = call(&front, &outside, "outside", "/");
    assert!(
        refused.is_err(),
        "DROP_ALL let {outside} through: {refused:?}"
    );
    let mesh_port = format!("{BACKEND_IP}:8080");
    let unknown = call(&front, &mesh_port, "unknown.example:8080", "/");
    assert!(matches!(unknown, Ok((404, _))), "{unknown:?}");
    println!("DROP_ALL: {outside} -> {refused:?}; unknown Host on 8080 -> 404");

    // ALLOW_ALL: both pass through to where the app sent them.
    dir.write("mesh.yaml", &mesh("ALLOW_ALL"));
    let got = until(&front, &outside, "outside", 200, "outside ");
    assert_eq!(got, format!("outside host=outside peer={FRONTEND_IP}"));
    let host = until(&front, &mesh_port, "unknown.example:8080", 200, "backend ");
    assert_eq!(host, "backend host=unknown.example:8080 peer=127.0.0.1");
    println!("ALLOW_ALL: {outside} -> {got}; unknown Host on 8080 -> {host}");
    // An app still using the egress port as its proxy is closed at once, not passed through to
    // the egress port again and again.
    let started = Instant::now();
    let looped = call(&front, "127.0.0.1:15001", "backend.demo.local:8080", "/");
    assert!(looped.is_err(), "{looped:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{looped:?} after {:?}",
        started.elapsed()
    );
}
