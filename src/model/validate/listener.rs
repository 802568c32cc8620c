//! The listeners of virtual nodes: health checks, outlier detection, connection pools and
//! timeouts, each within App Mesh's ranges and matching the listener's protocol.

use super::{check_duration, range};
use crate::diag::Problem;
use crate::source::Document;
use crate::spec::{
    ConnectionPool, HealthCheck, HttpPool, ListenerTimeout, NodeListener, OutlierDetection,
    PortMapping, Protocol, RequestPool,
};

pub(super) fn check_listener(doc: &Document, base: &str, l: &NodeListener, out: &mut Vec<Problem>) {
    let proto = l.port_mapping.protocol;
    if let Some(hc) = &l.health_check {
        check_health_check(doc, base, l.port_mapping, hc, out);
    }
    if let Some(od) = &l.outlier_detection {
        check_outlier_detection(doc, base, od, out);
    }
    if let Some(cp) = &l.connection_pool {
        check_connection_pool(doc, base, proto, cp, out);
    }
    if let Some(t) = &l.timeout {
        check_timeout(doc, base, proto, t, out);
    }
}

/// A listener's health check (virtual node or gateway listener `pm`).
pub(super) fn check_health_check(
    doc: &Document,
    base: &str,
    pm: PortMapping,
    hc: &HealthCheck,
    out: &mut Vec<Problem>,
) {
    let port = pm.port;
    let p = format!("{base}.healthCheck");
    // App Mesh: "GRPC HealthCheck requires listener type of HTTP2 or GRPC" (Envoy's gRPC health
    // checker needs an HTTP/2 cluster; on an http target Envoy would reject the whole CDS update).
    if hc.protocol == Protocol::Grpc && !pm.protocol.is_h2() {
        out.push(doc.problem(
            &format!("{p}.protocol"),
            format!(
                "a grpc health check needs an http2 or grpc listener; this one is {}",
                pm.protocol.as_str()
            ),
        ));
    }
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
    if let Some(hc_port) = hc.port {
        if hc_port != port {
            out.push(doc.problem(
                &format!("{p}.port"),
                format!("must equal the listener's port {port}"),
            ));
        }
    }
    // A path on a tcp or grpc health check is ignored, as App Mesh did (warned in `ignored`).
    if matches!(hc.protocol, Protocol::Http | Protocol::Http2)
        && hc.path.as_deref().unwrap_or("").is_empty()
    {
        out.push(doc.problem(&format!("{p}.path"), "an http health check needs a `path`"));
    }
}

fn check_outlier_detection(
    doc: &Document,
    base: &str,
    od: &OutlierDetection,
    out: &mut Vec<Problem>,
) {
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

fn check_connection_pool(
    doc: &Document,
    base: &str,
    proto: Protocol,
    cp: &ConnectionPool,
    out: &mut Vec<Problem>,
) {
    let p = format!("{base}.connectionPool");
    let given = [
        cp.tcp.is_some(),
        cp.http.is_some(),
        cp.http2.is_some(),
        cp.grpc.is_some(),
    ];
    one_for_protocol(doc, &p, "connection pool", proto, given, out);
    let tcp = cp.tcp.as_ref().map(|t| t.max_connections);
    check_pool_limits(doc, &p, tcp, cp.http.as_ref(), [&cp.http2, &cp.grpc], out);
}

/// Every limit a connection pool gives is at least 1 (node and gateway listeners alike); `requests`
/// are the `http2` and `grpc` members.
pub(super) fn check_pool_limits(
    doc: &Document,
    p: &str,
    tcp: Option<u32>,
    http: Option<&HttpPool>,
    requests: [&Option<RequestPool>; 2],
    out: &mut Vec<Problem>,
) {
    let min1 = |v: u32, f: &str, out: &mut Vec<Problem>| {
        range(doc, &format!("{p}.{f}"), v.into(), 1, u32::MAX.into(), out)
    };
    if let Some(c) = tcp {
        min1(c, "tcp.maxConnections", out);
    }
    if let Some(h) = http {
        min1(h.max_connections, "http.maxConnections", out);
        if let Some(m) = h.max_pending_requests {
            min1(m, "http.maxPendingRequests", out);
        }
    }
    for (r, name) in requests.into_iter().zip(["http2", "grpc"]) {
        if let Some(r) = r {
            min1(r.max_requests, &format!("{name}.maxRequests"), out);
        }
    }
}

fn check_timeout(
    doc: &Document,
    base: &str,
    proto: Protocol,
    t: &ListenerTimeout,
    out: &mut Vec<Problem>,
) {
    let given = [
        t.tcp.is_some(),
        t.http.is_some(),
        t.http2.is_some(),
        t.grpc.is_some(),
    ];
    one_for_protocol(
        doc,
        &format!("{base}.timeout"),
        "timeout",
        proto,
        given,
        out,
    );
}

/// A per-protocol union (`tcp`, `http`, `http2`, `grpc`; `given` in that order) must give exactly
/// one member, the listener's own protocol.
fn one_for_protocol(
    doc: &Document,
    path: &str,
    what: &str,
    proto: Protocol,
    given: [bool; 4],
    out: &mut Vec<Problem>,
) {
    const MEMBERS: [(&str, Protocol); 4] = [
        ("tcp", Protocol::Tcp),
        ("http", Protocol::Http),
        ("http2", Protocol::Http2),
        ("grpc", Protocol::Grpc),
    ];
    let set: Vec<(&str, Protocol)> = MEMBERS
        .into_iter()
        .zip(given)
        .filter_map(|(m, g)| g.then_some(m))
        .collect();
    match set.as_slice() {
        [(name, pr)] if *pr != proto => out.push(doc.problem(
            &format!("{path}.{name}"),
            format!(
                "{what} `{name}` does not match the listener protocol `{}`",
                proto.as_str()
            ),
        )),
        [_] => {}
        _ => out.push(doc.problem(path, "give exactly one of `tcp`, `http`, `http2` or `grpc`")),
    }
}
