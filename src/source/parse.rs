//! One file's text → typed App Mesh documents. Each YAML document is detected as native (`kind:`)
//! or export form (`virtualNode:` …) and deserialized into the `spec` types; every unknown field and
//! the first wrong type is reported with its file, line and field path. Nothing here judges a
//! document: that is `model`.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::document::{Body, Document};
use super::limits::Limits;
use super::lines::{first_key_lines, DocLines, FileLines};
use super::loader::LoadOutput;
use super::references::compute_references;
use crate::diag::Problem;
use crate::spec::{Envelope, Kind};

/// Parses one file's text into documents and the problems of parsing, within the default
/// [`Limits`]. Judging the documents (names, ranges, references) is `model`'s.
pub fn parse_file(file: &Path, text: &str, out: &mut LoadOutput) {
    parse_file_with(file, text, &Limits::DEFAULT, out)
}

/// Like [`parse_file`]. A text beyond `limits` (size, depth, aliases) or that the streaming
/// pre-pass cannot parse is one problem and no documents.
pub fn parse_file_with(file: &Path, text: &str, limits: &Limits, out: &mut LoadOutput) {
    if let Some(p) = super::syntax::json_error(file, text) {
        out.problems.push(p);
        return;
    }
    if let Err(e) = super::prepass::check(text, limits) {
        let message = super::syntax::with_hint(e.to_string(), text, e.line());
        out.problems.push(Problem {
            file: file.to_path_buf(),
            line: e.line(),
            path: String::new(),
            message,
        });
        return;
    }
    let shared: Arc<Path> = Arc::from(file);
    let file_lines = FileLines::new(text);
    let starts = first_key_lines(text);
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let lines = DocLines::new(file_lines.clone(), i, starts.get(i).copied().unwrap_or(1));
        let value = match Value::deserialize(de) {
            Ok(v) => v,
            Err(e) => {
                let line = e.location().map(|l| l.line()).unwrap_or(lines.start());
                out.problems.push(Problem {
                    file: file.to_path_buf(),
                    line,
                    path: String::new(),
                    message: super::syntax::with_hint(
                        format!("YAML syntax error: {e}"),
                        text,
                        line,
                    ),
                });
                // The rest of the file cannot be trusted after a syntax error.
                return;
            }
        };
        if value.is_null() {
            continue; // empty document, e.g. a trailing `---`
        }
        parse_document(&shared, value, lines, out);
    }
}

fn content_hash(value: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    value.hash(&mut h);
    h.finish()
}

fn parse_document(file: &Arc<Path>, value: Value, lines: DocLines, out: &mut LoadOutput) {
    if let Value::Mapping(map) = value {
        if super::k8s::is_manifest(&map) {
            return parse_manifest(file, map, lines, out);
        }
        return parse_resource(file, Value::Mapping(map), lines, out);
    }
    parse_resource(file, value, lines, out)
}

/// A Kubernetes manifest: skipped unless it is one of the App Mesh controller's, else translated
/// into the App Mesh documents it stands for (a router with inline routes is several). A `List`
/// (what `kubectl get -o yaml` prints) is each of its items.
fn parse_manifest(
    file: &Arc<Path>,
    mut map: serde_yaml_ng::Mapping,
    lines: DocLines,
    out: &mut LoadOutput,
) {
    let is_list = map.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && map.get("kind").and_then(Value::as_str) == Some("List");
    if !is_list {
        return parse_item(file, map, &lines, "", out);
    }
    let Some(Value::Sequence(items)) = map.shift_remove("items") else {
        return;
    };
    for (i, item) in items.into_iter().enumerate() {
        let base = format!("items[{i}]");
        match item {
            Value::Mapping(m) if super::k8s::is_manifest(&m) => {
                parse_item(file, m, &lines.starting_at(&base), &format!("{base}."), out)
            }
            _ => out.problems.push(Problem {
                file: file.to_path_buf(),
                line: lines.line_of(&base),
                path: base,
                message: "a List item must be a manifest (`apiVersion`, `kind`, ...)".into(),
            }),
        }
    }
}

