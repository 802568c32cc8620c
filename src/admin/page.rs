//! The live topology page at the admin API's `/`: one server-rendered HTML document showing the
//! configuration state, then per mesh its services, routers (with weights), nodes (with each
//! connected sidecar's per-type sync state and NACK messages) and gateways. A small inline script
//! re-fetches the page and swaps its content; without JavaScript a meta refresh reloads it.

mod gateway;
mod mesh;
mod router;
mod sidecars;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};

use super::{problems, AdminState, ProblemReport, ProxyReport};
use crate::model::{MeshModel, ProxyId};
use sidecars::{connection, sidecar, state_badge, state_index, unknown_section, STATES};

/// How many entries of one list (problems, services, nodes, ...) the page shows; the JSON
/// endpoints and `meshplane status` list them all.
pub const LIST_LIMIT: usize = 200;

/// The configuration facts the page shows, copied out of the pipeline status.
#[derive(Debug, Clone, Default)]
pub struct ConfigState {
    /// The files on disk validate.
    pub valid: bool,
    pub files: usize,
    pub problems: Vec<ProblemReport>,
    pub warnings: Vec<ProblemReport>,
    pub reloads_accepted: u64,
    pub reloads_rejected: u64,
    pub reloaded_at: Option<SystemTime>,
    pub accepted_at: Option<SystemTime>,
}

/// Everything one rendering of the page needs.
pub struct PageData<'a> {
    /// The model being served (the last accepted one), if any.
    pub serving: Option<&'a MeshModel>,
    pub config: &'a ConfigState,
    /// Every connected stream that identified its node.
    pub proxies: &'a [ProxyReport],
}

/// `GET /`: the page, never cached.
pub(super) async fn handler(State(s): State<AdminState>) -> impl IntoResponse {
    let (serving, config) = {
        let st = s.pipeline.status();
        let config = ConfigState {
            valid: st.last.model.is_some(),
            files: st.last.files.len(),
            problems: problems(&st.last.problems),
            warnings: problems(&st.last.warnings),
            reloads_accepted: st.reloads_accepted,
            reloads_rejected: st.reloads_rejected,
            reloaded_at: st.reloaded_at,
            accepted_at: st.accepted_at,
        };
        (st.serving.clone(), config)
    };
    let proxies = super::proxy_reports(&s.pipeline, &s.registry);
    let body = render(&PageData {
        serving: serving.as_deref(),
        config: &config,
        proxies: &proxies,
    });
    ([(header::CACHE_CONTROL, "no-store")], Html(body))
}

/// The whole HTML document.
pub fn render(data: &PageData) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>meshplane topology</title>",
        "<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript><style>",
        include_str!("page/page.css"),
        "</style></head><body><header><h1>meshplane</h1><span class=\"sub\">live topology</span>",
        "<span id=\"live\" class=\"live\">reloads every 5 s</span></header>\n<main id=\"topology\">",
    ));
    let sidecars = Sidecars::new(data.proxies);
    out.push_str(if data.serving.is_some() {
        "<div class=\"top\">"
    } else {
        "<div class=\"top single\">"
    });
    config_section(&mut out, data.config, data.serving.is_some());
    if let Some(model) = data.serving {
        summary(&mut out, model, &sidecars);
    }
    out.push_str("</div>");
    match data.serving {
        Some(model) => {
            for m in model.meshes.values() {
                mesh::section(&mut out, m, &sidecars);
            }
            unknown_section(&mut out, &sidecars.unknown(model));
        }
        None => out.push_str(
            "<section class=\"empty\">Nothing is served yet: no valid configuration has been \
             loaded. Fix the problems above; the page follows the files on disk.</section>",
        ),
    }
    out.push_str("</main>\n<script>");
    out.push_str(include_str!("page/page.js"));
    out.push_str("</script></body></html>\n");
    out
}

/// Connected sidecars, by the node or gateway their id names.
pub(super) struct Sidecars<'a> {
    by_id: HashMap<ProxyId, Vec<&'a ProxyReport>>,
    unparsable: Vec<&'a ProxyReport>,
}

impl<'a> Sidecars<'a> {
    fn new(proxies: &'a [ProxyReport]) -> Sidecars<'a> {
        let mut s = Sidecars {
            by_id: HashMap::new(),
            unparsable: Vec::new(),
        };
        for p in proxies {
            match ProxyId::parse(&p.node_id) {
                Some(id) => s.by_id.entry(id).or_default().push(p),
                None => s.unparsable.push(p),
            }
        }
        s
    }

    pub(super) fn of(&self, id: &ProxyId) -> &[&'a ProxyReport] {
        self.by_id.get(id).map_or(&[], Vec::as_slice)
    }

    /// Sidecars whose node id names nothing in `model`, in node id order.
    fn unknown(&self, model: &MeshModel) -> Vec<&'a ProxyReport> {
        let defined = |id: &ProxyId| {
            model.meshes.get(&id.mesh).is_some_and(|m| match id.kind {
                crate::model::ProxyKind::VirtualNode => m.virtual_nodes.contains_key(&id.name),
                crate::model::ProxyKind::VirtualGateway => {
                    m.virtual_gateways.contains_key(&id.name)
                }
            })
        };
        let mut out: Vec<&ProxyReport> = self
            .by_id
            .iter()
            .filter(|(id, _)| !defined(id))
            .flat_map(|(_, ps)| ps.iter().copied())
            .chain(self.unparsable.iter().copied())
            .collect();
        out.sort_by(|a, b| (&a.node_id, &a.peer).cmp(&(&b.node_id, &b.peer)));
        out
    }
}

