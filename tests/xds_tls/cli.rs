//! The command line of the xDS port's TLS: `bootstrap --xds-tls` output and flag rules, and
//! `serve` refusing unusable or partial TLS flags.

use super::*;

#[test]
fn the_bootstrap_command_writes_the_transport_socket() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_meshplane"))
            .args(["bootstrap", "--node-id", WEB])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "--xds",
        "meshplane.internal:18000",
        "--xds-tls",
        "/etc/envoy/xds",
    ]);
    assert!(out.status.success(), "{out:?}");
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    let ctx = &y["static_resources"]["clusters"][0]["transport_socket"]["typed_config"];
    assert_eq!(ctx["sni"].as_str(), Some("meshplane.internal"));
    let common = &ctx["common_tls_context"];
    let cert = &common["tls_certificates"][0]["certificate_chain"]["filename"];
    assert_eq!(cert.as_str(), Some("/etc/envoy/xds/cert.pem"));
    let san = &common["validation_context"]["match_typed_subject_alt_names"][0];
    assert_eq!(san["matcher"]["exact"].as_str(), Some("meshplane.internal"));
    // --xds-tls-server-name overrides the name checked; it needs --xds-tls.
    let named = run(&[
        "--xds",
        "10.0.0.1:18000",
        "--xds-tls",
        "d",
        "--xds-tls-server-name",
        "mp",
    ]);
    assert!(String::from_utf8_lossy(&named.stdout).contains("exact: \"mp\""));
    let alone = run(&["--xds", "10.0.0.1:18000", "--xds-tls-server-name", "mp"]);
    assert_eq!(alone.status.code(), Some(2));
    let plain = run(&["--xds", "10.0.0.1:18000"]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("transport_socket"));
}

#[test]
fn serve_refuses_to_start_with_unusable_or_partial_tls_flags() {
    let dir = MeshDir::new();
    dir.write("mesh.yaml", &mesh(free_port(), free_port()));
    let work = tempfile::tempdir().unwrap();
    let ca = Ca::new("mesh CA");
    let server = ca.server();
    let (cert, key, ca_file) = (
        work.path().join("cert.pem"),
        work.path().join("key.pem"),
        work.path().join("ca.pem"),
    );
    std::fs::write(&cert, &server.cert).unwrap();
    // The key of another certificate: rustls finds it does not match.
    let other_key = ca.server().key;
    std::fs::write(&key, &other_key).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let serve = |flags: &[&std::path::Path]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_meshplane"));
        c.args(["serve", "--config"]).arg(dir.path());
        c.args([
            "--xds-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ]);
        for (name, f) in ["--xds-tls-cert", "--xds-tls-key", "--xds-client-ca"]
            .iter()
            .zip(flags)
        {
            c.arg(name).arg(f);
        }
        c.output().unwrap()
    };
    let out = serve(&[&cert, &key, &ca_file]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("xDS TLS"), "{stderr}");
    let key_line = other_key.lines().nth(1).unwrap();
    assert!(!stderr.contains(key_line), "the error shows the key");
    // All three or none.
    let partial = serve(&[&cert, &key]);
    assert_eq!(partial.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&partial.stderr).contains("--xds-client-ca"));
}

#[test]
fn the_ca_dir_port_flags_need_ca_dir_and_exclude_each_other_and_the_files() {
    let dir = MeshDir::new();
    let work = tempfile::tempdir().unwrap();
    let ca = work.path().join("ca");
    let serve = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_meshplane"))
            .args(["serve", "--config"])
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let refused = [
        vec!["--xds-plaintext".as_ref()],
        vec!["--xds-tls-host".as_ref(), "mp.internal".as_ref()],
        vec![
            "--ca-dir".as_ref(),
            ca.as_os_str(),
            "--xds-plaintext".as_ref(),
            "--xds-tls-host".as_ref(),
            "mp".as_ref(),
        ],
        vec![
            "--ca-dir".as_ref(),
            ca.as_os_str(),
            "--xds-plaintext".as_ref(),
            "--xds-tls-cert".as_ref(),
            "c".as_ref(),
            "--xds-tls-key".as_ref(),
            "k".as_ref(),
            "--xds-client-ca".as_ref(),
            "a".as_ref(),
        ],
    ];
    for args in refused {
        let out = serve(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    assert!(!ca.exists(), "a refused command line made the CA");
}
