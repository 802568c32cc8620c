//! The Kubernetes form: the App Mesh controller's manifests (`apiVersion: appmesh.k8s.aws/v1beta2`)
//! as `kubectl apply -f` took them, translated into the App Mesh envelopes the native form writes
//! (name fields and `spec`), so that everything after parsing sees one shape.
//!
//! Naming and references follow the controller: a resource's App Mesh name is `spec.awsName`, else
//! `<name>.<namespace>` for a VirtualService, `<name>_<namespace>` for the other namespaced kinds and
//! `<name>` for a Mesh; a missing `metadata.namespace` is `default` (kubectl's), a reference without
//! `namespace` is in the referring resource's namespace, and an ARN names its resource by its last
//! segment. Selectors are accepted and ignored. A k8s VirtualRouter's inline `routes` become one
//! Route envelope each. Every translated field keeps the path the user wrote (`paths`), so problems
//! found later point into the manifest.
//!
//! This module reads a manifest's envelope (`apiVersion`, `kind`, `metadata`); `refs` names
//! resources and resolves references the controller's way, `shapes` translates each kind's
//! `spec`, and `spelling` moves the fields the controller spells differently from App Mesh.

mod refs;
mod shapes;
mod spelling;
#[cfg(test)]
mod tests;

use serde_yaml_ng::{Mapping, Value};

use crate::spec::Kind;

/// The API group of the App Mesh controller's resources.
const GROUP: &str = "appmesh.k8s.aws/";
/// The only version of it that is read (v1beta1 had other shapes and is long retired).
const VERSION: &str = "appmesh.k8s.aws/v1beta2";

/// One App Mesh resource translated from a manifest.
#[derive(Debug)]
pub(super) struct Translated {
    pub kind: Kind,
    /// Name fields and `spec`, as the native form writes them (without `kind`).
    pub envelope: Value,
    /// App Mesh field path → the path of the same field in the manifest; the longest match wins.
    pub paths: Vec<(String, String)>,
    /// The manifest path where this resource starts (`spec.routes[1]` for an inline route).
    pub start: Option<String>,
    /// No `spec.meshRef`: the mesh is the config's only one, settled once every file is read.
    pub mesh_implicit: bool,
    /// (kind, the controller's default name, `spec.awsName`) when `awsName` renames the resource:
    /// references to it by `<kind>Ref` then mean the `awsName`, settled once every file is read.
    pub renamed: Option<(Kind, String, String)>,
    /// The (kind, default name) of every resource this one names by `meshRef` or `<kind>Ref`.
    pub by_ref: Vec<(Kind, String)>,
}

/// What a manifest amounts to.
#[derive(Debug, Default)]
pub(super) struct Manifest {
    pub resources: Vec<Translated>,
    /// (manifest path, message) of what makes it unreadable: its resources are only read for
    /// the rest of their problems then.
    pub problems: Vec<(String, String)>,
    /// (manifest path, message) of what is read but plays no part.
    pub warnings: Vec<(String, String)>,
    /// Not an App Mesh resource (`apiVersion`, `kind`): skipped.
    pub skipped: Option<(String, String)>,
}

/// Whether a document is a Kubernetes manifest (it has an `apiVersion`).
pub(super) fn is_manifest(map: &Mapping) -> bool {
    map.contains_key("apiVersion")
}

