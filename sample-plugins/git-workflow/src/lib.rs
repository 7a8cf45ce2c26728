//! `git-workflow`: the default git workflow. Every execution gets a branch,
//! `exec/{execution_id}/{YYYYMMDD_HHMMSS}`, checked out in its own worktree
//! under `.paracle/worktrees/`, which becomes the execution's workspace. Each
//! phase's artifacts are committed when the phase ends, and an approved
//! execution can be merged into the base branch when it ends.
//!
//! The plugin only decides; the host's `git` interface does the work, on
//! the project's repository and nothing else. With no settings (no `[git]`
//! table in `.paracle/config.toml`) it ignores every event.

mod describe;
mod time;

use paracle_sdk::git::{
    self, BranchInfo, Cleaned, ExecutionBranch, GitSettings, MergeOutcome, PullRequest,
    SettingsRequest,
};
use paracle_sdk::{
    json, Error, Event, EventKind, GitWorkflow, Observer, Plugin, PluginInfo, Value,
};

const BRANCH_PREFIX: &str = "exec/";

struct Workflow {
    /// None until the workflow is set up.
    settings: Option<GitSettings>,
}

fn setting_bool(config: &Value, key: &str, default: bool) -> Result<bool, Error> {
    match config.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Error::InvalidInput(format!(
            "`{key}` must be true or false, not {other}"
        ))),
    }
}

/// The branch an execution gets, and the execution a branch belongs to.
fn branch_name(execution: &str, started_ms: u64) -> String {
    format!("{BRANCH_PREFIX}{execution}/{}", time::stamp(started_ms))
}

fn execution_of(branch: &str) -> Option<(&str, &str)> {
    branch.strip_prefix(BRANCH_PREFIX)?.rsplit_once('/')
}

fn data(event: &Event) -> Value {
    serde_json::from_str(&event.data).unwrap_or(Value::Null)
}

fn strings(value: &Value) -> impl Iterator<Item = String> + '_ {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
}

impl Workflow {
    fn settings(&self) -> Result<&GitSettings, Error> {
        self.settings.as_ref().ok_or_else(|| {
            Error::Unavailable(
                "the git workflow is not set up; run `paracle git init-workflow`".into(),
            )
        })
    }

    /// The branch of `execution`, if it has one.
    fn branch_of(&self, execution: &str) -> Result<Option<BranchInfo>, Error> {
        Ok(git::list_branches(&format!("{BRANCH_PREFIX}{execution}/"))?
            .into_iter()
            .find(|b| execution_of(&b.name).is_some_and(|(id, _)| id == execution)))
    }

