//! Retry policies: App Mesh's retry events in Envoy's terms, the policy App Mesh applies when a
//! route configures none, and where a virtual host's routes carry them: once on the host for the
//! policy they share.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::route::v3::{
    retry_policy, route, RetryPolicy, Route, VirtualHost,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;

use crate::spec::{GrpcRetryPolicy, HttpRetryPolicy};
use crate::translate::util::{any, millis, u32v};

/// Retries go to another host than the tries before (App Mesh's predicate). Envoy finds the
/// predicate by its config's type URL alone (a config without one is refused: "Didn't find a
/// registered implementation for '<name>' with type URL: ''"), so the name is a label; the
/// short one spares 28 bytes in every retry policy, one per virtual host of every client.
fn previous_hosts() -> retry_policy::RetryHostPredicate {
    retry_policy::RetryHostPredicate {
        name: "previous_hosts".into(),
        config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(
            any(&PreviousHostsPredicate::default()),
        )),
    }
}

/// App Mesh's retry events in Envoy's terms. server-error and gateway-error include resets, as in
/// App Mesh; the status codes are listed exactly rather than using Envoy's broader `5xx`.
pub fn retry_policy(rp: &HttpRetryPolicy) -> RetryPolicy {
    let events = Events {
        http: &rp.http_retry_events,
        tcp: &rp.tcp_retry_events,
        grpc: &[],
    };
    build(events, rp.max_retries, rp.per_retry_timeout.as_millis())
}

/// A gRPC route's policy: its HTTP and TCP events as for HTTP routes, and its gRPC events under
/// Envoy's own names for them (`cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`,
/// `unavailable`: the grpc-status of the response).
pub fn grpc_retry_policy(rp: &GrpcRetryPolicy) -> RetryPolicy {
    let events = Events {
        http: &rp.http_retry_events,
        tcp: &rp.tcp_retry_events,
        grpc: &rp.grpc_retry_events,
    };
    build(events, rp.max_retries, rp.per_retry_timeout.as_millis())
}

/// The retry events of a route, by kind.
struct Events<'a> {
    http: &'a [String],
    tcp: &'a [String],
    grpc: &'a [String],
}

fn build(events: Events, max_retries: u32, per_try_ms: u64) -> RetryPolicy {
    let mut on = BTreeSet::new();
    let mut codes = BTreeSet::new();
    for e in events.http {
        match e.as_str() {
            "server-error" => {
                codes.extend([500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511]);
                on.insert("reset");
            }
            "gateway-error" => {
                codes.extend([502, 503, 504]);
                on.insert("reset");
            }
            "client-error" => {
                codes.insert(409);
            }
            "stream-error" => {
                on.insert("refused-stream");
            }
            _ => {}
        }
    }
    for e in events.tcp {
        if e == "connection-error" {
            on.insert("connect-failure");
        }
    }
    // App Mesh's gRPC event names are Envoy's `retry_on` names; the validator allows no others.
    on.extend(events.grpc.iter().map(String::as_str));
    if !codes.is_empty() {
        on.insert("retriable-status-codes");
    }
    RetryPolicy {
        retry_on: on.into_iter().collect::<Vec<_>>().join(","),
        num_retries: u32v(max_retries),
        per_try_timeout: Some(millis(per_try_ms)),
        retriable_status_codes: codes.into_iter().collect(),
        retry_host_predicate: vec![previous_hosts()],
        host_selection_retry_max_attempts: 5,
        ..Default::default()
    }
}

/// The retry policy App Mesh applied where none is configured: 2 retries on 503, resets, connect
/// failures and refused streams.
pub fn default_retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: "connect-failure,refused-stream,reset,retriable-status-codes".into(),
        num_retries: u32v(2),
        retriable_status_codes: vec![503],
        retry_host_predicate: vec![previous_hosts()],
        host_selection_retry_max_attempts: 5,
        ..Default::default()
    }
}

/// The default policy of gRPC routes and of services provided by a node's grpc listener: App
/// Mesh's default, which also retries gRPC's UNAVAILABLE.
pub fn default_grpc_retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: "connect-failure,refused-stream,reset,retriable-status-codes,unavailable".into(),
        ..default_retry_policy()
    }
}

