//! The secrets step of a build: each node whose clusters or listeners fetch a secret over ADS
//! gets those secrets meshplane's CA serves ([`crate::ca`]: its certificate and the trust
//! bundle). Nodes that name none — every node of a mesh without `acm` TLS — skip this step
//! entirely. A name no CA serves (no `--ca-dir`) is left for the pipeline to refuse.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Built;
use crate::ca::{Authority, Namer, IDENTITY_SECRET, TRUST_SECRET};
use crate::model::MeshModel;
use crate::xds::{Resource, TypeSnapshot};

/// What every secret name meshplane serves begins with: resources without it are not decoded
/// when looking for secret references.
pub(super) const HINT: &[u8] = b"meshplane/";

/// The names of the secrets `resources` fetch over ADS that meshplane serves, sorted, once each.
pub(super) fn referenced<'a>(resources: impl Iterator<Item = &'a Arc<Resource>>) -> Vec<String> {
    let mut names: Vec<String> = resources
        .flat_map(|r| crate::translate::sources::ads_secrets(&r.any, HINT))
        .filter(|n| n == IDENTITY_SECRET || n == TRUST_SECRET)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Gives every node in `built` that names secrets the secrets it names; with no CA, records the
/// names as unserved. A node naming none forgets any certificate it held.
pub(super) fn add(built: &mut [Built], model: &MeshModel, ca: Option<&Arc<Authority>>) {
    let Some(ca) = ca else {
        for b in built.iter_mut() {
            b.unserved = std::mem::take(&mut b.secrets);
        }
        return;
    };
    for b in built.iter().filter(|b| b.secrets.is_empty()) {
        ca.forget(&b.id);
    }
    if built.iter().all(|b| b.secrets.is_empty()) {
        return;
    }
    let dir = ca.ca();
    let td = dir.trust_domain();
    let wanting: Vec<usize> = (0..built.len())
        .filter(|i| !built[*i].secrets.is_empty())
        .collect();
    let this = &*built;
    let made = crate::par::map_chunks(
        &wanting,
        16,
        || Namer::new(model, td),
        |namer, &i| Some((i, secrets_of(&this[i], namer, ca))),
    );
    for (i, result) in made {
        let b = &mut built[i];
        match result {
            Ok(ts) => b.snapshot = std::mem::take(&mut b.snapshot).with_secrets(Arc::new(ts)),
            Err(e) => {
                tracing::error!(node = %b.id, error = %e, "cannot issue the node's certificate");
                b.unserved = b.secrets.clone();
            }
        }
    }
}

/// The secrets `b` names, issued (or kept) by `ca`.
fn secrets_of(
    b: &Built,
    namer: &mut Namer,
    ca: &Authority,
) -> Result<TypeSnapshot, crate::ca::CaError> {
    let mut out = BTreeMap::new();
    for name in &b.secrets {
        let r = if name == TRUST_SECRET {
            ca.trust_secret()
        } else {
            let identity = namer.identity(&b.id).unwrap_or_default();
            ca.identity_secret(&b.id, &identity)?
        };
        out.insert(name.clone(), r);
    }
    Ok(TypeSnapshot::new(out))
}

#[cfg(test)]
impl super::Builder {
    /// Tests, until a translation names secrets: makes the cached node `id` name `names`, as if
    /// its TLS fetched them over ADS.
    pub(crate) fn pretend_secrets(&mut self, id: &crate::model::ProxyId, names: &[&str]) {
        let own = self.own.get_mut(id).expect("built");
        let own = Arc::get_mut(own).expect("not shared");
        own.secrets = names.iter().map(|n| n.to_string()).collect();
    }
}
