//! How the topology page draws connected sidecars: sync-state badges, a node's or gateway's
//! connection badge (NOT CONNECTED, or its sidecars' worst state), one sidecar's per-type states with
//! Envoy's NACK messages, and the section of sidecars whose node ids name nothing loaded.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use super::{count, esc, time, LIST_LIMIT};
use crate::admin::{ProxyReport, SyncState};

pub(super) const STATES: [SyncState; 4] = [
    SyncState::Synced,
    SyncState::Nacked,
    SyncState::Stale,
    SyncState::NotSent,
];

pub(super) fn state_index(s: SyncState) -> usize {
    STATES.iter().position(|x| *x == s).unwrap_or(0)
}

/// A coloured badge for a sync state, with `prefix` (a count or a type) before the state's name.
pub(super) fn state_badge(s: SyncState, prefix: &str) -> String {
    let class = match s {
        SyncState::Synced => "ok",
        SyncState::Nacked => "bad",
        SyncState::Stale => "warn",
        SyncState::NotSent => "idle",
    };
    format!(
        "<span class=\"badge {class}\">{} {}</span>",
        esc(prefix),
        s.as_str()
    )
}

/// A card head's badge for the sidecars connected to one node or gateway: NOT CONNECTED, or how
/// many there are and the worst state among them.
pub(super) fn connection(out: &mut String, connected: &[&ProxyReport]) {
    let worst = [SyncState::Nacked, SyncState::Stale, SyncState::Synced]
        .into_iter()
        .find(|s| connected.iter().any(|p| p.state() == *s))
        .unwrap_or(SyncState::NotSent);
    match connected.len() {
        0 => out.push_str("<span class=\"badge notconn\">NOT CONNECTED</span>"),
        n => out.push_str(&state_badge(worst, &count(n, "sidecar"))),
    }
}

/// One connected sidecar: mode, peer, connection time, per-type states and Envoy's message for
/// every NACK.
pub(super) fn sidecar(out: &mut String, p: &ProxyReport) {
    let _ = write!(
        out,
        "<div class=\"sidecar\"><div><span class=\"mode\">{}</span> from <code>{}</code> since ",
        esc(&p.mode),
        esc(&p.peer)
    );
    time(out, UNIX_EPOCH + Duration::from_secs(p.connected_since));
    out.push_str("</div><div class=\"types\">");
    for (ty, t) in &p.types {
        out.push_str(&state_badge(t.state, ty));
    }
    out.push_str("</div>");
    for (ty, t) in &p.types {
        if let Some(msg) = &t.nack {
            let _ = write!(
                out,
                "<div class=\"nack\"><b>{} rejected by Envoy:</b> <code>{}</code></div>",
                esc(ty),
                esc(msg)
            );
        }
    }
    out.push_str("</div>");
}

/// The sidecars whose node ids name nothing in the loaded meshes.
pub(super) fn unknown_section(out: &mut String, unknown: &[&ProxyReport]) {
    if unknown.is_empty() {
        return;
    }
    out.push_str(
        "<section class=\"unknown\"><h2>Sidecars naming nothing loaded</h2><p class=\"note\">\
         Their node ids name no virtual node or gateway of the loaded meshes.</p>",
    );
    for p in unknown.iter().take(LIST_LIMIT) {
        let _ = write!(
            out,
            "<div class=\"card\"><div class=\"head\"><code>{}</code>",
            esc(&p.node_id)
        );
        connection(out, &[p]);
        out.push_str("</div>");
        sidecar(out, p);
        out.push_str("</div>");
    }
    out.push_str("</section>\n");
}
