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

/// A reference field of the k8s form: `<what>Ref` / `<what>ARN`, resolved into the App Mesh
/// `<what>Name`.
struct RefField {
    kind: Kind,
    what: &'static str,
    /// Joins name and namespace in the controller's default App Mesh name.
    sep: char,
}

const VIRTUAL_NODE: RefField = RefField {
    kind: Kind::VirtualNode,
    what: "virtualNode",
    sep: '_',
};
const VIRTUAL_SERVICE: RefField = RefField {
    kind: Kind::VirtualService,
    what: "virtualService",
    sep: '.',
};
const VIRTUAL_ROUTER: RefField = RefField {
    kind: Kind::VirtualRouter,
    what: "virtualRouter",
    sep: '_',
};
const VIRTUAL_GATEWAY: RefField = RefField {
    kind: Kind::VirtualGateway,
    what: "virtualGateway",
    sep: '_',
};

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

    /// Translates the spec of a resource of `kind` named `name` in the manifest.
    fn resource(&mut self, kind: Kind, name: &str, spec: &mut Mapping) {
        let mut paths = Vec::new();
        let default = match kind {
            Kind::Mesh => name.to_string(),
            Kind::VirtualService => format!("{name}.{}", self.ns),
            _ => format!("{name}_{}", self.ns),
        };
        let (aws_name, name_path) = match spec.shift_remove("awsName") {
            Some(Value::String(s)) if !s.is_empty() => (s, "spec.awsName"),
            Some(_) => {
                self.problem(
                    "spec.awsName",
                    "`awsName` must be a non-empty string".into(),
                );
                return;
            }
            None => (default.clone(), "metadata.name"),
        };
        let renamed = (aws_name != default).then(|| (kind, default, aws_name.clone()));
        let mut env = Mapping::new();
        let own = match kind {
            Kind::Mesh => "meshName",
            Kind::VirtualService => "virtualServiceName",
            Kind::VirtualNode => "virtualNodeName",
            Kind::VirtualRouter => "virtualRouterName",
            Kind::VirtualGateway => "virtualGatewayName",
            Kind::Route | Kind::GatewayRoute => "gatewayRouteName",
        };
        env.insert(own.into(), aws_name.clone().into());
        paths.push((own.to_string(), name_path.to_string()));
        let mut mesh_implicit = false;
        if kind == Kind::Mesh {
            spec.shift_remove("namespaceSelector");
            spec.shift_remove("meshOwner");
            self.rename(
                spec,
                "spec",
                "meshServiceDiscovery",
                "serviceDiscovery",
                &mut paths,
            );
        } else {
            match self.mesh_ref(spec) {
                Some(mesh) => {
                    self.mesh_ref = Some(mesh.clone());
                    env.insert("meshName".into(), mesh.into());
                    paths.push(("meshName".into(), "spec.meshRef.name".into()));
                }
                None => {
                    mesh_implicit = true;
                    paths.push(("meshName".into(), "spec.meshRef".into()));
                }
            }
        }
        let mut routes = None;
        match kind {
            Kind::VirtualNode => {
                spec.shift_remove("podSelector");
                self.node(spec, &mut paths);
            }
            Kind::VirtualService => {
                if let Some(Value::Mapping(p)) = spec.get_mut("provider") {
                    let mut p = std::mem::take(p);
                    for (f, r) in [
                        ("virtualNode", VIRTUAL_NODE),
                        ("virtualRouter", VIRTUAL_ROUTER),
                    ] {
                        if let Some(Value::Mapping(holder)) = p.get_mut(f) {
                            let path = format!("spec.provider.{f}");
                            self.reference(holder, &path, &r, &mut paths);
                        }
                    }
                    spec.insert("provider".into(), Value::Mapping(p));
                }
            }
            Kind::VirtualRouter => routes = spec.shift_remove("routes"),
            Kind::VirtualGateway => {
                for s in ["namespaceSelector", "podSelector", "gatewayRouteSelector"] {
                    spec.shift_remove(s);
                }
            }
            Kind::GatewayRoute => {
                match spec.shift_remove("virtualGatewayRef") {
                    Some(Value::Mapping(r)) => {
                        let mut holder = Mapping::new();
                        holder.insert("virtualGatewayRef".into(), Value::Mapping(r));
                        self.reference(&mut holder, "spec", &VIRTUAL_GATEWAY, &mut Vec::new());
                        if let Some(v) = holder.shift_remove("virtualGatewayName") {
                            env.insert("virtualGatewayName".into(), v);
                        }
                    }
                    Some(_) => self.problem("spec.virtualGatewayRef", "must be a mapping".into()),
                    None => self.problem(
                        "spec",
                        "missing `spec.virtualGatewayRef`: meshplane ignores gatewayRouteSelector, so a gateway route names its gateway"
                            .into(),
                    ),
                }
                paths.push(("virtualGatewayName".into(), "spec.virtualGatewayRef".into()));
                for r in ["httpRoute", "http2Route", "grpcRoute"] {
                    let path = format!("spec.{r}.action.target.virtualService");
                    if let Some(holder) = get_path(spec, &[r, "action", "target", "virtualService"])
                    {
                        self.reference(holder, &path, &VIRTUAL_SERVICE, &mut paths);
                    }
                }
            }
            Kind::Mesh | Kind::Route => {}
        }
        arn_spelling(spec);
        env.insert("spec".into(), Value::Mapping(spec.clone()));
        let by_ref = self.take_refs();
        self.out.push(Translated {
            kind,
            envelope: Value::Mapping(env),
            paths,
            start: None,
            mesh_implicit,
            renamed,
            by_ref,
        });
        if let Some(routes) = routes {
            self.routes(routes, (&aws_name, name_path), mesh_implicit);
        }
    }

    /// The references by name collected since the last resource, with the mesh's.
    fn take_refs(&mut self) -> Vec<(Kind, String)> {
        let mut refs = std::mem::take(&mut self.by_ref);
        if let Some(mesh) = &self.mesh_ref {
            refs.push((Kind::Mesh, mesh.clone()));
        }
        refs
    }

    /// `spec.meshRef.name`, the mesh's App Mesh name by the controller's rule (a Mesh is named
    /// after itself); `None` when there is no meshRef.
    fn mesh_ref(&mut self, spec: &mut Mapping) -> Option<String> {
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

    /// Reports each key of `map` that is not one of `allowed`.
    fn only_keys(&mut self, map: &Mapping, path: &str, allowed: &[&str]) {
        for (k, _) in map {
            let k = k.as_str().unwrap_or_default();
            if !allowed.contains(&k) {
                self.problem(&format!("{path}.{k}"), unknown(k));
            }
        }
    }

    /// Moves `from` (the k8s spelling) to `to` (App Mesh's) in `map` at `path`; App Mesh's
    /// spelling written in the manifest is an unknown field there.
    fn rename(
        &mut self,
        map: &mut Mapping,
        path: &str,
        from: &str,
        to: &str,
        paths: &mut Vec<(String, String)>,
    ) {
        if map.contains_key(to) {
            self.problem(
                &format!("{path}.{to}"),
                format!("unknown field `{to}` (did you mean `{from}`?)"),
            );
            map.shift_remove(to);
        }
        if let Some(v) = map.shift_remove(from) {
            map.insert(to.into(), v);
            paths.push((format!("{path}.{to}"), format!("{path}.{from}")));
        }
    }

    /// Resolves the `<what>Ref` or `<what>ARN` of `holder` (at `path`) into `<what>Name`; an
    /// empty name when it cannot (a problem), so the rest of the manifest is still read.
    fn reference(
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
        let (name, from) = match (by_ref, by_arn) {
            (Some(_), Some(_)) => {
                self.problem(
                    path,
                    format!("give one of `{ref_key}` and `{arn_key}`, not both"),
                );
                return None;
            }
            (None, None) => {
                self.problem(path, format!("missing `{ref_key}` (or `{arn_key}`)"));
                return None;
            }
            (Some(v), None) => {
                let p = format!("{path}.{ref_key}");
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
                let Some(Value::String(name)) = m.get("name").filter(|n| n.as_str() != Some(""))
                else {
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
                (name, p)
            }
            (None, Some(v)) => {
                let p = format!("{path}.{arn_key}");
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
                (name, p)
            }
        };
        Some((name, from))
    }

    /// A VirtualNode spec: backends name their services by reference; `backendGroups` is the
    /// controller's own and has no App Mesh counterpart.
    fn node(&mut self, spec: &mut Mapping, paths: &mut Vec<(String, String)>) {
        if spec.shift_remove("backendGroups").is_some() {
            self.warnings.push((
                "spec.backendGroups".into(),
                "`backendGroups` is not read: list the virtual services under `backends`".into(),
            ));
        }
        if let Some(Value::Sequence(backends)) = spec.get_mut("backends") {
            for (i, b) in backends.iter_mut().enumerate() {
                if let Some(Value::Mapping(holder)) = b.get_mut("virtualService") {
                    let path = format!("spec.backends[{i}].virtualService");
                    self.reference(holder, &path, &VIRTUAL_SERVICE, paths);
                }
            }
        }
    }

    /// The inline `routes` of the router `router` (named at `router_path`): one Route envelope each.
    fn routes(&mut self, routes: Value, (router, router_path): (&str, &str), mesh_implicit: bool) {
        let Value::Sequence(routes) = routes else {
            if !routes.is_null() {
                self.problem("spec.routes", "must be a list of routes".into());
            }
            return;
        };
        let mesh = self
            .out
            .last()
            .and_then(|t| t.envelope.get("meshName").cloned());
        for (i, route) in routes.into_iter().enumerate() {
            let at = format!("spec.routes[{i}]");
            let Value::Mapping(mut spec) = route else {
                self.problem(
                    &at,
                    "a route must be a mapping `{name, httpRoute, ...}`".into(),
                );
                continue;
            };
            let name = match spec.shift_remove("name") {
                Some(Value::String(s)) if !s.is_empty() => s,
                _ => {
                    self.problem(
                        &format!("{at}.name"),
                        "a route needs a non-empty `name`".into(),
                    );
                    continue;
                }
            };
            let mut paths = vec![
                ("spec".to_string(), at.clone()),
                ("routeName".to_string(), format!("{at}.name")),
                ("virtualRouterName".to_string(), router_path.to_string()),
                (
                    "meshName".to_string(),
                    if mesh_implicit {
                        "spec.meshRef"
                    } else {
                        "spec.meshRef.name"
                    }
                    .to_string(),
                ),
            ];
            for r in ["httpRoute", "http2Route", "grpcRoute", "tcpRoute"] {
                let Some(Value::Sequence(targets)) =
                    get_path(&mut spec, &[r, "action"]).and_then(|a| a.get_mut("weightedTargets"))
                else {
                    continue;
                };
                for (j, t) in targets.iter_mut().enumerate() {
                    let Value::Mapping(holder) = t else { continue };
                    let mut local = Vec::new();
                    let path = format!("spec.{r}.action.weightedTargets[{j}]");
                    self.reference_as(holder, &path, &mut local);
                    for (from, to) in local {
                        paths.push((from, to.replacen("spec", &at, 1)));
                    }
                }
            }
            arn_spelling(&mut spec);
            let mut env = Mapping::new();
            if let Some(mesh) = &mesh {
                env.insert("meshName".into(), mesh.clone());
            }
            env.insert("virtualRouterName".into(), router.into());
            env.insert("routeName".into(), name.into());
            env.insert("spec".into(), Value::Mapping(spec));
            let by_ref = self.take_refs();
            self.out.push(Translated {
                kind: Kind::Route,
                envelope: Value::Mapping(env),
                paths,
                start: Some(at),
                mesh_implicit,
                renamed: None,
                by_ref,
            });
        }
    }

    /// A weighted target: `virtualNodeRef`/`virtualNodeARN` → App Mesh's `virtualNode` (a bare
    /// name, not `virtualNodeName`).
    fn reference_as(
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

/// The mapping at `keys` below `map`, if every step is a mapping.
fn get_path<'a>(map: &'a mut Mapping, keys: &[&str]) -> Option<&'a mut Mapping> {
    let mut cur = map;
    for k in keys {
        match cur.get_mut(*k) {
            Some(Value::Mapping(m)) => cur = m,
            _ => return None,
        }
    }
    Some(cur)
}

/// The controller spells the TLS ARNs `certificateARN` and `certificateAuthorityARNs`; App Mesh
/// spells them `certificateArn` and `certificateAuthorityArns`.
fn arn_spelling(map: &mut Mapping) {
    for (from, to) in [
        ("certificateARN", "certificateArn"),
        ("certificateAuthorityARNs", "certificateAuthorityArns"),
    ] {
        if let Some(v) = map.shift_remove(from) {
            map.insert(to.into(), v);
        }
    }
    for (_, v) in map.iter_mut() {
        match v {
            Value::Mapping(m) => arn_spelling(m),
            Value::Sequence(s) => s.iter_mut().for_each(|v| {
                if let Value::Mapping(m) = v {
                    arn_spelling(m)
                }
            }),
            _ => {}
        }
    }
}

/// The resource name in an App Mesh ARN of `what` (`arn:aws:appmesh:<region>:<account>:mesh/<mesh>/<what>/<name>`).
fn arn_name(arn: &str, what: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Manifest {
        let Value::Mapping(m) = serde_yaml_ng::from_str(text).unwrap() else {
            panic!("not a mapping")
        };
        translate(m)
    }

    fn names(t: &Translated) -> String {
        let e = &t.envelope;
        [
            "meshName",
            "virtualServiceName",
            "virtualNodeName",
            "virtualRouterName",
            "routeName",
        ]
        .iter()
        .filter_map(|k| {
            e.get(*k)
                .and_then(Value::as_str)
                .map(|v| format!("{k}={v}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
    }

    #[test]
    fn names_follow_the_controller() {
        let m = manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: front, namespace: shop}\nspec:\n  meshRef: {name: demo, uid: x}\n");
        assert_eq!(
            names(&m.resources[0]),
            "meshName=demo virtualNodeName=front_shop"
        );
        let m = manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\nmetadata: {name: api}\nspec: {awsName: api.local, meshRef: {name: demo}}\n");
        assert_eq!(
            names(&m.resources[0]),
            "meshName=demo virtualServiceName=api.local"
        );
        let m = manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\nmetadata: {name: api}\nspec: {}\n");
        assert_eq!(names(&m.resources[0]), "virtualServiceName=api.default");
        assert!(m.resources[0].mesh_implicit);
        let m = manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: demo}\nspec: {namespaceSelector: {matchLabels: {mesh: demo}}}\n");
        assert_eq!(names(&m.resources[0]), "meshName=demo");
    }

    #[test]
    fn inline_routes_become_routes_with_resolved_targets() {
        let m = manifest(
            "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualRouter\nmetadata: {name: r, namespace: ns}\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}}]\n  routes:\n    - name: a\n      httpRoute:\n        match: {prefix: /}\n        action:\n          weightedTargets:\n            - {virtualNodeRef: {name: v1}, weight: 9}\n            - {virtualNodeARN: 'arn:aws:appmesh:eu-west-1:1:mesh/m/virtualNode/v2_other', weight: 1}\n",
        );
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        assert_eq!(m.resources.len(), 2);
        assert_eq!(names(&m.resources[1]), "virtualRouterName=r_ns routeName=a");
        let t = &m.resources[1].envelope["spec"]["httpRoute"]["action"]["weightedTargets"];
        assert_eq!(t[0]["virtualNode"].as_str(), Some("v1_ns"));
        assert_eq!(t[1]["virtualNode"].as_str(), Some("v2_other"));
        assert!(m.resources[1].paths.contains(&(
            "spec.httpRoute.action.weightedTargets[1].virtualNode".into(),
            "spec.routes[0].httpRoute.action.weightedTargets[1].virtualNodeARN".into()
        )));
    }

    #[test]
    fn other_manifests_are_skipped_and_bad_ones_reported() {
        let m = manifest(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2}\n",
        );
        assert!(m.resources.is_empty() && m.problems.is_empty());
        assert_eq!(m.skipped, Some(("apps/v1".into(), "Deployment".into())));
        let m = manifest(
            "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetdata: {name: x}\n",
        );
        assert!(
            m.problems
                .iter()
                .any(|p| p.1.contains("did you mean `metadata`")),
            "{:?}",
            m.problems
        );
        let m = manifest("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: x}\nspec:\n  backends:\n    - virtualService: {virtualServiceName: y}\n");
        assert_eq!(
            m.problems[0].0,
            "spec.backends[0].virtualService.virtualServiceName"
        );
        assert!(m.problems[0].1.contains("did you mean `virtualServiceRef`"));
    }

    #[test]
    fn arns_name_their_resource() {
        assert_eq!(
            arn_name(
                "arn:aws:appmesh:us-west-2:123:mesh/m/virtualService/a.b.svc",
                "virtualService"
            ),
            Some("a.b.svc".into())
        );
        assert_eq!(
            arn_name(
                "arn:aws:appmesh:us-west-2:123:mesh/m/virtualNode/a",
                "virtualService"
            ),
            None
        );
        assert_eq!(arn_name("nonsense", "virtualNode"), None);
    }
}
