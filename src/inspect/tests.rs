use super::*;
use envoy_types::pb::envoy::config::route::v3::{RetryPolicy, Route, RouteAction, VirtualHost};

fn route(name: &str, timeout: Option<Duration>, retry: Option<&str>) -> Route {
    Route {
        name: name.into(),
        action: Some(route::Action::Route(RouteAction {
            timeout,
            retry_policy: retry.map(|on| RetryPolicy {
                retry_on: on.into(),
                ..Default::default()
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn a_route_shows_the_timeout_and_retries_envoy_applies_to_it() {
    let rc = RouteConfiguration {
        virtual_hosts: vec![VirtualHost {
            retry_policy: Some(RetryPolicy {
                retry_on: "reset".into(),
                ..Default::default()
            }),
            routes: vec![
                route("shared", None, None),
                route(
                    "own",
                    Some(Duration {
                        seconds: 2,
                        nanos: 0,
                    }),
                    Some("5xx"),
                ),
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let v = route_config_view(&rc);
    let shown: Vec<(Option<&str>, Option<&str>)> = v.virtual_hosts[0]
        .routes
        .iter()
        .map(|r| (r.timeout.as_deref(), r.retry.as_deref()))
        .collect();
    // No timeout: Envoy's 15 s; no policy: the host's.
    assert_eq!(
        shown,
        [
            (Some("15s"), Some("reset x1")),
            (Some("2s"), Some("5xx x1"))
        ]
    );
}