/// One manifest, at `base` (`""`, or `items[3].` in a List).
fn parse_item(
    file: &Arc<Path>,
    map: serde_yaml_ng::Mapping,
    lines: &DocLines,
    base: &str,
    out: &mut LoadOutput,
) {
    let m = super::k8s::translate(map);
    if let Some((api, kind)) = &m.skipped {
        tracing::debug!(file = %file.display(), line = lines.start(), api, kind, "not an App Mesh manifest; skipped");
        return;
    }
    let at = |path: &str, message: String| {
        let path = format!("{base}{path}");
        Problem {
            file: file.to_path_buf(),
            line: lines.line_of(&path),
            path,
            message,
        }
    };
    let failed = !m.problems.is_empty();
    out.problems
        .extend(m.problems.into_iter().map(|(p, msg)| at(&p, msg)));
    out.warnings
        .extend(m.warnings.into_iter().map(|(p, msg)| at(&p, msg)));
    for t in m.resources {
        let paths = t
            .paths
            .into_iter()
            .map(|(from, to)| (from, format!("{base}{to}")))
            .collect();
        let mut doc = Document {
            file: file.clone(),
            kind: t.kind,
            body: Body::Mesh(empty_envelope()),
            prefix: base.to_string(),
            paths,
            mesh_implicit: t.mesh_implicit,
            renamed: t.renamed,
            by_ref: t.by_ref,
            lines: match &t.start {
                Some(path) => lines.starting_at(&format!("{base}{path}")),
                None => lines.clone(),
            },
            entity: 0,
            references: Vec::new(),
            content: content_hash(&(t.kind, &t.envelope)),
        };
        let Some(body) = typed_body(&doc, t.envelope, out) else {
            continue;
        };
        if failed {
            continue; // read only for the rest of its problems
        }
        doc.body = body;
        doc.entity = doc.compute_entity_key();
        doc.references = compute_references(&doc);
        out.documents.push(Arc::new(doc));
    }
}

/// A document of the native or export form.
fn parse_resource(file: &Arc<Path>, value: Value, lines: DocLines, out: &mut LoadOutput) {
    let content = content_hash(&value);
    let (kind, prefix, inner) = match detect_form(value) {
        Ok(form) => form,
        Err((path, message)) => {
            out.problems.push(Problem {
                file: file.to_path_buf(),
                line: lines.line_of(path),
                path: path.to_string(),
                message,
            });
            return;
        }
    };
    let mut doc = Document {
        file: file.clone(),
        kind,
        body: Body::Mesh(empty_envelope()),
        prefix,
        paths: Vec::new(),
        mesh_implicit: false,
        renamed: None,
        by_ref: Vec::new(),
        lines,
        entity: 0,
        references: Vec::new(),
        content,
    };
    let Some(body) = typed_body(&doc, inner, out) else {
        return;
    };
    doc.body = body;
    doc.entity = doc.compute_entity_key();
    doc.references = compute_references(&doc);
    out.documents.push(Arc::new(doc));
}

/// The kind of a document, the prefix of its field paths and the resource inside it: native form
/// (`kind:`) or export form (one top-level key such as `virtualNode:`). Otherwise the field path
/// and message of why it is not an App Mesh resource.
fn detect_form(value: Value) -> Result<(Kind, String, Value), (&'static str, String)> {
    let Value::Mapping(mut map) = value else {
        return Err((
            "",
            "a document must be a mapping (one App Mesh resource)".into(),
        ));
    };
    if let Some(k) = map.remove("kind") {
        let name = k.as_str().unwrap_or_default();
        let Some(kind) = Kind::from_native(name) else {
            return Err((
                "kind",
                format!(
                    "unknown kind `{}`, expected one of Mesh, VirtualService, VirtualNode, VirtualRouter, Route, VirtualGateway, GatewayRoute",
                    serde_yaml_ng::to_string(&k).unwrap_or_default().trim()
                ),
            ));
        };
        return Ok((kind, String::new(), Value::Mapping(map)));
    }
    let found = map
        .iter()
        .find_map(|(k, _)| k.as_str().and_then(Kind::from_export_key));
    match (found, map.len()) {
        (Some(kind), 1) => {
            let inner = map.remove(kind.export_key()).unwrap_or(Value::Null);
            Ok((kind, format!("{}.", kind.export_key()), inner))
        }
        (Some(kind), _) => {
            let extra: Vec<String> = map
                .iter()
                .filter_map(|(k, _)| k.as_str())
                .filter(|k| *k != kind.export_key())
                .map(|k| format!("`{k}`"))
                .collect();
            Err((
                "",
                format!(
                    "export-form document must have only the `{}` key; also found {}",
                    kind.export_key(),
                    extra.join(", ")
                ),
            ))
        }
        (None, _) => Err((
            "",
            "not an App Mesh resource: expected a `kind` field (native form) or one top-level key \
             such as `virtualNode` (export form)"
                .into(),
        )),
    }
}

