//! Naming and references the controller's way: a resource's default App Mesh name, `meshRef`,
//! `<what>Ref` / `<what>ARN` resolved into App Mesh's `<what>Name`, and the references by name
//! each translated resource records for the loader to settle.

use serde_yaml_ng::{Mapping, Value};

use super::Cx;
use crate::spec::Kind;

/// A reference field of the k8s form: `<what>Ref` / `<what>ARN`, resolved into the App Mesh
/// `<what>Name`.
pub(super) struct RefField {
    kind: Kind,
    what: &'static str,
    /// Joins name and namespace in the controller's default App Mesh name.
    sep: char,
}

pub(super) const VIRTUAL_NODE: RefField = RefField {
    kind: Kind::VirtualNode,
    what: "virtualNode",
    sep: '_',
};
pub(super) const VIRTUAL_SERVICE: RefField = RefField {
    kind: Kind::VirtualService,
    what: "virtualService",
    sep: '.',
};
pub(super) const VIRTUAL_ROUTER: RefField = RefField {
    kind: Kind::VirtualRouter,
    what: "virtualRouter",
    sep: '_',
};
pub(super) const VIRTUAL_GATEWAY: RefField = RefField {
    kind: Kind::VirtualGateway,
    what: "virtualGateway",
    sep: '_',
};

/// The controller's App Mesh name for a resource of `kind` named `name` in namespace `ns`, when
/// `spec.awsName` does not name it.
pub(super) fn default_name(kind: Kind, name: &str, ns: &str) -> String {
    match kind {
        Kind::Mesh => name.to_string(),
        Kind::VirtualService => format!("{name}.{ns}"),
        _ => format!("{name}_{ns}"),
    }
}

impl Cx {
    /// The references by name collected since the last resource, with the mesh's.
    pub(super) fn take_refs(&mut self) -> Vec<(Kind, String)> {
        let mut refs = std::mem::take(&mut self.by_ref);
        if let Some(mesh) = &self.mesh_ref {
            refs.push((Kind::Mesh, mesh.clone()));
        }
        refs
    }

