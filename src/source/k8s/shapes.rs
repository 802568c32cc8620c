//! Each kind's `spec` as the controller writes it, translated into App Mesh's: the resource's own
//! name field and mesh, its references, the selectors and controller-only fields dropped, and a
//! VirtualRouter's inline `routes` as Route envelopes of their own.

use serde_yaml_ng::{Mapping, Value};

use super::refs::{default_name, VIRTUAL_GATEWAY, VIRTUAL_NODE, VIRTUAL_ROUTER, VIRTUAL_SERVICE};
use super::spelling::{arn_spelling, get_path};
use super::{Cx, Translated};
use crate::spec::Kind;

/// The App Mesh name field of a resource of `kind`.
fn own_name_field(kind: Kind) -> &'static str {
    match kind {
        Kind::Mesh => "meshName",
        Kind::VirtualService => "virtualServiceName",
        Kind::VirtualNode => "virtualNodeName",
        Kind::VirtualRouter => "virtualRouterName",
        Kind::VirtualGateway => "virtualGatewayName",
        Kind::Route | Kind::GatewayRoute => "gatewayRouteName",
    }
}

impl Cx {
    /// Translates the spec of a resource of `kind` named `name` in the manifest.
    pub(super) fn resource(&mut self, kind: Kind, name: &str, spec: &mut Mapping) {
        let mut paths = Vec::new();
        let default = default_name(kind, name, &self.ns);
        let Some((aws_name, name_path)) = self.aws_name(spec, &default) else {
            return;
        };
        let renamed = (aws_name != default).then(|| (kind, default, aws_name.clone()));
        let mut env = Mapping::new();
        let own = own_name_field(kind);
        env.insert(own.into(), aws_name.clone().into());
        paths.push((own.to_string(), name_path.to_string()));
        let mesh_implicit = kind != Kind::Mesh && self.join_mesh(spec, &mut env, &mut paths);
        let routes = self.spec_shape(kind, spec, &mut env, &mut paths);
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

    /// The resource's App Mesh name (`spec.awsName`, else `default`) and the path that names it;
    /// `None` when `awsName` is not a name (a problem).
    fn aws_name(&mut self, spec: &mut Mapping, default: &str) -> Option<(String, &'static str)> {
        match spec.shift_remove("awsName") {
            Some(Value::String(s)) if !s.is_empty() => Some((s, "spec.awsName")),
            Some(_) => {
                self.problem(
                    "spec.awsName",
                    "`awsName` must be a non-empty string".into(),
                );
                None
            }
            None => Some((default.to_string(), "metadata.name")),
        }
    }

    /// The mesh of a resource other than a Mesh, by `spec.meshRef`; true when it has none (the
    /// mesh is then implicit, settled once every file is read).
    fn join_mesh(
        &mut self,
        spec: &mut Mapping,
        env: &mut Mapping,
        paths: &mut Vec<(String, String)>,
    ) -> bool {
        match self.mesh_ref(spec) {
            Some(mesh) => {
                self.mesh_ref = Some(mesh.clone());
                env.insert("meshName".into(), mesh.into());
                paths.push(("meshName".into(), "spec.meshRef.name".into()));
                false
            }
            None => {
                paths.push(("meshName".into(), "spec.meshRef".into()));
                true
            }
        }
    }

    /// The kind's own part of the translation; a VirtualRouter's inline `routes`, taken out of
    /// its spec, for [`Cx::routes`].
    fn spec_shape(
        &mut self,
        kind: Kind,
        spec: &mut Mapping,
        env: &mut Mapping,
        paths: &mut Vec<(String, String)>,
    ) -> Option<Value> {
        match kind {
            Kind::Mesh => {
                spec.shift_remove("namespaceSelector");
                spec.shift_remove("meshOwner");
                self.rename(
                    spec,
                    "spec",
                    "meshServiceDiscovery",
                    "serviceDiscovery",
                    paths,
                );
            }
            Kind::VirtualNode => {
                spec.shift_remove("podSelector");
                self.node(spec, paths);
            }
            Kind::VirtualService => self.service(spec, paths),
            Kind::VirtualRouter => return spec.shift_remove("routes"),
            Kind::VirtualGateway => {
                for s in ["namespaceSelector", "podSelector", "gatewayRouteSelector"] {
                    spec.shift_remove(s);
                }
            }
            Kind::GatewayRoute => self.gateway_route(spec, env, paths),
            Kind::Route => {}
        }
        None
    }

    /// A VirtualService spec: its provider names its node or router by reference.
    fn service(&mut self, spec: &mut Mapping, paths: &mut Vec<(String, String)>) {
        let Some(Value::Mapping(p)) = spec.get_mut("provider") else {
            return;
        };
        let mut p = std::mem::take(p);
        for (f, r) in [
            ("virtualNode", VIRTUAL_NODE),
            ("virtualRouter", VIRTUAL_ROUTER),
        ] {
            if let Some(Value::Mapping(holder)) = p.get_mut(f) {
                let path = format!("spec.provider.{f}");
                self.reference(holder, &path, &r, paths);
            }
        }
        spec.insert("provider".into(), Value::Mapping(p));
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

    /// A GatewayRoute spec: `virtualGatewayRef` names its gateway (into the envelope), and each
    /// route's target names its service by reference.
    fn gateway_route(
        &mut self,
        spec: &mut Mapping,
        env: &mut Mapping,
        paths: &mut Vec<(String, String)>,
    ) {
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
            if let Some(holder) = get_path(spec, &[r, "action", "target", "virtualService"]) {
                self.reference(holder, &path, &VIRTUAL_SERVICE, paths);
            }
        }
    }

    /// The inline `routes` of the router `router` (named at `router_path`): one Route envelope each.
    fn routes(&mut self, routes: Value, router: (&str, &str), mesh_implicit: bool) {
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
            let Value::Mapping(spec) = route else {
                self.problem(
                    &at,
                    "a route must be a mapping `{name, httpRoute, ...}`".into(),
                );
                continue;
            };
            self.route(at, spec, router, mesh.as_ref(), mesh_implicit);
        }
    }

    /// One inline route, at `at` in the router's manifest, in the router's `mesh`.
    fn route(
        &mut self,
        at: String,
        mut spec: Mapping,
        (router, router_path): (&str, &str),
        mesh: Option<&Value>,
        mesh_implicit: bool,
    ) {
        let name = match spec.shift_remove("name") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => {
                self.problem(
                    &format!("{at}.name"),
                    "a route needs a non-empty `name`".into(),
                );
                return;
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
        self.weighted_targets(&mut spec, &at, &mut paths);
        arn_spelling(&mut spec);
        let mut env = Mapping::new();
        if let Some(mesh) = mesh {
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

    /// The weighted targets of an inline route (at `at`): each names its node by reference.
    fn weighted_targets(
        &mut self,
        spec: &mut Mapping,
        at: &str,
        paths: &mut Vec<(String, String)>,
    ) {
        for r in ["httpRoute", "http2Route", "grpcRoute", "tcpRoute"] {
            let Some(Value::Sequence(targets)) =
                get_path(spec, &[r, "action"]).and_then(|a| a.get_mut("weightedTargets"))
            else {
                continue;
            };
            for (j, t) in targets.iter_mut().enumerate() {
                let Value::Mapping(holder) = t else { continue };
                let mut local = Vec::new();
                let path = format!("spec.{r}.action.weightedTargets[{j}]");
                self.reference_as(holder, &path, &mut local);
                for (from, to) in local {
                    paths.push((from, to.replacen("spec", at, 1)));
                }
            }
        }
    }
}
