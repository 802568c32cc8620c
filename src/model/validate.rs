//! Every App Mesh rule meshplane checks, reported all at once with file, line and field path.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::{Item, Mesh, MeshModel, Router};
use crate::diag::{Origin, Problem};
use crate::source::{Body, Document};
use crate::spec::{entity_key, Kind};
use crate::spec::{
    Duration, HeaderMatchMethod, HttpRoute, NodeListener, Protocol, RouteSpec, VirtualNodeSpec,
    VirtualRouterSpec, VirtualServiceSpec,
};

const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
const HTTP_RETRY_EVENTS: [&str; 4] = [
    "server-error",
    "gateway-error",
    "client-error",
    "stream-error",
];

/// Builds the model from loaded documents, or returns every problem found (sorted by file and line).
pub fn validate(docs: &[Arc<Document>]) -> Result<MeshModel, Vec<Problem>> {
    validate_with(docs, &mut CheckCache::default())
}

/// The per-document check results of the previous validation. A document is checked again only if
/// it is new (changed files are parsed into new documents) or one of the entities its checks read
/// (its mesh, the services, nodes or router it refers to) was defined by a changed document; the
/// model itself is always rebuilt, so duplicates and missing parents are always found.
#[derive(Default)]
pub struct CheckCache {
    results: CheckResults,
    /// Per entity, a combined identity of the documents that define it.
    entities: HashMap<u64, u64>,
}

/// Problems found per document, by document identity; the `Arc` keeps the identity from being
/// reused while the entry exists.
type CheckResults = HashMap<usize, (Arc<Document>, Vec<Problem>)>;

/// Like [`validate`], re-checking only what can have changed since the last call with `cache`.
pub fn validate_with(
    docs: &[Arc<Document>],
    cache: &mut CheckCache,
) -> Result<MeshModel, Vec<Problem>> {
    let mut v = Validator {
        problems: Vec::new(),
        model: MeshModel::default(),
    };
    v.index(docs);
    v.problems
        .extend(super::presence::problems(&v.model, docs.len()));
    let entities = entity_identities(docs);
    let mut changed: HashSet<u64> = entities
        .iter()
        .filter(|(k, id)| cache.entities.get(*k) != Some(*id))
        .map(|(k, _)| *k)
        .collect();
    changed.extend(cache.entities.keys().filter(|k| !entities.contains_key(*k)));
    let results = v.check(docs, &cache.results, &changed);
    cache.results = results;
    cache.entities = entities;
    if v.problems.is_empty() {
        Ok(v.model)
    } else {
        v.problems.sort();
        v.problems.dedup();
        Err(v.problems)
    }
}

/// Per entity, an identity of the documents defining it: equal values mean the entity is
/// unchanged. Built from the documents' content hashes, so re-parsing a file for an edit of one of
/// its documents leaves the others' entities unchanged. Summing needs no allocation and ignores
/// order (two identical duplicates still differ from one).
pub fn entity_identities(docs: &[Arc<Document>]) -> HashMap<u64, u64> {
    let mut m: HashMap<u64, u64> = HashMap::with_capacity(docs.len());
    for d in docs {
        let e = m.entry(d.entity_key()).or_default();
        *e = e.wrapping_add(xxhash_rust::xxh3::xxh3_64(&d.content_hash().to_le_bytes()));
    }
    m
}

/// Whether a check of `doc` reads one of the `changed` entities: its mesh, its own entity, or one
/// it refers to.
fn reads_changed(doc: &Document, changed: &HashSet<u64>, changed_meshes: &HashSet<&str>) -> bool {
    if changed.is_empty() {
        return false;
    }
    changed.contains(&doc.entity_key())
        || doc.references().iter().any(|r| changed.contains(r))
        || changed_meshes.contains(doc.names().mesh.unwrap_or_default())
}

struct Validator {
    problems: Vec<Problem>,
    model: MeshModel,
}

fn origin(doc: &Document) -> Origin {
    Origin {
        file: doc.file.clone(),
        line: doc.line(),
    }
}

fn n(s: Option<&str>) -> String {
    s.unwrap_or_default().to_string()
}

impl Validator {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn duplicate(&mut self, doc: &Document, what: String, first: &Origin) {
        self.push(doc.problem(
            "",
            format!(
                "duplicate {what}; first defined at {}:{}",
                first.file.display(),
                first.line
            ),
        ));
    }

