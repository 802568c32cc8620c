//! Which cluster of its bootstrap an Envoy reaches meshplane through, learned from the gRPC
//! `:authority` (Envoy's `envoy_grpc` sends the cluster name there unless told otherwise), so that
//! per-type streams point endpoints and routes at that cluster whatever the bootstrap calls it.

use std::task::{Context, Poll};

use tonic::codegen::{http, Service};
use tonic::server::NamedService;

use super::XdsAuthority;

/// The cluster name meshplane's own bootstraps use, and the fallback when a request carries no
/// usable authority.
pub const DEFAULT_CLUSTER: &str = "meshplane_xds";

/// Longest authority taken for a cluster name; longer ones fall back to [`DEFAULT_CLUSTER`].
const MAX_CLUSTER_NAME: usize = 256;

/// Wraps a gRPC service so its handlers find the request's authority among the extensions.
#[derive(Debug, Clone)]
pub struct WithAuthority<S>(pub S);

impl<S: NamedService> NamedService for WithAuthority<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for WithAuthority<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if let Some(a) = req.uri().authority() {
            let a = XdsAuthority(a.as_str().to_string());
            req.extensions_mut().insert(a);
        }
        self.0.call(req)
    }
}

/// The cluster name to point per-type config sources at, from a request's extensions.
pub fn cluster_name(extensions: &http::Extensions) -> String {
    extensions
        .get::<XdsAuthority>()
        .map(|a| a.0.as_str())
        .filter(|a| usable(a))
        .unwrap_or(DEFAULT_CLUSTER)
        .to_string()
}

/// A bootstrap cluster name: short, printable, no spaces. (An authority of `host:port`, which a
/// bootstrap could set by hand, is taken as given: it is what that Envoy names its cluster only
/// if it says so, and then Envoy reports the mismatch by NACK.)
fn usable(a: &str) -> bool {
    !a.is_empty() && a.len() <= MAX_CLUSTER_NAME && a.chars().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_names_the_cluster_and_odd_ones_fall_back() {
        let mut ext = http::Extensions::new();
        assert_eq!(cluster_name(&ext), DEFAULT_CLUSTER);
        ext.insert(XdsAuthority("control-plane".into()));
        assert_eq!(cluster_name(&ext), "control-plane");
        ext.insert(XdsAuthority("two words".into()));
        assert_eq!(cluster_name(&ext), DEFAULT_CLUSTER);
        ext.insert(XdsAuthority("x".repeat(300)));
        assert_eq!(cluster_name(&ext), DEFAULT_CLUSTER);
    }
}
