//! The live topology page (`GET /` of the admin API) in headless Chromium, against an in-process
//! server on the demo mesh: `frontend` with a real Envoy sidecar (SYNCED), `backend-v2` with an ADS
//! client that NACKs (NACKED, Envoy-style message shown escaped), `backend-v1` NOT CONNECTED; the
//! router's 90/10 weights, then 50/50 after an edit on disk. Keeps `target/topology-page.png`.
//! Fails (never skips) when Chromium is missing.

mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::google::rpc::Status;
use meshplane::admin::{proxy_reports, ProxyReport, SyncState};
use meshplane::app::Server;
use support::envoy::{free_port, Envoy};
use support::*;

const FRONTEND: &str = "mesh/demo/virtualNode/frontend";
const BACKEND_V2: &str = "mesh/demo/virtualNode/backend-v2";
/// What the fake sidecar says when it rejects its clusters: markup that must show as text.
const NACK: &str = "cluster <b>backend</b>: rejected & reported";

/// The Chromium binary: `$MESHPLANE_CHROMIUM`, or `chromium` / `chromium-browser` on the PATH.
fn chromium_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MESHPLANE_CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "MESHPLANE_CHROMIUM={} does not exist",
            p.display()
        );
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!(
        "headless Chromium is required for the topology page test and was not found.\n\
         Run ./scripts/test.sh as root (it installs Debian's chromium package),\n\
         or `sudo apt-get install chromium`, or set MESHPLANE_CHROMIUM to a Chromium binary."
    );
}

/// Headless Chromium with a profile of its own, one process per page load.
struct Chromium {
    bin: PathBuf,
    work: tempfile::TempDir,
}

impl Chromium {
    fn new() -> Chromium {
        Chromium {
            bin: chromium_bin(),
            work: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Loads `url` with `flags`; returns what Chromium printed. Killed (its process group, by
    /// PID) when it takes longer than 60 s.
    fn run(&self, flags: &[String], url: &str) -> String {
        let out = self.work.path().join("stdout");
        let log = self.work.path().join("stderr");
        let mut child = Command::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(["--no-first-run", "--disable-extensions", "--disable-sync"])
            .args([
                "--disable-background-networking",
                "--disable-component-update",
            ])
            .arg(format!(
                "--user-data-dir={}",
                self.work.path().join("profile").display()
            ))
            .args(flags)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&log).expect("stderr file"))
            .process_group(0)
            .spawn()
            .expect("start chromium");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for chromium") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let pid = child.id().to_string();
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium hung on {url}; killed process group {pid}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            status.success(),
            "chromium failed ({status}) on {url}:\n{stderr}"
        );
        std::fs::read_to_string(&out).expect("chromium output")
    }

    /// The DOM once the page loaded, and its scripts ran for `budget` of virtual time if given.
    async fn dump_dom(&self, url: &str, budget: Option<Duration>) -> String {
        let mut flags = vec!["--dump-dom".to_string()];
        flags.extend(budget.map(|b| format!("--virtual-time-budget={}", b.as_millis())));
        self.blocking(flags, url).await
    }

    async fn screenshot(&self, url: &str, png: &Path) {
        let flags = vec![
            format!("--screenshot={}", png.display()),
            "--window-size=1280,900".to_string(),
        ];
        self.blocking(flags, url).await;
        let bytes = std::fs::read(png).expect("screenshot written");
        assert!(bytes.starts_with(b"\x89PNG"), "{} is a PNG", png.display());
    }

    /// Runs Chromium off the runtime's threads: the in-process server must keep answering.
    async fn blocking(&self, flags: Vec<String>, url: &str) -> String {
        let me = Chromium {
            bin: self.bin.clone(),
            work: tempfile::tempdir_in(self.work.path()).expect("tempdir"),
        };
        let url = url.to_string();
        tokio::task::spawn_blocking(move || me.run(&flags, &url))
            .await
            .expect("chromium thread")
    }
}

/// The text of a dumped DOM: tags removed, whitespace collapsed, entities kept.
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

/// The text of one resource's card on the page.
fn card(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("the page has no card {id}:\n{dom}"));
    let rest = &dom[start..];
    let end = rest[1..].find("class=\"card").map_or(rest.len(), |e| e + 1);
    text(&rest[..end])
}