    /// First pass: put every resource in its place, so references can be checked in any order.
    fn index(&mut self, docs: &[Arc<Document>]) {
        // Meshes first: everything else hangs off them.
        for doc in docs {
            if let Body::Mesh(e) = &doc.body {
                let name = n(e.mesh_name.as_deref());
                if let Some(m) = self.model.meshes.get(&name) {
                    let first = m.origin.clone();
                    self.duplicate(doc, format!("Mesh `{name}`"), &first);
                    continue;
                }
                self.model.meshes.insert(
                    name.clone(),
                    Mesh {
                        name,
                        spec: e.spec.clone().unwrap_or_default(),
                        origin: origin(doc),
                        virtual_services: BTreeMap::new(),
                        virtual_nodes: BTreeMap::new(),
                        virtual_routers: BTreeMap::new(),
                        virtual_gateways: BTreeMap::new(),
                        gateway_routes: BTreeMap::new(),
                    },
                );
            }
        }
        for pass in 0..2 {
            for doc in docs {
                let names = doc.names();
                let mesh_name = names.mesh.unwrap_or_default();
                if matches!(doc.body, Body::Mesh(_)) {
                    continue;
                }
                // Routes and gateway routes go in the second pass, after their parents.
                let child = matches!(doc.body, Body::Route(_) | Body::GatewayRoute(_));
                if child != (pass == 1) {
                    continue;
                }
                let Some(mesh) = self.model.meshes.get_mut(mesh_name) else {
                    if pass == 0 || child {
                        self.push(doc.problem(
                            "meshName",
                            format!("mesh `{mesh_name}` is not defined (every mesh needs its Mesh document)"),
                        ));
                    }
                    continue;
                };
                let o = origin(doc);
                let dup: Option<(String, Origin)> = match &doc.body {
                    Body::VirtualService(e) => insert(
                        &mut mesh.virtual_services,
                        n(e.virtual_service_name.as_deref()),
                        e.spec.clone().unwrap_or_default(),
                        o,
                        "VirtualService",
                    ),
                    Body::VirtualNode(e) => insert(
                        &mut mesh.virtual_nodes,
                        n(e.virtual_node_name.as_deref()),
                        e.spec.clone().unwrap_or_default(),
                        o,
                        "VirtualNode",
                    ),
                    Body::VirtualGateway(e) => insert(
                        &mut mesh.virtual_gateways,
                        n(e.virtual_gateway_name.as_deref()),
                        e.spec.clone().unwrap_or_default(),
                        o,
                        "VirtualGateway",
                    ),
                    Body::VirtualRouter(e) => {
                        let name = n(e.virtual_router_name.as_deref());
                        if let Some(r) = mesh.virtual_routers.get(&name) {
                            Some((format!("VirtualRouter `{name}`"), r.origin.clone()))
                        } else {
                            mesh.virtual_routers.insert(
                                name,
                                Router {
                                    spec: e.spec.clone().unwrap_or_default(),
                                    origin: o,
                                    routes: BTreeMap::new(),
                                },
                            );
                            None
                        }
                    }
                    Body::Route(e) => {
                        let router = n(e.virtual_router_name.as_deref());
                        match mesh.virtual_routers.get_mut(&router) {
                            None => {
                                let p = doc.problem(
                                    "virtualRouterName",
                                    format!("VirtualRouter `{router}` is not defined in mesh `{mesh_name}`"),
                                );
                                self.push(p);
                                None
                            }
                            Some(r) => insert(
                                &mut r.routes,
                                n(e.route_name.as_deref()),
                                e.spec.clone().unwrap_or_default(),
                                o,
                                &format!("Route in VirtualRouter `{router}`:"),
                            ),
                        }
                    }
                    Body::GatewayRoute(e) => {
                        let gw = n(e.virtual_gateway_name.as_deref());
                        if !mesh.virtual_gateways.contains_key(&gw) {
                            let p = doc.problem(
                                "virtualGatewayName",
                                format!(
                                    "VirtualGateway `{gw}` is not defined in mesh `{mesh_name}`"
                                ),
                            );
                            self.push(p);
                            None
                        } else {
                            let key = (gw, n(e.gateway_route_name.as_deref()));
                            if let Some(first) = mesh.gateway_routes.get(&key) {
                                Some((format!("GatewayRoute `{}`", key.1), first.origin.clone()))
                            } else {
                                mesh.gateway_routes.insert(
                                    key,
                                    Item {
                                        spec: e.spec.clone().unwrap_or_default(),
                                        origin: o,
                                    },
                                );
                                None
                            }
                        }
                    }
                    Body::Mesh(_) => None,
                };
                if let Some((what, first)) = dup {
                    self.duplicate(doc, what, &first);
                }
            }
        }
    }

    /// Second pass: field ranges and references. Each document is checked on its own against the
    /// finished model, so the pass runs on every core; a document whose previous result still
    /// holds (see [`CheckCache`]) is not checked again. Returns the results for the next pass.
    fn check(
        &mut self,
        docs: &[Arc<Document>],
        previous: &CheckResults,
        changed: &HashSet<u64>,
    ) -> CheckResults {
        use rayon::prelude::*;
        let model = &self.model;
        // Every document reads its mesh (defined, changed or gone).
        let meshes: HashSet<&str> = docs.iter().filter_map(|d| d.names().mesh).collect();
        let changed_meshes: HashSet<&str> = meshes
            .into_iter()
            .filter(|m| changed.contains(&entity_key(Kind::Mesh, m, m)))
            .collect();
        let results: Vec<_> = docs
            .par_iter()
            .with_min_len(64)
            .map(|doc| {
                let key = Arc::as_ptr(doc) as usize;
                if let Some((_, found)) = previous.get(&key) {
                    if !reads_changed(doc, changed, &changed_meshes) {
                        return (key, (doc.clone(), found.clone()));
                    }
                }
                let mut out = Vec::new();
                check_document(model, doc, &mut out);
                (key, (doc.clone(), out))
            })
            .collect();
        for (_, (_, found)) in &results {
            self.problems.extend(found.iter().cloned());
        }
        results.into_iter().collect()
    }
}

