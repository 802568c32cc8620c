//! Files on disk → parsed App Mesh documents, each with its file, line index and field paths.
//!
//! `walk` finds the mesh files (symlinks, loops, bounds); `loader` reads them, within the `limits`
//! that `prepass` checks before any YAML is deserialized, and keeps what unchanged files parsed into;
//! `parse` turns one file's text into `document`s (`k8s` translates the Kubernetes form) and reports what it cannot parse; `references`
//! lists the entities a document names; `lines` maps field paths back to source lines; `watch`
//! follows the config path however it changes and turns each settled burst of file-system events
//! into one reload signal.

mod document;
mod k8s;
pub mod limits;
pub mod lines;
pub mod loader;
mod parse;
pub mod prepass;
mod references;
pub mod suggest;
pub mod syntax;
pub mod walk;
pub mod watch;

pub use limits::Limits;
pub use loader::{is_mesh_file, load_dir, Body, Document, LoadOutput};