/// Waits until the sidecar of `node` satisfies `ok`; returns its report.
async fn wait_for(
    server: &Server,
    node: &str,
    what: &str,
    ok: impl Fn(&ProxyReport) -> bool,
) -> ProxyReport {
    let started = Instant::now();
    loop {
        let reports = proxy_reports(&server.pipeline, &server.registry);
        if let Some(p) = reports.iter().find(|p| p.node_id == node && ok(p)) {
            return p.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{node} never became {what}: {reports:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A sidecar for backend-v2 that asks for its clusters and rejects them the way Envoy does.
async fn nacking_sidecar(server: &Server) -> AdsClient {
    let mut ads = AdsClient::connect(server.xds_addr, BACKEND_V2).await;
    ads.request(CDS, &[], "", "").await;
    let resp = ads.recv().await;
    ads.send(DiscoveryRequest {
        type_url: CDS.into(),
        response_nonce: resp.nonce.clone(),
        error_detail: Some(Status {
            code: 3,
            message: NACK.into(),
            details: vec![],
        }),
        ..Default::default()
    })
    .await;
    wait_for(server, BACKEND_V2, "NACKED", |p| {
        p.state() == SyncState::Nacked
    })
    .await;
    ads
}

/// The demo mesh with the frontend sidecar's ports moved to free ones (the demo's fixed ports
/// may be taken by another test or a running demo).
fn demo_mesh() -> MeshDir {
    let dir = MeshDir::copy_of(&repo_path("examples/demo"));
    let frontend = dir.read("frontend.yaml").replace(
        "proxy: {ingressPort: 15000, egressPort: 15001}",
        &format!(
            "proxy: {{ingressPort: {}, egressPort: {}}}",
            free_port(),
            free_port()
        ),
    );
    assert!(!frontend.contains("15001"), "frontend.yaml has its ports");
    dir.write("frontend.yaml", &frontend);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_page_in_chromium_follows_sidecars_and_edits() {
    let chromium = Chromium::new();
    let dir = demo_mesh();
    let work = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let url = format!("http://{}/", server.admin_addr);
    let _frontend = Envoy::start(FRONTEND, server.xds_addr, work.path()).await;
    let synced = wait_for(&server, FRONTEND, "SYNCED", |p| {
        p.state() == SyncState::Synced
    })
    .await;
    let _backend_v2 = nacking_sidecar(&server).await;

    let started = Instant::now();
    let dom = chromium.dump_dom(&url, Some(Duration::from_secs(5))).await;
    let loaded = started.elapsed();
    let page = text(&dom);
    assert!(page.contains("Configuration valid"), "{page}");
    let router = card(&dom, "vr-demo-backend-router");
    assert!(router.contains("backend-v1 90"), "{router}");
    assert!(router.contains("backend-v2 10"), "{router}");
    let frontend = card(&dom, "vn-demo-frontend");
    assert!(frontend.contains("frontend 1 sidecar SYNCED"), "{frontend}");
    assert!(frontend.contains("ADS from 127.0.0.1:"), "{frontend}");
    assert!(frontend.contains("LDS SYNCED"), "{frontend}");
    assert!(!frontend.contains("NOT CONNECTED"), "{frontend}");
    assert!(card(&dom, "vn-demo-backend-v1").contains("NOT CONNECTED"));
    let v2 = card(&dom, "vn-demo-backend-v2");
    assert!(v2.contains("backend-v2 1 sidecar NACKED"), "{v2}");
    assert!(v2.contains("CDS NACKED"), "{v2}");
    assert!(
        v2.contains(
            "CDS rejected by Envoy: cluster &lt;b&gt;backend&lt;/b&gt;: rejected &amp; reported"
        ),
        "{v2}"
    );
    assert!(
        !dom.contains("<b>backend</b>"),
        "Envoy's message is escaped"
    );
    // The script re-fetched the page (and would have swapped in any change) while it ran.
    let refreshes = dom
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("the live script never refreshed the page:\n{dom}"));
    assert!(refreshes >= 1);
    assert!(page.contains("live · updated"), "{page}");

    let png = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("topology-page.png");
    chromium.screenshot(&url, &png).await;
    println!("topology page screenshot: {}", png.display());

    let before = server.pipeline.status().reloads_accepted;
    let edited = dir
        .read("router.yaml")
        .replace("weight: 90", "weight: 50")
        .replace("weight: 10", "weight: 50");
    dir.write_and_rename("router.yaml", &edited);
    eventually("the edit to be loaded", Duration::from_secs(10), || {
        server.pipeline.status().reloads_accepted > before
    })
    .await;
    let old_routes = synced.types["RDS"].acked.clone();
    wait_for(&server, FRONTEND, "SYNCED to the edit", |p| {
        p.state() == SyncState::Synced && p.types["RDS"].acked != old_routes
    })
    .await;
    let dom = chromium.dump_dom(&url, None).await;
    let router = card(&dom, "vr-demo-backend-router");
    assert!(router.contains("backend-v1 50"), "{router}");
    assert!(router.contains("backend-v2 50"), "{router}");
    assert!(card(&dom, "vn-demo-frontend").contains("1 sidecar SYNCED"));
    println!(
        "page loaded and checked in {:.1} s (with {refreshes} live refreshes); 50/50 shown after the edit",
        loaded.as_secs_f64()
    );
    server.shutdown().await;
}