fn check_document(model: &MeshModel, doc: &Document, out: &mut Vec<Problem>) {
    let mesh_name = doc.names().mesh.unwrap_or_default();
    let Some(mesh) = model.meshes.get(mesh_name) else {
        return;
    };
    match &doc.body {
        // Every Mesh field is an enum, so serde already enforced its values.
        Body::Mesh(_) => {}
        Body::VirtualService(e) => match &e.spec {
            Some(s) => check_service(doc, mesh, s, out),
            None => check_service(doc, mesh, &Default::default(), out),
        },
        Body::VirtualNode(e) => match &e.spec {
            Some(s) => check_node(doc, mesh, s, out),
            None => check_node(doc, mesh, &Default::default(), out),
        },
        Body::VirtualRouter(e) => match &e.spec {
            Some(s) => check_router(doc, s, out),
            None => check_router(doc, &Default::default(), out),
        },
        Body::Route(e) => {
            let router = n(e.virtual_router_name.as_deref());
            if let Some(r) = mesh.virtual_routers.get(&router) {
                match &e.spec {
                    Some(s) => check_route(doc, mesh, &r.spec, s, out),
                    None => check_route(doc, mesh, &r.spec, &Default::default(), out),
                }
            }
        }
        Body::VirtualGateway(_) | Body::GatewayRoute(_) => {}
    }
}

fn insert<T>(
    map: &mut BTreeMap<String, Item<T>>,
    name: String,
    spec: Arc<T>,
    origin: Origin,
    what: &str,
) -> Option<(String, Origin)> {
    if let Some(first) = map.get(&name) {
        return Some((format!("{what} `{name}`"), first.origin.clone()));
    }
    map.insert(name, Item { spec, origin });
    None
}

fn check_service(doc: &Document, mesh: &Mesh, spec: &VirtualServiceSpec, out: &mut Vec<Problem>) {
    let Some(p) = &spec.provider else { return };
    match (&p.virtual_node, &p.virtual_router) {
        (Some(vn), None) => {
            if !mesh.virtual_nodes.contains_key(&vn.virtual_node_name) {
                out.push(doc.problem(
                    "spec.provider.virtualNode.virtualNodeName",
                    format!(
                        "VirtualNode `{}` is not defined in mesh `{}`",
                        vn.virtual_node_name, mesh.name
                    ),
                ));
            }
        }
        (None, Some(vr)) => {
            if !mesh.virtual_routers.contains_key(&vr.virtual_router_name) {
                out.push(doc.problem(
                    "spec.provider.virtualRouter.virtualRouterName",
                    format!(
                        "VirtualRouter `{}` is not defined in mesh `{}`",
                        vr.virtual_router_name, mesh.name
                    ),
                ));
            }
        }
        _ => out.push(doc.problem(
            "spec.provider",
            "give exactly one of `virtualNode` or `virtualRouter`",
        )),
    }
}

fn range(doc: &Document, path: &str, value: u64, lo: u64, hi: u64, out: &mut Vec<Problem>) {
    if value < lo || value > hi {
        out.push(doc.problem(
            path,
            format!("{value} is out of range: must be {lo} to {hi}"),
        ));
    }
}

fn check_port(doc: &Document, path: &str, port: u32, out: &mut Vec<Problem>) {
    range(doc, path, port.into(), 1, 65535, out);
}

fn check_duration(doc: &Document, path: &str, d: &Duration, min_ms: u64, out: &mut Vec<Problem>) {
    if d.as_millis() < min_ms {
        out.push(doc.problem(path, format!("must be at least {min_ms} ms")));
    }
}

