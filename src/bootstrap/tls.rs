//! `meshplane bootstrap --xds-tls DIR`: the transport socket of the bootstrap's xDS cluster, so the
//! Envoy speaks mutual TLS to meshplane with the files `meshplane ca issue --out DIR` writes
//! (`cert.pem`, `key.pem`, `ca.pem`). The Envoy checks meshplane's certificate against `ca.pem`
//! and its name, as any TLS client checks the server it dialled.

use std::path::{Path, PathBuf};

use super::yaml_str;

/// The file names in an `--xds-tls` directory.
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";
pub const CA_FILE: &str = "ca.pem";

/// Where an Envoy's xDS credentials are, and the name meshplane's certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsTlsFiles {
    /// Holds [`CERT_FILE`], [`KEY_FILE`] and [`CA_FILE`], as the Envoy will see it.
    pub dir: PathBuf,
    /// A DNS name or IP address among the SANs of meshplane's xDS certificate (by default the
    /// host of `--xds`).
    pub server_name: String,
}

fn file(dir: &Path, name: &str) -> String {
    yaml_str(&dir.join(name).display().to_string())
}

/// The `transport_socket` of the xDS cluster, indented to sit in its cluster entry.
pub fn transport_socket(tls: &XdsTlsFiles) -> String {
    let name = tls
        .server_name
        .trim_start_matches('[')
        .trim_end_matches(']');
    let is_ip = name.parse::<std::net::IpAddr>().is_ok();
    let san_type = if is_ip { "IP_ADDRESS" } else { "DNS" };
    // SNI carries host names only.
    let sni = if is_ip {
        String::new()
    } else {
        format!("\n          sni: {}", yaml_str(name))
    };
    format!(
        r#"      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext{sni}
          common_tls_context:
            alpn_protocols: [h2]
            tls_certificates:
              - certificate_chain: {{ filename: {cert} }}
                private_key: {{ filename: {key} }}
            validation_context:
              trusted_ca: {{ filename: {ca} }}
              match_typed_subject_alt_names:
                - san_type: {san_type}
                  matcher: {{ exact: {name} }}
"#,
        cert = file(&tls.dir, CERT_FILE),
        key = file(&tls.dir, KEY_FILE),
        ca = file(&tls.dir, CA_FILE),
        name = yaml_str(name),
    )
}

#[cfg(test)]
mod tests {
    use super::super::{render_with_tls, BootstrapParams, XdsMode};
    use super::*;

    fn params(host: &str) -> BootstrapParams {
        BootstrapParams {
            mode: XdsMode::Ads,
            node_id: "mesh/demo/virtualNode/web".into(),
            xds_host: host.into(),
            xds_port: 18000,
            admin_port: 9901,
            admin_address: "127.0.0.1".into(),
        }
    }

    fn socket(host: &str, server_name: &str) -> serde_yaml_ng::Value {
        let tls = XdsTlsFiles {
            dir: "/etc/envoy/xds".into(),
            server_name: server_name.into(),
        };
        let y = render_with_tls(&params(host), Some(&tls));
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&y).unwrap();
        v["static_resources"]["clusters"][0]["transport_socket"].clone()
    }

    #[test]
    fn the_xds_cluster_speaks_mtls_with_the_issued_files() {
        let t = socket("meshplane", "meshplane");
        assert_eq!(t["name"].as_str(), Some("envoy.transport_sockets.tls"));
        let ctx = &t["typed_config"];
        assert_eq!(ctx["sni"].as_str(), Some("meshplane"));
        let common = &ctx["common_tls_context"];
        assert_eq!(common["alpn_protocols"][0].as_str(), Some("h2"));
        let cert = &common["tls_certificates"][0];
        assert_eq!(
            cert["certificate_chain"]["filename"].as_str(),
            Some("/etc/envoy/xds/cert.pem")
        );
        assert_eq!(
            cert["private_key"]["filename"].as_str(),
            Some("/etc/envoy/xds/key.pem")
        );
        let v = &common["validation_context"];
        assert_eq!(
            v["trusted_ca"]["filename"].as_str(),
            Some("/etc/envoy/xds/ca.pem")
        );
        let san = &v["match_typed_subject_alt_names"][0];
        assert_eq!(san["san_type"].as_str(), Some("DNS"));
        assert_eq!(san["matcher"]["exact"].as_str(), Some("meshplane"));
    }

    #[test]
    fn an_ip_address_is_matched_as_one_and_sends_no_sni() {
        let t = socket("127.0.0.1", "127.0.0.1");
        assert!(t["typed_config"]["sni"].is_null());
        let san = &t["typed_config"]["common_tls_context"]["validation_context"]
            ["match_typed_subject_alt_names"][0];
        assert_eq!(san["san_type"].as_str(), Some("IP_ADDRESS"));
        assert_eq!(san["matcher"]["exact"].as_str(), Some("127.0.0.1"));
    }

    #[test]
    fn without_tls_there_is_no_transport_socket() {
        let y = render_with_tls(&params("meshplane"), None);
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&y).unwrap();
        assert!(v["static_resources"]["clusters"][0]["transport_socket"].is_null());
        assert_eq!(y, super::super::render(&params("meshplane")));
    }
}
