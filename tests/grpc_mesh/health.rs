//! gRPC's health protocol (`grpc.health.v1.Health/Check`), written out by hand: the messages with
//! prost's derive and the service the way tonic's generated servers are, so a test app can answer
//! Envoy's `grpc_health_check` without another crate. `serving` says what `Check` answers.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    /// 1 SERVING, 2 NOT_SERVING.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

#[derive(Clone, Default)]
pub struct Health {
    pub serving: Arc<AtomicBool>,
    pub checks: Arc<AtomicU64>,
}

impl tonic::server::NamedService for Health {
    const NAME: &'static str = "grpc.health.v1.Health";
}

struct Check(Health);

impl tonic::server::UnaryService<HealthCheckRequest> for Check {
    type Response = HealthCheckResponse;
    type Future = BoxFuture<tonic::Response<HealthCheckResponse>, tonic::Status>;

    fn call(&mut self, _: tonic::Request<HealthCheckRequest>) -> Self::Future {
        let h = self.0.clone();
        Box::pin(async move {
            h.checks.fetch_add(1, Ordering::SeqCst);
            let status = if h.serving.load(Ordering::SeqCst) {
                1
            } else {
                2
            };
            Ok(tonic::Response::new(HealthCheckResponse { status }))
        })
    }
}

impl<B> Service<http::Request<B>> for Health
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let check = Check(self.clone());
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::default();
            Ok(tonic::server::Grpc::new(codec).unary(check, req).await)
        })
    }
}
