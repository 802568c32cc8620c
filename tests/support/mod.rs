//! Shared test helpers: a mesh directory, an in-process meshplane, and a minimal Rust ADS client.
#![allow(dead_code)]

pub mod envoy;
pub mod tcp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status;
use meshplane::app::{ServeConfig, Server};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

pub const CDS: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const EDS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const LDS: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const RDS: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

pub struct MeshDir {
    pub dir: tempfile::TempDir,
}

impl MeshDir {
    pub fn new() -> MeshDir {
        MeshDir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A copy of a directory of mesh files.
    pub fn copy_of(src: &Path) -> MeshDir {
        let d = MeshDir::new();
        for e in std::fs::read_dir(src).expect("read example dir") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), d.path().join(e.file_name())).expect("copy");
        }
        d
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    /// Editor-style save: write a temp file, then rename it over the target.
    pub fn write_and_rename(&self, name: &str, text: &str) {
        let tmp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write tmp");
        std::fs::rename(&tmp, self.dir.path().join(name)).expect("rename");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).expect("read")
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The settings of [`start`]: any free ports, a 50 ms debounce.
pub fn test_config(dir: &Path) -> ServeConfig {
    ServeConfig {
        xds_listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        debounce: Duration::from_millis(50),
        ..ServeConfig::new(dir.to_path_buf())
    }
}

/// A server on `dir`, once its first load (which runs in the background) is done.
pub async fn start(dir: &Path) -> Server {
    start_config(test_config(dir)).await
}

/// A server on `dir` whose first load found no problem and no warning.
pub async fn start_clean(dir: &Path) -> Server {
    let server = start(dir).await;
    let last = &server.pipeline.status().last;
    assert!(
        last.problems.is_empty() && last.warnings.is_empty(),
        "{last:#?}"
    );
    server
}

/// A server with `cfg`, once its first load is done.
pub async fn start_config(cfg: ServeConfig) -> Server {
    let server = Server::start(cfg).await.expect("server starts");
    let status = server.pipeline.clone();
    let loaded = move || status.status().reloads >= 1;
    eventually("the first load", Duration::from_secs(60), loaded).await;
    server
}

/// Waits until `f` is true, polling; panics with `what` after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`eventually`] for an async check (an admin call, a request through a sidecar).
pub async fn eventually_async(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next message of a response stream, or None if none arrives within `wait` (or it ends).
async fn next_within<T>(rx: &mut Streaming<T>, wait: Duration) -> Option<T> {
    match tokio::time::timeout(wait, rx.message()).await {
        Ok(Ok(r)) => r,
        Ok(Err(status)) => panic!("stream failed: {status}"),
        Err(_) => None,
    }
}

/// A bare-bones ADS client that speaks the wire protocol the way Envoy does.
pub struct AdsClient {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: Streaming<DiscoveryResponse>,
    node: Node,
    first: bool,
}

impl AdsClient {
    pub async fn connect(addr: std::net::SocketAddr, node_id: &str) -> AdsClient {
        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let (tx, rx) = mpsc::channel(16);
        let stream = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
            .expect("open stream")
            .into_inner();
        AdsClient {
            tx,
            rx: stream,
            node: Node {
                id: node_id.into(),
                ..Default::default()
            },
            first: true,
        }
    }

    pub async fn send(&mut self, mut req: DiscoveryRequest) {
        if self.first {
            req.node = Some(self.node.clone());
            self.first = false;
        }
        self.tx.send(req).await.expect("send request");
    }

    pub async fn request(&mut self, type_url: &str, names: &[&str], version: &str, nonce: &str) {
        self.send(DiscoveryRequest {
            type_url: type_url.into(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
            version_info: version.into(),
            response_nonce: nonce.into(),
            ..Default::default()
        })
        .await
    }

    /// ACK `resp` keeping the given subscription.
    pub async fn ack(&mut self, resp: &DiscoveryResponse, names: &[&str]) {
        self.request(
            &resp.type_url.clone(),
            names,
            &resp.version_info.clone(),
            &resp.nonce.clone(),
        )
        .await
    }

    pub async fn nack(&mut self, resp: &DiscoveryResponse, last_good: &str, names: &[&str]) {
        self.send(DiscoveryRequest {
            type_url: resp.type_url.clone(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
            version_info: last_good.into(),
            response_nonce: resp.nonce.clone(),
            error_detail: Some(Status {
                code: 3,
                message: "rejected by test".into(),
                details: vec![],
            }),
            ..Default::default()
        })
        .await
    }

    /// The next response, or None if none arrives within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<DiscoveryResponse> {
        next_within(&mut self.rx, wait).await
    }

    pub async fn recv(&mut self) -> DiscoveryResponse {
        self.recv_within(Duration::from_secs(10))
            .await
            .expect("a response within 10 s")
    }

    /// Whether the server ended the stream (or failed it) within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        matches!(
            tokio::time::timeout(wait, self.rx.message()).await,
            Ok(Ok(None)) | Ok(Err(_))
        )
    }
}

