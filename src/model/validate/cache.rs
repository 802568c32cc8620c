//! What a re-validation may skip: the per-document check results of the last published validation,
//! re-used for every document the load's [`ChangeSet`] does not touch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{check_document, Validator};
use crate::change::entity_key;
use crate::change::ChangeSet;
use crate::diag::Problem;
use crate::model::MeshModel;
use crate::source::Document;
use crate::spec::Kind;

/// The per-document check results of the last published validation. A document is checked again
/// only if it is new (changed files are parsed into new documents) or one of the entities its
/// checks read (its mesh, the services, nodes or router it refers to) is in the load's
/// [`ChangeSet`]; the model itself is always rebuilt, so duplicates and missing parents are always
/// found.
#[derive(Default)]
pub struct CheckCache {
    results: CheckResults,
}

/// Problems found per document, by document identity; the `Arc` keeps the identity from being
/// reused while the entry exists.
type CheckResults = HashMap<usize, (Arc<Document>, Vec<Problem>)>;

/// Like [`validate`], re-checking only what `changes` (from the load `cache` was made from) can
/// have touched. Returns the check results of this validation too, to become the cache once what
/// it validated is published.
pub fn validate_with(
    docs: &[Arc<Document>],
    cache: &CheckCache,
    changes: &ChangeSet,
) -> (Result<MeshModel, Vec<Problem>>, CheckCache) {
    let mut v = Validator {
        problems: Vec::new(),
        model: MeshModel::default(),
    };
    v.index(docs);
    v.problems
        .extend(crate::model::presence::problems(&v.model, docs.len()));
    let results = if changes.everything() {
        v.check(docs, &CheckResults::default(), changes.set())
    } else {
        v.check(docs, &cache.results, changes.set())
    };
    v.problems
        .extend(super::tcp_egress::problems(&v.model, docs));
    let checked = CheckCache { results };
    if v.problems.is_empty() {
        (Ok(v.model), checked)
    } else {
        v.problems.sort();
        v.problems.dedup();
        (Err(v.problems), checked)
    }
}

/// Whether a check of `doc` reads one of the `changed` entities: its mesh, its own entity, one it
/// refers to, or the provider of a virtual service it refers to (a gateway route's `target.port`
/// is judged against that provider's listeners).
fn reads_changed(
    model: &MeshModel,
    doc: &Document,
    changed: &HashSet<u64>,
    changed_meshes: &HashSet<&str>,
) -> bool {
    if changed.is_empty() {
        return false;
    }
    changed.contains(&doc.entity_key())
        || doc.references().iter().any(|r| changed.contains(r))
        || changed_meshes.contains(doc.names().mesh.unwrap_or_default())
        || providers_read(model, doc).any(|p| changed.contains(&p))
}

/// The entity keys of the nodes or routers providing the virtual services `doc` refers to, as
/// far as the model has them: the second hop of the reference graph.
fn providers_read<'a>(model: &'a MeshModel, doc: &'a Document) -> impl Iterator<Item = u64> + 'a {
    let mut services = Vec::new();
    if let Some(spec) = doc.body.referring_spec() {
        spec.references(&mut |kind, name| {
            if kind == Kind::VirtualService {
                services.push(name);
            }
        });
    }
    let mesh_name = doc.names().mesh.unwrap_or_default();
    let mesh = model.meshes.get(mesh_name);
    services.into_iter().filter_map(move |vs| {
        let provider = mesh?.virtual_services.get(vs)?.spec.provider.as_ref()?;
        match (&provider.virtual_node, &provider.virtual_router) {
            (Some(n), _) => Some(entity_key(
                Kind::VirtualNode,
                mesh_name,
                &n.virtual_node_name,
            )),
            (None, Some(r)) => Some(entity_key(
                Kind::VirtualRouter,
                mesh_name,
                &r.virtual_router_name,
            )),
            (None, None) => None,
        }
    })
}

impl Validator {
    /// Second pass: field ranges and references. Each document is checked on its own against the
    /// finished model, so the pass runs on every core; a document whose previous result still
    /// holds (see [`CheckCache`]) is not checked again. Returns the results for the next pass.
    fn check(
        &mut self,
        docs: &[Arc<Document>],
        previous: &CheckResults,
        changed: &HashSet<u64>,
    ) -> CheckResults {
        use rayon::prelude::*;
        let model = &self.model;
        // Every document reads its mesh (defined, changed or gone).
        let meshes: HashSet<&str> = docs.iter().filter_map(|d| d.names().mesh).collect();
        let changed_meshes: HashSet<&str> = meshes
            .into_iter()
            .filter(|m| changed.contains(&entity_key(Kind::Mesh, m, m)))
            .collect();
        let results: Vec<_> = docs
            .par_iter()
            .with_min_len(64)
            .map(|doc| {
                let key = Arc::as_ptr(doc) as usize;
                if let Some((_, found)) = previous.get(&key) {
                    if !reads_changed(model, doc, changed, &changed_meshes) {
                        return (key, (doc.clone(), found.clone()));
                    }
                }
                let mut out = Vec::new();
                check_document(model, doc, &mut out);
                (key, (doc.clone(), out))
            })
            .collect();
        for (_, (_, found)) in &results {
            self.problems.extend(found.iter().cloned());
        }
        results.into_iter().collect()
    }
}
