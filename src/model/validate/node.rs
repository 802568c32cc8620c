//! Virtual nodes: listener ports (each listener's own rules are in `listener`), service discovery,
//! backends, and the proxy's ingress and egress ports.

use std::collections::{BTreeSet, HashMap};

use super::check_port;
use super::listener::check_listener;
use crate::diag::Problem;
use crate::model::Mesh;
use crate::source::Document;
use crate::spec::{CloudMapDiscovery, Kind, ProxyMode, ServiceDiscovery, VirtualNodeSpec};

pub(super) fn check_node(
    doc: &Document,
    mesh: &Mesh,
    spec: &VirtualNodeSpec,
    out: &mut Vec<Problem>,
) {
    check_listeners(doc, spec, out);
    check_service_discovery(doc, spec, out);
    check_backends(doc, mesh, spec, out);
    super::tls::check_backend_defaults(doc, spec.backend_defaults.as_ref(), out);
    check_proxy(doc, mesh, spec, out);
    if let Some(lg) = &spec.logging {
        super::gateway::check_logging(doc, lg, out);
    }
    if spec.proxy_mode(&mesh.spec) == ProxyMode::Transparent {
        super::transparent::check_transparent(doc, mesh, spec, out);
    }
}

/// Each listener on a valid port of its own, and its own rules.
fn check_listeners(doc: &Document, spec: &VirtualNodeSpec, out: &mut Vec<Problem>) {
    let mut ports = HashMap::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        let base = format!("spec.listeners[{i}]");
        check_port(
            doc,
            &format!("{base}.portMapping.port"),
            l.port_mapping.port,
            out,
        );
        if let Some(first) = ports.insert(l.port_mapping.port, i) {
            out.push(doc.problem(
                &format!("{base}.portMapping.port"),
                format!(
                    "port {} is already used by spec.listeners[{first}]",
                    l.port_mapping.port
                ),
            ));
        }
        check_listener(doc, &base, l, out);
        if let Some(tls) = &l.tls {
            super::tls::check_listener_tls(doc, &format!("{base}.tls"), tls, out);
        }
    }
}

/// Exactly one discovery method, needed as soon as there are listeners.
fn check_service_discovery(doc: &Document, spec: &VirtualNodeSpec, out: &mut Vec<Problem>) {
    match &spec.service_discovery {
        None if !spec.listeners.is_empty() => out.push(doc.problem(
            "spec",
            "a virtual node with listeners needs `serviceDiscovery`",
        )),
        None => {}
        Some(sd) => check_discovery_method(doc, sd, out),
    }
}

fn check_discovery_method(doc: &Document, sd: &ServiceDiscovery, out: &mut Vec<Problem>) {
    let count =
        sd.dns.is_some() as u8 + sd.aws_cloud_map.is_some() as u8 + sd.static_.is_some() as u8;
    if count != 1 {
        out.push(doc.problem(
            "spec.serviceDiscovery",
            "give exactly one of `dns`, `awsCloudMap` or `static`",
        ));
    }
    if let Some(dns) = &sd.dns {
        if dns.hostname.is_empty() {
            out.push(doc.problem("spec.serviceDiscovery.dns.hostname", "must not be empty"));
        }
    }
    if let Some(cm) = &sd.aws_cloud_map {
        check_cloud_map(doc, cm, out);
    }
    if let Some(st) = &sd.static_ {
        if st.endpoints.is_empty() {
            out.push(doc.problem(
                "spec.serviceDiscovery.static.endpoints",
                "needs at least one endpoint",
            ));
        }
        for (i, ep) in st.endpoints.iter().enumerate() {
            if ep.address.is_empty() {
                out.push(doc.problem(
                    &format!("spec.serviceDiscovery.static.endpoints[{i}].address"),
                    "must not be empty",
                ));
            }
            if let Some(p) = ep.port {
                check_port(
                    doc,
                    &format!("spec.serviceDiscovery.static.endpoints[{i}].port"),
                    p,
                    out,
                );
            }
        }
    }
}

/// App Mesh's lengths: a namespace and a service name of 1 to 1024 characters, which together
/// are the DNS name the node is reached by; attribute keys 1 to 255, values 1 to 1024 characters.
fn check_cloud_map(doc: &Document, cm: &CloudMapDiscovery, out: &mut Vec<Problem>) {
    let p = "spec.serviceDiscovery.awsCloudMap";
    for (field, v) in [
        ("namespaceName", &cm.namespace_name),
        ("serviceName", &cm.service_name),
    ] {
        if v.is_empty() || v.len() > 1024 {
            out.push(doc.problem(&format!("{p}.{field}"), "must be 1 to 1024 characters"));
        }
    }
    for (i, a) in cm.attributes.iter().enumerate() {
        for (field, v, max) in [("key", &a.key, 255), ("value", &a.value, 1024)] {
            if v.is_empty() || v.len() > max {
                out.push(doc.problem(
                    &format!("{p}.attributes[{i}].{field}"),
                    format!("must be 1 to {max} characters"),
                ));
            }
        }
    }
}

/// Every backend a defined virtual service, named once.
fn check_backends(doc: &Document, mesh: &Mesh, spec: &VirtualNodeSpec, out: &mut Vec<Problem>) {
    let mut seen = BTreeSet::new();
    for (i, b) in spec.backends.iter().enumerate() {
        let path = format!("spec.backends[{i}]");
        let Some(vs) = &b.virtual_service else {
            out.push(doc.problem(&path, "a backend needs `virtualService`"));
            continue;
        };
        let name = &vs.virtual_service_name;
        if !mesh.virtual_services.contains_key(name) {
            out.push(doc.problem(
                &format!("{path}.virtualService.virtualServiceName"),
                super::not_defined(Kind::VirtualService, name, &mesh.name),
            ));
        }
        if let Some(p) = &vs.client_policy {
            let p_path = format!("{path}.virtualService.clientPolicy");
            super::tls::check_client_policy(doc, &p_path, p, out);
        }
        if !seen.insert(name.clone()) {
            out.push(doc.problem(&path, format!("duplicate backend `{name}`")));
        }
    }
}

/// The proxy's ports in range, and the egress port clear of the ingress ports.
fn check_proxy(doc: &Document, mesh: &Mesh, spec: &VirtualNodeSpec, out: &mut Vec<Problem>) {
    // In transparent mode all listeners share one ingress port.
    let transparent = spec.proxy_mode(&mesh.spec) == ProxyMode::Transparent;
    let ingress_ports = if transparent {
        spec.listeners.len().min(1)
    } else {
        spec.listeners.len()
    };
    if let Some(proxy) = &spec.proxy {
        if let Some(p) = proxy.ingress_port {
            check_port(doc, "spec.proxy.ingressPort", p, out);
            let last = p as u64 + ingress_ports.saturating_sub(1) as u64;
            if last > 65535 {
                out.push(doc.problem(
                    "spec.proxy.ingressPort",
                    "ingressPort + number of listeners exceeds 65535",
                ));
            }
        }
        if let Some(p) = proxy.egress_port {
            check_port(doc, "spec.proxy.egressPort", p, out);
        }
    }
    let egress = spec.egress_port();
    let allow_all = mesh.spec.allows_all_egress();
    // The egress listener exists when there is somewhere to go: backends, or anywhere (ALLOW_ALL).
    if (!spec.backends.is_empty() || allow_all)
        && (0..ingress_ports).any(|i| spec.ingress_port(i) == egress)
    {
        out.push(doc.problem(
            "spec.proxy",
            format!("egress port {egress} collides with an ingress port"),
        ));
    }
}
