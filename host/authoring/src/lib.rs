//! What plugin authors use, in Rust, Python and JavaScript:
//!
//! - `scaffold`: `paracle plugin new`, a project that builds into a working
//!   component with one command and carries one test;
//! - `manifest`: `paracle-plugin.toml`, how a plugin project is built;
//! - `toolchain`: what a project builds with, and what is missing;
//! - `builder`: running that build, with the author's own toolchain;
//! - `watch`: the source changes that `paracle plugin dev` rebuilds on.
//!
//! Nothing here runs a plugin: loading what was built is the registry's
//! job, so this crate needs neither wasmtime nor the project.

mod builder;
mod manifest;
mod scaffold;
mod templates;
mod toolchain;
mod watch;

pub use builder::{build, BuildError, Built};
pub use manifest::{Language, ManifestError, PluginManifest, ScaffoldKind, MANIFEST_FILE};
pub use scaffold::{scaffold, ScaffoldError, ScaffoldRequest, Scaffolded};
pub use toolchain::{missing_tools, Missing};
pub use watch::{SourceWatcher, WatchError};
