//! The apps of tests/transparent.rs, which know nothing of meshplane: HTTP and TCP servers and
//! clients running on threads that joined a pod's network namespace.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::netns::{join, Netns};

/// An app without a sidecar of its own making: answers `<name> host=<Host> peer=<peer ip>` over
/// HTTP ([`answer`]), or another protocol's way (`handler`).
pub fn app(ns: &Netns, addr: &'static str, name: &'static str) {
    serve(ns, addr, name, answer)
}

pub fn serve(ns: &Netns, addr: &'static str, name: &'static str, handler: fn(TcpStream, &str)) {
    let path = ns.path.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        join(&path);
        let listener = TcpListener::bind(addr).expect("bind app");
        tx.send(()).expect("ready");
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || handler(conn, name));
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("app bound");
}

fn answer(mut conn: TcpStream, name: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    let host = text
        .lines()
        .find_map(|l| l.strip_prefix("host: ").or(l.strip_prefix("Host: ")))
        .unwrap_or("")
        .to_string();
    let peer = conn
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let body = format!("{name} host={host} peer={peer}");
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A TCP service: answers the first line it reads with `<name> <line> peer=<peer ip>`.
pub fn echo(mut conn: TcpStream, name: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        match conn.read(&mut byte) {
            Ok(0) | Err(_) => return,
            Ok(_) => line.push(byte[0]),
        }
    }
    let peer = conn
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&line);
    let _ = write!(conn, "{name} {} peer={peer}", text.trim_end());
}

/// One line to `addr` over TCP from `ns`, and what came back before the connection closed.
pub fn tcp_call(ns: &Netns, addr: &str, line: &str) -> Result<String, String> {
    let (addr, line) = (addr.to_string(), line.to_string());
    ns.enter(move || {
        let addr: SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .map_err(|e| format!("connect: {e}"))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        writeln!(s, "{line}").map_err(|e| format!("write: {e}"))?;
        let mut got = String::new();
        s.read_to_string(&mut got)
            .map_err(|e| format!("read: {e}"))?;
        Ok(got)
    })
}

/// `GET path` with `Host: host` to `addr`, from a thread in `ns` (as root, so the rules apply).
pub fn call(ns: &Netns, addr: &str, host: &str, path: &str) -> Result<(u16, String), String> {
    let (addr, host, path) = (addr.to_string(), host.to_string(), path.to_string());
    ns.enter(move || {
        let addr: SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .map_err(|e| format!("connect: {e}"))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| format!("write: {e}"))?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)
            .map_err(|e| format!("read: {e}"))?;
        let status = resp
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no response ({resp:?})"))?;
        let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Ok((status, body.to_string()))
    })
}

/// Polls `call` until it answers `status` with a body starting with `body`, for up to 30 s.
pub fn until(ns: &Netns, addr: &str, host: &str, status: u16, body: &str) -> String {
    let started = Instant::now();
    loop {
        let got = call(ns, addr, host, "/");
        if let Ok((s, b)) = &got {
            if *s == status && b.starts_with(body) {
                return b.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{addr} (Host {host}) never answered {status} {body}: last {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
