//! `meshplane serve`: run the server until SIGINT or SIGTERM, then drain and exit.

use std::process::ExitCode;

use meshplane::app::{ServeConfig, Server};

pub fn run(cfg: ServeConfig) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(async move {
        let server = Server::start(cfg).await?;
        wait_for_signal().await?;
        tracing::info!("shutting down");
        server.shutdown().await;
        anyhow::Ok(ExitCode::SUCCESS)
    });
    // Whatever a client or a reload still holds, the drain is over: do not wait for it.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
