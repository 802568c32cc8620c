//! Serving: binds (or takes) the xDS and admin listeners, starts the reload task that owns the
//! [`Pipeline`], the xDS server and the admin API, and drains them all under a timeout on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::{reloader, AppError, Pipeline, Published, ReloadSettings};
use crate::model::ProxyId;
use crate::source::{self, Limits};
use crate::xds::accept::Incoming;
use crate::xds::auth::accept::TlsIncoming;
use crate::xds::conn::ConnGate;
use crate::xds::limits::{self, ClientLimits};
use crate::xds::server::{Registry, XdsMetrics, XdsService};
use crate::xds::variants::Demand;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

/// Settings of `meshplane serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub config_dir: PathBuf,
    pub xds_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Quiet time that ends a burst of file events.
    pub debounce: Duration,
    /// What xDS clients may hold, and how long they may hold up a shutdown.
    pub limits: ClientLimits,
    /// What one reload may read and parse.
    pub load_limits: Limits,
    /// The watcher's other settings and the guard against removing most of a mesh at once.
    pub reload: ReloadSettings,
    /// `--strict`: a field that is loaded but not translated makes the files invalid.
    pub strict: bool,
    /// meshplane's own CA (`--ca-dir`, `--trust-domain`, `--cert-validity`): serves `acm`.
    pub ca: Option<CaSettings>,
    /// Mutual TLS on the xDS port, the admin API's token.
    pub security: super::Security,
}

/// Where meshplane's CA lives and what it issues (docs/contract.md §2, §5).
#[derive(Debug, Clone)]
pub struct CaSettings {
    pub dir: PathBuf,
    pub trust_domain: String,
    /// How long a proxy certificate is valid; renewed at two thirds of it.
    pub validity: Duration,
}

impl ServeConfig {
    pub fn new(config_dir: PathBuf) -> ServeConfig {
        ServeConfig {
            config_dir,
            xds_listen: ([127, 0, 0, 1], 18000).into(),
            admin_listen: ([127, 0, 0, 1], 18001).into(),
            debounce: Duration::from_millis(100),
            limits: ClientLimits::default(),
            load_limits: Limits::DEFAULT,
            reload: ReloadSettings::default(),
            strict: false,
            ca: None,
            security: super::Security::default(),
        }
    }
}

/// The two listening sockets a server runs on, bound by the caller (or by [`Listeners::bind`]).
pub struct Listeners {
    pub xds: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses of `cfg`.
    pub async fn bind(cfg: &ServeConfig) -> Result<Listeners, AppError> {
        let bind_err = |addr| move |source| AppError::Bind { addr, source };
        let xds = bind_xds(cfg.xds_listen).map_err(bind_err(cfg.xds_listen))?;
        let admin = TcpListener::bind(cfg.admin_listen)
            .await
            .map_err(bind_err(cfg.admin_listen))?;
        Ok(Listeners { xds, admin })
    }
}

/// Binds the xDS listener with a deep accept queue: after a control-plane restart every Envoy
/// reconnects at once, and connections beyond a short queue would have their SYNs dropped and
/// retried a second later. The kernel caps the depth at `net.core.somaxconn`.
fn bind_xds(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(65_535)
}

/// Serves `cfg` on `listeners` until `shutdown` completes, then drains (see [`Server::shutdown`]).
pub async fn run(
    cfg: ServeConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    let server = Server::with_listeners(cfg, listeners)?;
    shutdown.await;
    server.shutdown().await;
    Ok(())
}

/// A running server; dropping it does not stop it, `shutdown` does.
pub struct Server {
    pub xds_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub pipeline: Published,
    pub metrics: Arc<XdsMetrics>,
    pub registry: Arc<Registry>,
    shutdown: watch::Sender<bool>,
    /// The xDS connections, to cut those that outlast the drain.
    gate: ConnGate,
    drain_timeout: Duration,
    tasks: Vec<JoinHandle<()>>,
    _watcher: source::watch::WatchHandle,
}

