//! `meshplane bootstrap`: print an Envoy bootstrap (YAML) for one sidecar.

use std::process::ExitCode;

use anyhow::Context;
use meshplane::bootstrap::{self, BootstrapParams, XdsMode};

pub fn run(
    node_id: String,
    xds: &str,
    admin_port: u16,
    mode: XdsMode,
    sds_socket: Option<&str>,
    tls: &super::XdsTlsArgs,
) -> anyhow::Result<ExitCode> {
    if meshplane::model::ProxyId::parse(&node_id).is_none() {
        anyhow::bail!("node id `{node_id}` must be mesh/<mesh>/virtualNode/<name>, mesh/<mesh>/virtualGateway/<name> or an App Mesh ARN");
    }
    let (xds_host, xds_port) = bootstrap::split_host_port(xds)
        .with_context(|| format!("--xds `{xds}` must be HOST:PORT"))?;
    let tls = tls.files(&xds_host);
    print!(
        "{}",
        bootstrap::render_with_tls(
            &BootstrapParams {
                mode,
                node_id,
                xds_host,
                xds_port,
                admin_port,
                admin_address: "127.0.0.1".into()
            },
            tls.as_ref()
        )
    );
    if let Some(path) = sds_socket {
        if path.is_empty() {
            anyhow::bail!("--sds-socket must be a path");
        }
        print!("{}", bootstrap::sds_cluster(path));
    }
    Ok(ExitCode::SUCCESS)
}
