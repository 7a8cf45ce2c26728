//! The `git` imports of a plugin's store. git2 blocks, so every operation
//! runs on tokio's blocking pool; the plugin's own deadline still bounds the
//! call that waits for it.

use crate::bindings::{
    BranchInfo, CommitInfo, DiffStat, GitImports, MergeOutcome, RepositoryInfo, WitError,
};
use crate::sandbox::StoreState;

use super::GitRepo;

type Answer<T> = wasmtime::Result<Result<T, WitError>>;

impl StoreState {
    /// The future holds the repository, not the store: a store is not
    /// `Sync`, and the future must be `Send`.
    fn with_repo<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&GitRepo) -> Result<T, WitError> + Send + 'static,
    ) -> impl std::future::Future<Output = Answer<T>> + Send + 'static {
        let repo = self.git.clone();
        async move {
            // The host refuses to load a plugin that imports `git` without
            // the grant; this covers a store built some other way.
            let Some(repo) = repo else {
                return Ok(Err(WitError::Denied(
                    "this plugin was not granted `git`".to_string(),
                )));
            };
            let blocking = tokio::task::spawn_blocking(move || operation(&repo)).await;
            Ok(blocking
                .unwrap_or_else(|e| Err(WitError::Internal(format!("git operation failed: {e}")))))
        }
    }
}

impl GitImports for StoreState {
    async fn repository(&mut self) -> Answer<RepositoryInfo> {
        self.with_repo(|r| r.repository()).await
    }

    async fn list_branches(&mut self, prefix: String) -> Answer<Vec<BranchInfo>> {
        self.with_repo(move |r| r.list_branches(&prefix)).await
    }

    async fn create_branch(&mut self, name: String, start: String) -> Answer<CommitInfo> {
        self.with_repo(move |r| r.create_branch(&name, &start))
            .await
    }

    async fn delete_branch(&mut self, name: String) -> Answer<()> {
        self.with_repo(move |r| r.delete_branch(&name)).await
    }

    async fn add_worktree(&mut self, name: String, branch: String) -> Answer<String> {
        self.with_repo(move |r| r.add_worktree(&name, &branch))
            .await
    }

    async fn remove_worktree(&mut self, name: String, force: bool) -> Answer<()> {
        self.with_repo(move |r| r.remove_worktree(&name, force))
            .await
    }

    async fn commit(
        &mut self,
        worktree: String,
        message: String,
        paths: Vec<String>,
    ) -> Answer<Option<CommitInfo>> {
        self.with_repo(move |r| r.commit(&worktree, &message, &paths))
            .await
    }

    async fn merge(
        &mut self,
        source: String,
        target: String,
        message: String,
    ) -> Answer<MergeOutcome> {
        self.with_repo(move |r| r.merge(&source, &target, &message))
            .await
    }

    async fn count_commits(&mut self, base: String, head: String) -> Answer<u32> {
        self.with_repo(move |r| r.count_commits(&base, &head)).await
    }

    async fn diff_stats(&mut self, base: String, head: String) -> Answer<DiffStat> {
        self.with_repo(move |r| r.diff_stats(&base, &head)).await
    }
}
