//! meshplane: a control plane for Envoy service meshes described with AWS App Mesh resources.
//!
//! Data flows one way, each stage in its own module:
//!
//! ```text
//! files on disk ──source──▶ documents (file, line, field path)
//!               ──model───▶ validated MeshModel (or every problem at once)
//!               ──translate▶ per-node Envoy resources (pure functions)
//!               ──build───▶ per-node encoded snapshots (parts cached across reloads)
//!               ──xds─────▶ versioned snapshot cache ──▶ ADS streams to every Envoy
//! ```
//!
//! `app` wires the stages together and owns reloads. The command line and the tools are the
//! `meshplane` binary's, not this library's (see the end of the layout).
//!
//! # Layout
//!
//! - `source/`: `walk` (finding mesh files: symlinks, loops, bounds), `limits`, `prepass` (streaming
//!   depth/alias/duplicate checks before any YAML is deserialized), `syntax` (JSON and tab errors),
//!   `loader` (typed documents), `lines` (field path → line), `watch/` (following the config path,
//!   settling bursts into reload signals)
//! - `spec/`: serde mirror of the App Mesh resources; `model/`: validation into a `MeshModel`
//! - `translate/`: pure model → Envoy resources per node (`cluster`, `listener`, `route`, `naming`,
//!   `sources` for per-type config sources)
//! - `build`: encoded parts cached across reloads, per-node snapshots
//! - `xds/`: generic serving: `cache` (snapshot per node), `sotw` and `delta` state machines,
//!   `group` (ordering the per-type streams of one Envoy), `server` (stream loop), `grpc` (ADS glue),
//!   `authority` (the bootstrap's cluster name), `conn`/`accept`/`limits` (bounded clients), `metrics`
//! - `app` + `app/`: the reload task (`reloader`, `removal` guard) and server wiring
//! - `admin` + `admin/page`: the admin HTTP API and the topology page; `inspect`: readable views of
//!   served resources; `diff`: what saving a directory would change
//! - `bootstrap` (Envoy bootstraps), `diag` (problems with file and line), `par`, `proto`
//!
//! Outside the library, in the binary crate (`src/main.rs`), which uses it as `meshplane::...`:
//!
//! - `src/cli.rs` + `src/cli/`: the command line (`status`, `config`, `diff`, `validate` talk to
//!   users; `serve`, `bootstrap` and the tool commands)
//! - `src/tools/`: `loadgen/` (`meshplane load`, the xDS load tool), `synth` (`meshplane generate`,
//!   the mesh generator), `demo/` (`meshplane demo`); tests, benches and examples include these
//!   files by path
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod bootstrap;
pub mod build;
pub mod change;
pub mod diag;
pub mod diff;
pub mod inspect;
pub mod model;
pub mod par;
pub mod proto;
pub mod report;
pub mod source;
pub mod spec;
pub mod translate;
pub mod xds;