fn policy_mut(r: &mut Route) -> Option<&mut Option<RetryPolicy>> {
    match &mut r.action {
        Some(route::Action::Route(a)) => Some(&mut a.retry_policy),
        _ => None,
    }
}

/// Moves the retry policy most of `host`'s routes share (at least two) onto the host, and takes it
/// off those routes. Envoy applies a virtual host's policy to each route that has none, and a
/// route's own wholly instead of it (`VirtualHost.retry_policy`, `RouteAction.retry_policy`), so
/// every route keeps its policy. Only done when every forwarding route has a policy: one without
/// must stay without.
pub fn share_retry_policy(host: &mut VirtualHost) {
    if host.retry_policy.is_some() {
        return;
    }
    let mut policies: Vec<(&RetryPolicy, usize)> = Vec::new();
    for r in &host.routes {
        let Some(route::Action::Route(a)) = &r.action else {
            continue;
        };
        let Some(p) = &a.retry_policy else {
            return;
        };
        match policies.iter_mut().find(|(q, _)| *q == p) {
            Some((_, n)) => *n += 1,
            None => policies.push((p, 1)),
        }
    }
    // The most shared, the first of them on a tie, so the same routes give the same bytes.
    let mut best: Option<(&RetryPolicy, usize)> = None;
    for (p, n) in policies {
        if n >= 2 && best.is_none_or(|(_, m)| n > m) {
            best = Some((p, n));
        }
    }
    let Some(shared) = best.map(|(p, _)| p.clone()) else {
        return;
    };
    for r in &mut host.routes {
        if let Some(p) = policy_mut(r) {
            if p.as_ref() == Some(&shared) {
                *p = None;
            }
        }
    }
    host.retry_policy = Some(shared);
}

/// `host`'s routes, each with the retry policy Envoy applies to it there (its own, else the
/// host's): for routes taken out of `host` into another one.
pub fn routes_with_policy(host: &VirtualHost) -> Vec<Route> {
    let mut routes = host.routes.clone();
    if let Some(shared) = &host.retry_policy {
        for r in &mut routes {
            if let Some(p) = policy_mut(r) {
                p.get_or_insert_with(|| shared.clone());
            }
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::route::v3::{route::Action, RouteAction};

    fn route(name: &str, p: Option<RetryPolicy>) -> Route {
        Route {
            name: name.into(),
            action: Some(Action::Route(RouteAction {
                retry_policy: p,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn host(routes: Vec<Route>) -> VirtualHost {
        VirtualHost {
            routes,
            ..Default::default()
        }
    }

    fn policies(h: &VirtualHost) -> Vec<Option<RetryPolicy>> {
        h.routes
            .iter()
            .map(|r| match &r.action {
                Some(Action::Route(a)) => a.retry_policy.clone(),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_shared_policy_moves_to_the_host_and_others_stay_on_their_routes() {
        let d = default_retry_policy();
        let g = default_grpc_retry_policy();
        let before = host(vec![
            route("a", Some(g.clone())),
            route("b", Some(d.clone())),
            route("c", Some(d.clone())),
        ]);
        let mut h = before.clone();
        share_retry_policy(&mut h);
        assert_eq!(h.retry_policy.as_ref(), Some(&d));
        assert_eq!(policies(&h), [Some(g), None, None]);
        // What Envoy applies to each route is what it had.
        assert_eq!(routes_with_policy(&h), before.routes);
    }

    #[test]
    fn nothing_moves_without_two_alike_or_when_a_route_has_no_policy() {
        let d = default_retry_policy();
        let one = host(vec![route("a", Some(d.clone()))]);
        let mut h = one.clone();
        share_retry_policy(&mut h);
        assert_eq!(h, one);
        // A route without a policy would inherit the host's: nothing may move.
        let none = host(vec![
            route("a", Some(d.clone())),
            route("b", Some(d.clone())),
            route("c", None),
        ]);
        let mut h = none.clone();
        share_retry_policy(&mut h);
        assert_eq!(h, none);
    }
}
