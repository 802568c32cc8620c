//! `meshplane config`: what one node was served, as tables.

use std::process::ExitCode;

use anyhow::Context;

use meshplane::inspect::NodeView;

use super::admin_client::{admin_get, admin_json, table, Admin, Output};

/// The node a name given on the command line means: a full id or ARN as it is, else the one defined
/// node or gateway it names (`backend-v1`, `demo/backend-v1`, `edge`). `Err` with a message when none or several do.
fn resolve(admin: &Admin, name: &str) -> anyhow::Result<Result<String, String>> {
    if meshplane::model::ProxyId::parse(name).is_some() {
        return Ok(Ok(name.to_string()));
    }
    let nodes: Vec<meshplane::admin::NodeEntry> = admin_json(admin, "/nodes")?;
    let (mesh, short) = match name.split_once('/') {
        Some((m, n)) => (Some(m), n),
        None => (None, name),
    };
    let found: Vec<String> = nodes
        .into_iter()
        .map(|n| n.node_id)
        .filter(|id| {
            let parts: Vec<&str> = id.split('/').collect();
            parts.len() == 4 && parts[3] == short && mesh.is_none_or(|m| parts[1] == m)
        })
        .collect();
    Ok(match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no defined node or gateway is called {name}")),
        many => Err(format!("{name} could be any of: {}", many.join(", "))),
    })
}

/// `meshplane config NODE`: what the running server serves to NODE, as JSON or one table per type.
pub fn config(node_id: &str, admin: &Admin, output: Output) -> anyhow::Result<ExitCode> {
    let node_id = match resolve(admin, node_id)? {
        Ok(id) => id,
        Err(msg) => {
            eprintln!("{msg}");
            return Ok(ExitCode::from(1));
        }
    };
    let (code, body) = admin_get(admin, &format!("/resources?node={node_id}"))?;
    if code == 404 || code == 400 {
        eprintln!("{}", body.trim());
        return Ok(ExitCode::from(1));
    }
    if code != 200 {
        anyhow::bail!("/resources: HTTP {code}: {}", body.trim());
    }
    let view: NodeView = serde_json::from_str(&body).context("/resources: unexpected answer")?;
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "NODE {}  (versions: clusters {}, endpoints {}, listeners {}, routes {})\n",
        view.node_id,
        &view.versions.clusters[..8.min(view.versions.clusters.len())],
        &view.versions.endpoints[..8.min(view.versions.endpoints.len())],
        &view.versions.listeners[..8.min(view.versions.listeners.len())],
        &view.versions.routes[..8.min(view.versions.routes.len())]
    );
    print_listeners(&view);
    println!();
    print_routes(&view);
    println!();
    print_clusters(&view);
    Ok(ExitCode::SUCCESS)
}

/// One row per listener: address, route table (or TCP cluster), TLS.
fn print_listeners(view: &NodeView) {
    let rows: Vec<Vec<String>> = view
        .listeners
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.address.clone(),
                l.route_config
                    .clone()
                    .or_else(|| l.tcp_cluster.as_ref().map(|c| format!("tcp -> {c}")))
                    .unwrap_or_default(),
                l.tls.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["LISTENER", "ADDRESS", "ROUTES", "TLS"], &rows)
    );
}

/// One row per route of every virtual host of every route table (a host with none says so).
fn print_routes(view: &NodeView) {
    let mut rows = Vec::new();
    for rc in &view.routes {
        for vh in &rc.virtual_hosts {
            if vh.routes.is_empty() {
                rows.push(vec![
                    rc.name.clone(),
                    vh.name.clone(),
                    vh.domains.join(","),
                    "(no routes)".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            for r in &vh.routes {
                let clusters = r
                    .clusters
                    .iter()
                    .map(|(c, w)| format!("{c} {w}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                rows.push(vec![
                    rc.name.clone(),
                    vh.name.clone(),
                    vh.domains.join(","),
                    r.r#match.clone(),
                    clusters,
                    r.timeout.clone().unwrap_or_else(|| "-".into()),
                    r.retry.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
        }
    }
    print!(
        "{}",
        table(
            &[
                "ROUTE CONFIG",
                "VIRTUAL HOST",
                "DOMAINS",
                "MATCH",
                "WEIGHTED CLUSTERS",
                "TIMEOUT",
                "RETRIES"
            ],
            &rows
        )
    );
}

/// One row per cluster: discovery, endpoints, policies and circuit-breaker limits.
fn print_clusters(view: &NodeView) {
    let endpoints: std::collections::BTreeMap<&str, &Vec<String>> = view
        .endpoints
        .iter()
        .map(|e| (e.cluster.as_str(), &e.endpoints))
        .collect();
    let rows: Vec<Vec<String>> = view
        .clusters
        .iter()
        .map(|c| {
            let eps = endpoints
                .get(c.name.as_str())
                .map(|e| e.join(","))
                .unwrap_or_else(|| c.addresses.join(","));
            let mut extras = Vec::new();
            if c.http2 {
                extras.push("http2");
            }
            if c.health_check {
                extras.push("health-check");
            }
            if c.outlier_detection {
                extras.push("outlier-detection");
            }
            let cb = c.circuit_breakers.map(|[a, b, r, _]| {
                let f = |v: u32| {
                    if v == 2_147_483_647 {
                        "max".to_string()
                    } else {
                        v.to_string()
                    }
                };
                format!("{}/{}/{}", f(a), f(b), f(r))
            });
            vec![
                c.name.clone(),
                c.discovery.clone(),
                eps,
                extras.join(","),
                cb.unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "CLUSTER",
                "DISCOVERY",
                "ENDPOINTS",
                "POLICIES",
                "CONN/PENDING/REQ LIMITS"
            ],
            &rows
        )
    );
}
