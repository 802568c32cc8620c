//! The processes of the replica tests: meshplane replicas (the real binary, killed and restarted
//! by PID), the Envoy whose xDS cluster lists them all, its counters and versions, and steady
//! traffic through it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshplane::bootstrap::XdsMode;

use crate::support::envoy::{bootstrap_yaml, free_port, http_get, Envoy};

/// One `meshplane serve` process on fixed ports, so a restart is the same replica again.
pub struct Replica {
    pub xds: u16,
    pub admin: u16,
    dir: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    pub fn new(dir: &Path, work: &Path, args: &[&str]) -> Replica {
        let xds = free_port();
        Replica {
            xds,
            admin: free_port(),
            dir: dir.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            log: work.join(format!("replica-{xds}.log")),
            child: None,
        }
    }

    pub fn start(&mut self) {
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_meshplane"))
            .arg("serve")
            .arg("--config")
            .arg(&self.dir)
            .args(["--xds-listen", &format!("127.0.0.1:{}", self.xds)])
            .args(["--admin-listen", &format!("127.0.0.1:{}", self.admin)])
            .args(["--debounce", "50ms"])
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start meshplane");
        self.child = Some(child);
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.admin).into()
    }

    /// `/readyz`'s status code, or 0 when the admin port does not answer.
    pub async fn readyz(&self) -> u16 {
        match http_get(self.addr(), "127.0.0.1", "/readyz", &[]).await {
            Ok((code, _)) => code,
            Err(_) => 0,
        }
    }

    pub async fn wait_ready(&self) {
        let t = Instant::now();
        while self.readyz().await != 200 {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "replica never ready; see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let (code, body) = http_get(self.addr(), "127.0.0.1", path, &[])
            .await
            .expect("admin");
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("json")
    }

    /// The reports of this replica's streams for `node_id`.
    pub async fn streams_of(&self, node_id: &str) -> Vec<serde_json::Value> {
        if self.child.is_none() {
            return Vec::new();
        }
        let Ok((200, body)) = http_get(self.addr(), "127.0.0.1", "/proxies", &[]).await else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["node_id"] == node_id)
            .cloned()
            .collect()
    }

    /// A metric of this replica's `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, body) = http_get(self.addr(), "127.0.0.1", "/metrics", &[])
            .await
            .expect("metrics");
        body.lines()
            .filter_map(|l| l.strip_prefix(name))
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .sum()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit: how long it took.
    pub fn terminate(&mut self) -> Duration {
        let mut c = self.child.take().expect("running");
        let t = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        loop {
            if c.try_wait().expect("wait").is_some() {
                return t.elapsed();
            }
            if t.elapsed() > Duration::from_secs(30) {
                let _ = c.kill();
                panic!("replica did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An Envoy whose xDS cluster lists every replica (round robin, as a Kubernetes Service would).
pub async fn envoy_for(node: &str, replicas: &[&Replica], mode: XdsMode, work: &Path) -> Envoy {
    let first = replicas[0].xds;
    let yaml = bootstrap_yaml(node, ([127, 0, 0, 1], first).into(), mode);
    let one = format!(
        "              - endpoint:\n                  address:\n                    socket_address: {{ address: \"127.0.0.1\", port_value: {first} }}\n"
    );
    assert!(yaml.contains(&one), "bootstrap layout changed:\n{yaml}");
    let all: String = replicas
        .iter()
        .map(|r| one.replace(&first.to_string(), &r.xds.to_string()))
        .collect();
    Envoy::start_bootstrap(node, work, &yaml.replace(&one, &all)).await
}

/// The Envoy counters that grow when it applies a pushed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updates {
    pub cds: u64,
    pub lds: u64,
    pub eds: u64,
    pub rds: u64,
}

async fn stat_sum(e: &Envoy, regex: &str) -> u64 {
    e.admin_get(&format!("/stats?filter={regex}"))
        .await
        .lines()
        .filter_map(|l| l.rsplit_once(": "))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}

pub async fn updates(e: &Envoy) -> Updates {
    Updates {
        cds: stat_sum(e, "^cluster_manager\\.cds\\.update_success$").await,
        lds: stat_sum(e, "^listener_manager\\.lds\\.update_success$").await,
        eds: stat_sum(e, "^cluster\\..*\\.update_success$").await,
        rds: stat_sum(e, "\\.rds\\..*\\.update_success$").await,
    }
}

pub async fn connected(e: &Envoy) -> bool {
    stat_sum(e, "^control_plane\\.connected_state$").await == 1
}

/// Envoy's CDS and LDS versions and each route configuration's, from `/config_dump`.
pub async fn envoy_versions(e: &Envoy) -> (String, String, Vec<String>) {
    let v: serde_json::Value =
        serde_json::from_str(&e.admin_get("/config_dump").await).expect("json");
    let mut out = (String::new(), String::new(), Vec::new());
    for c in v["configs"].as_array().into_iter().flatten() {
        let t = c["@type"].as_str().unwrap_or("");
        let version = c["version_info"].as_str().unwrap_or("").to_string();
        if t.ends_with("ClustersConfigDump") {
            out.0 = version;
        } else if t.ends_with("ListenersConfigDump") {
            out.1 = version;
        } else if t.ends_with("RoutesConfigDump") {
            for r in c["dynamic_route_configs"].as_array().into_iter().flatten() {
                out.2
                    .push(r["version_info"].as_str().unwrap_or("").to_string());
            }
        }
    }
    out
}

/// Requests sent through an Envoy's egress, one after the other, until stopped.
pub struct Traffic {
    pub ok: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Traffic {
    pub fn start(egress: u16, host: &'static str) -> Traffic {
        let (ok, stop): (Arc<AtomicU64>, Arc<AtomicBool>) = (Arc::default(), Arc::default());
        let (o, s) = (Arc::clone(&ok), Arc::clone(&stop));
        let task = tokio::spawn(async move {
            let mut errors = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match http_get(([127, 0, 0, 1], egress).into(), host, "/", &[]).await {
                    Ok((200, _)) => {
                        o.fetch_add(1, Ordering::Relaxed);
                    }
                    other => errors.push(format!("{other:?}")),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            errors
        });
        Traffic { ok, stop, task }
    }

    /// Stops; the count of good requests and the failures.
    pub async fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let errors = self.task.await.expect("traffic task");
        (self.ok.load(Ordering::Relaxed), errors)
    }
}

/// The replicas the Envoy's streams are on, and whether every type it uses is SYNCED there.
pub async fn placement(replicas: &[Replica]) -> (Vec<usize>, bool) {
    let mut on = Vec::new();
    let mut types = 0;
    let mut synced = true;
    for (i, r) in replicas.iter().enumerate() {
        let streams = r.streams_of(crate::NODE).await;
        if !streams.is_empty() {
            on.push(i);
        }
        for s in streams {
            for (_, t) in s["types"].as_object().into_iter().flatten() {
                if t["state"] != "NOT SENT" {
                    types += 1;
                    synced &= t["state"] == "SYNCED";
                }
            }
        }
    }
    (on, synced && types == 4)
}

pub async fn wait_placed(
    replicas: &[Replica],
    what: &str,
    ok: impl Fn(&[usize]) -> bool,
) -> Vec<usize> {
    let t = Instant::now();
    loop {
        let (on, synced) = placement(replicas).await;
        if synced && ok(&on) {
            return on;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{what}: streams on {on:?}, synced {synced}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Envoy's versions equal the ones the replicas it is on serve it (waiting up to 10 s for that).
/// Delta xDS gives each route configuration its own version (not the type's), so for delta only
/// CDS and LDS compare.
pub async fn assert_in_sync(envoy: &Envoy, replicas: &[Replica], delta: bool) {
    let t = Instant::now();
    loop {
        match in_sync(envoy, replicas, delta).await {
            Ok(()) => return,
            // A stream between replicas (closed by age, not yet reopened) reports nothing.
            Err(e) if t.elapsed() > Duration::from_secs(10) => panic!("not in sync: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn in_sync(envoy: &Envoy, replicas: &[Replica], delta: bool) -> Result<(), String> {
    let (cds, lds, rds) = envoy_versions(envoy).await;
    let mut served = std::collections::BTreeMap::new();
    for r in replicas {
        for s in r.streams_of(crate::NODE).await {
            for (t, r) in s["types"].as_object().into_iter().flatten() {
                if let Some(v) = r["acked"].as_str() {
                    served.insert(t.clone(), v.to_string());
                }
            }
        }
    }
    let rds_ok = delta || rds.iter().all(|v| Some(v) == served.get("RDS"));
    if served.get("CDS") == Some(&cds)
        && served.get("LDS") == Some(&lds)
        && !rds.is_empty()
        && rds_ok
    {
        Ok(())
    } else {
        Err(format!(
            "Envoy has CDS {cds}, LDS {lds}, RDS {rds:?}; replicas acknowledged {served:?}"
        ))
    }
}