/// Translates one manifest.
pub(super) fn translate(mut map: Mapping) -> Manifest {
    let mut m = Manifest::default();
    let api = str_of(map.get("apiVersion"));
    let kind_name = str_of(map.get("kind"));
    if !api.starts_with(GROUP) {
        m.skipped = Some((api, kind_name));
        return m;
    }
    if api != VERSION {
        m.problems.push((
            "apiVersion".into(),
            format!("`{api}` is not read: the App Mesh controller's manifests are `{VERSION}`"),
        ));
        return m;
    }
    let kind = match kind_name.as_str() {
        "Mesh" => Kind::Mesh,
        "VirtualService" => Kind::VirtualService,
        "VirtualNode" => Kind::VirtualNode,
        "VirtualRouter" => Kind::VirtualRouter,
        "VirtualGateway" => Kind::VirtualGateway,
        "GatewayRoute" => Kind::GatewayRoute,
        // The controller's BackendGroup names no App Mesh resource of its own.
        "BackendGroup" => {
            m.skipped = Some((api, kind_name));
            return m;
        }
        _ => {
            m.problems.push((
                "kind".into(),
                format!(
                    "unknown kind `{kind_name}` for {VERSION}, expected one of Mesh, VirtualService, VirtualNode, VirtualRouter, VirtualGateway, GatewayRoute"
                ),
            ));
            return m;
        }
    };
    for (k, _) in map.iter() {
        let k = k.as_str().unwrap_or_default();
        if !matches!(k, "apiVersion" | "kind" | "metadata" | "spec" | "status") {
            m.problems.push((k.to_string(), unknown(k)));
        }
    }
    let mut cx = Cx::default();
    let (name, namespace) = cx.metadata(map.get("metadata"), kind);
    let mut spec = match map.shift_remove("spec") {
        None | Some(Value::Null) => Mapping::new(),
        Some(Value::Mapping(s)) => s,
        Some(_) => {
            cx.problem("spec", "`spec` must be a mapping".into());
            Mapping::new()
        }
    };
    if let (Some(name), Some(namespace)) = (name, namespace) {
        cx.ns = namespace;
        cx.resource(kind, &name, &mut spec);
    }
    m.problems.append(&mut cx.problems);
    m.warnings = cx.warnings;
    m.resources = cx.out;
    m
}

fn str_of(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn unknown(field: &str) -> String {
    let hint = super::suggest::k8s_field(field)
        .map(|w| format!(" (did you mean `{w}`?)"))
        .unwrap_or_default();
    format!("unknown field `{field}`{hint}")
}

/// The translation of one manifest under way.
#[derive(Default)]
struct Cx {
    /// The manifest's namespace: references without one are in it.
    ns: String,
    problems: Vec<(String, String)>,
    warnings: Vec<(String, String)>,
    out: Vec<Translated>,
    /// References by name of the resource being translated (see [`Translated::by_ref`]).
    by_ref: Vec<(Kind, String)>,
    /// `spec.meshRef.name`, which the inline routes of a router share.
    mesh_ref: Option<String>,
}

impl Cx {
    fn problem(&mut self, path: &str, message: String) {
        self.problems.push((path.to_string(), message));
    }

    /// `metadata.name`, and `metadata.namespace` (`default` when absent; none for a Mesh, which is
    /// cluster-scoped).
    fn metadata(&mut self, meta: Option<&Value>, kind: Kind) -> (Option<String>, Option<String>) {
        let Some(Value::Mapping(meta)) = meta else {
            self.problem("metadata", "missing `metadata.name`".into());
            return (None, None);
        };
        let name = match meta.get("name") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => {
                self.problem(
                    "metadata.name",
                    "`metadata.name` must be a non-empty string".into(),
                );
                None
            }
        };
        let namespace = match meta.get("namespace") {
            None | Some(Value::Null) => "default".to_string(),
            Some(Value::String(s)) if kind != Kind::Mesh => s.clone(),
            Some(Value::String(_)) => String::new(),
            Some(_) => {
                self.problem("metadata.namespace", "must be a string".into());
                return (name, None);
            }
        };
        (name, Some(namespace))
    }

    /// Reports each key of `map` that is not one of `allowed`.
    fn only_keys(&mut self, map: &Mapping, path: &str, allowed: &[&str]) {
        for (k, _) in map {
            let k = k.as_str().unwrap_or_default();
            if !allowed.contains(&k) {
                self.problem(&format!("{path}.{k}"), unknown(k));
            }
        }
    }
}
