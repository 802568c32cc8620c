//! Talking to a running meshplane's admin API from the command line, and printing tables.

use anyhow::Context;

pub use super::Output;

/// A running meshplane's admin API: its address, and the bearer token it requires (if any).
#[derive(Debug, Clone)]
pub struct Admin {
    pub addr: String,
    pub token: Option<meshplane::app::AdminToken>,
}

/// One GET against the admin API (plain HTTP/1.1; no client library needed).
pub fn admin_get(admin: &Admin, path: &str) -> anyhow::Result<(u16, String)> {
    admin_get_head(admin, path).map(|(status, _, body)| (status, body))
}

/// Like [`admin_get`], with the response's header lines too.
pub fn admin_get_head(admin: &Admin, path: &str) -> anyhow::Result<(u16, String, String)> {
    use std::io::{Read, Write};
    let addr = admin.addr.as_str();
    let mut stream = std::net::TcpStream::connect(addr).with_context(|| {
        format!("cannot reach meshplane's admin API at {addr} (is `meshplane serve` running?)")
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let auth = match &admin.token {
        Some(t) => format!("Authorization: Bearer {}\r\n", t.as_str()),
        None => String::new(),
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

pub fn admin_json<T: serde::de::DeserializeOwned>(admin: &Admin, path: &str) -> anyhow::Result<T> {
    let (status, body) = admin_get(admin, path)?;
    if status != 200 {
        anyhow::bail!("{path}: HTTP {status}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("{path}: unexpected answer"))
}

/// Prints rows as aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

pub fn short_version(v: &Option<String>) -> String {
    v.as_deref()
        .map(|v| v.chars().take(8).collect())
        .unwrap_or_else(|| "-".into())
}
