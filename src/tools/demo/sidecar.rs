//! What the demo starts for each virtual node: a real Envoy sidecar (bootstrapped to this meshplane,
//! killed when dropped) and a tiny HTTP service per listener that answers with the node's name.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use meshplane::bootstrap::{self, BootstrapParams, XdsMode};
use meshplane::model::ProxyId;
use tokio::net::TcpListener;

use super::{io, DemoError};

/// An Envoy process, killed (by PID) when dropped.
pub(super) struct Sidecar {
    pub(super) child: Child,
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
    Ok(Sidecar { child })
}

/// A tiny HTTP service that answers every request with its node name.
pub(super) async fn start_app(port: u32, name: String) -> Result<(), DemoError> {
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
