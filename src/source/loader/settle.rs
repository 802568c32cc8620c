//! What the Kubernetes form's documents say about other files, settled once every file is read:
//! the config's only mesh for a manifest without `spec.meshRef`, and the `awsName` of a target
//! that a reference by `<kind>Ref` names.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Document, Judge, LoadOutput};
use crate::spec::Kind;

/// What the Kubernetes form's documents say about other files, settled once every file is read:
/// a manifest without `spec.meshRef` belongs to the config's only mesh (the controller takes the
/// mesh whose `namespaceSelector` selects its namespace, but meshplane ignores selectors), and a
/// reference by `<kind>Ref` to a resource that `spec.awsName` renamed means that `awsName`. Done
/// on every load (another file may change the answer); a manifest without `meshRef` is judged
/// only then.
pub(super) fn settle_k8s(out: &mut LoadOutput, judge: Judge) {
    let renames: HashMap<(Kind, &str), &str> = out
        .documents
        .iter()
        .filter_map(|d| d.renamed.as_ref())
        .map(|(k, default, aws)| ((*k, default.as_str()), aws.as_str()))
        .collect();
    let touched = |d: &Document| {
        d.mesh_implicit
            || d.by_ref
                .iter()
                .any(|(k, n)| renames.contains_key(&(*k, n.as_str())))
    };
    if !out.documents.iter().any(|d| touched(d)) {
        return;
    }
    let renamed = |k: Kind, n: &str| renames.get(&(k, n)).map(|s| s.to_string());
    let mut meshes: Vec<String> = out
        .documents
        .iter()
        .filter(|d| d.kind == Kind::Mesh)
        .filter_map(|d| d.names().mesh.map(str::to_string))
        .collect();
    meshes.sort_unstable();
    meshes.dedup();
    let mut settled = Vec::with_capacity(out.documents.len());
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for doc in &out.documents {
        if !touched(doc) {
            settled.push(doc.clone());
            continue;
        }
        if !doc.mesh_implicit {
            settled.push(Arc::new(doc.settled(None, &renamed)));
            continue;
        }
        if let [only] = meshes.as_slice() {
            let doc = doc.settled(Some(only), &renamed);
            judge(&doc, &mut problems, &mut warnings);
            settled.push(Arc::new(doc));
            continue;
        }
        let found = if meshes.is_empty() {
            "no Mesh is defined".to_string()
        } else {
            format!("there are {} meshes ({})", meshes.len(), meshes.join(", "))
        };
        problems.push(doc.problem(
            "meshName",
            format!(
                "no `spec.meshRef`, and {found}: name the mesh with `meshRef: {{name: <mesh>}}` \
                 (meshplane ignores namespace selectors)"
            ),
        ));
    }
    out.documents = settled;
    out.problems.append(&mut problems);
    out.warnings.append(&mut warnings);
}
