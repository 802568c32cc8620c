//! `scripts/demo.sh` run the way the README's quick start says, from the repository, with
//! `MESHPLANE_BIN` (the binary under test: nothing is built) and `MESHPLANE_ENVOY` (nothing is
//! installed). It must print its steps at once, bring the demo up (traffic and the split), and stop
//! everything it started on Ctrl-C and on SIGTERM. The script runs in a session of its own, so that
//! every process it started, however deep, can be found afterwards by its session id.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::support::{self, repo_path};
use super::{sidecar_pid, v2_share, DEMO};

/// One line of the script's output: when it came (since the start), whether on stderr, and its text.
struct Line {
    at: Duration,
    stderr: bool,
    text: String,
}

/// `setsid bash scripts/demo.sh ARGS` with its stdout and stderr read line by line. Dropping it
/// kills (SIGKILL, by pid) whatever is still running in its session, so a failed test leaves nothing.
struct Script {
    child: Child,
    started: Instant,
    rx: mpsc::Receiver<Line>,
    output: Vec<Line>,
}

impl Script {
    fn start(args: &[&str]) -> Script {
        let mut child = Command::new("setsid")
            .arg("bash")
            .arg(repo_path("scripts/demo.sh"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("MESHPLANE_BIN", env!("CARGO_BIN_EXE_meshplane"))
            .env("MESHPLANE_ENVOY", support::envoy::envoy_bin())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let (tx, rx) = mpsc::channel();
        let read = |pipe: Box<dyn Read + Send>, stderr: bool| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for text in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let at = started.elapsed();
                    let _ = tx.send(Line { at, stderr, text });
                }
            });
        };
        read(Box::new(child.stdout.take().unwrap()), false);
        read(Box::new(child.stderr.take().unwrap()), true);
        Script {
            child,
            started,
            rx,
            output: Vec::new(),
        }
    }

    /// The script's pid: the session's id, and (as the script execs it) the demo's pid.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line, or None after `limit` without one (or at the end of both pipes).
    fn next(&mut self, limit: Duration) -> Option<&Line> {
        let line = self.rx.recv_timeout(limit).ok()?;
        self.output.push(line);
        self.output.last()
    }

    /// Reads until a line satisfies `want`, failing after `limit` in all.
    fn until(&mut self, limit: Duration, what: &str, want: impl Fn(&Line) -> bool) {
        let deadline = self.started.elapsed() + limit;
        while self.started.elapsed() < deadline {
            if self.next(Duration::from_secs(1)).is_some_and(&want) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                while self.next(Duration::from_secs(1)).is_some() {}
                panic!("exited ({status}) before {what}:\n{}", self.transcript());
            }
        }
        panic!("no {what} within {limit:?}:\n{}", self.transcript());
    }

    fn transcript(&self) -> String {
        self.output
            .iter()
            .map(|l| {
                let from = if l.stderr { "err" } else { "out" };
                format!("{:>7.2}s {from} {}\n", l.at.as_secs_f64(), l.text)
            })
            .collect()
    }

    fn signal(&self, sig: &str, target: String) {
        let ok = Command::new("kill")
            .args([sig, "--", &target])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {target}");
    }

    /// Waits up to `limit` for the script to exit, then reads the rest of its output (for 5 s at most).
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {limit:?} after the signal:\n{}",
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // The rest of the output, unless something left behind keeps the pipes open.
        let drained = Instant::now() + Duration::from_secs(5);
        while Instant::now() < drained && self.next(Duration::from_secs(1)).is_some() {}
        status
    }

    /// What every run must leave: nothing of its session running, the sidecars it reported gone,
    /// its work directory removed, and the demo's stop report.
    fn assert_stopped_cleanly(&self, status: ExitStatus) {
        let out = self.transcript();
        println!("{out}");
        assert!(status.success(), "{status}:\n{out}");
        assert!(
            self.output
                .iter()
                .any(|l| !l.stderr && l.text.starts_with("stopped ")),
            "no stop report:\n{out}"
        );
        let left = running_in_session(self.pid());
        assert!(left.is_empty(), "left running: {left:?}\n{out}");
        for pid in self.output.iter().filter_map(|l| sidecar_pid(&l.text)) {
            assert!(!running(pid), "Envoy {pid} is still running\n{out}");
        }
        let work = std::env::temp_dir().join(format!("meshplane-demo-{}", self.pid()));
        assert!(!work.exists(), "{} was left behind\n{out}", work.display());
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        for pid in running_in_session(self.pid()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (state, process group, session) of a process, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = text.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((state, pgrp, session))
}

/// A process that exists and is not a zombie.
fn running(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _, _)| state != 'Z' && state != 'X')
}

