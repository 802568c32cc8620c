//! The flag rules of docs/contract.md §4 ("Flags"), checked on every subcommand's `--help` and by
//! running the spellings: one name for one thing across commands, durations with units, `-o json`
//! for machine output, and every earlier spelling still accepted.

use std::collections::BTreeMap;
use std::process::Output;

use super::meshplane;

const COMMANDS: [&str; 10] = [
    "serve",
    "validate",
    "bootstrap",
    "status",
    "diff",
    "config",
    "generate",
    "load",
    "demo",
    "iptables",
];

fn help(command: &str) -> String {
    let out = meshplane().args([command, "--help"]).output().unwrap();
    assert!(out.status.success(), "{command} --help: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every visible flag of `command`: its long name and the rest of its help line (short form, value
/// name, and, in `--help`'s long layout, the following lines up to the next flag).
fn flags(command: &str) -> BTreeMap<String, String> {
    let text = help(command);
    let mut flags = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let t = line.trim_start();
        let flag = t.strip_prefix("--").or_else(|| {
            t.get(4..)
                .filter(|_| t.starts_with('-'))
                .and_then(|r| r.strip_prefix("--"))
        });
        // Flags are indented by 2 (`-o, --output`) or 6 (`--config`); descriptions by more.
        let indent = line.len() - t.len();
        if let Some(rest) = flag.filter(|_| indent == 2 || indent == 6) {
            flags.extend(current.take());
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            current = Some((name, t.to_string()));
        } else if let Some((_, desc)) = current.as_mut() {
            desc.push(' ');
            desc.push_str(t);
        }
    }
    flags.extend(current);
    flags
}

fn all_flags() -> BTreeMap<&'static str, BTreeMap<String, String>> {
    COMMANDS.iter().map(|c| (*c, flags(c))).collect()
}