impl Server {
    /// Binds both listeners and starts serving (see [`Server::with_listeners`]).
    pub async fn start(cfg: ServeConfig) -> Result<Server, AppError> {
        if !cfg.config_dir.is_dir() {
            return Err(AppError::NoConfigDir(cfg.config_dir));
        }
        let listeners = Listeners::bind(&cfg).await?;
        Server::with_listeners(cfg, listeners)
    }

    /// Starts serving on `listeners`; the first load runs in the background, so the ports answer
    /// whatever the files hold, and `/readyz` answers 503 until a valid configuration is published.
    pub fn with_listeners(cfg: ServeConfig, listeners: Listeners) -> Result<Server, AppError> {
        if !cfg.config_dir.is_dir() {
            return Err(AppError::NoConfigDir(cfg.config_dir));
        }
        let local = |l: &TcpListener, addr| {
            l.local_addr()
                .map_err(|source| AppError::Bind { addr, source })
        };
        let xds_addr = local(&listeners.xds, cfg.xds_listen)?;
        let admin_addr = local(&listeners.admin, cfg.admin_listen)?;
        cfg.security.check_admin(admin_addr)?;
        let ca = open_ca(cfg.ca.as_ref())?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ca_with = ca.as_ref().zip(cfg.ca.as_ref());
        let port = super::xds_ca::setup(&cfg.security, ca_with, xds_addr, shutdown_rx.clone())?;
        let (tls, mut tasks) = (port.acceptor, Vec::from_iter(port.renewal));
        let descriptors = limits::raise_descriptor_limit();
        let demand = Demand::default();
        let pipeline = Pipeline::with_limits(cfg.config_dir.clone(), cfg.load_limits)
            .with_strict(cfg.strict)
            .with_demand(demand.clone())
            .with_ca(ca);
        let published = pipeline.published();
        // Watch before the first load so no edit slips between the two.
        let (watcher, changes) =
            source::watch::watch(&cfg.config_dir, cfg.reload.watch_config(cfg.debounce))?;

        // The reload task owns the pipeline; its first load runs once the ports are open.
        let (settings, stop, added) = (cfg.reload, shutdown_rx.clone(), demand.added());
        tasks.push(tokio::spawn(async move {
            if let Some((p, _)) = reloader::reload(pipeline, None, Default::default()).await {
                reloader::run(p, changes, added, settings, stop).await;
            }
        }));

        let xds = xds_service(&cfg, &published, demand, &shutdown_rx, tls.is_some());
        let metrics = xds.metrics.clone();
        let registry = xds.registry.clone();
        let gate = xds_gate(&cfg.limits, descriptors, &metrics);
        let incoming = Incoming::new(listeners.xds, gate.clone());
        let (status, stop) = (published.clone(), shutdown_rx.clone());
        let xds_tls = tls.is_some();
        tasks.push(match tls {
            Some(tls) => {
                let t = cfg.limits.handshake_timeout;
                let incoming = TlsIncoming::new(incoming, tls, t, metrics.clone());
                spawn_xds(xds, incoming, &cfg.limits, status, stop)
            }
            None => spawn_xds(xds, incoming, &cfg.limits, status, stop),
        });
        let router = crate::admin::router(published.clone(), metrics.clone(), registry.clone());
        let router = crate::admin::require_token(router, cfg.security.admin_token.clone());
        tasks.push(spawn_admin(listeners.admin, router, shutdown_rx));
        info!(%xds_addr, %admin_addr, xds_tls, dir = %cfg.config_dir.display(), "meshplane serving");
        Ok(Server {
            xds_addr,
            admin_addr,
            pipeline: published,
            metrics,
            registry,
            shutdown,
            gate,
            drain_timeout: cfg.limits.drain_timeout,
            tasks,
            _watcher: watcher,
        })
    }

