//! Route matches: an App Mesh HTTP route's `match` (prefix or path, method, scheme, headers,
//! query parameters) as an Envoy `RouteMatch`.

use envoy_types::pb::envoy::config::route::v3::{
    header_matcher, query_parameter_matcher, route_match, HeaderMatcher, QueryParameterMatcher,
    RouteMatch,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, RegexMatcher, StringMatcher};
use envoy_types::pb::envoy::r#type::v3::Int64Range;

use crate::spec::{HeaderMatch, HttpRouteMatch, QueryParameterMatch};

/// The whole match of a route.
pub fn route_match(m: &HttpRouteMatch) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(path_specifier(m)),
        headers: headers(m),
        query_parameters: m.query_parameters.iter().map(query_parameter).collect(),
        ..Default::default()
    }
}

/// A prefix, else an exact path or a path regex, else everything (`/`).
fn path_specifier(m: &HttpRouteMatch) -> route_match::PathSpecifier {
    match (&m.prefix, &m.path) {
        (Some(p), _) => route_match::PathSpecifier::Prefix(p.clone()),
        (None, Some(p)) => match (&p.exact, &p.regex) {
            (Some(e), _) => route_match::PathSpecifier::Path(e.clone()),
            (None, Some(re)) => route_match::PathSpecifier::SafeRegex(regex(re)),
            (None, None) => route_match::PathSpecifier::Prefix("/".into()),
        },
        (None, None) => route_match::PathSpecifier::Prefix("/".into()),
    }
}

/// Method and scheme are pseudo-headers to Envoy; they go first, then the configured headers.
fn headers(m: &HttpRouteMatch) -> Vec<HeaderMatcher> {
    let mut headers = Vec::new();
    if let Some(method) = &m.method {
        headers.push(exact_header(":method", method));
    }
    if let Some(scheme) = &m.scheme {
        headers.push(exact_header(":scheme", scheme));
    }
    headers.extend(m.headers.iter().map(header));
    headers
}

/// One configured header: the first match method given wins; none means the header is present.
pub(in crate::translate) fn header(h: &HeaderMatch) -> HeaderMatcher {
    use header_matcher::HeaderMatchSpecifier as S;
    use string_matcher::MatchPattern as P;
    let spec = match &h.matcher {
        None => S::PresentMatch(true),
        Some(mm) => {
            if let Some(v) = &mm.exact {
                S::StringMatch(string_match(P::Exact(v.clone())))
            } else if let Some(v) = &mm.prefix {
                S::StringMatch(string_match(P::Prefix(v.clone())))
            } else if let Some(v) = &mm.suffix {
                S::StringMatch(string_match(P::Suffix(v.clone())))
            } else if let Some(v) = &mm.regex {
                S::StringMatch(string_match(P::SafeRegex(regex(v))))
            } else if let Some(rg) = mm.range {
                S::RangeMatch(Int64Range {
                    start: rg.start,
                    end: rg.end,
                })
            } else {
                S::PresentMatch(true)
            }
        }
    };
    HeaderMatcher {
        name: h.name.clone(),
        header_match_specifier: Some(spec),
        invert_match: h.invert.unwrap_or(false),
        ..Default::default()
    }
}

/// An exact value, or (no value given) the parameter is present.
pub(in crate::translate) fn query_parameter(q: &QueryParameterMatch) -> QueryParameterMatcher {
    use query_parameter_matcher::QueryParameterMatchSpecifier as S;
    QueryParameterMatcher {
        name: q.name.clone(),
        query_parameter_match_specifier: Some(
            match q.matcher.as_ref().and_then(|mm| mm.exact.clone()) {
                Some(v) => S::StringMatch(string_match(string_matcher::MatchPattern::Exact(v))),
                None => S::PresentMatch(true),
            },
        ),
    }
}

pub(in crate::translate) fn string_match(p: string_matcher::MatchPattern) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(p),
        ignore_case: false,
    }
}

pub(in crate::translate) fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.to_string(),
        ..Default::default()
    }
}

pub(in crate::translate) fn exact_header(name: &str, value: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
            string_match(string_matcher::MatchPattern::Exact(value.into())),
        )),
        ..Default::default()
    }
}
