//! `paracle git ...`: the git workflow's commands. The work is done by the
//! git workflow plugin, through `crate::gitflow`.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::output::{print_json, print_table};
use paracle_base::shown;
use paracle_contract::MergeOutcome;
use paracle_gitflow::{GitFlow, GitFlowError, InitRequest};
use paracle_orchestrator::human_ms;

use super::project::open;

#[derive(Subcommand)]
pub(super) enum GitCommand {
    /// Check the repository and write the `[git]` settings into .paracle/config.toml.
    InitWorkflow {
        /// The branch executions start from and merge into (default: the checked-out branch).
        #[arg(long = "base", value_name = "BRANCH")]
        base_branch: Option<String>,
        /// Commit each phase's artifacts when it ends (default: true).
        #[arg(long, value_name = "BOOL")]
        auto_commit: Option<bool>,
        /// Merge an approved execution into the base branch when it ends (default: false).
        #[arg(long, value_name = "BOOL")]
        auto_merge: Option<bool>,
        /// Remove a merged execution's worktree and branch (default: false).
        #[arg(long, value_name = "BOOL")]
        auto_cleanup: Option<bool>,
        /// The plugin that runs the workflow (default: git-workflow).
        #[arg(long)]
        plugin: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The execution branches, with their run's status, commit count and age.
    Branches {
        #[arg(long)]
        json: bool,
    },
    /// Merge an execution branch (or the branch of an execution id) into the base branch.
    Merge {
        branch: String,
        /// The branch to merge into, instead of the base branch.
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write a pull-request description for an execution and print the `gh` command; pushes nothing.
    PrCreate {
        execution_id: String,
        #[arg(long)]
        title: Option<String>,
        /// Text to put above the generated description.
        #[arg(long)]
        body: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete merged execution branches and their worktrees.
    Cleanup {
        /// Count as merged what is merged into this branch, instead of the base branch.
        #[arg(long)]
        target: Option<String>,
        /// Only branches older than this, like `7d` or `12h`.
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        older_than: Option<Duration>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_age(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write it like `7d` or `12h`"))
}

fn commit_line(outcome: &MergeOutcome) -> (&'static str, Option<String>) {
    match outcome {
        MergeOutcome::UpToDate => ("up-to-date", None),
        MergeOutcome::FastForward(c) => ("fast-forward", Some(c.id.clone())),
        MergeOutcome::Merged(c) => ("merged", Some(c.id.clone())),
        MergeOutcome::Conflict(_) => ("conflict", None),
        MergeOutcome::Blocked(_) => ("blocked", None),
    }
}

pub(super) async fn run(project: &Path, command: GitCommand) -> Result<()> {
    let registry = open(project)?;
    match command {
        GitCommand::InitWorkflow {
            base_branch,
            auto_commit,
            auto_merge,
            auto_cleanup,
            plugin,
            json,
        } => {
            let flow = GitFlow::open(&registry, plugin.as_deref()).await?;
            let (settings, file) = flow
                .init_workflow(InitRequest {
                    base_branch,
                    auto_commit,
                    auto_merge,
                    auto_cleanup,
                    plugin,
                })
                .await?;
            if json {
                print_json(&json!({ "settings": settings, "config_file": file }));
            } else {
                println!("git workflow set up in {}", file.display());
                println!("  base branch   {}", shown::line(&settings.base_branch));
                println!("  auto-commit   {}", settings.auto_commit);
                println!("  auto-merge    {}", settings.auto_merge);
                println!("  auto-cleanup  {}", settings.auto_cleanup);
                println!("  plugin        {}", shown::line(&settings.plugin));
                println!(
                    "Each `paracle run start` now gets a branch exec/<run-id>/<time> and a worktree in .paracle/worktrees/<run-id>."
                );
            }
        }
        GitCommand::Branches { json } => {
            let flow = GitFlow::open(&registry, None).await?;
            let branches = flow.branches().await?;
            if json {
                print_json(&json!({ "branches": branches }));
            } else if branches.is_empty() {
                println!("no execution branches yet; `paracle run start WORKFLOW` makes one");
            } else {
                let rows: Vec<Vec<String>> = branches
                    .iter()
                    .map(|b| {
                        vec![
                            b.name.clone(),
                            b.run_status.clone(),
                            b.commits.to_string(),
                            human_ms(b.age_ms),
                            if b.merged { "yes" } else { "no" }.to_string(),
                            b.worktree.clone().unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                print_table(
                    &["branch", "run", "commits", "age", "merged", "worktree"],
                    &rows,
                );
            }
        }
        GitCommand::Merge {
            branch,
            target,
            json,
        } => {
            let flow = GitFlow::open(&registry, None).await?;
            match flow.merge(&branch, target.as_deref()).await {
                Ok((branch, target, outcome)) => {
                    let (result, commit) = commit_line(&outcome);
                    if json {
                        print_json(&json!({
                            "branch": branch, "target": target, "result": result, "commit": commit,
                        }));
                    } else {
                        match &outcome {
                            MergeOutcome::UpToDate => {
                                println!(
                                    "`{}` already has every commit of `{}`",
                                    shown::line(&target),
                                    shown::line(&branch)
                                )
                            }
                            MergeOutcome::FastForward(c) => println!(
                                "fast-forwarded `{}` to `{}` ({})",
                                shown::line(&target),
                                shown::line(&branch),
                                shown::clipped(&c.id, 12)
                            ),
                            _ => println!(
                                "merged `{}` into `{}`: {}",
                                shown::line(&branch),
                                shown::line(&target),
                                shown::clipped(commit.as_deref().unwrap_or(""), 12)
                            ),
                        }
                    }
                }
                Err(error @ (GitFlowError::Conflict { .. } | GitFlowError::Blocked { .. })) => {
                    if json {
                        let (result, branch, target, paths) = match &error {
                            GitFlowError::Conflict {
                                branch,
                                target,
                                paths,
                            } => ("conflict", branch, target, paths),
                            GitFlowError::Blocked {
                                branch,
                                target,
                                paths,
                            } => ("blocked", branch, target, paths),
                            _ => unreachable!("matched above"),
                        };
                        print_json(&json!({
                            "branch": branch, "target": target, "result": result, "paths": paths,
                        }));
                    }
                    return Err(error.into());
                }
                Err(error) => return Err(error.into()),
            }
        }
        GitCommand::PrCreate {
            execution_id,
            title,
            body,
            json,
        } => {
            let flow = GitFlow::open(&registry, None).await?;
            let pr = flow
                .pr_create(&execution_id, title.as_deref(), body.as_deref())
                .await?;
            if json {
                print_json(&json!(pr));
            } else {
                println!("pull request described in {}", pr.file.display());
                println!("  title  {}", shown::line(&pr.title));
                println!("  {} -> {}", shown::line(&pr.head), shown::line(&pr.base));
                println!("Nothing was pushed. Push the branch, then open it with:");
                println!("  {}", shown::line(&pr.command));
            }
        }
        GitCommand::Cleanup {
            target,
            older_than,
            json,
        } => {
            let flow = GitFlow::open(&registry, None).await?;
            let report = flow.cleanup(target.as_deref(), older_than).await?;
            if json {
                let entries: Vec<_> = report
                    .iter()
                    .map(
                        |c| json!({ "branch": c.branch, "removed": c.removed, "detail": c.detail }),
                    )
                    .collect();
                print_json(&json!({ "branches": entries }));
            } else if report.is_empty() {
                println!("no execution branches");
            } else {
                let rows: Vec<Vec<String>> = report
                    .iter()
                    .map(|c| {
                        vec![
                            c.branch.clone(),
                            if c.removed { "removed" } else { "kept" }.to_string(),
                            c.detail.clone(),
                        ]
                    })
                    .collect();
                print_table(&["branch", "result", "detail"], &rows);
            }
        }
    }
    Ok(())
}
