//! Files on disk → parsed App Mesh documents, each with its file, line index and field paths.
//!
//! `loader` reads a directory into typed documents and reports what it cannot parse; `lines` maps field
//! paths back to source lines; `watch` follows the config path however it changes and turns each
//! settled burst of file-system events into one reload signal.

pub mod lines;
pub mod loader;
pub mod watch;

pub use loader::{is_mesh_file, load_dir, Body, Document, LoadOutput};