/// `inner` deserialized into the body of `doc`'s kind.
fn typed_body(doc: &Document, inner: Value, out: &mut LoadOutput) -> Option<Body> {
    match doc.kind {
        Kind::Mesh => typed(doc, inner, out).map(Body::Mesh),
        Kind::VirtualService => typed(doc, inner, out).map(Body::VirtualService),
        Kind::VirtualNode => typed(doc, inner, out).map(Body::VirtualNode),
        Kind::VirtualRouter => typed(doc, inner, out).map(Body::VirtualRouter),
        Kind::Route => typed(doc, inner, out).map(Body::Route),
        Kind::VirtualGateway => typed(doc, inner, out).map(Body::VirtualGateway),
        Kind::GatewayRoute => typed(doc, inner, out).map(Body::GatewayRoute),
    }
}

fn empty_envelope<S>() -> Envelope<S> {
    Envelope {
        mesh_name: None,
        virtual_service_name: None,
        virtual_node_name: None,
        virtual_router_name: None,
        route_name: None,
        virtual_gateway_name: None,
        gateway_route_name: None,
        spec: None,
        metadata: None,
        status: None,
    }
}

/// Deserializes into `Envelope<S>`, collecting every unknown field and the first type error.
fn typed<S: DeserializeOwned>(
    doc: &Document,
    inner: Value,
    out: &mut LoadOutput,
) -> Option<Envelope<S>> {
    let mut unknown = Vec::new();
    let mut on_unknown = |p: serde_ignored::Path<'_>| unknown.push(ignored_path(&p));
    let result: Result<Envelope<S>, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(inner, &mut on_unknown));
    for path in unknown {
        let field = path.rsplit(['.', '[']).next().unwrap_or(&path).to_string();
        let hint = if doc.is_k8s() {
            super::suggest::k8s_field(&field)
        } else {
            super::suggest::field(&field)
        };
        let hint = hint
            .map(|w| format!(" (did you mean `{w}`?)"))
            .unwrap_or_default();
        out.problems
            .push(doc.problem(&path, format!("unknown field `{field}`{hint}")));
    }
    match result {
        Ok(env) => Some(env),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            out.problems
                .push(doc.problem(&path, e.into_inner().to_string()));
            None
        }
    }
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let base = ignored_path(parent);
            if base.is_empty() {
                key.to_string()
            } else {
                format!("{base}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LoadOutput {
        let mut out = LoadOutput::default();
        parse_file(Path::new("mesh.yaml"), text, &mut out);
        out
    }

    #[test]
    fn reads_native_and_export_forms_from_one_file() {
        let out = parse(
            "kind: Mesh\nmeshName: demo\n---\nvirtualNode:\n  meshName: demo\n  virtualNodeName: a\n  metadata: {arn: x, version: 3}\n  status: {status: ACTIVE}\n  spec:\n    listeners:\n      - portMapping: {port: 8080, protocol: http}\n",
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert_eq!(out.documents.len(), 2);
        assert_eq!(out.documents[0].kind, Kind::Mesh);
        assert_eq!(out.documents[1].kind, Kind::VirtualNode);
        assert_eq!(out.documents[1].prefix, "virtualNode.");
        assert_eq!(out.documents[1].line(), 4);
    }

    #[test]
    fn reports_every_unknown_field_with_line_and_path() {
        let out = parse(
            "kind: VirtualNode\nmeshName: demo\nvirtualNodeName: a\nspec:\n  listners: []\n  backends:\n    - virtualService: {virtualServiceName: b, typo: 1}\n",
        );
        let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "mesh.yaml:5: spec.listners: unknown field `listners` (did you mean `listeners`?)",
                "mesh.yaml:7: spec.backends[0].virtualService.typo: unknown field `typo` (did you mean `type`?)",
            ]
        );
    }

    #[test]
    fn gateway_specs_are_typed_and_reject_unknown_fields() {
        let out = parse(
            "kind: VirtualGateway\nmeshName: demo\nvirtualGatewayName: gw\nspec:\n  listeners:\n    - portMapping: {port: 8080, protocol: http}\n      connectionPool: {http: {maxConnections: 5}}\n  logging: {accessLog: {file: {path: /dev/stdout, format: {text: x}}}}\n---\nkind: GatewayRoute\nmeshName: demo\nvirtualGatewayName: gw\ngatewayRouteName: r\nspec:\n  httpRoute:\n    match: {prefix: /a, hostName: {exact: a.com}}\n    action:\n      target: {virtualService: {virtualServiceName: a}}\n      rewrite: {prefix: {defaultPrefix: DISABLED}, hostname: {defaultTargetHostname: ENABLED}}\n",
        );
        let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            msgs,
            vec!["mesh.yaml:16: spec.httpRoute.match.hostName: unknown field `hostName` (did you mean `hostname`?)"]
        );
        let Body::VirtualGateway(gw) = &out.documents[0].body else {
            panic!("a gateway")
        };
        let l = &gw.spec.as_ref().unwrap().listeners[0];
        assert_eq!(l.port_mapping.port, 8080);
        assert_eq!(
            l.connection_pool
                .as_ref()
                .unwrap()
                .http
                .as_ref()
                .unwrap()
                .max_connections,
            5
        );
    }

    #[test]
    fn reports_wrong_types_with_path() {
        let out = parse(
            "virtualNode:\n  meshName: demo\n  virtualNodeName: a\n  spec:\n    listeners:\n      - portMapping:\n          port: eighty\n          protocol: http\n",
        );
        assert_eq!(out.problems.len(), 1);
        let p = &out.problems[0];
        assert_eq!(p.line, 7);
        assert_eq!(p.path, "virtualNode.spec.listeners[0].portMapping.port");
        assert!(p.message.contains("invalid type"), "{}", p.message);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let out = parse("kind: Mesh\nmeshName: [unclosed\n");
        assert_eq!(out.problems.len(), 1);
        assert!(out.problems[0].message.starts_with("YAML syntax error"));
        assert!(out.problems[0].line >= 2);
    }

    const K8S: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualRouter\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  meshRef: {name: demo, uid: x}\n  listeners:\n    - portMapping: {port: 80, protocol: http}\n  routes:\n    - name: main\n      httpRoute:\n        match: {prefix: /}\n        action:\n          weightedTargets:\n            - virtualNodeRef: {name: web-v1}\n              weight: 1\n              wieght: 2\n";

    #[test]
    fn k8s_manifests_load_beside_other_manifests_with_their_own_paths() {
        let out = parse(K8S);
        let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            msgs,
            vec!["mesh.yaml:24: spec.routes[0].httpRoute.action.weightedTargets[0].wieght: unknown field `wieght` (did you mean `weight`?)"]
        );
        let kinds: Vec<Kind> = out.documents.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, vec![Kind::VirtualRouter, Kind::Route]);
        let route = &out.documents[1];
        assert_eq!(route.names().virtual_router, Some("web_shop"));
        assert_eq!(route.names().mesh, Some("demo"));
        assert_eq!(route.line(), 17);
        let p = route.problem("spec.httpRoute.action.weightedTargets[0].virtualNode", "x");
        assert_eq!(
            (p.line, p.path.as_str()),
            (
                22,
                "spec.routes[0].httpRoute.action.weightedTargets[0].virtualNodeRef"
            )
        );
        let p = route.problem("routeName", "x");
        assert_eq!((p.line, p.path.as_str()), (17, "spec.routes[0].name"));
        let p = out.documents[0].problem("virtualRouterName", "x");
        assert_eq!((p.line, p.path.as_str()), (10, "metadata.name"));
    }

    #[test]
    fn k8s_problems_name_the_manifest_field() {
        let out = parse("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: a}\nspec:\n  podSelector: {matchLabels: {app: a}}\n  backends:\n    - virtualService:\n        virtualServiceRf: {name: b}\n  listners: []\n");
        let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "mesh.yaml:7: spec.backends[0].virtualService: missing `virtualServiceRef` (or `virtualServiceARN`)",
                "mesh.yaml:8: spec.backends[0].virtualService.virtualServiceRf: unknown field `virtualServiceRf` (did you mean `virtualServiceRef`?)",
                "mesh.yaml:9: spec.listners: unknown field `listners` (did you mean `listeners`?)",
            ]
        );
        let out = parse("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: a}\nspec:\n  listners: []\n");
        assert_eq!(
            out.problems[0].to_string(),
            "mesh.yaml:5: spec.listners: unknown field `listners` (did you mean `listeners`?)"
        );
        assert_eq!(out.documents[0].names().virtual_node, Some("a_default"));
    }

    #[test]
    fn k8s_gateways_load_with_their_names_and_refs() {
        let out = parse("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualGateway\nmetadata: {name: ingress, namespace: edge}\nspec:\n  meshRef: {name: demo, uid: u}\n  namespaceSelector: {matchLabels: {gateway: ingress}}\n  podSelector: {matchLabels: {app: ingress}}\n  gatewayRouteSelector: {matchLabels: {gateway: ingress}}\n  listeners:\n    - portMapping: {port: 8088, protocol: http}\n---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: GatewayRoute\nmetadata: {name: shop, namespace: edge}\nspec:\n  meshRef: {name: demo, uid: u}\n  virtualGatewayRef: {name: ingress, namespace: edge, uid: v}\n  httpRoute:\n    match: {prefix: /shop}\n    action:\n      target:\n        virtualService:\n          virtualServiceRef: {name: web, namespace: shop}\n");
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        let [gw, route] = &out.documents[..] else {
            panic!("{:?}", out.documents)
        };
        assert_eq!(
            (gw.kind, gw.names().virtual_gateway),
            (Kind::VirtualGateway, Some("ingress_edge"))
        );
        assert_eq!(route.kind, Kind::GatewayRoute);
        assert_eq!(route.names().gateway_route, Some("shop_edge"));
        assert_eq!(route.names().virtual_gateway, Some("ingress_edge"));
        let Body::GatewayRoute(e) = &route.body else {
            panic!()
        };
        let target = e.spec.as_deref().and_then(|s| s.target()).unwrap();
        assert_eq!(target.virtual_service.virtual_service_name, "web.shop");
        let Body::VirtualGateway(e) = &gw.body else {
            panic!()
        };
        // The selectors are gone (no unknown field); the listener is typed.
        assert_eq!(e.spec.as_deref().unwrap().listeners.len(), 1);
        let p = route.problem(
            "spec.httpRoute.action.target.virtualService.virtualServiceName",
            "x",
        );
        assert_eq!(
            (p.line, p.path.as_str()),
            (
                23,
                "spec.httpRoute.action.target.virtualService.virtualServiceRef"
            )
        );
    }

    #[test]
    fn a_kubectl_get_list_is_each_of_its_items() {
        let out = parse("apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n  - apiVersion: appmesh.k8s.aws/v1beta2\n    kind: VirtualNode\n    metadata:\n      name: a\n      namespace: shop\n      uid: 1b2c\n      annotations: {kubectl.kubernetes.io/last-applied-configuration: \"{}\"}\n    spec:\n      meshRef: {name: demo, uid: x}\n      listeners:\n        - portMapping: {port: 80, protocol: htp}\n    status:\n      virtualNodeARN: arn:aws:appmesh:us-west-2:1:mesh/demo/virtualNode/a_shop\n  - apiVersion: v1\n    kind: Service\n    metadata: {name: a}\n  - apiVersion: appmesh.k8s.aws/v1beta2\n    kind: VirtualService\n    metadata: {name: a, namespace: shop}\n    spec:\n      meshRef: {name: demo, uid: x}\n      provider: {virtualNode: {virtualNodeRef: {name: a}}}\n");
        let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            msgs[0].starts_with("mesh.yaml:15: items[0].spec.listeners[0].portMapping.protocol: unknown variant `htp`"),
            "{msgs:?}"
        );
        let [vs] = &out.documents[..] else {
            panic!("{:?}", out.documents)
        };
        assert_eq!(vs.names().virtual_service, Some("a.shop"));
        assert_eq!(vs.line(), 21);
        let p = vs.problem("spec.provider.virtualNode.virtualNodeName", "x");
        assert_eq!(
            (p.line, p.path.as_str()),
            (26, "items[2].spec.provider.virtualNode.virtualNodeRef")
        );
        assert_eq!(
            vs.problem("virtualServiceName", "x").path,
            "items[2].metadata.name"
        );
    }
}
