//! App Mesh's TLS rules, for virtual nodes and virtual gateways alike: listener TLS (a certificate
//! unless DISABLED; a listener trusts `file` or `sds` only) and client policies (`validation`
//! required; a client certificate from `file` or `sds` only; 1 to 3 ACM authorities); exactly one
//! source everywhere, non-empty paths and names, valid ports, non-empty name lists.

use super::check_port;
use crate::diag::Problem;
use crate::source::Document;
use crate::spec::{
    BackendDefaults, ClientPolicy, ListenerTls, TlsCertificate, TlsMode, TlsValidation,
};

/// App Mesh's length limit for file paths.
const MAX_PATH: usize = 255;

/// `path` is a listener's `tls`.
pub(super) fn check_listener_tls(
    doc: &Document,
    path: &str,
    tls: &ListenerTls,
    out: &mut Vec<Problem>,
) {
    match &tls.certificate {
        Some(c) => check_certificate(doc, &format!("{path}.certificate"), c, true, out),
        None if tls.mode != TlsMode::Disabled => out.push(doc.problem(
            &format!("{path}.certificate"),
            "a listener with TLS mode STRICT or PERMISSIVE needs a `certificate`",
        )),
        None => {}
    }
    if let Some(v) = &tls.validation {
        check_validation(doc, &format!("{path}.validation"), v, false, out);
    }
}

/// `path` is a backend's or the backend defaults' `clientPolicy`.
pub(super) fn check_client_policy(
    doc: &Document,
    path: &str,
    policy: &ClientPolicy,
    out: &mut Vec<Problem>,
) {
    let Some(tls) = &policy.tls else { return };
    let path = format!("{path}.tls");
    for (i, p) in tls.ports.iter().enumerate() {
        check_port(doc, &format!("{path}.ports[{i}]"), *p, out);
    }
    if let Some(c) = &tls.certificate {
        check_certificate(doc, &format!("{path}.certificate"), c, false, out);
    }
    match &tls.validation {
        Some(v) => check_validation(doc, &format!("{path}.validation"), v, true, out),
        None => out.push(doc.problem(
            &format!("{path}.validation"),
            "a TLS client policy needs `validation` (the `trust` the server's certificate is checked against)",
        )),
    }
}

/// `spec.backendDefaults.clientPolicy`, of a node or a gateway.
pub(super) fn check_backend_defaults(
    doc: &Document,
    defaults: Option<&BackendDefaults>,
    out: &mut Vec<Problem>,
) {
    if let Some(p) = defaults.and_then(|d| d.client_policy.as_ref()) {
        check_client_policy(doc, "spec.backendDefaults.clientPolicy", p, out);
    }
}

fn non_empty(doc: &Document, path: String, value: &str, max: usize, out: &mut Vec<Problem>) {
    if value.is_empty() || value.len() > max {
        let msg = if max == usize::MAX {
            "must not be empty".to_string()
        } else {
            format!("must be 1 to {max} characters")
        };
        out.push(doc.problem(&path, msg));
    }
}

/// A listener certificate (`acm`, `file` or `sds`), or a client one (`file` or `sds`).
fn check_certificate(
    doc: &Document,
    path: &str,
    c: &TlsCertificate,
    allow_acm: bool,
    out: &mut Vec<Problem>,
) {
    let count = c.acm.is_some() as u8 + c.file.is_some() as u8 + c.sds.is_some() as u8;
    if count != 1 {
        let which = if allow_acm {
            "`acm`, `file` or `sds`"
        } else {
            "`file` or `sds`"
        };
        out.push(doc.problem(path, format!("give exactly one of {which}")));
    }
    if let Some(acm) = &c.acm {
        if !allow_acm {
            out.push(doc.problem(
                &format!("{path}.acm"),
                "a client certificate comes from `file` or `sds` (App Mesh has no ACM client certificates)",
            ));
        }
        non_empty(
            doc,
            format!("{path}.acm.certificateArn"),
            &acm.certificate_arn,
            usize::MAX,
            out,
        );
    }
    if let Some(f) = &c.file {
        let p = format!("{path}.file");
        non_empty(
            doc,
            format!("{p}.certificateChain"),
            &f.certificate_chain,
            MAX_PATH,
            out,
        );
        non_empty(
            doc,
            format!("{p}.privateKey"),
            &f.private_key,
            MAX_PATH,
            out,
        );
    }
    if let Some(s) = &c.sds {
        non_empty(
            doc,
            format!("{path}.sds.secretName"),
            &s.secret_name,
            usize::MAX,
            out,
        );
    }
}

