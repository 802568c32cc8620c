//! `meshplane status`: every connected proxy and whether it has the newest configuration.

use std::process::ExitCode;

use anyhow::Context;
use meshplane::admin::{LoadReport, ProxyReport, SyncState};

use super::admin_client::{admin_get_head, admin_json, short_version, table, Admin, Output};

/// `status`, once or (with `watch`) every 2 seconds until interrupted; exits as the last one would.
pub fn run(admin: &Admin, output: Output, limit: usize, watch: bool) -> anyhow::Result<ExitCode> {
    if !watch {
        return status(admin, output, limit);
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        if terminal {
            print!("\x1b[2J\x1b[H"); // clear the screen, cursor home
        } else {
            println!("---");
        }
        match status(admin, output, limit) {
            Ok(_) => {}
            Err(e) => println!("error: {e:#}"),
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// Defined nodes and gateways (those with a configuration) that no connected proxy names, at most `limit`.
fn not_connected(
    admin: &Admin,
    proxies: &[meshplane::admin::ProxyReport],
    limit: usize,
) -> anyhow::Result<(Vec<String>, usize)> {
    let nodes: Vec<meshplane::admin::NodeEntry> = admin_json(admin, "/nodes")?;
    let connected: std::collections::HashSet<String> = proxies
        .iter()
        .filter_map(|p| meshplane::model::ProxyId::parse(&p.node_id).map(|id| id.to_string()))
        .collect();
    let mut missing: Vec<String> = nodes
        .into_iter()
        .map(|n| n.node_id)
        .filter(|id| !connected.contains(id))
        .collect();
    let more = missing.len().saturating_sub(limit);
    missing.truncate(limit);
    Ok((missing, more))
}

/// One `status`: the load report and the proxies, as tables or JSON; 1 when a proxy is NACKED or
/// the files on disk are invalid.
fn status(admin: &Admin, output: Output, limit: usize) -> anyhow::Result<ExitCode> {
    let load: LoadReport = admin_json(admin, "/load")?;
    let path = format!("/proxies?limit={limit}");
    let (code, head, body) = admin_get_head(admin, &path)?;
    if code != 200 {
        anyhow::bail!("{path}: HTTP {code}: {}", body.trim());
    }
    let proxies: Vec<ProxyReport> =
        serde_json::from_str(&body).with_context(|| format!("{path}: unexpected answer"))?;
    let header = |want: &str| {
        head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case(want)
                .then(|| value.trim().parse::<usize>().ok())?
        })
    };
    let omitted = header(meshplane::admin::TOTAL_HEADER)
        .unwrap_or(proxies.len())
        .saturating_sub(proxies.len());
    // Proxies past the limit count too.
    let nacked = header(meshplane::admin::NACKED_HEADER).is_some_and(|n| n > 0)
        || proxies.iter().any(|p| p.state() == SyncState::Nacked);
    let failed = nacked || !load.valid;
    if output == Output::Json {
        print_json(admin, &load, &proxies, omitted, limit)?;
    } else {
        print_load(&load);
        println!();
        print_proxies(admin, &proxies, omitted, limit)?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Everything `status` shows, as one JSON document.
fn print_json(
    admin: &Admin,
    load: &LoadReport,
    proxies: &[ProxyReport],
    omitted: usize,
    limit: usize,
) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "load": load,
            "proxies": proxies,
            "proxies_omitted": omitted,
            "not_connected": if omitted == 0 {
                not_connected(admin, proxies, limit)?.0
            } else {
                Vec::new()
            },
        }))?
    );
    Ok(())
}

/// Whether the files on disk are valid (or every problem), and any warnings.
fn print_load(load: &LoadReport) {
    if load.valid {
        println!(
            "configuration: valid ({} files, {} reloads accepted, {} rejected)",
            load.files.len(),
            load.reloads_accepted,
            load.reloads_rejected
        );
    } else {
        println!(
            "configuration: INVALID, still serving the last good one ({} problems):",
            load.problems.len()
        );
        for p in &load.problems {
            println!("  {p}");
        }
    }
    if !load.warnings.is_empty() {
        println!("warnings ({}):", load.warnings.len());
        for w in &load.warnings {
            println!("  {w}");
        }
    }
}

