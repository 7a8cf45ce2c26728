//! The project's git repository, as the host's `git` interface offers it.
//!
//! Any plugin may call these functions, but the host loads a plugin that
//! does only when the operator granted it `git`
//! (`paracle plugin load x.wasm --grant git`). Branches are local branch
//! names; worktrees live in `.paracle/worktrees/<name>`; commits are made
//! only in those worktrees, never in the user's own working tree.

use crate::bindings::git_workflow::paracle::plugin::git as imports;
use crate::types::Error;

pub use crate::bindings::git_workflow::exports::paracle::plugin::git_workflow::{
    Cleaned, ExecutionBranch, PullRequest, Settings as GitSettings, SettingsRequest,
};
pub use imports::{BranchInfo, CommitInfo, DiffStat, FileStat, MergeOutcome, RepositoryInfo};

/// The repository that holds the project.
pub fn repository() -> Result<RepositoryInfo, Error> {
    imports::repository()
}

/// Local branches whose name starts with `prefix`, in name order.
pub fn list_branches(prefix: &str) -> Result<Vec<BranchInfo>, Error> {
    imports::list_branches(prefix)
}

/// Create branch `name` at `start`, a branch name or a commit id.
pub fn create_branch(name: &str, start: &str) -> Result<CommitInfo, Error> {
    imports::create_branch(name, start)
}

/// Delete branch `name`; refused while a working tree has it checked out.
pub fn delete_branch(name: &str) -> Result<(), Error> {
    imports::delete_branch(name)
}

/// Check `branch` out into `.paracle/worktrees/<name>`; returns that path,
/// relative to the project. A worktree named after an execution's id becomes
/// that execution's workspace.
pub fn add_worktree(name: &str, branch: &str) -> Result<String, Error> {
    imports::add_worktree(name, branch)
}

/// Remove worktree `name`; refused with uncommitted changes unless `force`.
pub fn remove_worktree(name: &str, force: bool) -> Result<(), Error> {
    imports::remove_worktree(name, force)
}

/// Commit `paths` of worktree `name` (every change when empty); None when
/// there was nothing to commit.
pub fn commit(
    worktree: &str,
    message: &str,
    paths: &[String],
) -> Result<Option<CommitInfo>, Error> {
    imports::commit(worktree, message, paths)
}

/// Merge branch `source` into branch `target`.
pub fn merge(source: &str, target: &str, message: &str) -> Result<MergeOutcome, Error> {
    imports::merge(source, target, message)
}

/// How many commits `head` has that `base` lacks.
pub fn count_commits(base: &str, head: &str) -> Result<u32, Error> {
    imports::count_commits(base, head)
}

/// What `head` changed since it forked from `base`.
pub fn diff_stats(base: &str, head: &str) -> Result<DiffStat, Error> {
    imports::diff_stats(base, head)
}
