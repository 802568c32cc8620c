//! Per-type variants, made in the build stage: for every variant in demand
//! ([`crate::xds::variants`]), a node's clusters and listeners re-pointed from ADS at the per-type
//! services on the Envoy's cluster for meshplane (`translate::sources`); endpoints and route tables
//! are the same in every variant and shared. A node whose clusters and listeners did not change
//! keeps its previous variants' type snapshots, so an edit converts only what it touched.

use std::collections::HashMap;
use std::sync::Arc;

use crate::translate::sources::for_per_type_services;
use crate::xds::{Resource, Snapshot, TypeSnapshot, VariantKey};

/// A node's variants, by key.
pub(super) type Variants = Vec<(VariantKey, Arc<Snapshot>)>;

/// Converted resources of one build, by variant and source resource (the same target cluster is
/// shared by every client of a service: converted once).
#[derive(Default)]
/// Keyed by the source's address: it outlives the build, and is only compared.
pub(super) struct Converted(HashMap<(usize, usize), Arc<Resource>>);

/// The variants `wanted` of `snap`, reusing `previous` (made from the node's last types, `last`)
/// for types that are the very same.
pub(super) fn make(
    snap: &Snapshot,
    wanted: &[VariantKey],
    last: Option<&[Arc<TypeSnapshot>; crate::xds::TYPE_COUNT]>,
    previous: Option<&Variants>,
    memo: &mut Converted,
) -> Variants {
    wanted
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let old = previous.and_then(|p| p.iter().find(|(k, _)| k == key));
            let same = |t: usize| last.is_some_and(|l| Arc::ptr_eq(&l[t], &snap.types[t]));
            let mut convert = |t: usize| match old {
                Some((_, v)) if same(t) => v.types[t].clone(),
                _ => convert(&snap.types[t], i, key, memo),
            };
            let (cds, lds) = (convert(0), convert(2));
            let types = [cds, snap.types[1].clone(), lds, snap.types[3].clone()];
            let secrets = snap.types[crate::xds::SDS].clone();
            let v = Snapshot::from_shared(types).with_secrets(secrets);
            (key.clone(), Arc::new(v))
        })
        .collect()
}

/// `ts` with every ADS reference pointed at `key`'s per-type service; `ts` itself when nothing in
/// it refers through ADS.
fn convert(
    ts: &Arc<TypeSnapshot>,
    index: usize,
    key: &VariantKey,
    memo: &mut Converted,
) -> Arc<TypeSnapshot> {
    let mut changed = false;
    let resources = ts
        .resources
        .iter()
        .map(|(name, r)| {
            let slot = (index, Arc::as_ptr(r) as usize);
            let out = match memo.0.get(&slot) {
                Some(done) => done.clone(),
                None => {
                    let done = match for_per_type_services(&r.any, key.delta, &key.cluster) {
                        Some(any) => Arc::new(Resource::new(name.clone(), any)),
                        None => r.clone(),
                    };
                    memo.0.insert(slot, done.clone());
                    done
                }
            };
            changed |= !Arc::ptr_eq(&out, r);
            (name.clone(), out)
        })
        .collect();
    if changed {
        Arc::new(TypeSnapshot::new(resources))
    } else {
        ts.clone()
    }
}
