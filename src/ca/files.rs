//! The CA directory on disk: made 0700, the key written 0600 (never readable by others, never
//! replaced once there), creation under a lock so servers sharing the directory make one CA, and
//! loading with the checks that keep a wrong or half-written directory from being used.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use super::{CaDir, CaError};

pub(super) const KEY: &str = "ca.key";
pub(super) const CERT: &str = "ca.crt";
/// The trust bundle while a root rotation is under way (`meshplane ca rotate`): `ca.crt` and the
/// other root, one after the other. Absent: `ca.crt` alone is the bundle.
pub(super) const BUNDLE: &str = "bundle.crt";
/// The next root between `ca rotate --step add` and `--step switch`.
pub(super) const NEXT_KEY: &str = "next.key";
pub(super) const NEXT_CERT: &str = "next.crt";
const LOCK: &str = ".lock";

/// How long the CA's own certificate is valid; `meshplane ca rotate` replaces it before then.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> CaError {
    CaError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(super) fn open_or_create(dir: &Path, trust_domain: &str) -> Result<CaDir, CaError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    // Two servers starting on one shared directory: the second waits, then loads the first's CA.
    let lock = lock(dir)?;
    if !dir.join(KEY).exists() {
        create(dir, trust_domain)?;
    }
    let ca = open(dir, trust_domain);
    drop(lock);
    ca
}

/// Writes a new CA. The certificate goes in place before the key: a directory with a key is
/// complete, so a crash in between leaves one that is simply made again.
fn create(dir: &Path, trust_domain: &str) -> Result<(), CaError> {
    let (key, cert_pem) = new_root(trust_domain)?;
    write_new(&dir.join(CERT), cert_pem.as_bytes(), 0o644)?;
    write_new(&dir.join(KEY), key.serialize_pem().as_bytes(), 0o600)?;
    tracing::info!(dir = %dir.display(), trust_domain, "created a certificate authority");
    Ok(())
}

/// Size and modification time of each of the CA's files (`None`: absent): a cheap test of whether
/// the directory may have changed since it was last read, without reading or parsing a key.
pub(super) type Stamp = Vec<Option<(u64, SystemTime)>>;

pub(super) fn stamp(dir: &Path) -> Stamp {
    [KEY, CERT, BUNDLE, NEXT_KEY, NEXT_CERT]
        .iter()
        .map(|f| {
            let m = fs::metadata(dir.join(f)).ok()?;
            Some((m.len(), m.modified().ok()?))
        })
        .collect()
}

/// Holds the directory's lock (released when dropped): one writer at a time, across processes.
pub(super) fn lock(dir: &Path) -> Result<std::fs::File, CaError> {
    let lock_path = dir.join(LOCK);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    Ok(lock)
}

/// A new self-signed root for `trust_domain`: its key and its certificate (PEM).
pub(super) fn new_root(trust_domain: &str) -> Result<(KeyPair, String), CaError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "meshplane CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "meshplane");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.subject_alt_names = vec![SanType::URI(
        format!("spiffe://{trust_domain}")
            .try_into()
            .map_err(|_| CaError::TrustDomain(trust_domain.to_string()))?,
    )];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + CA_VALIDITY;
    let cert = params.self_signed(&key)?;
    Ok((key, cert.pem()))
}

/// Writes `path` through a temporary file in the same directory, so it is whole or absent.
pub(super) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io(path))
}

pub(super) fn open(dir: &Path, trust_domain: &str) -> Result<CaDir, CaError> {
    let key_path = dir.join(KEY);
    let cert_path = dir.join(CERT);
    if !key_path.exists() {
        return Err(invalid(
            dir,
            "holds no certificate authority (run `meshplane ca init --ca-dir DIR`)",
        ));
    }
    let mode = fs::metadata(&key_path)
        .map_err(io(&key_path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(invalid(
            &key_path,
            format!(
                "the CA key is accessible by others (mode {:o}); run chmod 600",
                mode & 0o777
            ),
        ));
    }
    let key_pem = fs::read_to_string(&key_path).map_err(io(&key_path))?;
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| invalid(&key_path, format!("not a private key: {e}")))?;
    let ca_pem = fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
    check_cert(&cert_path, &ca_pem, &key, trust_domain)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)
        .map_err(|e| invalid(&cert_path, format!("not a CA certificate: {e}")))?;
    let bundle_pem = bundle(dir, &ca_pem)?;
    Ok(CaDir {
        dir: dir.to_path_buf(),
        trust_domain: trust_domain.to_string(),
        issuer,
        ca_pem,
        bundle_pem,
    })
}

/// The trust bundle: `bundle.crt`, which must hold `ca.crt` (what signs is always trusted), or
/// `ca.crt` alone.
fn bundle(dir: &Path, ca_pem: &str) -> Result<String, CaError> {
    let path = dir.join(BUNDLE);
    match fs::read_to_string(&path) {
        Ok(b) if b.contains(ca_pem.trim()) => Ok(b),
        Ok(_) => Err(invalid(&path, format!("does not hold {CERT}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ca_pem.to_string()),
        Err(e) => Err(io(&path)(e)),
    }
}

/// The certificate must be the key's, and name the trust domain asked for.
fn check_cert(path: &Path, pem: &str, key: &KeyPair, trust_domain: &str) -> Result<(), CaError> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| invalid(path, format!("not a PEM certificate: {e}")))?;
    let cert = p
        .parse_x509()
        .map_err(|e| invalid(path, format!("not a certificate: {e}")))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(invalid(path, format!("is not the certificate of {KEY}")));
    }
    let want = format!("spiffe://{trust_domain}");
    let uris: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !uris.contains(&want) {
        return Err(invalid(
            path,
            format!(
                "this CA issues for trust domain {}, not `{trust_domain}` (--trust-domain)",
                uris.first().map_or("(none)", String::as_str)
            ),
        ));
    }
    Ok(())
}

/// Writes `cert.pem`, `key.pem` (0600) and `ca.pem` into `out` (made 0700 when absent): an
/// Envoy's credentials, as `meshplane ca issue` hands them out.
pub fn write_credentials(out: &Path, c: &super::Credentials) -> Result<(), CaError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out)
        .map_err(io(out))?;
    write_new(&out.join("cert.pem"), c.cert_pem.as_bytes(), 0o644)?;
    write_new(&out.join("key.pem"), c.key_pem().as_bytes(), 0o600)?;
    write_new(&out.join("ca.pem"), c.ca_pem.as_bytes(), 0o644)?;
    Ok(())
}

/// The paths `write_credentials` writes.
pub fn credential_paths(out: &Path) -> [PathBuf; 3] {
    ["cert.pem", "key.pem", "ca.pem"].map(|f| out.join(f))
}
