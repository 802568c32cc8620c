//! The admin API's bearer token (`serve --admin-token`): every request but the probes must carry
//! `Authorization: Bearer <token>`, or gets 401. `/healthz` and `/readyz` stay open so that
//! load balancers and Kubernetes probes need no secret; they tell only "up" and "ready".

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::app::AdminToken;

/// Paths answered without a token.
pub const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// `router`, with every request but [`OPEN_PATHS`] required to carry `token` (none: unchanged).
pub fn require_token(router: Router, token: Option<AdminToken>) -> Router {
    let Some(token) = token else {
        return router;
    };
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let token = token.clone();
        async move {
            if OPEN_PATHS.contains(&req.uri().path()) || carries(&req, &token) {
                next.run(req).await
            } else {
                unauthorized()
            }
        }
    }))
}

/// Whether `req` carries `Authorization: Bearer <token>`, compared in constant time.
fn carries(req: &Request, token: &AdminToken) -> bool {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    let Some(given) = value.to_str().ok().and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    }) else {
        return false;
    };
    same(given.trim().as_bytes(), token.as_str().as_bytes())
}

/// Equality whose time does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "this admin API requires a token: Authorization: Bearer <token> (meshplane status --admin-token ...)\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }
}
