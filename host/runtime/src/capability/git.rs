//! The `git` imports: the project's repository, for plugins granted `git`.
//!
//! The runtime does not know how to reach a repository: it defines
//! [`GitBackend`], and the git workflow crate implements it with libgit2, so
//! the runtime builds without git2. Backends block, so every operation runs
//! on tokio's blocking pool; the plugin's own deadline still bounds the call
//! that waits for it.

use std::sync::Arc;

use paracle_contract::imports::git;
use paracle_contract::{BranchInfo, CommitInfo, DiffStat, MergeOutcome, RepositoryInfo, WitError};
use wasmtime::component::{HasData, Linker};

/// One operation's answer, as the plugin sees it.
pub type GitResult<T> = Result<T, WitError>;

/// A repository the `git` imports reach. Every path and name comes from the
/// plugin: an implementation treats each as hostile (it must never follow a
/// link or a `.git` file a plugin could have planted).
pub trait GitBackend: Send + Sync + std::fmt::Debug + 'static {
    fn repository(&self) -> GitResult<RepositoryInfo>;
    fn list_branches(&self, prefix: &str) -> GitResult<Vec<BranchInfo>>;
    fn create_branch(&self, name: &str, start: &str) -> GitResult<CommitInfo>;
    fn delete_branch(&self, name: &str) -> GitResult<()>;
    fn add_worktree(&self, name: &str, branch: &str) -> GitResult<String>;
    fn remove_worktree(&self, name: &str, force: bool) -> GitResult<()>;
    fn commit(
        &self,
        worktree: &str,
        message: &str,
        paths: &[String],
    ) -> GitResult<Option<CommitInfo>>;
    fn merge(&self, source: &str, target: &str, message: &str) -> GitResult<MergeOutcome>;
    fn count_commits(&self, base: &str, head: &str) -> GitResult<u32>;
    fn diff_stats(&self, base: &str, head: &str) -> GitResult<DiffStat>;
}

/// The git capability of one store: the repository, or none without the
/// grant.
pub(crate) struct GitCtx {
    backend: Option<Arc<dyn GitBackend>>,
}

impl GitCtx {
    pub(crate) fn new(backend: Option<Arc<dyn GitBackend>>) -> Self {
        GitCtx { backend }
    }

    /// The future holds the backend, not the store: a store is not `Sync`,
    /// and the future must be `Send`.
    fn with_backend<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&dyn GitBackend) -> GitResult<T> + Send + 'static,
    ) -> impl std::future::Future<Output = Answer<T>> + Send + 'static {
        let backend = self.backend.clone();
        async move {
            // The host refuses to load a plugin that imports `git` without
            // the grant; this covers a store built some other way.
            let Some(backend) = backend else {
                return Ok(Err(WitError::Denied(
                    "this plugin was not granted `git`".to_string(),
                )));
            };
            let blocking = tokio::task::spawn_blocking(move || operation(backend.as_ref())).await;
            Ok(blocking
                .unwrap_or_else(|e| Err(WitError::Internal(format!("git operation failed: {e}")))))
        }
    }
}

/// The [`HasData`] marker under which the `git` imports see only [`GitCtx`].
pub(crate) struct Git;

impl HasData for Git {
    type Data<'a> = &'a mut GitCtx;
}

/// Link the `git` imports to the store's [`GitCtx`]. Every kind's linker
/// offers them; loading refuses a plugin that imports them without the grant.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut GitCtx,
) -> wasmtime::Result<()> {
    git::add_to_linker::<T, Git>(linker, get)
}

type Answer<T> = wasmtime::Result<GitResult<T>>;

impl git::Host for GitCtx {
    async fn repository(&mut self) -> Answer<RepositoryInfo> {
        self.with_backend(|r| r.repository()).await
    }

    async fn list_branches(&mut self, prefix: String) -> Answer<Vec<BranchInfo>> {
        self.with_backend(move |r| r.list_branches(&prefix)).await
    }

    async fn create_branch(&mut self, name: String, start: String) -> Answer<CommitInfo> {
        self.with_backend(move |r| r.create_branch(&name, &start))
            .await
    }

    async fn delete_branch(&mut self, name: String) -> Answer<()> {
        self.with_backend(move |r| r.delete_branch(&name)).await
    }

    async fn add_worktree(&mut self, name: String, branch: String) -> Answer<String> {
        self.with_backend(move |r| r.add_worktree(&name, &branch))
            .await
    }

    async fn remove_worktree(&mut self, name: String, force: bool) -> Answer<()> {
        self.with_backend(move |r| r.remove_worktree(&name, force))
            .await
    }

    async fn commit(
        &mut self,
        worktree: String,
        message: String,
        paths: Vec<String>,
    ) -> Answer<Option<CommitInfo>> {
        self.with_backend(move |r| r.commit(&worktree, &message, &paths))
            .await
    }

    async fn merge(
        &mut self,
        source: String,
        target: String,
        message: String,
    ) -> Answer<MergeOutcome> {
        self.with_backend(move |r| r.merge(&source, &target, &message))
            .await
    }

    async fn count_commits(&mut self, base: String, head: String) -> Answer<u32> {
        self.with_backend(move |r| r.count_commits(&base, &head))
            .await
    }

    async fn diff_stats(&mut self, base: String, head: String) -> Answer<DiffStat> {
        self.with_backend(move |r| r.diff_stats(&base, &head)).await
    }
}
