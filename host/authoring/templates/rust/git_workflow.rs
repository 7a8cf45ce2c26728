//! `{{name}}`: a Paracle git workflow. Every execution gets a branch,
//! `run/<execution>`, checked out in a worktree of the same name (which
//! becomes the execution's workspace), and each finished phase is committed
//! there. `paracle git merge`, `git pr` and `git cleanup` call the functions
//! below. It reaches the repository only through `paracle_sdk::git`, and
//! the host loads it only with the operator's `--grant git`.

use paracle_sdk::git::{
    self, Cleaned, ExecutionBranch, GitSettings, MergeOutcome, PullRequest, SettingsRequest,
};
use paracle_sdk::{Error, Event, EventKind, GitWorkflow, Observer, Plugin, PluginInfo, Value};

const PREFIX: &str = "run/";

pub struct {{type}} {
    /// None until `paracle git init-workflow` has written the settings.
    settings: Option<GitSettings>,
}

fn flag(config: &Value, key: &str, default: bool) -> bool {
    config.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// The worktree (and branch suffix) of an execution: its id, kept to the
/// characters a branch name allows.
fn worktree_of(execution: &str) -> String {
    execution
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect()
}

impl {{type}} {
    fn settings(&self) -> Result<&GitSettings, Error> {
        self.settings.as_ref().ok_or_else(|| {
            Error::Unavailable("the git workflow is not set up; run `paracle git init-workflow`".into())
        })
    }
}

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"), "A branch and a worktree per execution")
    }

    fn init(config: Value) -> Result<Self, Error> {
        let settings = config.get("base_branch").and_then(Value::as_str).map(|base| GitSettings {
            base_branch: base.to_string(),
            auto_commit: flag(&config, "auto_commit", true),
            auto_merge: flag(&config, "auto_merge", false),
            auto_cleanup: flag(&config, "auto_cleanup", false),
        });
        Ok({{type}} { settings })
    }
}

impl Observer for {{type}} {
    fn on_event(&mut self, event: Event) -> Result<(), Error> {
        let Some(settings) = &self.settings else {
            return Ok(());
        };
        let Some(execution) = &event.execution_id else {
            return Ok(());
        };
        let worktree = worktree_of(execution);
        match event.kind {
            EventKind::ExecutionStarted => {
                let branch = format!("{PREFIX}{worktree}");
                git::create_branch(&branch, &settings.base_branch)?;
                git::add_worktree(&worktree, &branch)?;
            }
            EventKind::PhaseFinished if settings.auto_commit => {
                let phase = event.phase.as_deref().unwrap_or("phase");
                git::commit(&worktree, &format!("{execution}: {phase}"), &[])?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl GitWorkflow for {{type}} {
    fn init_workflow(&mut self, requested: SettingsRequest) -> Result<GitSettings, Error> {
        let head = git::repository()?.head_branch;
        let base_branch = requested.base_branch.or(head).ok_or_else(|| {
            Error::InvalidInput("the repository has no branch checked out; pass a base branch".into())
        })?;
        let settings = GitSettings {
            base_branch,
            auto_commit: requested.auto_commit.unwrap_or(true),
            auto_merge: requested.auto_merge.unwrap_or(false),
            auto_cleanup: requested.auto_cleanup.unwrap_or(false),
        };
        self.settings = Some(settings.clone());
        Ok(settings)
    }

    fn branches(&mut self) -> Result<Vec<ExecutionBranch>, Error> {
        let base = self.settings()?.base_branch.clone();
        let mut branches = Vec::new();
        for branch in git::list_branches(PREFIX)? {
            let execution_id = branch.name.trim_start_matches(PREFIX).to_string();
            let commits = git::count_commits(&base, &branch.name)?;
            branches.push(ExecutionBranch {
                execution_id,
                created_ms: branch.head.timestamp_ms,
                commits,
                merged: commits == 0,
                worktree: branch.worktree.clone(),
                head: branch.head,
                name: branch.name,
            });
        }
        Ok(branches)
    }

    fn merge(&mut self, branch: &str, target: Option<&str>) -> Result<MergeOutcome, Error> {
        let target = target.map_or_else(|| self.settings().map(|s| s.base_branch.clone()), |t| Ok(t.to_string()))?;
        git::merge(branch, &target, &format!("Merge {branch} into {target}"))
    }

    fn describe_pull_request(
        &mut self,
        execution_id: &str,
        _run: Value,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<PullRequest, Error> {
        Ok(PullRequest {
            title: title.map_or_else(|| format!("Execution {execution_id}"), str::to_string),
            body: body.unwrap_or_default().to_string(),
            head: format!("{PREFIX}{}", worktree_of(execution_id)),
            base: self.settings()?.base_branch.clone(),
        })
    }

    fn cleanup(
        &mut self,
        target: Option<&str>,
        _older_than_ms: Option<u64>,
        active: &[String],
    ) -> Result<Vec<Cleaned>, Error> {
        let target = target.map_or_else(|| self.settings().map(|s| s.base_branch.clone()), |t| Ok(t.to_string()))?;
        let mut cleaned = Vec::new();
        for branch in git::list_branches(PREFIX)? {
            let execution = branch.name.trim_start_matches(PREFIX);
            let keep = if active.iter().any(|a| worktree_of(a) == execution) {
                Some("its execution is still active")
            } else if git::count_commits(&target, &branch.name)? > 0 {
                Some("it is not merged")
            } else {
                None
            };
            let detail = match keep {
                Some(why) => why.to_string(),
                None => {
                    if branch.worktree.is_some() {
                        git::remove_worktree(execution, false)?;
                    }
                    git::delete_branch(&branch.name)?;
                    "branch and worktree removed".to_string()
                }
            };
            cleaned.push(Cleaned { branch: branch.name, removed: keep.is_none(), detail });
        }
        Ok(cleaned)
    }
}

paracle_sdk::export!(git_workflow: {{type}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_settings_from_the_config() {
        let config = paracle_sdk::json!({"base_branch": "main", "auto_merge": true});
        let workflow = {{type}}::init(config).unwrap();
        let settings = workflow.settings().unwrap();
        assert_eq!(settings.base_branch, "main");
        assert!(settings.auto_commit && settings.auto_merge && !settings.auto_cleanup);
        assert_eq!(worktree_of("run 1/a"), "run-1-a");
    }
}