    /// `spec.meshRef.name`, the mesh's App Mesh name by the controller's rule (a Mesh is named
    /// after itself); `None` when there is no meshRef.
    pub(super) fn mesh_ref(&mut self, spec: &mut Mapping) -> Option<String> {
        let r = spec.shift_remove("meshRef")?;
        let Value::Mapping(r) = r else {
            self.problem("spec.meshRef", "must be a mapping `{name, uid}`".into());
            return Some(String::new());
        };
        self.only_keys(&r, "spec.meshRef", &["name", "uid"]);
        match r.get("name") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => {
                self.problem("spec.meshRef.name", "must be a non-empty string".into());
                Some(String::new())
            }
        }
    }

    /// Resolves the `<what>Ref` or `<what>ARN` of `holder` (at `path`) into `<what>Name`; an
    /// empty name when it cannot (a problem), so the rest of the manifest is still read.
    pub(super) fn reference(
        &mut self,
        holder: &mut Mapping,
        path: &str,
        r: &RefField,
        paths: &mut Vec<(String, String)>,
    ) {
        let name_key = format!("{}Name", r.what);
        let (name, from) = self
            .resolve(holder, path, r)
            .unwrap_or_else(|| (String::new(), path.to_string()));
        holder.insert(name_key.clone().into(), name.into());
        paths.push((format!("{path}.{name_key}"), from));
    }

    /// The App Mesh name `holder`'s reference resolves to, and the path of the reference.
    fn resolve(
        &mut self,
        holder: &mut Mapping,
        path: &str,
        r: &RefField,
    ) -> Option<(String, String)> {
        let (ref_key, arn_key, name_key) = (
            format!("{}Ref", r.what),
            format!("{}ARN", r.what),
            format!("{}Name", r.what),
        );
        if holder.contains_key(name_key.as_str()) {
            self.problem(
                &format!("{path}.{name_key}"),
                format!("unknown field `{name_key}` (did you mean `{ref_key}`?)"),
            );
            holder.shift_remove(name_key.as_str());
            return None;
        }
        let by_ref = holder.shift_remove(ref_key.as_str());
        let by_arn = holder.shift_remove(arn_key.as_str());
        match (by_ref, by_arn) {
            (Some(_), Some(_)) => {
                self.problem(
                    path,
                    format!("give one of `{ref_key}` and `{arn_key}`, not both"),
                );
                None
            }
            (None, None) => {
                self.problem(path, format!("missing `{ref_key}` (or `{arn_key}`)"));
                None
            }
            (Some(v), None) => self.resolve_ref(v, format!("{path}.{ref_key}"), r),
            (None, Some(v)) => self.resolve_arn(v, format!("{path}.{arn_key}"), r),
        }
    }

    /// A `<what>Ref` `{name, namespace}` (at `p`): the controller's default name of its target,
    /// recorded as a reference by name.
    fn resolve_ref(&mut self, v: Value, p: String, r: &RefField) -> Option<(String, String)> {
        let Value::Mapping(m) = v else {
            self.problem(&p, "must be a mapping `{name, namespace}`".into());
            return None;
        };
        let allowed: &[&str] = if r.what == "virtualGateway" {
            &["name", "namespace", "uid"]
        } else {
            &["name", "namespace"]
        };
        self.only_keys(&m, &p, allowed);
        let Some(Value::String(name)) = m.get("name").filter(|n| n.as_str() != Some("")) else {
            self.problem(&format!("{p}.name"), "must be a non-empty string".into());
            return None;
        };
        let ns = match m.get("namespace") {
            Some(Value::String(ns)) => ns.clone(),
            None | Some(Value::Null) => self.ns.clone(),
            Some(_) => {
                self.problem(&format!("{p}.namespace"), "must be a string".into());
                return None;
            }
        };
        let name = format!("{name}{}{ns}", r.sep);
        self.by_ref.push((r.kind, name.clone()));
        Some((name, p))
    }

    /// A `<what>ARN` (at `p`): the name its last segment gives.
    fn resolve_arn(&mut self, v: Value, p: String, r: &RefField) -> Option<(String, String)> {
        let Some(name) = v.as_str().and_then(|a| arn_name(a, r.what)) else {
            self.problem(
                &p,
                format!(
                    "not an App Mesh {} ARN (`arn:aws:appmesh:<region>:<account>:mesh/<mesh>/{}/<name>`)",
                    r.what, r.what
                ),
            );
            return None;
        };
        Some((name, p))
    }

    /// A weighted target: `virtualNodeRef`/`virtualNodeARN` → App Mesh's `virtualNode` (a bare
    /// name, not `virtualNodeName`).
    pub(super) fn reference_as(
        &mut self,
        holder: &mut Mapping,
        path: &str,
        paths: &mut Vec<(String, String)>,
    ) {
        if holder.contains_key("virtualNode") {
            self.problem(
                &format!("{path}.virtualNode"),
                "unknown field `virtualNode` (did you mean `virtualNodeRef`?)".into(),
            );
            return;
        }
        self.reference(holder, path, &VIRTUAL_NODE, paths);
        if let Some(v) = holder.shift_remove("virtualNodeName") {
            holder.insert("virtualNode".into(), v);
            if let Some(last) = paths.last_mut() {
                last.0 = format!("{path}.virtualNode");
            }
        }
    }
}

/// The resource name in an App Mesh ARN of `what` (`arn:aws:appmesh:<region>:<account>:mesh/<mesh>/<what>/<name>`).
pub(super) fn arn_name(arn: &str, what: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let resource = parts.nth(2)?;
    if arn_ != "arn" || service != "appmesh" {
        return None;
    }
    let rest = resource.strip_prefix("mesh/")?;
    let (_mesh, rest) = rest.split_once('/')?;
    let name = rest.strip_prefix(what)?.strip_prefix('/')?;
    (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
}