    fn started(&self, event: &Event) -> Result<(), Error> {
        let settings = self.settings()?;
        let Some(execution) = &event.execution_id else {
            return Ok(());
        };
        if self.branch_of(execution)?.is_some() {
            return Ok(());
        }
        let branch = branch_name(execution, event.timestamp_ms);
        git::create_branch(&branch, &settings.base_branch).map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound(format!(
                "base branch `{}` does not exist; run `paracle git init-workflow --base BRANCH`",
                settings.base_branch
            )),
            other => other,
        })?;
        if let Err(error) = git::add_worktree(execution, &branch) {
            // No worktree, no use for the branch: leave nothing behind.
            let _ = git::delete_branch(&branch);
            return Err(error);
        }
        Ok(())
    }

    fn phase_finished(&self, event: &Event) -> Result<(), Error> {
        let settings = self.settings()?;
        let (Some(execution), Some(phase)) = (&event.execution_id, &event.phase) else {
            return Ok(());
        };
        if !settings.auto_commit || self.branch_of(execution)?.is_none() {
            return Ok(());
        }
        let data = data(event);
        let mut paths: Vec<String> = Vec::new();
        let mut lines = Vec::new();
        for agent in data["agents"].as_array().into_iter().flatten() {
            let name = agent["name"].as_str().unwrap_or("?");
            let status = agent["status"].as_str().unwrap_or("?");
            let artifacts: Vec<String> = strings(&agent["artifacts"]).collect();
            let line = match agent["failure"].as_str() {
                Some(failure) => format!(
                    "- {name}: {status} ({failure}: {})",
                    agent["error"].as_str().unwrap_or("")
                ),
                None => format!("- {name}: {status}, {} artifact(s)", artifacts.len()),
            };
            lines.push(line);
            paths.extend(artifacts);
        }
        paths.extend(strings(&data["validation"]["found"]));
        paths.sort();
        paths.dedup();
        if paths.is_empty() {
            return Ok(());
        }
        let message = format!(
            "paracle: phase `{phase}` {} ({})\n\nWorkflow: {}\nExecution: {execution}\nAgents:\n{}\n",
            data["status"].as_str().unwrap_or("finished"),
            match (data["succeeded"].as_u64(), data["failed"].as_u64()) {
                (Some(ok), Some(failed)) => format!("{ok} succeeded, {failed} failed"),
                _ => "outcomes unknown".into(),
            },
            data["workflow"].as_str().unwrap_or("?"),
            lines.join("\n"),
        );
        git::commit(execution, &message, &paths)?;
        Ok(())
    }

    fn execution_finished(&self, event: &Event) -> Result<(), Error> {
        let settings = self.settings()?;
        let Some(execution) = &event.execution_id else {
            return Ok(());
        };
        if !settings.auto_merge || event.success != Some(true) {
            return Ok(());
        }
        let Some(branch) = self.branch_of(execution)? else {
            return Ok(());
        };
        let workflow = data(event)["workflow"].as_str().unwrap_or("?").to_string();
        let message = format!("paracle: merge execution {execution} ({workflow})");
        match git::merge(&branch.name, &settings.base_branch, &message)? {
            MergeOutcome::Conflict(paths) => {
                return Err(Error::InvalidInput(format!(
                    "auto-merge of `{}` into `{}` refused: conflicts in {}; resolve it by hand, or `paracle git merge {} --target OTHER`",
                    branch.name,
                    settings.base_branch,
                    paths.join(", "),
                    branch.name
                )))
            }
            MergeOutcome::Blocked(paths) => {
                return Err(Error::InvalidInput(format!(
                    "auto-merge of `{}` into `{}` refused: it would overwrite uncommitted changes to {}; commit or stash them, then `paracle git merge {}`",
                    branch.name,
                    settings.base_branch,
                    paths.join(", "),
                    branch.name
                )))
            }
            _ => {}
        }
        if settings.auto_cleanup {
            git::remove_worktree(execution, false)?;
            git::delete_branch(&branch.name)?;
        }
        Ok(())
    }

    fn execution_branch(
        &self,
        branch: BranchInfo,
        base: &str,
    ) -> Result<Option<ExecutionBranch>, Error> {
        let Some((execution, stamp)) = execution_of(&branch.name) else {
            return Ok(None);
        };
        let commits = git::count_commits(base, &branch.name)?;
        Ok(Some(ExecutionBranch {
            execution_id: execution.to_string(),
            created_ms: time::parse_stamp(stamp).unwrap_or(branch.head.timestamp_ms),
            commits,
            merged: commits == 0,
            worktree: branch.worktree,
            name: branch.name,
            head: branch.head,
        }))
    }
}

impl Plugin for Workflow {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "git-workflow",
            env!("CARGO_PKG_VERSION"),
            "A git branch and worktree per execution, a commit per phase, merge and cleanup",
        )
        .author("Paracle")
        .license("Apache-2.0")
        .tags(&["git", "observer", "workflow"])
        .config_schema(json!({
            "type": "object",
            "properties": {
                "base_branch": {"type": "string", "minLength": 1},
                "auto_commit": {"type": "boolean"},
                "auto_merge": {"type": "boolean"},
                "auto_cleanup": {"type": "boolean"}
            },
            "additionalProperties": false
        }))
    }

    fn init(config: Value) -> Result<Self, Error> {
        let Some(base) = config.get("base_branch") else {
            return Ok(Workflow { settings: None });
        };
        let base_branch = base
            .as_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Error::InvalidInput("`base_branch` must be a branch name".into()))?
            .to_string();
        Ok(Workflow {
            settings: Some(GitSettings {
                base_branch,
                auto_commit: setting_bool(&config, "auto_commit", true)?,
                auto_merge: setting_bool(&config, "auto_merge", false)?,
                auto_cleanup: setting_bool(&config, "auto_cleanup", false)?,
            }),
        })
    }
}

impl Observer for Workflow {
    fn on_event(&mut self, event: Event) -> Result<(), Error> {
        if self.settings.is_none() {
            return Ok(());
        }
        match event.kind {
            EventKind::ExecutionStarted => self.started(&event),
            EventKind::PhaseFinished => self.phase_finished(&event),
            EventKind::ExecutionFinished => self.execution_finished(&event),
            _ => Ok(()),
        }
    }
}