fn config_section(out: &mut String, c: &ConfigState, serving: bool) {
    let (class, state) = if c.valid {
        ("ok", "valid".to_string())
    } else {
        (
            "bad",
            format!("invalid: {}", count(c.problems.len(), "problem")),
        )
    };
    let _ = write!(
        out,
        "<section class=\"config {class}\"><h2>Configuration <span class=\"badge {class}\">{}</span></h2><p>",
        esc(&state)
    );
    let _ = write!(
        out,
        "{} · {} accepted, {} rejected",
        count(c.files, "file"),
        count(c.reloads_accepted as usize, "reload"),
        c.reloads_rejected
    );
    if let Some(t) = c.reloaded_at {
        out.push_str(" · last reload ");
        time(out, t);
    }
    out.push_str("</p>");
    if !c.valid && serving {
        out.push_str("<p class=\"note\">Still serving the last valid configuration");
        if let Some(t) = c.accepted_at {
            out.push_str(", accepted ");
            time(out, t);
        }
        out.push_str(": the topology below is what the sidecars get.</p>");
    }
    problem_list(out, "problems", "Problems", &c.problems);
    problem_list(
        out,
        "warnings",
        "Warnings (loaded, not translated yet)",
        &c.warnings,
    );
    out.push_str("</section>\n");
}

fn problem_list(out: &mut String, class: &str, title: &str, ps: &[ProblemReport]) {
    if ps.is_empty() {
        return;
    }
    let _ = write!(out, "<h3>{title}</h3><ul class=\"{class}\">");
    for p in ps.iter().take(LIST_LIMIT) {
        let _ = write!(out, "<li><code>{}:{}</code> ", esc(&p.file), p.line);
        if !p.path.is_empty() {
            let _ = write!(out, "<span class=\"path\">{}</span> ", esc(&p.path));
        }
        let _ = write!(out, "{}</li>", esc(&p.message));
    }
    out.push_str("</ul>");
    more(out, ps.len(), "GET /load lists them all");
}

/// A "… and N more" line when a list was cut at [`LIST_LIMIT`].
pub(super) fn more(out: &mut String, len: usize, where_all: &str) {
    if len > LIST_LIMIT {
        let _ = write!(
            out,
            "<p class=\"more\">… and {} more ({where_all})</p>",
            len - LIST_LIMIT
        );
    }
}

fn summary(out: &mut String, model: &MeshModel, sidecars: &Sidecars) {
    let mut nodes = 0;
    let mut not_connected = 0;
    let mut counts: [usize; 4] = [0; 4];
    let mut gateways = 0;
    for m in model.meshes.values() {
        let node_ids = m
            .virtual_nodes
            .keys()
            .map(|name| ProxyId::virtual_node(&m.name, name));
        let gateway_ids = m.virtual_gateways.keys().map(|name| ProxyId {
            mesh: m.name.clone(),
            kind: crate::model::ProxyKind::VirtualGateway,
            name: name.clone(),
        });
        gateways += m.virtual_gateways.len();
        for id in node_ids.chain(gateway_ids) {
            nodes += 1;
            let connected = sidecars.of(&id);
            if connected.is_empty() {
                not_connected += 1;
            }
            for p in connected {
                counts[state_index(p.state())] += 1;
            }
        }
    }
    let defined = if gateways == 0 {
        count(nodes, "virtual node")
    } else {
        format!(
            "{} and {}",
            count(nodes - gateways, "virtual node"),
            count(gateways, "virtual gateway")
        )
    };
    let _ = write!(
        out,
        "<section class=\"summary\"><h2>Sidecars</h2><p>{defined} in {}</p><p>",
        count(model.meshes.len(), "mesh")
    );
    for (i, s) in STATES.iter().enumerate() {
        out.push_str(&state_badge(*s, &counts[i].to_string()));
    }
    let _ = write!(
        out,
        "<span class=\"badge notconn\">{not_connected} NOT CONNECTED</span></p></section>"
    );
}

/// `1 file`, `2 files`, `1 mesh`, `3 meshes`.
pub(super) fn count(n: usize, one: &str) -> String {
    match (n, one.ends_with('h') || one.ends_with('s')) {
        (1, _) => format!("1 {one}"),
        (_, true) => format!("{n} {one}es"),
        (_, false) => format!("{n} {one}s"),
    }
}

/// Writes a UTC time as a `<time>` element showing the time of day (the date in its title); the
/// page's script adds how long ago it was.
pub(super) fn time(out: &mut String, t: SystemTime) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let (h, mi, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let _ = write!(
        out,
        "<time datetime=\"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z\" \
         title=\"{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC\">{h:02}:{mi:02}:{s:02} UTC</time>"
    );
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
