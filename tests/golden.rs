//! Golden tests of the translation: each mesh in `tests/golden/<name>/mesh` (and the bundled example)
//! is translated for every node and compared with `tests/golden/<name>/<node>.txt`.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

use std::path::Path;

use meshplane::translate::translate_all;

fn check(mesh_dir: &Path, golden_dir: &Path) {
    let result = meshplane::app::load(mesh_dir);
    let model = result
        .model
        .unwrap_or_else(|| panic!("{} is invalid: {:#?}", mesh_dir.display(), result.problems));
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let nodes = translate_all(&model);
    assert!(!nodes.is_empty());
    for (id, res) in nodes {
        let file = golden_dir.join(format!("{}_{}.txt", id.mesh, id.name));
        let text = format!("{res:#?}\n");
        if update {
            std::fs::create_dir_all(golden_dir).unwrap();
            std::fs::write(&file, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "missing golden file {}; run with UPDATE_GOLDEN=1",
                file.display()
            )
        });
        if want != text {
            let line = want
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{} differs from the translation at line {}:\n  golden: {:?}\n  now:    {:?}\nrun with UPDATE_GOLDEN=1 and review the diff",
                file.display(),
                line + 1,
                want.lines().nth(line),
                text.lines().nth(line)
            );
        }
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn demo_example() {
    check(
        &root().join("examples/demo"),
        &root().join("tests/golden/demo"),
    );
}

#[test]
fn every_http_feature() {
    check(
        &root().join("tests/golden/features/mesh"),
        &root().join("tests/golden/features"),
    );
}

#[test]
fn translation_is_deterministic() {
    let result = meshplane::app::load(&root().join("tests/golden/features/mesh"));
    let model = result.model.unwrap();
    assert_eq!(translate_all(&model), translate_all(&model));
}
