//! One mesh's part of the topology page: its egress filter, then three columns in the direction
//! traffic flows (virtual services → virtual routers → virtual nodes with their sidecars), then the
//! gateways. Routers are rendered by `router`, gateways by `gateway`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_yaml_ng::Value;

use super::{connection, esc, more, sidecar, Sidecars, LIST_LIMIT};
use crate::model::{Mesh, ProxyId};
use crate::spec::VirtualNodeSpec;

pub(super) fn section(out: &mut String, m: &Mesh, sidecars: &Sidecars) {
    let allow_all = m.spec.allows_all_egress();
    let egress = if allow_all {
        "<span class=\"badge warn\">egress ALLOW_ALL</span> sidecars may reach any destination"
    } else {
        "<span class=\"badge ok\">egress DROP_ALL</span> only modelled backends are reachable"
    };
    let _ = write!(
        out,
        "<section class=\"mesh\" id=\"{}\"><h2>mesh <span class=\"name\">{}</span></h2>\
         <p class=\"egress\">{egress}</p><div class=\"cols\">",
        esc(&format!("mesh-{}", m.name)),
        esc(&m.name)
    );
    services(out, m);
    super::router::column(out, m);
    nodes(out, m, sidecars);
    out.push_str("</div>");
    super::gateway::list(out, m, sidecars);
    out.push_str("</section>\n");
}

/// The value of an `id` attribute (already escaped) for one resource of a mesh.
pub(super) fn anchor(kind: &str, mesh: &str, name: &str) -> String {
    esc(&format!("{kind}-{mesh}-{name}"))
}

/// A link to a resource of the same mesh.
pub(super) fn link(kind: &str, mesh: &str, name: &str) -> String {
    format!(
        "<a href=\"#{}\">{}</a>",
        anchor(kind, mesh, name),
        esc(name)
    )
}

/// Opens a column with its title and count (the caller closes it).
pub(super) fn column(out: &mut String, title: &str, len: usize) {
    let _ = write!(
        out,
        "<div class=\"col\"><h3>{title} <span class=\"count\">{len}</span></h3>"
    );
    if len == 0 {
        out.push_str("<p class=\"muted\">none</p>");
    }
}

/// The value at `keys` of a spec kept raw (gateways, gRPC and TCP routes).
pub(super) fn at<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().try_fold(v, |v, k| v.get(*k))
}

fn services(out: &mut String, m: &Mesh) {
    let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (node, item) in &m.virtual_nodes {
        for vs in item
            .spec
            .backends
            .iter()
            .filter_map(|b| b.virtual_service.as_ref())
        {
            users
                .entry(&vs.virtual_service_name)
                .or_default()
                .push(node);
        }
    }
    column(out, "Virtual services", m.virtual_services.len());
    for (name, item) in m.virtual_services.iter().take(LIST_LIMIT) {
        let provider = item.spec.provider.as_ref();
        let to = match (
            provider.and_then(|p| p.virtual_router.as_ref()),
            provider.and_then(|p| p.virtual_node.as_ref()),
        ) {
            (Some(r), _) => format!("router {}", link("vr", &m.name, &r.virtual_router_name)),
            (None, Some(n)) => format!("node {}", link("vn", &m.name, &n.virtual_node_name)),
            (None, None) => "no provider".into(),
        };
        let _ = write!(
            out,
            "<div class=\"card service\" id=\"{}\"><div class=\"head\"><span class=\"name\">{}</span></div>\
             <dl><dt>provided by</dt><dd>{to}</dd><dt>used by</dt><dd>",
            anchor("vs", &m.name, name),
            esc(name)
        );
        match users.get(name.as_str()) {
            Some(us) => {
                let links: Vec<String> = us.iter().map(|u| link("vn", &m.name, u)).collect();
                out.push_str(&links.join(", "));
            }
            None => out.push_str("<span class=\"muted\">no node</span>"),
        }
        out.push_str("</dd></dl></div>");
    }
    more(
        out,
        m.virtual_services.len(),
        "GET /load and the files list them all",
    );
    out.push_str("</div>");
}

fn nodes(out: &mut String, m: &Mesh, sidecars: &Sidecars) {
    column(out, "Virtual nodes", m.virtual_nodes.len());
    for (name, item) in m.virtual_nodes.iter().take(LIST_LIMIT) {
        let connected = sidecars.of(&ProxyId::virtual_node(&m.name, name));
        let _ = write!(
            out,
            "<div class=\"card node\" id=\"{}\"><div class=\"head\"><span class=\"name\">{}</span>",
            anchor("vn", &m.name, name),
            esc(name)
        );
        connection(out, connected);
        out.push_str("</div>");
        node_facts(out, &m.name, &item.spec);
        for p in connected {
            sidecar(out, p);
        }
        out.push_str("</div>");
    }
    more(
        out,
        m.virtual_nodes.len(),
        "meshplane status lists them all",
    );
    out.push_str("</div>");
}

fn node_facts(out: &mut String, mesh: &str, spec: &VirtualNodeSpec) {
    let listeners: Vec<String> = spec
        .listeners
        .iter()
        .map(|l| {
            let mut s = format!(
                "{} {}",
                l.port_mapping.port,
                l.port_mapping.protocol.as_str()
            );
            if let Some(h) = &l.health_check {
                s.push_str(&format!(", health {}", h.path.as_deref().unwrap_or("tcp")));
            }
            if l.outlier_detection.is_some() {
                s.push_str(", outlier detection");
            }
            s
        })
        .collect();
    let inbound: Vec<String> = (0..spec.listeners.len())
        .map(|i| format!("in :{}", spec.ingress_port(i)))
        .collect();
    let backends: Vec<String> = spec
        .backends
        .iter()
        .filter_map(|b| b.virtual_service.as_ref())
        .map(|vs| link("vs", mesh, &vs.virtual_service_name))
        .collect();
    let none = "<span class=\"muted\">none</span>";
    let _ = write!(
        out,
        "<dl><dt>app</dt><dd>{}</dd><dt>sidecar</dt><dd>{}out 127.0.0.1:{}</dd>\
         <dt>backends</dt><dd>{}</dd><dt>discovery</dt><dd>{}</dd></dl>",
        if listeners.is_empty() {
            "<span class=\"muted\">no listener (client only)</span>".to_string()
        } else {
            esc(&listeners.join(" · "))
        },
        esc(&inbound
            .iter()
            .map(|s| format!("{s} · "))
            .collect::<String>()),
        spec.egress_port(),
        if backends.is_empty() {
            none.to_string()
        } else {
            backends.join(", ")
        },
        esc(&discovery(spec))
    );
}

fn discovery(spec: &VirtualNodeSpec) -> String {
    let Some(sd) = &spec.service_discovery else {
        return "none".into();
    };
    if let Some(dns) = &sd.dns {
        return format!("DNS {}", dns.hostname);
    }
    if let Some(st) = &sd.static_ {
        let addrs: Vec<String> = st
            .endpoints
            .iter()
            .map(|e| match e.port {
                Some(p) => format!("{}:{p}", e.address),
                None => e.address.clone(),
            })
            .collect();
        return format!("static {}", addrs.join(", "));
    }
    if let Some(cm) = &sd.aws_cloud_map {
        return format!("Cloud Map {} (DNS)", cm.hostname());
    }
    "none".into()
}
