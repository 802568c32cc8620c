//! The shop's `web` app: for `GET /checkout` it makes the three calls a shop front makes, each
//! through its own sidecar (it knows only virtual service names and ports): a gRPC call to
//! `orders.shop.local:50051`, a TCP exchange with the db at `127.0.0.1:<db router port>`, and an
//! HTTP GET of `catalog.shop.local/items`. It answers with what each said, or the first failure.

use std::net::SocketAddr;

use super::apps::{call, channel, SERVICE};
use super::support::envoy::http_get;
use super::support::tcp::ask;

/// Where the web app's sidecar takes its calls: the HTTP/gRPC egress port and the db's TCP port.
#[derive(Clone, Copy)]
pub struct Egress {
    pub http: u16,
    pub db: u16,
}

/// Serves the web app on `127.0.0.1:port`.
pub async fn web_app(port: u16, egress: Egress) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind web app");
    let app = axum::Router::new().route(
        "/checkout",
        axum::routing::get(move || async move {
            match checkout(egress).await {
                Ok(body) => (axum::http::StatusCode::OK, body),
                Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e),
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

async fn checkout(egress: Egress) -> Result<String, String> {
    let ch = channel(egress.http, "orders.shop.local:50051");
    let order = call(ch, SERVICE)
        .await
        .map_err(|e| format!("orders: {e}"))?;
    let db = ask(SocketAddr::from(([127, 0, 0, 1], egress.db)))
        .await
        .map_err(|e| format!("db: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], egress.http));
    let (status, catalog) = http_get(addr, "catalog.shop.local", "/items", &[])
        .await
        .map_err(|e| format!("catalog: {e}"))?;
    if status != 200 {
        return Err(format!("catalog: {status} {catalog}"));
    }
    Ok(format!(
        "orders {} | db {db} | {catalog}",
        order.reloads_accepted
    ))
}