impl GitWorkflow for Workflow {
    fn init_workflow(&mut self, requested: SettingsRequest) -> Result<GitSettings, Error> {
        let repository = git::repository()?;
        let Some(head) = repository.head else {
            return Err(Error::Unavailable(format!(
                "the repository at {} has no commit yet; make a first commit, then run this again",
                repository.root
            )));
        };
        let base_branch = match requested.base_branch.or(repository.head_branch) {
            Some(base) => base,
            None => {
                return Err(Error::InvalidInput(format!(
                    "HEAD is detached at {}; name the base branch with --base",
                    &head.id[..12.min(head.id.len())]
                )))
            }
        };
        if git::list_branches(&base_branch)?
            .iter()
            .all(|b| b.name != base_branch)
        {
            return Err(Error::NotFound(format!(
                "there is no branch `{base_branch}` in {}",
                repository.root
            )));
        }
        let current = self.settings.as_ref();
        Ok(GitSettings {
            base_branch,
            auto_commit: requested
                .auto_commit
                .or(current.map(|s| s.auto_commit))
                .unwrap_or(true),
            auto_merge: requested
                .auto_merge
                .or(current.map(|s| s.auto_merge))
                .unwrap_or(false),
            auto_cleanup: requested
                .auto_cleanup
                .or(current.map(|s| s.auto_cleanup))
                .unwrap_or(false),
        })
    }

    fn branches(&mut self) -> Result<Vec<ExecutionBranch>, Error> {
        let base = self.settings()?.base_branch.clone();
        let mut branches = Vec::new();
        for branch in git::list_branches(BRANCH_PREFIX)? {
            if let Some(branch) = self.execution_branch(branch, &base)? {
                branches.push(branch);
            }
        }
        Ok(branches)
    }

    fn merge(&mut self, branch: &str, target: Option<&str>) -> Result<MergeOutcome, Error> {
        let target = match target {
            Some(target) => target.to_string(),
            None => self.settings()?.base_branch.clone(),
        };
        let execution = execution_of(branch).map(|(id, _)| id).unwrap_or(branch);
        git::merge(
            branch,
            &target,
            &format!("paracle: merge execution {execution} into {target}"),
        )
    }

    fn describe_pull_request(
        &mut self,
        execution_id: &str,
        run: Value,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<PullRequest, Error> {
        let base = self.settings()?.base_branch.clone();
        let branch = self.branch_of(execution_id)?.ok_or_else(|| {
            Error::NotFound(format!(
                "execution `{execution_id}` has no branch; `paracle git branches` lists them"
            ))
        })?;
        let changes = git::diff_stats(&base, &branch.name)?;
        let commits = git::count_commits(&base, &branch.name)?;
        let title = match title {
            Some(title) => title.to_string(),
            None => describe::title(&run, execution_id),
        };
        Ok(PullRequest {
            body: describe::body(&run, body, &branch.name, &base, commits, &changes),
            title,
            head: branch.name,
            base,
        })
    }

    fn cleanup(
        &mut self,
        target: Option<&str>,
        older_than_ms: Option<u64>,
        active: &[String],
    ) -> Result<Vec<Cleaned>, Error> {
        let target = match target {
            Some(target) => target.to_string(),
            None => self.settings()?.base_branch.clone(),
        };
        let now = time::now_ms();
        let mut report = Vec::new();
        for branch in git::list_branches(BRANCH_PREFIX)? {
            let Some(branch) = self.execution_branch(branch, &target)? else {
                continue;
            };
            let kept = |detail: String| Cleaned {
                branch: branch.name.clone(),
                removed: false,
                detail,
            };
            let age = now.saturating_sub(branch.created_ms);
            if active.contains(&branch.execution_id) {
                report.push(kept("its execution is not finished".into()));
            } else if !branch.merged {
                report.push(kept(format!(
                    "not merged into `{target}`: {} commit(s) would be lost",
                    branch.commits
                )));
            } else if older_than_ms.is_some_and(|limit| age < limit) {
                report.push(kept(format!(
                    "younger than the limit ({} s old)",
                    age / 1000
                )));
            } else {
                let mut removed = Vec::new();
                if let Some(worktree) = &branch.worktree {
                    if let Err(error) = git::remove_worktree(worktree, false) {
                        report.push(kept(format!("its worktree was kept: {}", error.message())));
                        continue;
                    }
                    removed.push(format!("worktree `{worktree}`"));
                }
                // One branch that cannot go (say, checked out by hand) must
                // not hide what was already done to the others.
                if let Err(error) = git::delete_branch(&branch.name) {
                    let done = match removed.first() {
                        Some(worktree) => format!("; {worktree} was removed"),
                        None => String::new(),
                    };
                    report.push(kept(format!("{}{done}", error.message())));
                    continue;
                }
                removed.push("branch".into());
                report.push(Cleaned {
                    branch: branch.name.clone(),
                    removed: true,
                    detail: format!("removed {}", removed.join(" and ")),
                });
            }
        }
        Ok(report)
    }
}

paracle_sdk::export!(git_workflow: Workflow);
