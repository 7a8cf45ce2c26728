//! The git workflow: a branch and a worktree per execution, a commit per
//! phase, merges, pull-request descriptions and cleanup.
//!
//! The host holds only the primitives (`crate::GitRepo`, behind the `git`
//! WIT interface); the policy lives in a plugin that exports `git-workflow`
//! (`git-workflow` from `sample-plugins/` by default, or the one `[git]
//! plugin` names). This module is what the command line calls: it finds that
//! plugin, calls it, and adds what only the host knows (runs, files).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use paracle_base::atomic;
use paracle_contract::{Cleaned, MergeOutcome, SettingsRequest};
use paracle_orchestrator::{metrics_json, now_ms, Orchestrator, OrchestratorError};
use paracle_project::settings::{self, GitSettings, SettingsError};
use paracle_project::{Registry, RegistryError};
use paracle_runtime::{CallError, Plugin, PluginError};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum GitFlowError {
    #[error("the git workflow is not set up in this project; run `paracle git init-workflow`")]
    NotSetUp,

    #[error("plugin `{0}` does not export the `git-workflow` interface; name a git workflow plugin in the `[git]` table of .paracle/config.toml")]
    NotAWorkflow(String),

    #[error("merging `{branch}` into `{target}` conflicts in {}; nothing was changed. Merge it by hand with `git merge {branch}` on `{target}`, or pick another --target", .paths.join(", "))]
    Conflict {
        branch: String,
        target: String,
        paths: Vec<String>,
    },

    #[error("merging `{branch}` into `{target}` would overwrite uncommitted changes to {} where `{target}` is checked out; nothing was changed. Commit or stash them, then merge again", .paths.join(", "))]
    Blocked {
        branch: String,
        target: String,
        paths: Vec<String>,
    },

    #[error("no execution branch `{0}`; `paracle git branches` lists them")]
    UnknownBranch(String),

    #[error(transparent)]
    Plugin(#[from] PluginError),

    #[error(transparent)]
    Call(#[from] CallError),

    #[error(transparent)]
    Registry(#[from] RegistryError),

    #[error(transparent)]
    Orchestrator(#[from] OrchestratorError),

    #[error(transparent)]
    Settings(#[from] SettingsError),

    #[error("{}: {message}", .file.display())]
    Write { file: PathBuf, message: String },
}

/// What the user asks `init-workflow` for; unset fields are the plugin's choice.
#[derive(Debug, Clone, Default)]
pub struct InitRequest {
    pub base_branch: Option<String>,
    pub auto_commit: Option<bool>,
    pub auto_merge: Option<bool>,
    pub auto_cleanup: Option<bool>,
    /// The plugin to run the workflow; the configured one, else the default.
    pub plugin: Option<String>,
}

/// An execution branch with what only the host knows about it.
#[derive(Debug, Clone, Serialize)]
pub struct BranchView {
    pub name: String,
    pub execution_id: String,
    /// The run's status, as `paracle run status` shows it; `unknown` when
    /// the run's state is gone.
    pub run_status: String,
    pub head: String,
    pub head_summary: String,
    pub commits: u32,
    pub merged: bool,
    pub worktree: Option<String>,
    pub created_ms: u64,
    pub age_ms: u64,
}

/// A rendered pull-request description.
#[derive(Debug, Clone, Serialize)]
pub struct PullRequestView {
    pub execution_id: String,
    pub title: String,
    pub head: String,
    pub base: String,
    /// Where the description was written.
    pub file: PathBuf,
    /// The `gh` command that would open the pull request; nothing is pushed.
    pub command: String,
}

fn answered<T>(result: Result<Result<T, PluginError>, CallError>) -> Result<T, GitFlowError> {
    Ok(result??)
}

/// Quote `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=+".contains(c))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The project's git workflow, through the plugin that holds its policy.
pub struct GitFlow<'r> {
    registry: &'r Registry,
    settings: Option<GitSettings>,
    plugin: Arc<Plugin>,
}

impl<'r> GitFlow<'r> {
    /// The workflow plugin named by `[git] plugin`, `plugin`, or the default.
    pub async fn open(registry: &'r Registry, plugin: Option<&str>) -> Result<Self, GitFlowError> {
        let settings = registry.git_settings().cloned();
        let name = plugin
            .map(str::to_string)
            .or_else(|| settings.as_ref().map(|s| s.plugin.clone()))
            .unwrap_or_else(|| settings::DEFAULT_GIT_WORKFLOW.to_string());
        let plugin = registry.get(&name).await?;
        if !plugin.is_git_workflow() {
            return Err(GitFlowError::NotAWorkflow(name));
        }
        Ok(GitFlow {
            registry,
            settings,
            plugin,
        })
    }

    fn set_up(&self) -> Result<&GitSettings, GitFlowError> {
        self.settings.as_ref().ok_or(GitFlowError::NotSetUp)
    }

    /// Check the repository, and write the settings the plugin settles on
    /// into `.paracle/config.toml`. Returns them and the file.
    pub async fn init_workflow(
        &self,
        request: InitRequest,
    ) -> Result<(GitSettings, PathBuf), GitFlowError> {
        let requested = SettingsRequest {
            base_branch: request.base_branch,
            auto_commit: request.auto_commit,
            auto_merge: request.auto_merge,
            auto_cleanup: request.auto_cleanup,
        };
        let chosen = answered(self.plugin.git_init_workflow(&requested).await)?;
        let settings = GitSettings {
            plugin: self.plugin.name().to_string(),
            base_branch: chosen.base_branch,
            auto_commit: chosen.auto_commit,
            auto_merge: chosen.auto_merge,
            auto_cleanup: chosen.auto_cleanup,
        };
        let file = settings::config_file(&self.registry.paths().state);
        settings::write_git(&file, &settings)?;
        Ok((settings, file))
    }

    /// Every execution branch, with its run's status and its age.
    pub async fn branches(&self) -> Result<Vec<BranchView>, GitFlowError> {
        self.set_up()?;
        let branches = answered(self.plugin.git_branches().await)?;
        let orchestrator = Orchestrator::new(self.registry);
        let now = now_ms();
        Ok(branches
            .into_iter()
            .map(|b| BranchView {
                run_status: match orchestrator.status(Some(&b.execution_id)) {
                    Ok(view) => view.status().to_string(),
                    Err(_) => "unknown".to_string(),
                },
                age_ms: now.saturating_sub(b.created_ms),
                name: b.name,
                execution_id: b.execution_id,
                head: b.head.id,
                head_summary: b.head.summary,
                commits: b.commits,
                merged: b.merged,
                worktree: b.worktree,
                created_ms: b.created_ms,
            })
            .collect())
    }

    /// `branch` as written, or the branch of the execution it names.
    async fn resolve_branch(&self, branch: &str) -> Result<String, GitFlowError> {
        if branch.contains('/') {
            return Ok(branch.to_string());
        }
        answered(self.plugin.git_branches().await)?
            .into_iter()
            .find(|b| b.execution_id == branch)
            .map(|b| b.name)
            .ok_or_else(|| GitFlowError::UnknownBranch(branch.to_string()))
    }

    /// Merge an execution's branch (or its execution id) into `target`, by
    /// default the base branch. A conflict is an error that lists the paths;
    /// nothing is left half-merged.
    pub async fn merge(
        &self,
        branch: &str,
        target: Option<&str>,
    ) -> Result<(String, String, MergeOutcome), GitFlowError> {
        let settings = self.set_up()?;
        let branch = self.resolve_branch(branch).await?;
        let target = target.unwrap_or(&settings.base_branch).to_string();
        let outcome = answered(self.plugin.git_merge(&branch, Some(&target)).await)?;
        match outcome {
            MergeOutcome::Conflict(paths) => Err(GitFlowError::Conflict {
                branch,
                target,
                paths,
            }),
            MergeOutcome::Blocked(paths) => Err(GitFlowError::Blocked {
                branch,
                target,
                paths,
            }),
            outcome => Ok((branch, target, outcome)),
        }
    }

    /// Render the execution's pull-request description into
    /// `.paracle/prs/<execution-id>.md`.
    pub async fn pr_create(
        &self,
        execution: &str,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<PullRequestView, GitFlowError> {
        self.set_up()?;
        let orchestrator = Orchestrator::new(self.registry);
        let state = orchestrator.runs().load(execution)?;
        let run = json!({ "run": state, "metrics": metrics_json(&state) });
        let pr = answered(
            self.plugin
                .git_describe_pull_request(execution, &run, title, body)
                .await,
        )?;
        let paths = self.registry.paths();
        let file = paths.state.join("prs").join(format!("{execution}.md"));
        atomic::write(&file, pr.body.as_bytes()).map_err(|e| GitFlowError::Write {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let shown = file.strip_prefix(&paths.project).unwrap_or(&file);
        let command = format!(
            "gh pr create --base {} --head {} --title {} --body-file {}",
            shell_quote(&pr.base),
            shell_quote(&pr.head),
            shell_quote(&pr.title),
            shell_quote(&shown.display().to_string()),
        );
        Ok(PullRequestView {
            execution_id: execution.to_string(),
            title: pr.title,
            head: pr.head,
            base: pr.base,
            file,
            command,
        })
    }

    /// Delete execution branches merged into `target` (by default the base
    /// branch), and their worktrees. Branches of runs that are not completed
    /// are kept: a failed or rejected run can still be retried.
    pub async fn cleanup(
        &self,
        target: Option<&str>,
        older_than: Option<Duration>,
    ) -> Result<Vec<Cleaned>, GitFlowError> {
        self.set_up()?;
        let orchestrator = Orchestrator::new(self.registry);
        let active: Vec<String> = orchestrator
            .list()?
            .into_iter()
            .filter(|(_, view)| {
                view.as_ref().is_ok_and(|v| {
                    v.busy || v.state.status != paracle_orchestrator::run::RunStatus::Completed
                })
            })
            .map(|(id, _)| id)
            .collect();
        let older_than_ms = older_than.map(|d| d.as_millis() as u64);
        answered(
            self.plugin
                .git_cleanup(target, older_than_ms, &active)
                .await,
        )
    }
}