pub fn names_of(resp: &DiscoveryResponse) -> Vec<String> {
    use prost::Message;
    resp.resources
        .iter()
        .map(|a| {
            match resp.type_url.as_str() {
                CDS => {
                    envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(a.value.as_slice())
                        .map(|c| c.name)
                }
                EDS => envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment::decode(
                    a.value.as_slice(),
                )
                .map(|c| c.cluster_name),
                LDS => envoy_types::pb::envoy::config::listener::v3::Listener::decode(
                    a.value.as_slice(),
                )
                .map(|c| c.name),
                _ => envoy_types::pb::envoy::config::route::v3::RouteConfiguration::decode(
                    a.value.as_slice(),
                )
                .map(|c| c.name),
            }
            .expect("decodes")
        })
        .collect()
}

/// A bare-bones delta ADS client.
pub struct DeltaClient {
    tx: mpsc::Sender<envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest>,
    rx: Streaming<envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse>,
    node: Node,
    first: bool,
}

pub type DeltaReq = envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
pub type DeltaResp = envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse;

impl DeltaClient {
    pub async fn connect(addr: std::net::SocketAddr, node_id: &str) -> DeltaClient {
        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let (tx, rx) = mpsc::channel(16);
        let stream = client
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await
            .expect("open stream")
            .into_inner();
        DeltaClient {
            tx,
            rx: stream,
            node: Node {
                id: node_id.into(),
                ..Default::default()
            },
            first: true,
        }
    }

    pub async fn send(&mut self, mut req: DeltaReq) {
        if self.first {
            req.node = Some(self.node.clone());
            self.first = false;
        }
        self.tx.send(req).await.expect("send request");
    }

    pub async fn request(
        &mut self,
        type_url: &str,
        subscribe: &[&str],
        unsubscribe: &[&str],
        nonce: &str,
    ) {
        self.send(DeltaReq {
            type_url: type_url.into(),
            resource_names_subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
            resource_names_unsubscribe: unsubscribe.iter().map(|s| s.to_string()).collect(),
            response_nonce: nonce.into(),
            ..Default::default()
        })
        .await
    }

    pub async fn ack(&mut self, resp: &DeltaResp) {
        let (t, n) = (resp.type_url.clone(), resp.nonce.clone());
        self.request(&t, &[], &[], &n).await
    }

    pub async fn recv_within(&mut self, wait: Duration) -> Option<DeltaResp> {
        next_within(&mut self.rx, wait).await
    }

    pub async fn recv(&mut self) -> DeltaResp {
        self.recv_within(Duration::from_secs(10))
            .await
            .expect("a response within 10 s")
    }
}

pub fn delta_names(resp: &DeltaResp) -> Vec<String> {
    resp.resources.iter().map(|r| r.name.clone()).collect()
}
