//! `meshplane status`: every connected proxy and whether it has the newest configuration.

use std::process::ExitCode;

use anyhow::Context;

use super::admin_client::{admin_get_head, admin_json, short_version, table, Output};

pub fn status(admin: &str, output: Output, limit: usize) -> anyhow::Result<ExitCode> {
    use crate::admin::{LoadReport, ProxyReport, SyncState};
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
    let omitted = header(crate::admin::TOTAL_HEADER)
        .unwrap_or(proxies.len())
        .saturating_sub(proxies.len());
    // Proxies past the limit count too.
    let nacked = header(crate::admin::NACKED_HEADER).is_some_and(|n| n > 0)
        || proxies.iter().any(|p| p.state() == SyncState::Nacked);
    let failed = nacked || !load.valid;
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"load": load, "proxies": proxies, "proxies_omitted": omitted})
            )?
        );
    } else {
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
        println!();
        let rows: Vec<Vec<String>> = proxies
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
        for p in proxies.iter().filter(|p| p.state() == SyncState::Nacked) {
            for (t, r) in &p.types {
                if let Some(msg) = &r.nack {
                    println!("\n{} {t} NACK: {msg}", p.node_id);
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