/// The proxy table (with the defined nodes not connected when every proxy was listed), what the
/// limit left out, and every NACK's message.
fn print_proxies(
    admin: &Admin,
    proxies: &[ProxyReport],
    omitted: usize,
    limit: usize,
) -> anyhow::Result<()> {
    let mut rows: Vec<Vec<String>> = proxies
        .iter()
        .map(|p| {
            let mut row = vec![p.node_id.clone(), p.mode.clone(), p.peer.clone()];
            for t in ["CDS", "EDS", "LDS", "RDS"] {
                let r = &p.types[t];
                let cell = match r.state {
                    SyncState::NotSent => "NOT SENT".to_string(),
                    s => format!("{} ({})", s.as_str(), short_version(&r.sent)),
                };
                row.push(cell);
            }
            row.push(if p.known {
                String::new()
            } else {
                "unknown node".into()
            });
            row
        })
        .collect();
    // Defined nodes and gateways nobody serves yet; only knowable when every proxy was listed.
    let mut more_missing = 0;
    if omitted == 0 {
        let (missing, more) = not_connected(admin, proxies, limit)?;
        more_missing = more;
        for id in missing {
            let mut row = vec![id, "-".into(), "-".into()];
            row.extend(std::iter::repeat_n("-".to_string(), 4));
            row.push("NOT CONNECTED".into());
            rows.push(row);
        }
    }
    print!(
        "{}",
        table(
            &["NODE", "MODE", "PEER", "CDS", "EDS", "LDS", "RDS", ""],
            &rows
        )
    );
    if omitted > 0 {
        println!("... and {omitted} more proxies (--limit {limit})");
    }
    if more_missing > 0 {
        println!("... and {more_missing} more defined nodes and gateways not connected (--limit {limit})");
    }
    print_certificates(proxies);
    for p in proxies.iter().filter(|p| p.state() == SyncState::Nacked) {
        let sds = p.sds.iter().map(|r| ("SDS", r));
        for (t, r) in p.types.iter().map(|(t, r)| (t.as_str(), r)).chain(sds) {
            if let Some(msg) = &r.nack {
                println!("\n{} {t} NACK: {msg}", p.node_id);
            }
        }
    }
    Ok(())
}

/// Who each proxy proved to be on the xDS port and the certificate meshplane's CA serves it, when
/// any proxy has either (a plaintext port without a CA prints nothing).
fn print_certificates(proxies: &[ProxyReport]) {
    let rows: Vec<Vec<String>> = proxies
        .iter()
        .filter(|p| p.xds_identity.is_some() || p.sds.is_some())
        .map(|p| {
            let cert = p.certificate.as_ref();
            let sds = p.sds.as_ref().map_or("-".to_string(), |r| match r.state {
                SyncState::NotSent => "NOT SENT".to_string(),
                s => format!("{} ({})", s.as_str(), short_version(&r.sent)),
            });
            vec![
                p.node_id.clone(),
                p.xds_identity.as_ref().map_or("-".into(), |u| {
                    if u.is_empty() {
                        "(no URI SAN)".into()
                    } else {
                        u.join(",")
                    }
                }),
                cert.and_then(|c| c.uri.clone())
                    .unwrap_or_else(|| "-".into()),
                cert.map_or("-".into(), |c| c.serial.clone()),
                cert.map_or("-".into(), |c| rfc3339(c.not_after)),
                sds,
            ]
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    println!("\ncertificates:");
    print!(
        "{}",
        table(
            &[
                "NODE",
                "XDS CLIENT CERTIFICATE",
                "SERVED CERTIFICATE",
                "SERIAL",
                "NOT AFTER",
                "SDS"
            ],
            &rows
        )
    );
}

/// Seconds since the epoch as an RFC 3339 UTC time.
fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}