/// A `validation`: one `trust` (ACM authorities on client policies only) and, if given, a
/// non-empty list of non-empty exact names.
fn check_validation(
    doc: &Document,
    path: &str,
    v: &TlsValidation,
    allow_acm: bool,
    out: &mut Vec<Problem>,
) {
    if let Some(sans) = &v.subject_alternative_names {
        let p = format!("{path}.subjectAlternativeNames.match.exact");
        if sans.matcher.exact.is_empty() {
            out.push(doc.problem(&p, "needs at least one name"));
        }
        for (i, n) in sans.matcher.exact.iter().enumerate() {
            non_empty(doc, format!("{p}[{i}]"), n, usize::MAX, out);
        }
    }
    let path = format!("{path}.trust");
    let Some(t) = &v.trust else {
        out.push(doc.problem(&path, "`validation` needs a `trust`"));
        return;
    };
    let count = t.acm.is_some() as u8 + t.file.is_some() as u8 + t.sds.is_some() as u8;
    if count != 1 {
        let which = if allow_acm {
            "`acm`, `file` or `sds`"
        } else {
            "`file` or `sds`"
        };
        out.push(doc.problem(&path, format!("give exactly one of {which}")));
    }
    if let Some(acm) = &t.acm {
        let p = format!("{path}.acm");
        if !allow_acm {
            out.push(doc.problem(
                &p,
                "a listener trusts `file` or `sds` certificates (App Mesh has no ACM trust on listeners)",
            ));
        }
        let arns = &acm.certificate_authority_arns;
        if arns.is_empty() || arns.len() > 3 {
            out.push(doc.problem(
                &format!("{p}.certificateAuthorityArns"),
                "needs 1 to 3 certificate authority ARNs",
            ));
        }
        for (i, a) in arns.iter().enumerate() {
            non_empty(
                doc,
                format!("{p}.certificateAuthorityArns[{i}]"),
                a,
                usize::MAX,
                out,
            );
        }
    }
    if let Some(f) = &t.file {
        non_empty(
            doc,
            format!("{path}.file.certificateChain"),
            &f.certificate_chain,
            MAX_PATH,
            out,
        );
    }
    if let Some(s) = &t.sds {
        non_empty(
            doc,
            format!("{path}.sds.secretName"),
            &s.secret_name,
            usize::MAX,
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::source::loader::parse_file;
    use crate::source::LoadOutput;

    /// The field path of each problem (`file:line: path: message`).
    fn fields(problems: &[String]) -> Vec<&str> {
        problems
            .iter()
            .map(|s| s.split(": ").nth(1).unwrap_or_default())
            .collect()
    }

    fn problems(text: &str) -> Vec<String> {
        let mut out = LoadOutput::default();
        parse_file(Path::new("m.yaml"), text, &mut out);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        match super::super::validate(&out.documents) {
            Ok(_) => Vec::new(),
            Err(ps) => ps.iter().map(|p| p.to_string()).collect(),
        }
    }

    const MESH: &str = "kind: Mesh\nmeshName: demo\n---\nkind: VirtualService\nmeshName: demo\nvirtualServiceName: s\nspec: {}\n---\n";

    #[test]
    fn listener_tls_follows_app_meshs_rules() {
        let node = |tls: &str| {
            format!("{MESH}kind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listeners: [{{portMapping: {{port: 80, protocol: http}}, tls: {tls}}}]\n  serviceDiscovery: {{dns: {{hostname: a}}}}\n")
        };
        assert!(problems(&node("{mode: DISABLED}")).is_empty());
        let p = problems(&node("{mode: STRICT}"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("m.yaml:13: spec.listeners[0].tls.certificate: a listener with TLS mode STRICT or PERMISSIVE needs a `certificate`"),
            "{p:?}"
        );
        let p = problems(&node(
            "{mode: PERMISSIVE, certificate: {file: {certificateChain: '', privateKey: /k}, sds: {secretName: x}}, validation: {trust: {acm: {certificateAuthorityArns: [a]}}, subjectAlternativeNames: {match: {exact: []}}}}",
        ));
        let fields = fields(&p);
        assert_eq!(
            fields,
            [
                "spec.listeners[0].tls.certificate",
                "spec.listeners[0].tls.certificate.file.certificateChain",
                "spec.listeners[0].tls.validation.subjectAlternativeNames.match.exact",
                "spec.listeners[0].tls.validation.trust.acm",
            ],
            "{p:?}"
        );
    }

    #[test]
    fn gateways_follow_the_same_rules() {
        let gw = format!("{MESH}kind: VirtualGateway\nmeshName: demo\nvirtualGatewayName: g\nspec:\n  listeners: [{{portMapping: {{port: 80, protocol: http}}, tls: {{mode: STRICT}}}}]\n  backendDefaults: {{clientPolicy: {{tls: {{}}}}}}\n");
        let p = problems(&gw);
        let fields = fields(&p);
        assert_eq!(
            fields,
            [
                "spec.listeners[0].tls.certificate",
                "spec.backendDefaults.clientPolicy.tls.validation"
            ],
            "{p:?}"
        );
    }

    #[test]
    fn client_policies_need_validation_and_no_acm_client_certificate() {
        let node = |policy: &str| {
            format!("{MESH}kind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  backends: [{{virtualService: {{virtualServiceName: s, clientPolicy: {policy}}}}}]\n  backendDefaults: {{clientPolicy: {policy}}}\n")
        };
        let ok = "{tls: {ports: [443], certificate: {sds: {secretName: c}}, validation: {trust: {acm: {certificateAuthorityArns: [a, b, c]}}}}}";
        assert!(problems(&node(ok)).is_empty(), "{:?}", problems(&node(ok)));
        let bad = "{tls: {ports: [0], certificate: {acm: {certificateArn: x}}}}";
        let p = problems(&node(bad));
        let fields = fields(&p);
        let mut want = Vec::new();
        for base in [
            "spec.backends[0].virtualService.clientPolicy.tls",
            "spec.backendDefaults.clientPolicy.tls",
        ] {
            for f in [".ports[0]", ".certificate.acm", ".validation"] {
                want.push(format!("{base}{f}"));
            }
        }
        let mut got: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{p:?}");
        let arns = "{tls: {validation: {trust: {acm: {certificateAuthorityArns: [a, b, c, d]}}}}}";
        assert!(problems(&node(arns))
            .iter()
            .all(|p| p.contains("needs 1 to 3 certificate authority ARNs")));
    }
}
