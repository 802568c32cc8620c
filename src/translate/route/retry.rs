//! Retry policies: App Mesh's retry events in Envoy's terms, and the policy App Mesh applies when
//! a route configures none.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::route::v3::{retry_policy, RetryPolicy};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;

use crate::spec::HttpRetryPolicy;
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
    let mut on = BTreeSet::new();
    let mut codes = BTreeSet::new();
    for e in &rp.http_retry_events {
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
    for e in &rp.tcp_retry_events {
        if e == "connection-error" {
            on.insert("connect-failure");
        }
    }
    if !codes.is_empty() {
        on.insert("retriable-status-codes");
    }
    RetryPolicy {
        retry_on: on.into_iter().collect::<Vec<_>>().join(","),
        num_retries: u32v(rp.max_retries),
        per_try_timeout: Some(millis(rp.per_retry_timeout.as_millis())),
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
