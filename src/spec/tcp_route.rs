//! The `tcpRoute` of a Route: where a router's tcp listener sends connections (weighted virtual
//! node targets), which router listener it is for, and how long a connection may sit idle.

use serde::Deserialize;

use super::{RouteAction, TcpTimeout};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpRoute {
    pub action: RouteAction,
    #[serde(rename = "match")]
    pub matcher: Option<TcpRouteMatch>,
    /// `idle` only; App Mesh's default is none (Envoy's own: one hour).
    pub timeout: Option<TcpTimeout>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct TcpRouteMatch {
    /// The router listener this route is for (required when the router has several).
    pub port: Option<u32>,
}

impl TcpRoute {
    /// The router listener port the route names, if any.
    pub fn port(&self) -> Option<u32> {
        self.matcher.and_then(|m| m.port)
    }
}
