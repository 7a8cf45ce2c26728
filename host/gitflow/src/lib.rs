//! The git workflow, in two parts:
//!
//! - [`GitRepo`]: the host side of the `git` interface, with libgit2. It
//!   implements the runtime's [`paracle_runtime::GitBackend`], so that the
//!   runtime builds without git2. Every path and name comes from a plugin:
//!   worktrees are opened from git's own records, never through a `.git`
//!   file a plugin could have planted, and files are staged through
//!   `paracle_base::beneath`, never through a link.
//! - [`GitFlow`]: the application side, what the command line calls: each
//!   execution's branch and worktree, commits, merges, pull-request files
//!   and cleanup, through the plugin that holds the workflow's policy.

mod repo;
mod service;

pub use repo::GitRepo;
pub use service::{BranchView, GitFlow, GitFlowError, InitRequest, PullRequestView};

use std::sync::Arc;

use paracle_project::{Paths, Registry};

/// `registry` reaching the project's repository when a plugin is granted
/// `git`.
pub fn with_repository(registry: Registry) -> Registry {
    let paths: &Paths = registry.paths();
    let repository = Arc::new(GitRepo::new(&paths.project, paths.worktrees()));
    registry.with_repository(repository)
}