fn check_node(doc: &Document, mesh: &Mesh, spec: &VirtualNodeSpec, out: &mut Vec<Problem>) {
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
    }
    match &spec.service_discovery {
        None if !spec.listeners.is_empty() => out.push(doc.problem(
            "spec",
            "a virtual node with listeners needs `serviceDiscovery`",
        )),
        None => {}
        Some(sd) => {
            let count = sd.dns.is_some() as u8
                + sd.aws_cloud_map.is_some() as u8
                + sd.static_.is_some() as u8;
            if count != 1 {
                out.push(doc.problem(
                    "spec.serviceDiscovery",
                    "give exactly one of `dns`, `awsCloudMap` or `static`",
                ));
            }
            if let Some(dns) = &sd.dns {
                if dns.hostname.is_empty() {
                    out.push(
                        doc.problem("spec.serviceDiscovery.dns.hostname", "must not be empty"),
                    );
                }
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
    }
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
                format!(
                    "VirtualService `{name}` is not defined in mesh `{}`",
                    mesh.name
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            out.push(doc.problem(&path, format!("duplicate backend `{name}`")));
        }
    }
    if let Some(proxy) = spec.proxy {
        if let Some(p) = proxy.ingress_port {
            check_port(doc, "spec.proxy.ingressPort", p, out);
            let last = p as u64 + spec.listeners.len().saturating_sub(1) as u64;
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
    let allow_all = mesh
        .spec
        .egress_filter
        .as_ref()
        .is_some_and(|f| f.kind == crate::spec::EgressFilterType::AllowAll);
    // The egress listener exists when there is somewhere to go: backends, or anywhere (ALLOW_ALL).
    if (!spec.backends.is_empty() || allow_all)
        && (0..spec.listeners.len()).any(|i| spec.ingress_port(i) == egress)
    {
        out.push(doc.problem(
            "spec.proxy",
            format!("egress port {egress} collides with an ingress port"),
        ));
    }
}

fn check_listener(doc: &Document, base: &str, l: &NodeListener, out: &mut Vec<Problem>) {
    let proto = l.port_mapping.protocol;
    if let Some(hc) = &l.health_check {
        let p = format!("{base}.healthCheck");
        range(
            doc,
            &format!("{p}.healthyThreshold"),
            hc.healthy_threshold.into(),
            2,
            10,
            out,
        );
        range(
            doc,
            &format!("{p}.unhealthyThreshold"),
            hc.unhealthy_threshold.into(),
            2,
            10,
            out,
        );
        range(
            doc,
            &format!("{p}.intervalMillis"),
            hc.interval_millis,
            5000,
            300000,
            out,
        );
        range(
            doc,
            &format!("{p}.timeoutMillis"),
            hc.timeout_millis,
            2000,
            60000,
            out,
        );
        if let Some(port) = hc.port {
            if port != l.port_mapping.port {
                out.push(doc.problem(
                    &format!("{p}.port"),
                    format!("must equal the listener's port {}", l.port_mapping.port),
                ));
            }
        }
        if hc.path.is_some() && !matches!(hc.protocol, Protocol::Http | Protocol::Http2) {
            out.push(doc.problem(
                &format!("{p}.path"),
                "`path` is only valid for http and http2 health checks",
            ));
        }
        if matches!(hc.protocol, Protocol::Http | Protocol::Http2)
            && hc.path.as_deref().unwrap_or("").is_empty()
        {
            out.push(doc.problem(&format!("{p}.path"), "an http health check needs a `path`"));
        }
    }
    if let Some(od) = &l.outlier_detection {
        let p = format!("{base}.outlierDetection");
        range(
            doc,
            &format!("{p}.maxServerErrors"),
            od.max_server_errors,
            1,
            u32::MAX.into(),
            out,
        );
        range(
            doc,
            &format!("{p}.maxEjectionPercent"),
            od.max_ejection_percent.into(),
            0,
            100,
            out,
        );
        check_duration(doc, &format!("{p}.interval"), &od.interval, 1, out);
        check_duration(
            doc,
            &format!("{p}.baseEjectionDuration"),
            &od.base_ejection_duration,
            1,
            out,
        );
    }
    if let Some(cp) = &l.connection_pool {
        let p = format!("{base}.connectionPool");
        let given: Vec<(&str, Protocol)> = [
            (cp.tcp.is_some(), "tcp", Protocol::Tcp),
            (cp.http.is_some(), "http", Protocol::Http),
            (cp.http2.is_some(), "http2", Protocol::Http2),
            (cp.grpc.is_some(), "grpc", Protocol::Grpc),
        ]
        .into_iter()
        .filter(|g| g.0)
        .map(|g| (g.1, g.2))
        .collect();
        match given.as_slice() {
            [(name, pr)] if *pr != proto => out.push(doc.problem(
                &format!("{p}.{name}"),
                format!(
                    "connection pool `{name}` does not match the listener protocol `{}`",
                    proto.as_str()
                ),
            )),
            [_] => {}
            _ => out.push(doc.problem(&p, "give exactly one of `tcp`, `http`, `http2` or `grpc`")),
        }
        let min1 = |v: u32, f: &str, out: &mut Vec<Problem>| {
            range(doc, &format!("{p}.{f}"), v.into(), 1, u32::MAX.into(), out)
        };
        if let Some(t) = &cp.tcp {
            min1(t.max_connections, "tcp.maxConnections", out);
        }
        if let Some(h) = &cp.http {
            min1(h.max_connections, "http.maxConnections", out);
            if let Some(m) = h.max_pending_requests {
                min1(m, "http.maxPendingRequests", out);
            }
        }
        if let Some(h) = &cp.http2 {
            min1(h.max_requests, "http2.maxRequests", out);
        }
        if let Some(h) = &cp.grpc {
            min1(h.max_requests, "grpc.maxRequests", out);
        }
    }
    if let Some(t) = &l.timeout {
        let given: Vec<(&str, Protocol)> = [
            (t.tcp.is_some(), "tcp", Protocol::Tcp),
            (t.http.is_some(), "http", Protocol::Http),
            (t.http2.is_some(), "http2", Protocol::Http2),
            (t.grpc.is_some(), "grpc", Protocol::Grpc),
        ]
        .into_iter()
        .filter(|g| g.0)
        .map(|g| (g.1, g.2))
        .collect();
        match given.as_slice() {
            [(name, pr)] if *pr != proto => out.push(doc.problem(
                &format!("{base}.timeout.{name}"),
                format!(
                    "timeout `{name}` does not match the listener protocol `{}`",
                    proto.as_str()
                ),
            )),
            [_] => {}
            _ => out.push(doc.problem(
                &format!("{base}.timeout"),
                "give exactly one of `tcp`, `http`, `http2` or `grpc`",
            )),
        }
    }
}

fn check_router(doc: &Document, spec: &VirtualRouterSpec, out: &mut Vec<Problem>) {
    if spec.listeners.is_empty() {
        out.push(doc.problem(
            "spec.listeners",
            "a virtual router needs at least one listener",
        ));
    }
    let mut ports = HashMap::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        let path = format!("spec.listeners[{i}].portMapping.port");
        check_port(doc, &path, l.port_mapping.port, out);
        if let Some(first) = ports.insert(l.port_mapping.port, i) {
            out.push(doc.problem(
                &path,
                format!(
                    "port {} is already used by spec.listeners[{first}]",
                    l.port_mapping.port
                ),
            ));
        }
    }
}

fn check_route(
    doc: &Document,
    mesh: &Mesh,
    router: &VirtualRouterSpec,
    spec: &RouteSpec,
    out: &mut Vec<Problem>,
) {
    if let Some(p) = spec.priority {
        range(doc, "spec.priority", p.into(), 0, 1000, out);
    }
    let kinds: Vec<&str> = [
        (spec.http_route.is_some(), "httpRoute"),
        (spec.http2_route.is_some(), "http2Route"),
        (spec.grpc_route.is_some(), "grpcRoute"),
        (spec.tcp_route.is_some(), "tcpRoute"),
    ]
    .into_iter()
    .filter(|k| k.0)
    .map(|k| k.1)
    .collect();
    if kinds.len() != 1 {
        out.push(doc.problem(
            "spec",
            "give exactly one of `httpRoute`, `http2Route`, `grpcRoute` or `tcpRoute`",
        ));
    }
    if let Some(r) = &spec.http_route {
        check_http_route(doc, mesh, router, "spec.httpRoute", r, false, out);
    }
    if let Some(r) = &spec.http2_route {
        check_http_route(doc, mesh, router, "spec.http2Route", r, true, out);
    }
}

fn check_http_route(
    doc: &Document,
    mesh: &Mesh,
    router: &VirtualRouterSpec,
    base: &str,
    r: &HttpRoute,
    http2: bool,
    out: &mut Vec<Problem>,
) {
    let m = &r.matcher;
    let mp = format!("{base}.match");
    match (&m.prefix, &m.path) {
        (Some(_), Some(_)) => {
            out.push(doc.problem(&mp, "give either `prefix` or `path`, not both"))
        }
        (None, None) => out.push(doc.problem(&mp, "give one of `prefix` or `path`")),
        (Some(prefix), None) if !prefix.starts_with('/') => {
            out.push(doc.problem(&format!("{mp}.prefix"), "must start with `/`"))
        }
        (None, Some(path)) => match (&path.exact, &path.regex) {
            (Some(e), None) if !e.starts_with('/') => {
                out.push(doc.problem(&format!("{mp}.path.exact"), "must start with `/`"))
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => out.push(doc.problem(
                &format!("{mp}.path"),
                "give exactly one of `exact` or `regex`",
            )),
        },
        _ => {}
    }
    if let Some(method) = &m.method {
        if !HTTP_METHODS.contains(&method.as_str()) {
            out.push(doc.problem(
                &format!("{mp}.method"),
                format!(
                    "unknown method `{method}`, expected one of {}",
                    HTTP_METHODS.join(", ")
                ),
            ));
        }
    }
    if let Some(s) = &m.scheme {
        if !http2 {
            out.push(doc.problem(
                &format!("{mp}.scheme"),
                "`scheme` is only valid in http2Route",
            ));
        } else if s != "http" && s != "https" {
            out.push(doc.problem(&format!("{mp}.scheme"), "must be `http` or `https`"));
        }
    }
    if m.headers.len() > 10 {
        out.push(doc.problem(&format!("{mp}.headers"), "at most 10 header matches"));
    }
    for (i, h) in m.headers.iter().enumerate() {
        let hp = format!("{mp}.headers[{i}]");
        if h.name.is_empty() || h.name.len() > 50 {
            out.push(doc.problem(&format!("{hp}.name"), "must be 1 to 50 characters"));
        }
        if let Some(mm) = &h.matcher {
            check_match_method(doc, &format!("{hp}.match"), mm, out);
        }
    }
    if m.query_parameters.len() > 10 {
        out.push(doc.problem(
            &format!("{mp}.queryParameters"),
            "at most 10 query parameter matches",
        ));
    }
    for (i, q) in m.query_parameters.iter().enumerate() {
        if q.name.is_empty() {
            out.push(doc.problem(
                &format!("{mp}.queryParameters[{i}].name"),
                "must not be empty",
            ));
        }
        if q.matcher.as_ref().is_some_and(|mm| mm.exact.is_none()) {
            out.push(doc.problem(&format!("{mp}.queryParameters[{i}].match"), "give `exact`"));
        }
    }
    let router_ports: Vec<u32> = router
        .listeners
        .iter()
        .map(|l| l.port_mapping.port)
        .collect();
    match m.port {
        Some(p) if !router_ports.contains(&p) => out.push(doc.problem(
            &format!("{mp}.port"),
            format!(
                "port {p} is not a listener of the virtual router (listeners: {router_ports:?})"
            ),
        )),
        None if router_ports.len() > 1 => out.push(doc.problem(
            &format!("{mp}.port"),
            "required: the virtual router has several listeners",
        )),
        _ => {}
    }

    let targets = &r.action.weighted_targets;
    let tp = format!("{base}.action.weightedTargets");
    if targets.is_empty() || targets.len() > 10 {
        out.push(doc.problem(&tp, "needs 1 to 10 weighted targets"));
    }
    for (i, t) in targets.iter().enumerate() {
        range(
            doc,
            &format!("{tp}[{i}].weight"),
            t.weight.into(),
            0,
            100,
            out,
        );
        match mesh.virtual_nodes.get(&t.virtual_node) {
            None => out.push(doc.problem(
                &format!("{tp}[{i}].virtualNode"),
                format!(
                    "VirtualNode `{}` is not defined in mesh `{}`",
                    t.virtual_node, mesh.name
                ),
            )),
            Some(vn) => {
                if vn.spec.listeners.is_empty() {
                    out.push(doc.problem(
                        &format!("{tp}[{i}].virtualNode"),
                        format!(
                            "VirtualNode `{}` has no listeners to route to",
                            t.virtual_node
                        ),
                    ));
                } else if vn.spec.listener_index(t.port).is_none() {
                    let msg = match t.port {
                        Some(p) => format!(
                            "VirtualNode `{}` has no listener on port {p}",
                            t.virtual_node
                        ),
                        None => format!(
                            "required: VirtualNode `{}` has several listeners",
                            t.virtual_node
                        ),
                    };
                    out.push(doc.problem(&format!("{tp}[{i}].port"), msg));
                } else if let Some(idx) = vn.spec.listener_index(t.port) {
                    if vn.spec.listeners[idx].port_mapping.protocol == Protocol::Tcp {
                        out.push(doc.problem(
                            &format!("{tp}[{i}]"),
                            format!(
                                "an HTTP route cannot target the tcp listener of `{}`",
                                t.virtual_node
                            ),
                        ));
                    }
                }
            }
        }
    }
    if !targets.is_empty() && targets.iter().all(|t| t.weight == 0) {
        out.push(doc.problem(
            &tp,
            "all weights are 0: the route would send traffic nowhere",
        ));
    }
    if let Some(rp) = &r.retry_policy {
        let rpp = format!("{base}.retryPolicy");
        if rp.http_retry_events.is_empty() && rp.tcp_retry_events.is_empty() {
            out.push(doc.problem(
                &rpp,
                "give at least one of `httpRetryEvents` or `tcpRetryEvents`",
            ));
        }
        if rp.http_retry_events.len() > 25 {
            out.push(doc.problem(&format!("{rpp}.httpRetryEvents"), "at most 25 events"));
        }
        for (i, e) in rp.http_retry_events.iter().enumerate() {
            if !HTTP_RETRY_EVENTS.contains(&e.as_str()) {
                out.push(doc.problem(
                    &format!("{rpp}.httpRetryEvents[{i}]"),
                    format!(
                        "unknown event `{e}`, expected one of {}",
                        HTTP_RETRY_EVENTS.join(", ")
                    ),
                ));
            }
        }
        for (i, e) in rp.tcp_retry_events.iter().enumerate() {
            if e != "connection-error" {
                out.push(doc.problem(
                    &format!("{rpp}.tcpRetryEvents[{i}]"),
                    format!("unknown event `{e}`, expected connection-error"),
                ));
            }
        }
    }
    // Timeouts are non-negative by type and 0 means "disabled": nothing to check.
}

fn check_match_method(doc: &Document, path: &str, m: &HeaderMatchMethod, out: &mut Vec<Problem>) {
    let given = [
        m.exact.is_some(),
        m.prefix.is_some(),
        m.suffix.is_some(),
        m.regex.is_some(),
        m.range.is_some(),
    ]
    .into_iter()
    .filter(|b| *b)
    .count();
    if given != 1 {
        out.push(doc.problem(
            path,
            "give exactly one of `exact`, `prefix`, `suffix`, `regex` or `range`",
        ));
    }
    for (name, v) in [
        ("exact", &m.exact),
        ("prefix", &m.prefix),
        ("suffix", &m.suffix),
        ("regex", &m.regex),
    ] {
        if let Some(s) = v {
            if s.is_empty() || s.len() > 255 {
                out.push(doc.problem(&format!("{path}.{name}"), "must be 1 to 255 characters"));
            }
        }
    }
    if let Some(r) = m.range {
        if r.start >= r.end {
            out.push(doc.problem(
                &format!("{path}.range"),
                "`start` must be less than `end` (end is exclusive)",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::loader::parse_file;
    use crate::source::LoadOutput;
    use std::path::Path;

    fn check(text: &str) -> Result<MeshModel, Vec<String>> {
        let mut out = LoadOutput::default();
        parse_file(Path::new("m.yaml"), text, &mut out);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        validate(&out.documents).map_err(|ps| ps.iter().map(|p| p.to_string()).collect())
    }

    const BASE: &str = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}}]\n  serviceDiscovery: {dns: {hostname: a}}\n---\nkind: VirtualRouter\nmeshName: demo\nvirtualRouterName: r\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}}]\n";

    /// Each "file" parsed on its own, so unchanged files keep their documents across steps, as
    /// with the loader's parse cache.
    fn parse_files(
        files: &[(&str, String)],
        keep: &mut HashMap<String, Vec<Arc<Document>>>,
    ) -> Vec<Arc<Document>> {
        let mut docs = Vec::new();
        for (name, text) in files {
            let key = format!("{name}\0{text}");
            let parsed = keep.entry(key).or_insert_with(|| {
                let mut out = LoadOutput::default();
                parse_file(Path::new(name), text, &mut out);
                assert!(out.problems.is_empty(), "{:?}", out.problems);
                out.documents
            });
            docs.extend(parsed.iter().cloned());
        }
        docs
    }

    #[test]
    fn cached_checks_follow_changes_to_what_a_document_refers_to() {
        let node = |listeners: &str| {
            format!("kind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners: {listeners}\n  serviceDiscovery: {{dns: {{hostname: a}}}}\n  backends: [{{virtualService: {{virtualServiceName: s}}}}]\n")
        };
        let mesh = "kind: Mesh\nmeshName: demo\n".to_string();
        let router = "kind: VirtualRouter\nmeshName: demo\nvirtualRouterName: r\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}}]\n".to_string();
        let route = "kind: Route\nmeshName: demo\nvirtualRouterName: r\nrouteName: x\nspec:\n  httpRoute:\n    match: {prefix: /}\n    action: {weightedTargets: [{virtualNode: a, weight: 1}]}\n".to_string();
        let service = "kind: VirtualService\nmeshName: demo\nvirtualServiceName: s\nspec: {provider: {virtualRouter: {virtualRouterName: r}}}\n".to_string();
        let with = "[{portMapping: {port: 80, protocol: http}}]";
        let all = ["mesh", "node", "router", "route", "service"];
        // The files present at one step, with the node's listeners.
        let files = |present: &[&str], listeners: &str| -> Vec<(&str, String)> {
            all.iter()
                .filter(|f| present.contains(f))
                .map(|f| {
                    let text = match *f {
                        "mesh" => mesh.clone(),
                        "node" => node(listeners),
                        "router" => router.clone(),
                        "route" => route.clone(),
                        _ => service.clone(),
                    };
                    (*f, text)
                })
                .collect()
        };
        let steps = vec![
            files(&all, with),
            // The route's file is unchanged, but the node it targets lost its listener.
            files(&all, "[]"),
            files(&all, with),
            // The node's file is unchanged, but the service it calls is gone.
            files(&["mesh", "node", "router", "route"], with),
            // The service's file is unchanged, but its router is gone (with its route).
            files(&["mesh", "node", "service"], with),
            files(&all, with),
            // A problem found while the mesh exists must not outlive the mesh.
            files(&all, "[]"),
            files(&["node", "router", "route", "service"], "[]"),
            files(&all, with),
        ];
        let mut keep = HashMap::new();
        let mut cache = CheckCache::default();
        let mut outcomes = Vec::new();
        for (i, files) in steps.iter().enumerate() {
            let docs = parse_files(files, &mut keep);
            let cached = validate_with(&docs, &mut cache)
                .map(|_| ())
                .map_err(|p| p.iter().map(|p| p.to_string()).collect::<Vec<_>>());
            let fresh = validate(&docs)
                .map(|_| ())
                .map_err(|p| p.iter().map(|p| p.to_string()).collect::<Vec<_>>());
            assert_eq!(cached, fresh, "step {i}");
            outcomes.push(cached.is_ok());
        }
        assert_eq!(
            outcomes,
            [true, false, true, false, false, true, false, false, true]
        );
    }

    #[test]
    fn a_valid_mesh_builds_a_model() {
        let text = format!(
            "{BASE}---\nkind: Route\nmeshName: demo\nvirtualRouterName: r\nrouteName: x\nspec:\n  httpRoute:\n    match: {{prefix: /}}\n    action: {{weightedTargets: [{{virtualNode: a, weight: 1}}]}}\n"
        );
        let model = check(&text).unwrap();
        let mesh = &model.meshes["demo"];
        assert_eq!(mesh.virtual_routers["r"].routes.len(), 1);
        assert_eq!(mesh.virtual_nodes["a"].origin.line, 4);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = format!(
            "{BASE}---\nkind: Route\nmeshName: demo\nvirtualRouterName: r\nrouteName: x\nspec:\n  priority: 1001\n  httpRoute:\n    match: {{prefix: nope}}\n    action:\n      weightedTargets:\n        - {{virtualNode: a, weight: 0}}\n        - {{virtualNode: ghost, weight: 0}}\n        - {{virtualNode: a, weight: 101}}\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: s\nspec: {{provider: {{virtualRouter: {{virtualRouterName: missing}}}}}}\n---\nkind: VirtualNode\nmeshName: other\nvirtualNodeName: z\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\n"
        );
        let errs = check(&text).unwrap_err();
        let want = [
            "m.yaml:22: spec.priority: 1001 is out of range: must be 0 to 1000",
            "m.yaml:24: spec.httpRoute.match.prefix: must start with `/`",
            "m.yaml:28: spec.httpRoute.action.weightedTargets[1].virtualNode: VirtualNode `ghost` is not defined in mesh `demo`",
            "m.yaml:29: spec.httpRoute.action.weightedTargets[2].weight: 101 is out of range: must be 0 to 100",
            "m.yaml:34: spec.provider.virtualRouter.virtualRouterName: VirtualRouter `missing` is not defined in mesh `demo`",
            "m.yaml:37: meshName: mesh `other` is not defined (every mesh needs its Mesh document)",
            "m.yaml:40: duplicate VirtualNode `a`; first defined at m.yaml:4",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e == w), "missing {w:?} in {errs:#?}");
        }
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
    }

    #[test]
    fn all_zero_weights_and_health_check_ranges() {
        let text = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners:\n    - portMapping: {port: 80, protocol: http}\n      healthCheck: {healthyThreshold: 1, unhealthyThreshold: 11, intervalMillis: 10, timeoutMillis: 2000, protocol: http, path: /h}\n  serviceDiscovery: {dns: {hostname: a}}\n---\nkind: VirtualRouter\nmeshName: demo\nvirtualRouterName: r\nspec: {listeners: [{portMapping: {port: 80, protocol: http}}]}\n---\nkind: Route\nmeshName: demo\nvirtualRouterName: r\nrouteName: x\nspec:\n  httpRoute:\n    match: {prefix: /}\n    action: {weightedTargets: [{virtualNode: a, weight: 0}]}\n";
        let errs = check(text).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.contains("healthyThreshold: 1 is out of range: must be 2 to 10")),
            "{errs:#?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("unhealthyThreshold: 11 is out of range")),
            "{errs:#?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("intervalMillis: 10 is out of range: must be 5000 to 300000")),
            "{errs:#?}"
        );
        assert!(
            errs.iter().any(|e| e.contains("all weights are 0")),
            "{errs:#?}"
        );
    }

    #[test]
    fn an_empty_configuration_or_one_without_proxies_is_invalid() {
        assert_eq!(
            validate(&[]).map(|_| ()).map_err(|p| p[0].to_string()),
            Err(".:0: no mesh defined: no App Mesh resources found".into())
        );
        assert_eq!(
            check("kind: Mesh\nmeshName: demo\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: s\n").map(|_| ()),
            Err(vec!["m.yaml:1: mesh `demo` defines no virtual nodes or gateways".to_string()])
        );
        // One mesh with a node is enough; an empty second mesh is allowed.
        assert!(check("kind: Mesh\nmeshName: empty\n---\nkind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\n").is_ok());
    }

    #[test]
    fn backends_must_name_defined_services() {
        let text = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualNode\nmeshName: demo\nvirtualNodeName: c\nspec:\n  backends:\n    - virtualService: {virtualServiceName: nowhere}\n";
        let errs = check(text).unwrap_err();
        assert_eq!(
            errs,
            vec!["m.yaml:9: spec.backends[0].virtualService.virtualServiceName: VirtualService `nowhere` is not defined in mesh `demo`"]
        );
    }
}
