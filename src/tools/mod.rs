//! The tools the `meshplane` binary ships next to the serving pipeline: `loadgen` (`meshplane load`,
//! simulated Envoys against any xDS server), `synth` (`meshplane generate`, synthetic meshes) and
//! `demo` (`meshplane demo`, the example mesh with real Envoys). They use the library
//! (`meshplane::...`) and are not part of it; tests, benches and examples include the files they
//! need by path, so each file names its own imports.

pub mod demo;
pub mod loadgen;
pub mod synth;

// Here rather than in synth.rs: the crates that include synth.rs by path would run it again.
#[cfg(test)]
mod tests {
    use super::synth::{edit_weights, generate, write, SynthParams};

    #[test]
    fn generated_meshes_are_valid_and_deterministic() {
        let p = SynthParams {
            services: 20,
            clients: 150,
            backends: 5,
            seed: 7,
        };
        assert_eq!(generate(&p), generate(&p));
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &p).unwrap();
        let result = meshplane::app::load(dir.path());
        assert!(
            result.problems.is_empty(),
            "{:?}",
            &result.problems[..result.problems.len().min(5)]
        );
        let model = result.model.unwrap();
        assert_eq!(model.meshes["synth"].virtual_nodes.len(), p.nodes());
        edit_weights(dir.path(), 3).unwrap();
        assert!(meshplane::app::load(dir.path()).model.is_some());
    }
}
