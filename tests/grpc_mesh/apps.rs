//! The apps behind the sidecars of tests/grpc_mesh.rs: a tonic gRPC server (meshplane's own
//! `meshplane.admin.v1.Admin`, optionally flaky, optionally with gRPC's health service), a tonic
//! client calling through a sidecar's egress port, and a plain HTTP app.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshplane::proto::admin::admin_server::{Admin, AdminServer};
use meshplane::proto::admin::{GetStatusRequest, GetStatusResponse};

use super::health;

/// A gRPC server: meshplane's own `meshplane.admin.v1.Admin` service (proto/), answering
/// `GetStatus` with `reloads_accepted = id`; with `flaky`, every other call (the 2nd, 4th, ...)
/// gets UNAVAILABLE instead. Counts the calls it got.
pub struct App {
    id: u64,
    flaky: bool,
    calls: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl Admin for App {
    async fn get_status(
        &self,
        _: tonic::Request<GetStatusRequest>,
    ) -> Result<tonic::Response<GetStatusResponse>, tonic::Status> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.flaky && n.is_multiple_of(2) {
            return Err(tonic::Status::unavailable("flaky"));
        }
        Ok(tonic::Response::new(GetStatusResponse {
            reloads_accepted: self.id,
            ..Default::default()
        }))
    }
}

/// Serves an [`App`] on `127.0.0.1:port`; its call counter.
pub fn grpc_app(port: u16, id: u64, flaky: bool) -> Arc<AtomicU64> {
    grpc_app_with(port, id, flaky, None)
}

/// [`grpc_app`], with gRPC's health service when `health` is given.
pub fn grpc_app_with(
    port: u16,
    id: u64,
    flaky: bool,
    health: Option<health::Health>,
) -> Arc<AtomicU64> {
    let calls = Arc::new(AtomicU64::new(0));
    let app = App {
        id,
        flaky,
        calls: calls.clone(),
    };
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(AdminServer::new(app))
            .add_optional_service(health)
            .serve(([127, 0, 0, 1], port).into())
            .await
            .expect("grpc app");
    });
    calls
}

/// A channel to the sidecar's egress port whose calls name `authority` (the virtual service).
pub fn channel(egress: u16, authority: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{egress}"))
        .unwrap()
        .origin(format!("http://{authority}").parse().unwrap())
        .connect_lazy()
}

/// One unary `GetStatus` on `service` (the generated client only knows the real one).
pub async fn call(
    channel: tonic::transport::Channel,
    service: &str,
) -> Result<GetStatusResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path: tonic::codegen::http::uri::PathAndQuery =
        format!("/{service}/GetStatus").parse().unwrap();
    grpc.unary(
        tonic::Request::new(GetStatusRequest {}),
        path,
        tonic_prost::ProstCodec::<GetStatusRequest, GetStatusResponse>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

pub const SERVICE: &str = "meshplane.admin.v1.Admin";

/// Calls until one succeeds (the sidecars are still getting their configuration).
pub async fn first_answer(
    ch: &tonic::transport::Channel,
    what: &str,
    work: &std::path::Path,
) -> u64 {
    let began = Instant::now();
    loop {
        match call(ch.clone(), SERVICE).await {
            Ok(r) => return r.reloads_accepted,
            Err(e) => assert!(
                began.elapsed() < Duration::from_secs(30),
                "{what}: no gRPC answer: {e}; see {}",
                work.display()
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HTTP app answering `<name> <path>`.
pub async fn http_app(port: u16, name: &'static str) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind app");
    let app = axum::Router::new()
        .fallback(move |uri: axum::http::Uri| async move { format!("{name} {}", uri.path()) });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}
