//! Templates: agent teams, workflows and the plugins they need, shared
//! through registries. `format` says what a template is, `package` how it
//! travels, `index` how it is found, `install` how it lands in a project,
//! and `builtin` holds the ones in the binary.

pub mod builtin;
pub mod format;
pub mod index;
pub mod install;
pub mod package;

pub use format::{read_dir, Category, PluginDep, TemplateFiles, TemplateMeta};
pub use index::{Catalog, Listing};
pub use install::{Checked, InstalledTemplate, Provenance, Record};
pub use package::{FetchedTemplate, PublishedTemplate};
