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
//! `app` wires the stages together and owns reloads; `cli` is the command line.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod bootstrap;
pub mod build;
pub mod cli;
pub mod demo;
pub mod diag;
pub mod diff;
pub mod inspect;
pub mod loadgen;
pub mod model;
pub mod par;
pub mod proto;
pub mod source;
pub mod spec;
pub mod synth;
pub mod translate;
pub mod xds;
