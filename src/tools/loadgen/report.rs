//! What `meshplane load` reports: convergence and edit latencies, responses and bytes per type, and
//! the server's memory and CPU (from /proc) when its PID is given; as a table or JSON.

use std::sync::atomic::Ordering;

use meshplane::xds::type_short;
use serde::Serialize;

use super::client::Shared;
use super::LoadOptions;

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub clients: usize,
}

pub(super) fn percentiles(mut v: Vec<u64>) -> Percentiles {
    v.sort_unstable();
    let at = |q: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[i] as f64 / 1e6
    };
    Percentiles {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        clients: v.len(),
    }
}

#[derive(Debug, Serialize)]
pub struct TypeCounts {
    pub r#type: String,
    pub responses: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub ok: bool,
    pub clients: usize,
    pub mode: String,
    /// From the first connection attempt until the last client converged.
    pub all_converged_ms: f64,
    pub converged: usize,
    /// Per edit: from the change on disk to each client's ACK of the response it caused.
    pub edits: Vec<Percentiles>,
    pub per_type: Vec<TypeCounts>,
    pub nacks: u64,
    pub reconnects: u64,
    pub server_rss_kib: Option<u64>,
    /// Server RSS growth from before the first connection until all converged, per client.
    pub server_rss_per_client_kib: Option<f64>,
    pub server_cpu_seconds: Option<f64>,
    /// Server CPU from before the first connection until all converged.
    pub server_cpu_connect_seconds: Option<f64>,
    /// This tool's own CPU over the same span: on one machine, the two share its cores, so the
    /// convergence time is at least their sum over the number of cores.
    pub tool_cpu_connect_seconds: Option<f64>,
}

/// RSS (KiB) and CPU seconds (user + system) of a process, from /proc.
pub(super) fn proc_usage(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some((rss, ticks / 100.0))
}

/// What the run measured, besides the shared counters.
pub(super) struct Measured {
    pub converged: usize,
    pub all_converged_ms: f64,
    pub edits: Vec<Percentiles>,
    /// Server (RSS KiB, CPU seconds) before the first connection, at convergence, and at the end.
    pub usage: [Option<(u64, f64)>; 3],
    /// The tool's own (RSS KiB, CPU seconds) before the first connection and at convergence.
    pub tool: [Option<(u64, f64)>; 2],
}

pub(super) fn build(opts: &LoadOptions, shared: &Shared, m: Measured) -> LoadReport {
    let [usage_before, usage_converged, usage_after] = m.usage;
    let cpu_between = |b: Option<(u64, f64)>, a: Option<(u64, f64)>| Some(a?.1 - b?.1);
    let per_type = (0..4)
        .map(|t| TypeCounts {
            r#type: type_short(t).into(),
            responses: shared.responses[t].load(Ordering::Relaxed),
            bytes: shared.bytes[t].load(Ordering::Relaxed),
        })
        .collect();
    LoadReport {
        ok: m.converged == opts.clients && m.edits.iter().all(|e| e.clients == m.converged),
        clients: opts.clients,
        mode: format!("{:?}", opts.mode).to_lowercase(),
        all_converged_ms: m.all_converged_ms,
        converged: m.converged,
        edits: m.edits,
        per_type,
        nacks: shared.nacks.load(Ordering::Relaxed),
        reconnects: shared.reconnects.load(Ordering::Relaxed),
        server_rss_kib: usage_after.map(|u| u.0),
        server_rss_per_client_kib: match (usage_before, usage_converged) {
            (Some(b), Some(a)) => Some((a.0 as f64 - b.0 as f64) / opts.clients as f64),
            _ => None,
        },
        server_cpu_seconds: cpu_between(usage_before, usage_after),
        server_cpu_connect_seconds: cpu_between(usage_before, usage_converged),
        tool_cpu_connect_seconds: cpu_between(m.tool[0], m.tool[1]),
    }
}

pub(super) fn print(r: &LoadReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
        return;
    }
    println!(
        "clients: {} ({}), converged: {} in {:.0} ms",
        r.clients, r.mode, r.converged, r.all_converged_ms
    );
    for (i, e) in r.edits.iter().enumerate() {
        println!(
            "edit {}: save -> ACK p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} clients)",
            i + 1,
            e.p50_ms,
            e.p99_ms,
            e.max_ms,
            e.clients
        );
    }
    for t in &r.per_type {
        println!("{}: {} responses, {} bytes", t.r#type, t.responses, t.bytes);
    }
    println!("NACKs: {}, reconnects: {}", r.nacks, r.reconnects);
    if let (Some(rss), Some(per), Some(cpu)) = (
        r.server_rss_kib,
        r.server_rss_per_client_kib,
        r.server_cpu_seconds,
    ) {
        println!("server: RSS {rss} KiB ({per:.1} KiB per client), CPU {cpu:.2} s");
    }
    if let (Some(server), Some(tool)) = (r.server_cpu_connect_seconds, r.tool_cpu_connect_seconds) {
        println!("CPU until converged: server {server:.2} s, this tool {tool:.2} s");
    } else if let Some(tool) = r.tool_cpu_connect_seconds {
        println!("CPU until converged: this tool {tool:.2} s");
    }
}
