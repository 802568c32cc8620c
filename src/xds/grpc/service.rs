//! The six xDS gRPC services as tower services: each call is routed by its method to a stream
//! (state-of-the-world or delta) or a unary fetch of [`XdsService`]. A stream is its HTTP/2
//! response body ([`ResponseBody`]): polled for the next frame, it polls the stream for its next
//! response and writes it unchanged.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use http_body::Frame;
use prost::bytes::Bytes;
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};

use super::{Requests, SmallCodec};
use crate::xds::authority::WithAuthority;
use crate::xds::delta::DeltaState;
use crate::xds::server::{Protocol, XdsService};
use crate::xds::sotw::SotwState;
use crate::xds::wire::Encoded;
use crate::xds::{CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET};

/// What a stream hands its response body: a response, or the status that ends the stream.
#[derive(Debug)]
pub enum Outbound {
    Message(Encoded),
    End(Status),
}

/// A stream, as its response body sees it.
pub trait Source: Send + 'static {
    /// The next response or the final status, once there is one; `None`: the stream ended
    /// normally. Not called again after either end.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>>;
}

/// The services, by index: gRPC name and the one type it serves (`None`: ADS, every type).
const SERVICES: [(&str, Option<&str>); 6] = [
    (
        "envoy.service.discovery.v3.AggregatedDiscoveryService",
        None,
    ),
    (
        "envoy.service.cluster.v3.ClusterDiscoveryService",
        Some(CLUSTER),
    ),
    (
        "envoy.service.endpoint.v3.EndpointDiscoveryService",
        Some(ENDPOINT),
    ),
    (
        "envoy.service.listener.v3.ListenerDiscoveryService",
        Some(LISTENER),
    ),
    ("envoy.service.route.v3.RouteDiscoveryService", Some(ROUTE)),
    (
        "envoy.service.secret.v3.SecretDiscoveryService",
        Some(SECRET),
    ),
];

/// Service `K` of [`SERVICES`] over the shared xDS state.
pub struct XdsGrpc<const K: usize> {
    svc: Arc<XdsService>,
    /// Largest request message accepted (Envoy's initial requests list every name it holds).
    max_request: usize,
}

impl<const K: usize> Clone for XdsGrpc<K> {
    fn clone(&self) -> Self {
        XdsGrpc {
            svc: self.svc.clone(),
            max_request: self.max_request,
        }
    }
}

impl<const K: usize> NamedService for XdsGrpc<K> {
    const NAME: &'static str = SERVICES[K].0;
}

impl<const K: usize> XdsGrpc<K> {
    pub fn new(svc: Arc<XdsService>, max_request: usize) -> WithAuthority<XdsGrpc<K>> {
        // Per-type streams need the authority: it names the Envoy's cluster for meshplane.
        WithAuthority(XdsGrpc { svc, max_request })
    }
}

impl<const K: usize> Service<http::Request<Body>> for XdsGrpc<K> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let only = SERVICES[K].1;
        let method = req.uri().path().rsplit('/').next().unwrap_or_default();
        let (svc, max) = (self.svc.clone(), self.max_request);
        let response = if method.starts_with("Stream") {
            stream::<SotwState>(&svc, req, only, max)
        } else if method.starts_with("Delta") {
            stream::<DeltaState>(&svc, req, only, max)
        } else if let (true, Some(type_url)) = (method.starts_with("Fetch"), only) {
            return Box::pin(async move {
                let mut grpc =
                    Grpc::new(SmallCodec::<DiscoveryResponse, DiscoveryRequest>::default())
                        .max_decoding_message_size(max);
                Ok(grpc.unary(Fetch { svc, type_url }, req).await)
            });
        } else {
            Status::unimplemented("").into_http()
        };
        Box::pin(async move { Ok(response) })
    }
}

/// Opens a stream of protocol `P` on `req`: its requests are decoded as they come, and it answers
/// as its response body is polled.
fn stream<P: Protocol>(
    svc: &XdsService,
    req: http::Request<Body>,
    only: Option<&'static str>,
    max: usize,
) -> http::Response<Body> {
    let (parts, body) = req.into_parts();
    let inbound = Requests::<P::Req>::new(body, max);
    let request = Request::from_http(http::Request::from_parts(parts, inbound));
    let body = svc.open::<P>(request, only);
    let mut response = http::Response::new(Body::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// The unary fetch of one type.
struct Fetch {
    svc: Arc<XdsService>,
    type_url: &'static str,
}

impl UnaryService<DiscoveryRequest> for Fetch {
    type Response = DiscoveryResponse;
    type Future = BoxFuture<Response<DiscoveryResponse>, Status>;

    fn call(&mut self, request: Request<DiscoveryRequest>) -> Self::Future {
        let (svc, type_url) = (self.svc.clone(), self.type_url);
        Box::pin(async move { svc.fetch(request, type_url).await })
    }
}

/// A stream's response body: each response's head, then its (shared) body, as two data frames;
/// the trailers carry the status the stream ended with (OK when it ended normally).
pub struct ResponseBody {
    /// `None` once the trailers went out (or while the body is dropped).
    stream: Option<Box<dyn Source>>,
    /// The stream's span, entered while it runs (its logs name the peer and the node).
    span: tracing::Span,
    /// The body of the response whose head went out last.
    next: Option<Bytes>,
}

impl ResponseBody {
    pub fn new(stream: Box<dyn Source>, span: tracing::Span) -> ResponseBody {
        ResponseBody {
            stream: Some(stream),
            span,
            next: None,
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if let Some(body) = this.next.take() {
            return Poll::Ready(Some(Ok(Frame::data(body))));
        }
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(None);
        };
        let _entered = this.span.enter();
        let next = ready!(stream.poll_next(cx));
        let status = match next {
            Some(Outbound::Message(e)) => {
                this.next = Some(e.body);
                return Poll::Ready(Some(Ok(Frame::data(e.head))));
            }
            Some(Outbound::End(status)) => status,
            None => Status::new(Code::Ok, ""),
        };
        // Nothing follows the trailers: the stream is let go of now, in its span.
        this.stream = None;
        Poll::Ready(Some(Ok(Frame::trailers(trailers(&status)))))
    }
}

impl Drop for ResponseBody {
    /// A stream whose client went away ends here: in its span, so that its last words name it.
    fn drop(&mut self) {
        let _entered = self.span.enter();
        drop(self.stream.take());
    }
}

/// `grpc-status` (and `grpc-message`) for `status`.
fn trailers(status: &Status) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    if status.add_header(&mut map).is_err() {
        map.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
    }
    map
}
