//! A minimal SDS server for tests/tls_mesh.rs (SPIRE's part): answers each stream's requests with
//! the named secrets it holds, inline (no files), and records the names asked for.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    secret, CertificateValidationContext, Secret, TlsCertificate,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryService;
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn inline(pem: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(data_source::Specifier::InlineString(pem.to_string())),
        ..Default::default()
    })
}

pub fn certificate(name: &str, (cert, key): (String, String)) -> Secret {
    Secret {
        name: name.into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(&cert),
            private_key: inline(&key),
            ..Default::default()
        })),
    }
}

pub fn trust(name: &str, ca: &str) -> Secret {
    Secret {
        name: name.into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: inline(ca),
                ..Default::default()
            },
        )),
    }
}

#[derive(Clone)]
pub struct Agent {
    pub secrets: Arc<HashMap<String, Secret>>,
    pub asked: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl SecretDiscoveryService for Agent {
    type DeltaSecretsStream = Out<DeltaDiscoveryResponse>;
    type StreamSecretsStream = Out<DiscoveryResponse>;

    async fn delta_secrets(
        &self,
        _: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        Err(Status::unimplemented("state of the world only"))
    }

    async fn stream_secrets(
        &self,
        req: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let agent = self.clone();
        tokio::spawn(async move {
            let mut sent: Option<Vec<String>> = None;
            let mut nonce = 0u64;
            while let Ok(Some(r)) = inbound.message().await {
                if sent.as_ref() == Some(&r.resource_names) {
                    continue; // an ACK of what was sent
                }
                agent.asked.lock().unwrap().extend(r.resource_names.clone());
                nonce += 1;
                let resources = r
                    .resource_names
                    .iter()
                    .filter_map(|n| agent.secrets.get(n))
                    .map(|s| Any {
                        type_url: Secret::type_url(),
                        value: s.encode_to_vec(),
                    })
                    .collect();
                let resp = DiscoveryResponse {
                    version_info: "1".into(),
                    resources,
                    type_url: Secret::type_url(),
                    nonce: nonce.to_string(),
                    ..Default::default()
                };
                sent = Some(r.resource_names);
                if tx.send(Ok(resp)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn fetch_secrets(
        &self,
        _: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        Err(Status::unimplemented("streams only"))
    }
}