/// Every live process of session `sid` (the script, meshplane, Envoys, anything they started).
fn running_in_session(sid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|(_, _, s)| s == sid) && running(pid))
        .collect()
}

const STEPS: [&str; 3] = [
    "==> using Envoy ",
    "==> using meshplane ",
    "==> starting the demo",
];

/// The script's own steps, in order, on stderr, within a few seconds and before the demo's first line.
fn assert_steps_shown_first(script: &mut Script) {
    script.until(Duration::from_secs(30), "demo output", |l| !l.stderr);
    let out = script.transcript();
    let steps: Vec<&Line> = script
        .output
        .iter()
        .filter(|l| l.stderr && l.text.starts_with("==> "))
        .collect();
    let texts: Vec<&str> = steps.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(steps.len(), STEPS.len(), "steps {texts:?}:\n{out}");
    for (line, want) in texts.iter().zip(STEPS) {
        assert!(line.starts_with(want), "steps {texts:?}:\n{out}");
    }
    assert!(
        !texts.iter().any(|t| t.contains("building")),
        "MESHPLANE_BIN is set, yet the script builds:\n{out}"
    );
    assert!(
        steps[0].at < Duration::from_secs(5),
        "first step after {:?}:\n{out}",
        steps[0].at
    );
}

#[test]
fn demo_script_shows_its_steps_at_once_then_the_split_and_ctrl_c_stops_everything() {
    let _one = DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let mut script = Script::start(&["--rate", "50", "--duration", "90"]);
    assert_steps_shown_first(&mut script);
    // Ctrl-C goes to the terminal's foreground process group: setsid made the script (which then
    // became the demo) the leader of its group and session.
    let (_, pgrp, session) = stat(script.pid()).expect("the demo runs");
    assert_eq!((pgrp, session), (script.pid(), script.pid()));

    let mut shares = Vec::new();
    while shares.len() < 3 {
        script.until(Duration::from_secs(60), "traffic report", |l| {
            l.text.contains("frontend -> backend.demo.local")
        });
        let line = &script.output.last().unwrap().text;
        shares.push(v2_share(line).unwrap_or(0.0));
    }
    let sidecars = script
        .output
        .iter()
        .filter(|l| sidecar_pid(&l.text).is_some())
        .count();
    assert_eq!(
        sidecars,
        4,
        "three sidecars and the gateway's Envoy:\n{}",
        script.transcript()
    );
    let mean = shares.iter().sum::<f64>() / shares.len() as f64;
    assert!(mean < 25.0, "the example's 90/10 split: {shares:?}");

    script.signal("-INT", format!("-{}", script.pid()));
    let status = script.wait(Duration::from_secs(20));
    script.assert_stopped_cleanly(status);
}

#[test]
fn demo_script_stops_everything_on_sigterm_while_sidecars_start() {
    let _one = DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let mut script = Script::start(&["--rate", "50", "--duration", "90"]);
    assert_steps_shown_first(&mut script);
    script.until(Duration::from_secs(30), "first sidecar", |l| {
        sidecar_pid(&l.text).is_some()
    });
    script.signal("-TERM", script.pid().to_string());
    let status = script.wait(Duration::from_secs(20));
    script.assert_stopped_cleanly(status);
}
