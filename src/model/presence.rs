//! The whole-configuration rule: there must be a mesh, and something in it to serve. An empty
//! directory (or one caught between `rm -rf` and the copy that refills it) is not an empty mesh
//! to publish; it is a configuration that is not there yet.

use std::path::PathBuf;

use super::MeshModel;
use crate::diag::Problem;

/// The problems of a model built from `documents` documents, beyond those of each document.
pub(super) fn problems(model: &MeshModel, documents: usize) -> Vec<Problem> {
    if documents == 0 {
        return vec![Problem {
            file: PathBuf::from("."),
            line: 0,
            path: String::new(),
            message: "no mesh defined: no App Mesh resources found".into(),
        }];
    }
    let serves_something = model
        .meshes
        .values()
        .any(|m| !m.virtual_nodes.is_empty() || !m.virtual_gateways.is_empty());
    if serves_something {
        return Vec::new();
    }
    // Documents without any Mesh are already reported as naming an undefined mesh.
    model
        .meshes
        .values()
        .map(|m| Problem {
            file: m.origin.file.to_path_buf(),
            line: m.origin.line,
            path: String::new(),
            message: format!("mesh `{}` defines no virtual nodes or gateways", m.name),
        })
        .collect()
}
