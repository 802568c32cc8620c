//! Retry policies: App Mesh's retry events in Envoy's terms, and the policy App Mesh applies when
//! a route configures none.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::route::v3::{retry_policy, RetryPolicy};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;

use crate::spec::{GrpcRetryPolicy, HttpRetryPolicy};
use crate::translate::util::{any, millis, u32v};

fn previous_hosts() -> retry_policy::RetryHostPredicate {
    retry_policy::RetryHostPredicate {
        name: "envoy.retry_host_predicates.previous_hosts".into(),
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
