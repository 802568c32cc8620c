use std::sync::Arc;

use envoy_types::pb::envoy::config::route::v3::VirtualHost;

use super::port_hosts;

fn host(name: &str, domains: &[&str]) -> Arc<VirtualHost> {
    Arc::new(VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    })
}

#[test]
fn each_port_table_answers_to_the_bare_name_and_the_name_with_its_port() {
    let vs = "orders.shop.local";
    let hosts = [
        host("orders.shop.local:8080", &[vs, "orders.shop.local:8080"]),
        host("orders.shop.local:9090", &["orders.shop.local:9090"]),
    ];
    let by_port = port_hosts(vs, &hosts);
    let got: Vec<(u32, &str, Vec<&str>)> = by_port
        .iter()
        .map(|(p, h)| {
            let h = h.as_ref().unwrap_or(&hosts[0]);
            let domains = h.domains.iter().map(String::as_str).collect();
            (*p, h.name.as_str(), domains)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (8080, vs, vec![vs, "orders.shop.local:8080"]),
            (9090, vs, vec![vs, "orders.shop.local:9090"]),
        ]
    );
    assert!(by_port.iter().all(|(_, h)| h.is_some()));
}

#[test]
fn a_service_on_one_port_keeps_its_host() {
    let vs = "pay.shop.local";
    let by_port = port_hosts(vs, &[host(vs, &[vs, "pay.shop.local:7000"])]);
    assert_eq!(by_port, vec![(7000, None)]);
}

#[test]
fn a_service_without_ports_has_no_port_hosts() {
    // No provider: one host named after the service, without a port.
    let vs = "nowhere.local";
    assert!(port_hosts(vs, &[host(vs, &[vs])]).is_empty());
}
