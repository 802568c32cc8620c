//! The `match` of HTTP and HTTP/2 routes: prefix or path, method, scheme, header and query
//! parameter matches, and the router listener the route is for.

use crate::diag::Problem;
use crate::source::Document;
use crate::spec::{
    HeaderMatch, HeaderMatchMethod, HttpRouteMatch, PathMatch, QueryParameterMatch,
    VirtualRouterSpec,
};

pub(super) const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Checks the match `m` found at `mp` (`spec.httpRoute.match` or `spec.http2Route.match`).
pub(super) fn check_match(
    doc: &Document,
    router: &VirtualRouterSpec,
    mp: &str,
    m: &HttpRouteMatch,
    http2: bool,
    out: &mut Vec<Problem>,
) {
    check_path(doc, mp, m, out);
    check_method_and_scheme(doc, mp, m, http2, out);
    check_headers_and_query(doc, mp, m, out);
    check_port(doc, router, mp, m.port, out);
}

/// Exactly one of `prefix` or `path`, and a path of exactly one form; literal paths start with `/`.
fn check_path(doc: &Document, mp: &str, m: &HttpRouteMatch, out: &mut Vec<Problem>) {
    match (&m.prefix, &m.path) {
        (Some(_), Some(_)) => out.push(doc.problem(mp, "give either `prefix` or `path`, not both")),
        // App Mesh takes a match of only a port, headers, a method, a scheme or query
        // parameters as any path (prefix `/`); an empty match says nothing.
        (None, None) if !matches_beyond_path(m) => out.push(doc.problem(
            mp,
            "give `prefix`, `path`, or another match (`port`, `headers`, `method`, `scheme`, `queryParameters`)",
        )),
        (Some(prefix), None) if !prefix.starts_with('/') => {
            out.push(doc.problem(&format!("{mp}.prefix"), "must start with `/`"))
        }
        (None, Some(path)) => check_path_match(doc, mp, path, out),
        _ => {}
    }
}

/// Whether the match says anything besides the path.
fn matches_beyond_path(m: &HttpRouteMatch) -> bool {
    m.port.is_some()
        || !m.headers.is_empty()
        || m.method.is_some()
        || m.scheme.is_some()
        || !m.query_parameters.is_empty()
}

fn check_method_and_scheme(
    doc: &Document,
    mp: &str,
    m: &HttpRouteMatch,
    http2: bool,
    out: &mut Vec<Problem>,
) {
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
}

fn check_headers_and_query(doc: &Document, mp: &str, m: &HttpRouteMatch, out: &mut Vec<Problem>) {
    check_header_matches(doc, &format!("{mp}.headers"), &m.headers, "header", out);
    check_query_parameters(doc, mp, &m.query_parameters, out);
}

/// At most 10 header matches (or gRPC `metadata`, `what` names which) at `path`, each named with 1
/// to 50 characters and at most one match method.
pub(super) fn check_header_matches(
    doc: &Document,
    path: &str,
    headers: &[HeaderMatch],
    what: &str,
    out: &mut Vec<Problem>,
) {
    if headers.len() > 10 {
        out.push(doc.problem(path, format!("at most 10 {what} matches")));
    }
    for (i, h) in headers.iter().enumerate() {
        let hp = format!("{path}[{i}]");
        if h.name.is_empty() || h.name.len() > 50 {
            out.push(doc.problem(&format!("{hp}.name"), "must be 1 to 50 characters"));
        }
        if let Some(mm) = &h.matcher {
            check_match_method(doc, &format!("{hp}.match"), mm, out);
        }
    }
}

/// A path match is exactly one of `exact` (starting with `/`) or `regex` (routes and gateway
/// routes).
pub(super) fn check_path_match(doc: &Document, mp: &str, path: &PathMatch, out: &mut Vec<Problem>) {
    match (&path.exact, &path.regex) {
        (Some(e), None) if !e.starts_with('/') => {
            out.push(doc.problem(&format!("{mp}.path.exact"), "must start with `/`"))
        }
        (None, Some(re)) => super::regex::check_regex(doc, &format!("{mp}.path.regex"), re, out),
        (Some(_), None) => {}
        _ => out.push(doc.problem(
            &format!("{mp}.path"),
            "give exactly one of `exact` or `regex`",
        )),
    }
}

/// At most 10 query parameter matches, each named, each `exact` (routes and gateway routes).
pub(super) fn check_query_parameters(
    doc: &Document,
    mp: &str,
    query: &[QueryParameterMatch],
    out: &mut Vec<Problem>,
) {
    if query.len() > 10 {
        out.push(doc.problem(
            &format!("{mp}.queryParameters"),
            "at most 10 query parameter matches",
        ));
    }
    for (i, q) in query.iter().enumerate() {
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
}

/// The `port` of the match at `mp` (HTTP, HTTP/2 and gRPC routes) must be one of the router's
/// listeners, and is required when it has several.
pub(super) fn check_port(
    doc: &Document,
    router: &VirtualRouterSpec,
    mp: &str,
    port: Option<u32>,
    out: &mut Vec<Problem>,
) {
    let router_ports: Vec<u32> = router
        .listeners
        .iter()
        .map(|l| l.port_mapping.port)
        .collect();
    match port {
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
}

pub(super) fn check_match_method(
    doc: &Document,
    path: &str,
    m: &HeaderMatchMethod,
    out: &mut Vec<Problem>,
) {
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
            } else if name == "regex" {
                super::regex::check_regex(doc, &format!("{path}.regex"), s, out);
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
