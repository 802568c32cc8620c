//! Files on disk → parsed App Mesh documents, each with its file, line index and field paths.
//!
//! `walk` finds the mesh files (symlinks, loops, bounds); `loader` reads them into typed documents and
//! reports what it cannot parse, within the `limits` that `prepass` checks before any YAML is
//! deserialized; `lines` maps field paths back to source lines; `watch` follows the config path
//! however it changes and turns each settled burst of file-system events into one reload signal.

pub mod limits;
pub mod lines;
pub mod loader;
pub mod prepass;
pub mod suggest;
pub mod syntax;
pub mod walk;
pub mod watch;

pub use limits::Limits;
pub use loader::{is_mesh_file, load_dir, Body, Document, LoadOutput};
