//! What the demo starts for each virtual node: a real Envoy sidecar (bootstrapped to this meshplane,
//! killed when dropped) and a tiny HTTP service per listener that answers with the node's name (or,
//! for traffic from a gateway, calls a backend); for each virtual gateway, its Envoy.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};

use meshplane::bootstrap::{self, BootstrapParams, XdsMode};
use meshplane::model::{ProxyId, ProxyKind};
use tokio::net::TcpListener;

use super::http::http_get;
use super::traffic::CALL_HEADER;
use super::{io, DemoError};

/// An Envoy process, killed (by PID) when dropped.
pub(super) struct Sidecar {
    pub(super) child: Child,
    /// A virtual gateway's Envoy, not a node's sidecar.
    pub(super) gateway: bool,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn start_envoy(
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
    Ok(Sidecar {
        child,
        gateway: id.kind == ProxyKind::VirtualGateway,
    })
}

/// A tiny HTTP service that answers every request with its node name. A node with backends also
/// makes calls: a request naming one of `backends` in [`CALL_HEADER`] (traffic that entered through
/// a gateway) is answered with what that backend answered, called through the node's own sidecar
/// on `egress`.
pub(super) async fn start_app(
    port: u32,
    name: String,
    egress: u32,
    backends: Vec<String>,
) -> Result<(), DemoError> {
    let listener = TcpListener::bind(("127.0.0.1", port as u16))
        .await
        .map_err(io(format!("bind 127.0.0.1:{port} for {name}")))?;
    let backends = Arc::new(backends);
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let (name, backends) = (name.clone(), backends.clone());
        async move {
            let call = headers.get(CALL_HEADER).and_then(|v| v.to_str().ok());
            let Some(service) = call.filter(|c| backends.iter().any(|b| b == c)) else {
                return (StatusCode::OK, name);
            };
            let addr: SocketAddr = ([127, 0, 0, 1], egress as u16).into();
            match http_get(addr, service, "/", &[]).await {
                Ok((200, body)) => (StatusCode::OK, body),
                Ok((status, _)) => (
                    StatusCode::BAD_GATEWAY,
                    format!("{name}: {service} answered HTTP {status}"),
                ),
                Err(e) => (
                    StatusCode::BAD_GATEWAY,
                    format!("{name}: {service} did not answer: {e}"),
                ),
            }
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}
