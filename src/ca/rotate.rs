//! Replacing the CA's root without a failed request (`meshplane ca rotate`), in three steps a
//! running server follows as it sees the directory change:
//!
//! 1. `add`: a new root is made (`next.key`, `next.crt`) and added to the trust bundle
//!    (`bundle.crt` = old + new). Still the old root signs; every proxy is pushed the bundle.
//! 2. `switch`: the new root signs (`next.*` become `ca.*`; the old key is gone, its certificate
//!    stays in the bundle). Every proxy is re-issued a certificate under the new root.
//! 3. `finish`: the old root leaves the bundle (`bundle.crt` removed: `ca.crt` alone).
//!
//! Between steps, wait until every proxy has the push (`meshplane status`: SDS SYNCED). Each step
//! replaces files by rename under the directory's lock, so a server reads whole files.

use std::fs;
use std::path::Path;

use super::files::{self, BUNDLE, CERT, KEY, NEXT_CERT, NEXT_KEY};
use super::{CaDir, CaError};

/// One step of a root rotation (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateStep {
    Add,
    Switch,
    Finish,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn refuse(dir: &Path, message: &str) -> CaError {
    CaError::Invalid {
        path: dir.to_path_buf(),
        message: message.to_string(),
    }
}

/// Runs `step` on the CA in `dir` (which must open for `trust_domain`); what it did, for people.
pub fn rotate(dir: &Path, trust_domain: &str, step: RotateStep) -> Result<String, CaError> {
    let ca = CaDir::open(dir, trust_domain)?;
    let _held = files::lock(dir)?; // until the step is done
    let next = dir.join(NEXT_CERT).exists();
    let bundled = dir.join(BUNDLE).exists();
    match step {
        RotateStep::Add if next || bundled => Err(refuse(
            dir,
            "a rotation is under way (next.crt or bundle.crt): `ca rotate --step switch` or `--step finish` first",
        )),
        RotateStep::Add => {
            let (key, cert) = files::new_root(trust_domain)?;
            files::write_new(&dir.join(NEXT_CERT), cert.as_bytes(), 0o644)?;
            files::write_new(&dir.join(NEXT_KEY), key.serialize_pem().as_bytes(), 0o600)?;
            let bundle = format!("{}\n{}", ca.ca_pem().trim_end(), cert);
            files::write_new(&dir.join(BUNDLE), bundle.as_bytes(), 0o644)?;
            Ok("a new root is trusted beside the old one (bundle.crt); once every proxy has the bundle, run --step switch".into())
        }
        RotateStep::Switch if !next => Err(refuse(
            dir,
            "no new root to switch to: `ca rotate --step add` first",
        )),
        RotateStep::Switch => {
            // The certificate first: a server that reads in between finds a key that is not the
            // certificate's and keeps the CA it has until both are in place.
            fs::rename(dir.join(NEXT_CERT), dir.join(CERT)).map_err(io(dir))?;
            fs::rename(dir.join(NEXT_KEY), dir.join(KEY)).map_err(io(dir))?;
            Ok("the new root signs; proxies get new certificates. Re-issue xDS client certificates (`ca issue`), then run --step finish".into())
        }
        RotateStep::Finish if next => Err(refuse(
            dir,
            "the new root does not sign yet: `ca rotate --step switch` first",
        )),
        RotateStep::Finish if !bundled => Err(refuse(dir, "no rotation under way")),
        RotateStep::Finish => {
            fs::remove_file(dir.join(BUNDLE)).map_err(io(dir))?;
            Ok("the old root is no longer trusted; the rotation is done".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_steps_in_order_and_nothing_out_of_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let td = "meshplane.local";
        let old = CaDir::open_or_create(&dir, td).unwrap();
        assert_eq!(old.bundle_pem(), old.ca_pem());
        assert!(rotate(&dir, td, RotateStep::Switch).is_err());
        assert!(rotate(&dir, td, RotateStep::Finish).is_err());

        rotate(&dir, td, RotateStep::Add).unwrap();
        let added = CaDir::open(&dir, td).unwrap();
        assert_eq!(added.ca_pem(), old.ca_pem(), "the old root still signs");
        assert!(added.bundle_pem().contains(old.ca_pem().trim()));
        assert_eq!(added.bundle_pem().matches("BEGIN CERTIFICATE").count(), 2);
        assert!(rotate(&dir, td, RotateStep::Add).is_err());
        assert!(rotate(&dir, td, RotateStep::Finish).is_err());

        rotate(&dir, td, RotateStep::Switch).unwrap();
        let switched = CaDir::open(&dir, td).unwrap();
        assert_ne!(switched.ca_pem(), old.ca_pem());
        assert_eq!(
            switched.bundle_pem(),
            added.bundle_pem(),
            "both still trusted"
        );
        assert!(rotate(&dir, td, RotateStep::Switch).is_err());

        rotate(&dir, td, RotateStep::Finish).unwrap();
        let done = CaDir::open(&dir, td).unwrap();
        assert_eq!(done.bundle_pem(), switched.ca_pem());
        assert!(!dir.join(NEXT_KEY).exists() && !dir.join(BUNDLE).exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.join(KEY)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
