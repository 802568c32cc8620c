//! Network namespaces for tests/transparent.rs: made with `unshare -n` (held open by a `sleep`),
//! entered by child processes through `nsenter` and by test threads through setns(2).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{BACKEND_IP, FRONTEND_IP};

/// A child process, killed (by its PID) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace, held open by a `sleep` that `unshare -n` started in it.
pub struct Netns {
    holder: Proc,
    pub path: String,
}

impl Netns {
    /// A new namespace, or `None` when this machine cannot make one.
    pub fn new() -> Option<Netns> {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .ok()?;
        let holder = Proc(child);
        let pid = holder.0.id();
        let path = format!("/proc/{pid}/ns/net");
        // The namespace exists once the holder's differs from ours.
        let started = Instant::now();
        while std::fs::read_link(&path).ok()? == std::fs::read_link("/proc/self/ns/net").ok()? {
            if started.elapsed() > Duration::from_secs(5) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(Netns { holder, path })
    }

    pub fn pid(&self) -> u32 {
        self.holder.0.id()
    }

    pub fn command(&self, program: &str, uid: Option<u32>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path));
        if let Some(uid) = uid {
            c.args(["-S", &uid.to_string(), "-G", &uid.to_string()]);
        }
        c.arg("--").arg(program);
        c
    }

    /// Runs `args` in the namespace (as root), with `stdin`; panics unless it succeeds.
    pub fn run(&self, args: &[&str], stdin: &str) {
        let mut c = self.command(args[0], None);
        c.args(&args[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("nsenter");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{args:?}: {out:?}");
    }

    /// Runs `f` on a thread of its own that has joined the namespace: its sockets are the
    /// namespace's.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path.clone();
        std::thread::spawn(move || {
            join(&path);
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

/// Moves the calling thread into the network namespace at `path` (setns affects one thread).
pub fn join(path: &str) {
    let file = std::fs::File::open(path).expect("open netns");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: a valid namespace fd; CLONE_NEWNET changes only this thread's network namespace.
    let rc = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Two namespaces joined by a veth pair, loopback up in each; `None` when namespaces cannot be
/// made here.
pub fn pods() -> Option<(Netns, Netns)> {
    let (a, b) = (Netns::new()?, Netns::new()?);
    let peer = b.pid().to_string();
    let veth = [
        "ip", "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b",
    ];
    a.run(&[&veth[..], &["netns", &peer]].concat(), "");
    for (ns, dev, ip) in [(&a, "veth-a", FRONTEND_IP), (&b, "veth-b", BACKEND_IP)] {
        ns.run(&["ip", "link", "set", "lo", "up"], "");
        ns.run(&["ip", "addr", "add", &format!("{ip}/24"), "dev", dev], "");
        ns.run(&["ip", "link", "set", dev, "up"], "");
    }
    Some((a, b))
}
