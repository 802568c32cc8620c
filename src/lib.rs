//! meshplane: a control plane for Envoy service meshes described with AWS App Mesh resources.
//!
//! Data flows one way, each stage in its own module:
//!
//! ```text
//! files on disk ──source──▶ documents (file, line, field path)
//!               ──change──▶ ChangeSet against the published load (entities changed, added, removed)
//!               ──model───▶ validated MeshModel (or every problem at once; re-checks what changed)
//!               ──translate▶ per-node Envoy resources (pure functions)
//!               ──build───▶ per-node encoded snapshots + the per-type variants in demand
//!                           (parts cached across reloads, rebuilt where the ChangeSet touches)
//!               ──xds─────▶ snapshot cache ──▶ ADS and per-type streams to every Envoy
//! ```
//!
//! `app` runs it: one reload task owns the pipeline and is its only writer; it publishes snapshots
//! to the cache and reports (`report`) to whoever reads them (the admin API, the status service).
//! The command line and the tools are the `meshplane` binary's, not this library's (see the end
//! of the layout).
//!
//! # Layout
//!
//! - `source/`: `walk` (finding mesh files: symlinks, loops, bounds), `limits`, `prepass` (streaming
//!   depth/alias/duplicate checks before any YAML is deserialized), `syntax` (JSON and tab errors),
//!   `loader` (reading files, the parse cache), `parse` + `document` (typed documents),
//!   `references` (the entity keys a document names), `suggest` ("did you mean"), `lines` (field
//!   path → line), `watch/` (following the config path, settling bursts into reload signals)
//! - `spec/`: serde mirror of the App Mesh resources, one file per kind; `refs` is the reference
//!   graph (what names what), written once
//! - `change`: entity keys, identities, `ChangeSet`, node and service dependencies
//! - `model/`: `validate/` (index, then one module per resource kind; `cache` re-uses the checks a
//!   `ChangeSet` does not touch), `document` (name rules), `untranslated` (warnings), `presence`
//! - `translate/`: pure model → Envoy resources per node (`cluster`, `listener`, `route/` with
//!   `matching` and `retry`, `naming`, `sources` for per-type config sources)
//! - `build` + `build/`: encoded parts cached across reloads, per-node assembly, `variants`
//!   (per-type), `view` (a snapshot decoded, for golden tests)
//! - `xds/`: generic serving: `cache` (snapshot per node), `sotw` and `delta` state machines,
//!   `group` (ordering the per-type streams of one Envoy), `server/` (services, `stream` loop with
//!   one handler per event), `variants` (which per-type variants streams need), `consistent`
//!   (dangling names), `grpc` (ADS glue), `authority` (the bootstrap's cluster name),
//!   `conn`/`accept`/`limits` (bounded clients), `metrics`
//! - `app` + `app/`: the load facade, `pipeline` (the single writer), `reloader` (the reload task,
//!   `removal` guard), `serve` (listeners, servers, drain); `report`: what readers see
//! - `admin` + `admin/page`: the admin HTTP API and the topology page; `inspect`: readable views of
//!   served resources; `diff`: what saving a directory would change
//! - `ca` + `ca/`: meshplane's own certificate authority (`--ca-dir`), standing in for ACM: the
//!   directory, issuing, a node's names, the per-node certificates served over SDS and their renewal
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
pub mod ca;
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
