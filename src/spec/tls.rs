//! App Mesh's TLS specs, shared by virtual nodes and virtual gateways: listener TLS (termination,
//! with `validation` for mTLS) and client policies (origination towards backends). One shape each
//! for what App Mesh spells the same way on nodes and gateways; the few members App Mesh allows in
//! one place and not the other (an `acm` trust on a listener, an `acm` client certificate) are
//! kept here and refused by the validator with a reason.

use serde::Deserialize;

/// `listeners[].tls`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    pub mode: TlsMode,
    pub certificate: Option<TlsCertificate>,
    pub validation: Option<TlsValidation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum TlsMode {
    /// Only TLS connections.
    #[serde(rename = "STRICT")]
    Strict,
    /// TLS and plaintext connections both accepted.
    #[serde(rename = "PERMISSIVE")]
    Permissive,
    /// Plaintext only.
    #[serde(rename = "DISABLED")]
    Disabled,
}

/// A certificate and its key: exactly one of `acm`, `file` or `sds`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsCertificate {
    pub acm: Option<AcmCertificate>,
    pub file: Option<FileCertificate>,
    pub sds: Option<SdsSecret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcmCertificate {
    pub certificate_arn: String,
}

/// Paths Envoy reads; the key itself never enters meshplane's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileCertificate {
    pub certificate_chain: String,
    pub private_key: String,
}

/// A secret the local SDS agent (SPIRE in App Mesh) serves by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SdsSecret {
    pub secret_name: String,
}

/// `validation`: whom to trust, and which subject alternative names to accept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsValidation {
    pub trust: Option<TlsTrust>,
    pub subject_alternative_names: Option<SubjectAlternativeNames>,
}

/// Exactly one of `acm` (client policies only), `file` or `sds`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsTrust {
    pub acm: Option<AcmTrust>,
    pub file: Option<FileTrust>,
    pub sds: Option<SdsSecret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcmTrust {
    #[serde(default)]
    pub certificate_authority_arns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileTrust {
    pub certificate_chain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
pub struct SubjectAlternativeNames {
    #[serde(rename = "match")]
    pub matcher: SanMatch,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
pub struct SanMatch {
    #[serde(default)]
    pub exact: Vec<String>,
}

/// `backendDefaults.clientPolicy` and `backends[].virtualService.clientPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
pub struct ClientPolicy {
    pub tls: Option<ClientTls>,
}

/// `clientPolicy.tls`: TLS towards the backends' targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTls {
    /// App Mesh's default is true.
    pub enforce: Option<bool>,
    /// Only targets listening on these ports; every port when empty.
    #[serde(default)]
    pub ports: Vec<u32>,
    /// The client's own certificate (mTLS): `file` or `sds`.
    pub certificate: Option<TlsCertificate>,
    pub validation: Option<TlsValidation>,
}

impl ClientTls {
    /// Whether TLS is originated at all (`enforce`, default true).
    pub fn enforced(&self) -> bool {
        self.enforce.unwrap_or(true)
    }

    /// Whether the policy covers a target listening on `port`.
    pub fn covers(&self, port: u32) -> bool {
        self.enforced() && (self.ports.is_empty() || self.ports.contains(&port))
    }
}

impl ClientPolicy {
    /// The TLS policy, when it originates TLS.
    pub fn enforced_tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref().filter(|t| t.enforced())
    }
}
