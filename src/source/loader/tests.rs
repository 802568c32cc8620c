//! Unit tests of loading a directory: the parse cache and file stamps, which files are mesh
//! files, and the Kubernetes form settled across files.

use super::*;

#[test]
fn unchanged_files_are_not_read_again_but_every_write_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mesh.yaml");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let write = |text: &str| {
        std::fs::write(&file, text).unwrap();
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(old).unwrap();
    };
    write("kind: Mesh\nmeshName: aaaa\n");
    let mut cache = ParseCache::default();
    let first = load_dir_cached(
        dir.path(),
        &Limits::DEFAULT,
        &mut cache,
        crate::model::check_alone,
    );
    assert_eq!((first.files_read, first.files_parsed), (1, 1));
    let again = load_dir_cached(
        dir.path(),
        &Limits::DEFAULT,
        &mut cache,
        crate::model::check_alone,
    );
    assert_eq!((again.files_read, again.files_parsed), (0, 0));
    assert_eq!(again.documents.len(), 1);

    // Same size, same modification time: the change time still tells.
    write("kind: Mesh\nmeshName: bbbb\n");
    let edited = load_dir_cached(
        dir.path(),
        &Limits::DEFAULT,
        &mut cache,
        crate::model::check_alone,
    );
    assert_eq!((edited.files_read, edited.files_parsed), (1, 1));
    assert_eq!(edited.documents[0].names().mesh, Some("bbbb"));

    // A file modified just now is read again until its time is safely in the past.
    std::fs::write(&file, "kind: Mesh\nmeshName: cccc\n").unwrap();
    let fresh = load_dir_cached(
        dir.path(),
        &Limits::DEFAULT,
        &mut cache,
        crate::model::check_alone,
    );
    assert_eq!((fresh.files_read, fresh.files_parsed), (1, 1));
    let racy = load_dir_cached(
        dir.path(),
        &Limits::DEFAULT,
        &mut cache,
        crate::model::check_alone,
    );
    assert_eq!((racy.files_read, racy.files_parsed), (1, 0));
}

#[test]
fn hidden_and_editor_files_are_ignored() {
    assert!(is_mesh_file(Path::new("a/b.yaml")));
    assert!(is_mesh_file(Path::new("b.json")));
    assert!(!is_mesh_file(Path::new(".b.yaml.swp")));
    assert!(!is_mesh_file(Path::new("b.yaml~")));
    assert!(!is_mesh_file(Path::new(".git/x.yaml")));
    assert!(!is_mesh_file(Path::new("b.yaml.bak")));
    assert!(!is_mesh_file(Path::new("4913")));
}

fn k8s_load(files: &[(&str, &str)]) -> LoadOutput {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    load_dir_cached(
        dir.path(),
        &Limits::DEFAULT,
        &mut ParseCache::default(),
        crate::model::check_alone,
    )
}

const NODE: &str = "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata: {name: v1, namespace: ns}\nspec: {awsName: catalog-v1}\n---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\nmetadata: {name: s, namespace: ns}\nspec:\n  provider: {virtualNode: {virtualNodeRef: {name: v1}}}\n";

#[test]
fn k8s_manifests_join_the_only_mesh_and_refer_to_aws_names() {
    let mesh = "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: m}\nspec: {awsName: prod}\n";
    let out = k8s_load(&[("a.yaml", NODE), ("mesh.yaml", mesh)]);
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    let vs = out
        .documents
        .iter()
        .find(|d| d.kind == crate::spec::Kind::VirtualService)
        .unwrap();
    assert_eq!(vs.names().mesh, Some("prod"));
    let crate::source::Body::VirtualService(e) = &vs.body else {
        panic!()
    };
    let provider = e.spec.as_ref().unwrap().provider.as_ref().unwrap();
    assert_eq!(
        provider.virtual_node.as_ref().unwrap().virtual_node_name,
        "catalog-v1"
    );
    assert_eq!(
        vs.references(),
        &[crate::change::entity_key(
            crate::spec::Kind::VirtualNode,
            "prod",
            "catalog-v1"
        )]
    );

    // A meshRef names the k8s Mesh; its awsName is the App Mesh name.
    let with_ref = NODE.replace(
        "spec: {awsName: catalog-v1}",
        "spec: {awsName: catalog-v1, meshRef: {name: m, uid: u}}",
    );
    let out = k8s_load(&[("a.yaml", &with_ref), ("mesh.yaml", mesh)]);
    let node = out
        .documents
        .iter()
        .find(|d| d.kind == crate::spec::Kind::VirtualNode)
        .unwrap();
    assert_eq!(node.names().mesh, Some("prod"));
}

#[test]
fn a_k8s_manifest_without_mesh_ref_needs_exactly_one_mesh() {
    let out = k8s_load(&[("a.yaml", NODE)]);
    let msgs: Vec<String> = out.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].starts_with("a.yaml:4: spec.meshRef: no `spec.meshRef`, and no Mesh is defined"),
        "{msgs:?}"
    );
    let two = "kind: Mesh\nmeshName: a\n---\nkind: Mesh\nmeshName: b\n";
    let out = k8s_load(&[("a.yaml", NODE), ("m.yaml", two)]);
    assert!(
        out.problems[0]
            .message
            .contains("there are 2 meshes (a, b)"),
        "{:?}",
        out.problems
    );
    assert_eq!(out.documents.len(), 2, "the meshes only");
}
