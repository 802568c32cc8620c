//! The Kubernetes form (contract §1): the App Mesh controller's manifests load as the same mesh the
//! native and export forms describe, beside the other manifests of the same files, and their
//! problems point into the manifests.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use meshplane::app::Pipeline;

fn published(dir: &Path) -> BTreeMap<String, [String; 4]> {
    let mut p = Pipeline::new(dir.to_path_buf());
    assert!(p.reload(None), "{} does not load", dir.display());
    p.cache.versions()
}

fn fixture(form: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/k8s_form")
        .join(form)
}

fn validate(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meshplane"))
        .arg("validate")
        .arg(dir)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn one_mesh_in_three_forms_publishes_identical_snapshots() {
    let native = published(&fixture("native"));
    assert_eq!(
        native.keys().collect::<Vec<_>>(),
        [
            "mesh/demo/virtualGateway/ingress_shop",
            "mesh/demo/virtualNode/backend-v1",
            "mesh/demo/virtualNode/backend-v2_shop",
            "mesh/demo/virtualNode/frontend_shop",
        ]
    );
    assert_eq!(published(&fixture("export")), native, "export form");
    assert_eq!(published(&fixture("k8s")), native, "Kubernetes form");
}

#[test]
fn a_file_mixing_deployments_services_and_app_mesh_manifests_validates() {
    // k8s/frontend.yaml holds a Deployment, a Service, a VirtualNode and a VirtualService.
    let (code, text) = validate(&fixture("k8s"));
    assert_eq!(code, 0, "{text}");
}

#[test]
fn the_kubernetes_example_validates() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/k8s");
    let (code, text) = validate(&examples);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn problems_name_the_manifest_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mesh.yaml"),
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: demo}\nspec: {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n---\n\
apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: web, namespace: shop}\n\
spec:\n  listeners:\n    - portMapping: {port: 80, protocol: http}\n  serviceDiscovery:\n    dns: {hostname: web}\n  backends:\n    - virtualService:\n        virtualServiceRef: {name: ghost}\n---\n\
apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualRouter\nmetadata: {name: r, namespace: shop}\n\
spec:\n  listeners:\n    - portMapping: {port: 80, protocol: http}\n  routes:\n    - name: main\n      httpRoute:\n        match: {prefix: /}\n        action:\n          weightedTargets:\n            - {virtualNodeRef: {name: web}, weight: 1, wieght: 2}\n",
    )
    .unwrap();
    let (code, text) = validate(dir.path());
    assert_eq!(code, 1, "{text}");
    for want in [
        "app.yaml:30: spec.routes[0].httpRoute.action.weightedTargets[0].wieght: unknown field `wieght` (did you mean `weight`?)",
        "app.yaml:16: spec.backends[0].virtualService.virtualServiceRef: VirtualService `ghost.shop` is not defined in mesh `demo`",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // With the typo fixed, the dangling backend is no longer "perhaps a consequence".
    let app = std::fs::read_to_string(dir.path().join("app.yaml")).unwrap();
    std::fs::write(dir.path().join("app.yaml"), app.replace(", wieght: 2", "")).unwrap();
    let (code, text) = validate(dir.path());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("1 problem(s)"), "{text}");
    assert!(!text.contains("consequence"), "{text}");
}

#[test]
fn an_aws_name_edited_in_one_file_reaches_the_manifests_that_refer_to_it() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["mesh.yaml", "frontend.yaml", "backend.yaml", "gateway.yaml"] {
        std::fs::copy(fixture("k8s").join(f), dir.path().join(f)).unwrap();
    }
    // The gateway route, in its own file, targets the service that is renamed below.
    let gateway = dir.path().join("gateway.yaml");
    let text = std::fs::read_to_string(&gateway).unwrap();
    std::fs::write(
        &gateway,
        text.replace("{name: frontend}", "{name: backend}"),
    )
    .unwrap();
    let mut p = Pipeline::new(dir.path().to_path_buf());
    assert!(p.reload(None));
    let before = p.cache.versions();
    // The router in the same file refers to the node by virtualNodeRef, and frontend.yaml,
    // unchanged, to the service by virtualServiceRef: both must follow the renames.
    let backend = dir.path().join("backend.yaml");
    let text = std::fs::read_to_string(&backend).unwrap();
    let text = text
        .replace("awsName: backend-v1", "awsName: backend-one")
        .replace(
            "  provider:\n    virtualRouter:",
            "  awsName: backend.shop.local\n  provider:\n    virtualRouter:",
        );
    assert!(text.contains("awsName: backend.shop.local"));
    std::fs::write(&backend, text).unwrap();
    assert!(p.reload(None), "{:?}", p.status());
    let after = p.cache.versions();
    assert!(
        after.contains_key("mesh/demo/virtualNode/backend-one"),
        "{after:?}"
    );
    assert_ne!(
        before["mesh/demo/virtualNode/frontend_shop"], after["mesh/demo/virtualNode/frontend_shop"],
        "the frontend's clusters name the renamed node"
    );
    assert_ne!(
        before["mesh/demo/virtualGateway/ingress_shop"],
        after["mesh/demo/virtualGateway/ingress_shop"],
        "the gateway routes to the renamed service"
    );
    assert_eq!(
        after,
        published(dir.path()),
        "incremental equals a full build"
    );

    // A second mesh leaves the manifests without meshRef without a mesh: the reload is refused.
    std::fs::write(
        dir.path().join("other.yaml"),
        "kind: Mesh\nmeshName: other\n",
    )
    .unwrap();
    assert!(!p.reload(None));
    let problems = format!("{:?}", p.status());
    assert!(
        problems.contains("there are 2 meshes (demo, other)"),
        "{problems}"
    );
    assert_eq!(
        p.cache.versions(),
        after,
        "the last good configuration is kept"
    );
}