fn run(args: &[&str]) -> Output {
    meshplane()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// The parser accepted `args` (whatever the command then made of them).
fn parses(args: &[&str]) -> bool {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    !(err.contains("error: unexpected argument")
        || err.contains("error: invalid value")
        || err.contains("cannot be used with")
        || err.contains("required arguments were not provided"))
}

#[test]
fn one_name_for_one_thing_across_commands() {
    let all = all_flags();
    let has = |c: &str, f: &str| all[c].contains_key(f);
    // meshplane's admin address: `--admin ADDR` wherever a command talks to a running server,
    // with the default `serve --admin-listen` listens on.
    let admin_default = "[default: 127.0.0.1:18001]";
    for c in ["status", "diff", "config"] {
        let f = &all[c]["admin"];
        assert!(
            f.contains("--admin <ADDR>") && f.contains(admin_default),
            "{c}: {f}"
        );
    }
    assert!(all["serve"]["admin-listen"].contains(admin_default));
    assert!(all["serve"]["xds-listen"].contains("[default: 127.0.0.1:18000]"));
    // The xDS server a client connects to: `--xds HOST:PORT`.
    for c in ["bootstrap", "load"] {
        assert!(all[c]["xds"].contains("--xds <HOST:PORT>"), "{c}");
    }
    // A node: `--node-id` (config also takes it positionally).
    for c in ["bootstrap", "load", "config", "iptables"] {
        assert!(has(c, "node-id"), "{c} has no --node-id");
    }
    // The mesh directory: `--config` on every command that reads one (validate and diff also
    // take it positionally).
    for c in ["serve", "validate", "diff", "demo", "iptables"] {
        assert!(has(c, "config"), "{c} has no --config");
    }
    // Untranslated fields as problems: `--strict`, a plain switch, on both commands that load.
    for c in ["serve", "validate"] {
        let f = &all[c]["strict"];
        assert!(f.starts_with("--strict ") || f == "--strict", "{c}: {f}");
    }
    // No other spelling of these anywhere.
    for (c, fs) in &all {
        for f in fs.keys() {
            assert!(
                ![
                    "admin-addr",
                    "admin-address",
                    "xds-addr",
                    "xds-address",
                    "node",
                    "dir",
                    "json"
                ]
                .contains(&f.as_str()),
                "{c} --{f}"
            );
        }
    }
}

#[test]
fn machine_output_is_dash_o_json_on_every_reporting_command() {
    let all = all_flags();
    for c in ["validate", "status", "diff", "config", "load"] {
        let f = all[c].get("output").unwrap_or_else(|| panic!("{c}: no -o"));
        assert!(f.starts_with("-o, --output <FORMAT>"), "{c}: {f}");
        assert!(f.contains("table") && f.contains("json"), "{c}: {f}");
        assert!(f.contains("[default: table]"), "{c}: {f}");
    }
    // Commands without a report print what they make (YAML, files, the demo's lines).
    for c in ["serve", "bootstrap", "generate", "demo", "iptables"] {
        assert!(!all[c].contains_key("output"), "{c} has -o");
    }
    assert!(run(&["validate", "-o", "json", "examples/demo"])
        .status
        .success());
}

#[test]
fn durations_take_units_and_flags_name_no_unit() {
    let all = all_flags();
    for (c, fs) in &all {
        for f in fs.keys() {
            for unit in ["-ms", "-secs", "-seconds", "-millis"] {
                assert!(!f.ends_with(unit), "{c} --{f}: say the unit in the value");
            }
        }
    }
    // Defaults are written with their unit.
    for (c, f, default) in [
        ("serve", "debounce", "100ms"),
        ("serve", "handshake-timeout", "10s"),
        ("serve", "drain-timeout", "5s"),
        ("serve", "max-wait", "10s"),
        ("serve", "rescan-interval", "30s"),
        ("load", "timeout", "60s"),
    ] {
        let help = &all[c][f];
        assert!(
            help.contains(&format!("[default: {default}]")),
            "{c} --{f}: {help}"
        );
    }
    for args in [
        &[
            "serve",
            "--config",
            "/nonexistent",
            "--debounce",
            "250ms",
            "--help",
        ][..],
        &["load", "--timeout", "2m", "--help"],
        &["load", "--timeout", "1500ms", "--help"],
        &["demo", "--duration", "90s", "--help"],
        &["demo", "--duration", "5m", "--help"],
    ] {
        assert!(parses(args), "{args:?}");
    }
    assert!(!parses(&["load", "--timeout", "3h", "--help"]));
}

#[test]
fn every_earlier_spelling_still_works() {
    // Spellings that were documented or released before the rules: scripts depend on them.
    for args in [
        &["serve", "--config", "x", "--debounce-ms", "100", "--help"][..],
        &["load", "--timeout", "60", "--help"],
        &["load", "--json", "--help"],
        &["load", "--mode", "sotw", "--help"],
        &["load", "--mode", "delta", "--help"],
        &["load", "--mode", "ads-delta", "--help"],
        &["demo", "--duration", "60", "--help"],
        &["diff", "x", "--help"],
        &["config", "frontend", "--help"],
    ] {
        assert!(parses(args), "{args:?}");
    }
    assert!(!parses(&[
        "serve",
        "--config",
        "x",
        "--debounce",
        "1s",
        "--debounce-ms",
        "5"
    ]));
    // The hidden spellings stay out of the help.
    assert!(!help("serve").contains("--debounce-ms"));
    assert!(!help("load").contains("--json"));
    // Positional and flag forms of the mesh directory and the node mean the same.
    let positional = run(&["validate", "-o", "json", "examples/demo"]);
    let flag = run(&["validate", "-o", "json", "--config", "examples/demo"]);
    assert!(flag.status.success(), "{flag:?}");
    assert_eq!(positional.stdout, flag.stdout);
    assert!(!parses(&[
        "validate",
        "examples/demo",
        "--config",
        "examples/demo"
    ]));
    assert!(!parses(&["validate"]));
    for args in [
        &["config", "--node-id", "frontend", "--admin", "127.0.0.1:1"][..],
        &["config", "frontend", "--admin", "127.0.0.1:1"],
    ] {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cannot reach meshplane's admin API"),
            "{args:?}: {err}"
        );
    }
}
