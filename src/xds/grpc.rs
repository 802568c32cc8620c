//! gRPC glue for the aggregated discovery service, in place of the generated server: the same
//! methods and paths, but a codec that starts each stream's send and receive buffers small.
//!
//! tonic's default codec reserves 8 KiB for each direction of every stream, for the stream's whole
//! life. An ADS connection carries one long-lived stream whose requests are a few hundred bytes,
//! so with 10,000 sidecars those buffers alone were a third of the server's memory. Buffers still
//! grow on demand for large responses.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryService;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use prost::Message;
use tonic::body::Body;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{http, Service, StdError};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

/// Initial size of a stream's codec buffers: room for a typical request or ACK.
const BUFFER: usize = 1024;

/// A prost codec whose buffers start at [`BUFFER`] bytes.
pub struct SmallCodec<E, D>(PhantomData<fn(E) -> D>);

impl<E, D> Default for SmallCodec<E, D> {
    fn default() -> Self {
        SmallCodec(PhantomData)
    }
}

pub struct SmallEncoder<E>(PhantomData<fn(E)>);
pub struct SmallDecoder<D>(PhantomData<fn() -> D>);

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER, 32 * 1024)
}

impl<E: Message + Send + 'static, D: Message + Default + Send + 'static> Codec
    for SmallCodec<E, D>
{
    type Encode = E;
    type Decode = D;
    type Encoder = SmallEncoder<E>;
    type Decoder = SmallDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        SmallEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        SmallDecoder(PhantomData)
    }
}

impl<E: Message> Encoder for SmallEncoder<E> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding a response: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        settings()
    }
}

impl<D: Message + Default> Decoder for SmallDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        D::decode(buf)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("decoding a request: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        settings()
    }
}

/// `envoy.service.discovery.v3.AggregatedDiscoveryService` over any implementation of the
/// generated trait.
pub struct AdsServer<T> {
    inner: Arc<T>,
    /// Largest request message accepted (Envoy's initial requests list every name it holds).
    max_request: usize,
}

impl<T> AdsServer<T> {
    pub fn new(inner: T, max_request: usize) -> AdsServer<T> {
        AdsServer {
            inner: Arc::new(inner),
            max_request,
        }
    }
}

impl<T> Clone for AdsServer<T> {
    fn clone(&self) -> Self {
        AdsServer {
            inner: self.inner.clone(),
            max_request: self.max_request,
        }
    }
}

impl<T> NamedService for AdsServer<T> {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

struct Sotw<T>(Arc<T>);
struct Delta<T>(Arc<T>);

type BoxFuture<R> = std::pin::Pin<Box<dyn std::future::Future<Output = R> + Send>>;

impl<T: AggregatedDiscoveryService> StreamingService<DiscoveryRequest> for Sotw<T> {
    type Response = DiscoveryResponse;
    type ResponseStream = T::StreamAggregatedResourcesStream;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Streaming<DiscoveryRequest>>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.stream_aggregated_resources(request).await })
    }
}

impl<T: AggregatedDiscoveryService> StreamingService<DeltaDiscoveryRequest> for Delta<T> {
    type Response = DeltaDiscoveryResponse;
    type ResponseStream = T::DeltaAggregatedResourcesStream;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Streaming<DeltaDiscoveryRequest>>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.delta_aggregated_resources(request).await })
    }
}

impl<T, B> Service<http::Request<B>> for AdsServer<T>
where
    T: AggregatedDiscoveryService,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        let max = self.max_request;
        match req.uri().path() {
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources" => {
                Box::pin(async move {
                    let mut grpc =
                        Grpc::new(SmallCodec::<DiscoveryResponse, DiscoveryRequest>::default())
                            .max_decoding_message_size(max);
                    Ok(grpc.streaming(Sotw(inner), req).await)
                })
            }
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources" => {
                Box::pin(async move {
                    let mut grpc = Grpc::new(SmallCodec::<
                        DeltaDiscoveryResponse,
                        DeltaDiscoveryRequest,
                    >::default())
                    .max_decoding_message_size(max);
                    Ok(grpc.streaming(Delta(inner), req).await)
                })
            }
            _ => Box::pin(async move { Ok(Status::unimplemented("").into_http()) }),
        }
    }
}
