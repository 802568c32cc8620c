//! App Mesh's Envoy resource names, so App Mesh operators recognise their dashboards and stats.

use crate::spec::Protocol;

/// `cds_ingress_<mesh>_<node>_<proto>_<port>`: the local app behind this sidecar.
pub fn ingress_cluster(mesh: &str, node: &str, proto: Protocol, port: u32) -> String {
    format!("cds_ingress_{mesh}_{node}_{}_{port}", proto.as_str())
}

/// `cds_egress_<mesh>_<node>_<proto>_<port>`: another node's listener, as seen by its clients.
pub fn egress_cluster(mesh: &str, node: &str, proto: Protocol, port: u32) -> String {
    format!("cds_egress_{mesh}_{node}_{}_{port}", proto.as_str())
}

/// `cds_egress_<mesh>_mesh-allow-all`: unmatched egress when the mesh's egress filter is ALLOW_ALL.
pub fn allow_all_cluster(mesh: &str) -> String {
    format!("cds_egress_{mesh}_mesh-allow-all")
}

pub fn ingress_listener(port: u32) -> String {
    format!("lds_ingress_0.0.0.0_{port}")
}

pub fn egress_listener(port: u32) -> String {
    format!("lds_egress_127.0.0.1_{port}")
}

/// The egress listener of the transparent layout, which takes redirected connections on any
/// address.
pub fn transparent_egress_listener(port: u32) -> String {
    format!("lds_egress_0.0.0.0_{port}")
}

/// `rds_ingress_<proto>_<app port>`.
pub fn ingress_routes(proto: Protocol, port: u32) -> String {
    format!("rds_ingress_{}_{port}", proto.as_str())
}

/// `rds_egress_http_<egress port>`.
pub fn egress_routes(port: u32) -> String {
    format!("rds_egress_http_{port}")
}

/// `cds_ingress_<mesh>_<gateway>_self_redirect_<proto>_<egress port>` (with several gateway
/// listeners, `..._self_redirect_<listener port>_<proto>_<egress port>`): the loop from a gateway's
/// ingress listener back into its own egress listener.
pub fn self_redirect_cluster(
    mesh: &str,
    gateway: &str,
    listener_port: Option<u32>,
    proto: Protocol,
    egress_port: u32,
) -> String {
    let listener = listener_port.map_or(String::new(), |p| format!("{p}_"));
    format!(
        "cds_ingress_{mesh}_{gateway}_self_redirect_{listener}{}_{egress_port}",
        proto.as_str()
    )
}
