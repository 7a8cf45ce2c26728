//! The git workflow: a branch and a worktree per execution, a commit per
//! phase, merges, pull-request descriptions and cleanup.
//!
//! The host holds only the primitives ([`repo`], behind the `git` WIT
//! interface); the policy lives in a plugin that exports `git-workflow`
//! (`git-workflow` from `sample-plugins/` by default, or the one `[git]
//! plugin` names). This module is what the command line calls: it finds that
//! plugin, calls it, and adds what only the host knows (runs, files).

mod imports;
mod repo;
pub mod settings;

pub use repo::GitRepo;
pub use settings::{GitSettings, DEFAULT_PLUGIN};