    /// Stops watching and closes every stream, then waits for all tasks to end: for the drain
    /// timeout, then (a stream Envoy does not read holds its connection) cuts every connection.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.gate.close_silent();
        if tokio::time::timeout(self.drain_timeout, join(&mut self.tasks))
            .await
            .is_err()
        {
            warn!(connections = self.gate.open(), timeout = ?self.drain_timeout,
                "drain timed out; closing the remaining connections");
            self.gate.close_all();
            if tokio::time::timeout(Duration::from_secs(1), join(&mut self.tasks))
                .await
                .is_err()
            {
                for t in &self.tasks {
                    t.abort();
                }
            }
        }
    }
}

/// The xDS service on `published`: with TLS on the port, a client reads only its own node.
fn xds_service(
    cfg: &ServeConfig,
    published: &Published,
    demand: Demand,
    stop: &watch::Receiver<bool>,
    tls: bool,
) -> XdsService {
    let node_key: crate::xds::server::NodeKeyFn =
        Arc::new(|id: &str| ProxyId::parse(id).map(|p| p.to_string()));
    let xds = XdsService::new(
        published.cache.clone(),
        node_key,
        demand,
        stop.clone(),
        cfg.limits.clone(),
    );
    if tls {
        xds.with_authorizer(cfg.security.authorizer())
    } else {
        xds
    }
}

/// meshplane's CA from `--ca-dir` (created when absent), if given.
fn open_ca(s: Option<&CaSettings>) -> Result<Option<Arc<crate::ca::Authority>>, AppError> {
    let Some(s) = s else { return Ok(None) };
    let ca = crate::ca::CaDir::open_or_create(&s.dir, &s.trust_domain)?;
    info!(dir = %s.dir.display(), trust_domain = %s.trust_domain, validity = ?s.validity,
        "serving proxy certificates from meshplane's CA");
    Ok(Some(Arc::new(crate::ca::Authority::new(ca, s.validity))))
}

/// Serves every xDS service and the gRPC status service on `incoming` (TLS or not) until shutdown.
fn spawn_xds<IO>(
    xds: XdsService,
    incoming: impl Stream<Item = std::io::Result<IO>> + Send + 'static,
    l: &ClientLimits,
    status: Published,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()>
where
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
{
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(l.max_streams_per_connection)
        .http2_keepalive_interval(Some(l.keepalive_interval))
        .http2_keepalive_timeout(Some(l.keepalive_timeout));
    if let Some(age) = l.xds_max_stream_age {
        // GOAWAY once a connection is as old as its streams may be: the Envoy opens no new stream
        // on it, so when its streams close (at their jittered age, a little later) it reconnects
        // on a new connection, which its xDS cluster may send to another replica.
        builder = builder.max_connection_age(age);
    }
    tokio::spawn(async move {
        let result = xds
            .add_to(builder)
            .add_service(crate::proto::AdminService::server(status))
            .serve_with_incoming_shutdown(incoming, async move {
                crate::xds::server::stopped(&mut stop).await;
            })
            .await;
        if let Err(e) = result {
            error!(error = %e, "xDS server failed");
        }
    })
}

/// Serves the admin API until shutdown.
fn spawn_admin(
    listener: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                crate::xds::server::stopped(&mut stop).await;
            })
            .await;
        if let Err(e) = result {
            error!(error = %e, "admin server failed");
        }
    })
}

/// The gate every xDS connection passes, within `--max-connections` and the descriptor limit.
fn xds_gate(l: &ClientLimits, descriptors: Option<u64>, metrics: &Arc<XdsMetrics>) -> ConnGate {
    let max_connections = limits::connections_within(l.max_connections, descriptors);
    if max_connections < l.max_connections {
        warn!(
            max_connections,
            descriptors, "--max-connections lowered to fit the descriptor limit"
        );
    }
    ConnGate::new(max_connections, l.handshake_timeout, metrics.clone())
}

/// Waits for each task in turn, removing it once it has ended (a handle is polled only until then).
async fn join(tasks: &mut Vec<JoinHandle<()>>) {
    while let Some(t) = tasks.last_mut() {
        let _ = t.await;
        tasks.pop();
    }
}
