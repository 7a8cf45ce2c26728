//! The git workflow on real repositories in temporary directories, driven
//! through the `paracle` binary and checked with the git command-line tool:
//! a branch and a worktree per execution, commits per phase, a user's dirty
//! tree left alone, merges and their conflicts, cleanup, pull-request
//! descriptions, and the `git` grant.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::project::Project;
use serde_json::Value;

const GUESTS: &str = paracle_guests::GUEST_DIR;

/// `git` in the project, with an identity of its own so that the machine's
/// config does not matter.
fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test User")
        .env("GIT_AUTHOR_EMAIL", "user@example.com")
        .env("GIT_COMMITTER_NAME", "Test User")
        .env("GIT_COMMITTER_EMAIL", "user@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    command
}

fn git(project: &Project, args: &[&str]) -> String {
    let out = git_command(project.path(), args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A repository with one commit on `main`, agents that write files, and
/// the git workflow set up with `init_args`.
fn repo_project(init_args: &[&str]) -> Project {
    let project = Project::new();
    git(&project, &["init", "-q", "-b", "main"]);
    project.write("README.md", "# A project\n");
    project.write("src/app.txt", "version 1\n");
    project.write(
        "paracle.toml",
        &format!(
            "[plugins.slow-provider]\npath = {:?}\nconfig = {{ delay_ms = 1000 }}\n",
            Path::new(GUESTS).join("mock_provider.wasm")
        ),
    );
    git(
        &project,
        &["add", "README.md", "src/app.txt", "paracle.toml"],
    );
    git(&project, &["commit", "-q", "-m", "initial"]);
    project.write(
        ".paracle/agents/agents.toml",
        r#"[agents.base]
provider = "mock-provider"
tools = ["text-tools"]
memory = "none"

[agents.planner]
parent = "base"
config = { output_file = "docs/plan.md" }

[agents.builder]
parent = "base"
config = { output_file = "notes.md" }

[agents.slow-builder]
parent = "base"
provider = "slow-provider"
config = { output_file = "notes.md" }
"#,
    );
    project.write(
        ".paracle/workflows/build.toml",
        r#"task = "Build the thing."
[[phases]]
name = "plan"
agents = ["planner"]
requires_approval = true

[[phases]]
name = "build"
agents = ["builder"]
"#,
    );
    project.write(
        ".paracle/workflows/slow.toml",
        r#"task = "Build it slowly."
[[phases]]
name = "build"
agents = ["slow-builder"]
"#,
    );
    let mut args = vec!["git", "init-workflow"];
    args.extend_from_slice(init_args);
    project.json(&args);
    project
}

fn start(project: &Project, workflow: &str) -> String {
    project.json(&["run", "start", workflow])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Run `build` to its end on `task`: plan, approve, build.
fn complete_build(project: &Project, task: &str) -> String {
    let id = project.json(&["run", "start", "build", "--input", task])["id"]
        .as_str()
        .unwrap()
        .to_string();
    project.json(&["run", "next", "--run", &id]);
    project.json(&["run", "approve", "--run", &id]);
    let state = project.json(&["run", "next", "--run", &id]);
    assert_eq!(state["status"], "completed");
    id
}

fn branch_of(project: &Project, id: &str) -> String {
    let branches = git(
        project,
        &[
            "branch",
            "--list",
            &format!("exec/{id}/*"),
            "--format=%(refname:short)",
        ],
    );
    let names: Vec<&str> = branches.lines().collect();
    assert_eq!(names.len(), 1, "one branch for {id}: {branches}");
    names[0].to_string()
}

fn worktrees(project: &Project) -> BTreeSet<String> {
    git(project, &["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(str::to_string)
        .collect()
}

fn worktree_dir(project: &Project, id: &str) -> String {
    let dir = project.path().join(".paracle/worktrees").join(id);
    std::fs::canonicalize(dir).unwrap().display().to_string()
}

/// What `git cleanup --json` reported for `branch`.
fn cleanup_outcome(report: &Value, branch: &str) -> Value {
    report["branches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["branch"] == branch)
        .unwrap_or_else(|| panic!("{branch} reported: {report}"))
        .clone()
}

#[test]
fn two_executions_at_once_each_get_their_own_branch_and_worktree() {
    let project = repo_project(&[]);
    let settings = std::fs::read_to_string(project.path().join(".paracle/config.toml")).unwrap();
    assert!(settings.contains("base_branch = \"main\""), "{settings}");

    let first = start(&project, "slow");
    let second = start(&project, "slow");
    // Both phases wait on a slow provider, in two processes at once.
    let children: Vec<_> = [&first, &second]
        .iter()
        .map(|id| {
            project
                .command(&["run", "next", "--run", id, "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Seen running at the same moment, from their state files.
    let status = |id: &str| {
        let file = project
            .path()
            .join(".paracle/runs")
            .join(id)
            .join("state.json");
        let state: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        state["status"].as_str().unwrap().to_string()
    };
    let began = std::time::Instant::now();
    while !(status(&first) == "running" && status(&second) == "running") {
        assert!(
            status(&first) != "completed" && status(&second) != "completed",
            "one execution finished before the other started"
        );
        assert!(began.elapsed().as_secs() < 60, "the executions never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let listed = worktrees(&project);
    let described = project.json(&["git", "branches"]);
    for id in [&first, &second] {
        let branch = branch_of(&project, id);
        // Named for the time the execution started, in UTC: the run id's
        // time or a second later, as GNU date reads it.
        let stamp = branch.rsplit('/').next().unwrap();
        let seconds = |stamp: &str| -> u64 {
            let text = format!(
                "{}-{}-{} {}:{}:{}",
                &stamp[..4],
                &stamp[4..6],
                &stamp[6..8],
                &stamp[9..11],
                &stamp[11..13],
                &stamp[13..15]
            );
            let out = Command::new("date")
                .args(["-u", "-d", &text, "+%s"])
                .output()
                .unwrap();
            assert!(out.status.success(), "date reads {text}");
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let started = seconds(&id[..15]);
        let named = seconds(stamp);
        assert!(
            (started..=started + 1).contains(&named),
            "{branch} for run {id}"
        );
        let entry = described["branches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == branch.as_str())
            .unwrap();
        assert_eq!(entry["created_ms"].as_u64().unwrap(), named * 1000);
        // Its own worktree, which is the run's workspace.
        assert!(listed.contains(&worktree_dir(&project, id)), "{listed:?}");
        let state = project.json(&["run", "status", "--run", id]);
        assert_eq!(
            std::fs::canonicalize(state["workspace"].as_str().unwrap())
                .unwrap()
                .display()
                .to_string(),
            worktree_dir(&project, id)
        );
        // One commit with the phase's artifact, named after the phase and agent.
        assert_eq!(
            git(
                &project,
                &["rev-list", "--count", &format!("main..{branch}")]
            )
            .trim(),
            "1"
        );
        let files = git(&project, &["show", "--name-only", "--format=", &branch]);
        assert_eq!(files.trim(), "notes.md");
        let message = git(&project, &["log", "-1", "--format=%B", &branch]);
        assert!(message.contains("phase `build`"), "{message}");
        assert!(message.contains("slow-builder: succeeded"), "{message}");
        assert!(message.contains(id.as_str()), "{message}");
    }
    assert_ne!(branch_of(&project, &first), branch_of(&project, &second));
    // main did not move, and the user's tree has none of it.
    assert_eq!(git(&project, &["rev-list", "--count", "main"]).trim(), "1");
    assert!(!project.path().join("notes.md").exists());

    let listed: Vec<&Value> = described["branches"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 2);
    for branch in listed {
        assert_eq!(branch["run_status"], "completed");
        assert_eq!(branch["commits"], 1);
        assert_eq!(branch["merged"], false);
    }
}

#[test]
fn a_dirty_working_tree_index_and_branch_stay_exactly_as_they_were() {
    let project = repo_project(&[]);
    git(&project, &["checkout", "-q", "-b", "feature"]);
    // An unstaged edit, a staged edit, and an untracked file.
    project.write("src/app.txt", "version 2, not committed\n");
    project.write("README.md", "# A project, staged\n");
    git(&project, &["add", "README.md"]);
    project.write("scratch.txt", "mine\n");
    let snapshot = |project: &Project| {
        (
            git(
                project,
                &[
                    "status",
                    "--porcelain=v1",
                    "--untracked-files=all",
                    "--",
                    ".",
                    ":!.paracle",
                ],
            ),
            git(project, &["diff"]),
            git(project, &["diff", "--cached"]),
            git(project, &["ls-files", "--stage"]),
            git(project, &["symbolic-ref", "HEAD"]),
            git(project, &["rev-parse", "HEAD", "main"]),
            ["src/app.txt", "README.md", "scratch.txt"]
                .map(|f| std::fs::read(project.path().join(f)).unwrap()),
        )
    };
    let before = snapshot(&project);

    let id = complete_build(&project, "Build the thing.");

    assert_eq!(
        snapshot(&project),
        before,
        "the user's tree, index and branch are untouched"
    );
    // The execution branch started from the base branch, not from `feature`,
    // and holds a commit per phase.
    let branch = branch_of(&project, &id);
    assert_eq!(
        git(&project, &["merge-base", "main", &branch]).trim(),
        git(&project, &["rev-parse", "main"]).trim()
    );
    let log = git(
        &project,
        &["log", "--format=%s", &format!("main..{branch}")],
    );
    let subjects: Vec<&str> = log.lines().collect();
    assert_eq!(subjects.len(), 2, "{log}");
    assert!(subjects[0].contains("phase `build`"), "{log}");
    assert!(subjects[1].contains("phase `plan`"), "{log}");
    assert_eq!(
        git(&project, &["show", &format!("{branch}:src/app.txt")]),
        "version 1\n",
        "the branch has the committed file, not the user's edit"
    );
}

#[test]
fn a_merge_conflict_is_refused_with_its_paths_and_changes_nothing() {
    let project = repo_project(&[]);
    let id = complete_build(&project, "Build the thing.");
    let branch = branch_of(&project, &id);
    // main gets its own notes.md in the meantime.
    project.write("notes.md", "the user's notes\n");
    git(&project, &["add", "notes.md"]);
    git(&project, &["commit", "-q", "-m", "user notes"]);
    let head = git(&project, &["rev-parse", "HEAD"]);
    let index = git(&project, &["ls-files", "--stage"]);

    let error = project.fails(&["git", "merge", &branch]);
    assert!(error.contains("conflicts in notes.md"), "{error}");
    assert!(error.contains("nothing was changed"), "{error}");
    let out = project.run(&["git", "merge", &branch, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["result"], "conflict");
    assert_eq!(printed["paths"], serde_json::json!(["notes.md"]));

    assert_eq!(git(&project, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&project, &["ls-files", "--stage"]), index);
    assert_eq!(
        git(
            &project,
            &["status", "--porcelain", "--", ".", ":!.paracle"]
        ),
        ""
    );
    assert!(!project.path().join(".git/MERGE_HEAD").exists());
    assert_eq!(
        std::fs::read_to_string(project.path().join("notes.md")).unwrap(),
        "the user's notes\n"
    );

    // Into a branch without the clash, by execution id, it merges.
    git(&project, &["branch", "release", "HEAD~1"]);
    let merged = project.json(&["git", "merge", &id, "--target", "release"]);
    assert_eq!(merged["result"], "fast-forward");
    assert_eq!(
        git(&project, &["rev-parse", "release"]),
        git(&project, &["rev-parse", &branch])
    );
    assert_eq!(
        git(&project, &["rev-parse", "HEAD"]),
        head,
        "main is where it was"
    );
}

#[test]
fn merging_into_the_checked_out_branch_brings_the_tree_along_and_keeps_edits() {
    let project = repo_project(&[]);
    let id = complete_build(&project, "Build the thing.");
    project.write("src/app.txt", "an edit the merge does not touch\n");
    // A file of the user's where the merge would put one: refused, untouched.
    project.write("notes.md", "my own notes\n");
    let main = git(&project, &["rev-parse", "main"]);
    let error = project.fails(&["git", "merge", &id]);
    assert!(
        error.contains("would overwrite") && error.contains("notes.md"),
        "{error}"
    );
    assert_eq!(git(&project, &["rev-parse", "main"]), main);
    assert_eq!(
        std::fs::read_to_string(project.path().join("notes.md")).unwrap(),
        "my own notes\n"
    );
    assert!(
        !project.path().join("docs/plan.md").exists(),
        "no file of the merge came in"
    );
    std::fs::remove_file(project.path().join("notes.md")).unwrap();

    let merged = project.json(&["git", "merge", &id]);
    assert_eq!(merged["result"], "fast-forward");
    assert_eq!(
        git(&project, &["rev-parse", "main"]),
        git(&project, &["rev-parse", &branch_of(&project, &id)])
    );
    // The merged files are in the user's tree and index, the edit is kept.
    assert!(project.path().join("notes.md").is_file());
    assert!(project.path().join("docs/plan.md").is_file());
    assert_eq!(
        git(
            &project,
            &["status", "--porcelain", "--", ".", ":!.paracle"]
        ),
        " M src/app.txt\n"
    );
    assert_eq!(
        std::fs::read_to_string(project.path().join("src/app.txt")).unwrap(),
        "an edit the merge does not touch\n"
    );
}

#[test]
fn cleanup_removes_merged_branches_and_keeps_unmerged_and_unfinished_ones() {
    let project = repo_project(&[]);
    let merged = complete_build(&project, "Build the thing.");
    project.json(&["git", "merge", &merged]);
    // Another task, so that its files differ from what main has now.
    let unmerged = complete_build(&project, "Build another thing.");
    let unfinished = start(&project, "build");
    let merged_branch = branch_of(&project, &merged);
    let unmerged_branch = branch_of(&project, &unmerged);
    let unfinished_branch = branch_of(&project, &unfinished);

    // Too young for the limit: everything stays.
    let report = project.json(&["git", "cleanup", "--older-than", "1d"]);
    let removed: Vec<&Value> = report["branches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["removed"] == true)
        .collect();
    assert!(removed.is_empty(), "{report}");

    let report = project.json(&["git", "cleanup"]);
    let outcome = |branch: &str| cleanup_outcome(&report, branch);
    assert_eq!(outcome(&merged_branch)["removed"], true);
    assert_eq!(outcome(&unmerged_branch)["removed"], false);
    assert!(outcome(&unmerged_branch)["detail"]
        .as_str()
        .unwrap()
        .contains("not merged"));
    assert_eq!(outcome(&unfinished_branch)["removed"], false);
    assert!(outcome(&unfinished_branch)["detail"]
        .as_str()
        .unwrap()
        .contains("not finished"));

    let branches = git(&project, &["branch", "--format=%(refname:short)"]);
    assert!(!branches.contains(&merged_branch), "{branches}");
    assert!(branches.contains(&unmerged_branch), "{branches}");
    assert!(branches.contains(&unfinished_branch), "{branches}");
    let listed = worktrees(&project);
    assert!(!project
        .path()
        .join(".paracle/worktrees")
        .join(&merged)
        .exists());
    assert!(
        listed.contains(&worktree_dir(&project, &unmerged)),
        "{listed:?}"
    );
    assert!(
        listed.contains(&worktree_dir(&project, &unfinished)),
        "{listed:?}"
    );
    assert_eq!(
        listed.len(),
        3,
        "the user's tree and two worktrees: {listed:?}"
    );
    // The merged work is still on main.
    assert!(git(&project, &["ls-tree", "-r", "--name-only", "main"]).contains("notes.md"));
}

#[test]
fn cleanup_reports_a_branch_it_cannot_delete_and_goes_on() {
    let project = repo_project(&[]);
    let first = complete_build(&project, "Build the thing.");
    project.json(&["git", "merge", &first]);
    let second = complete_build(&project, "Build another thing.");
    project.json(&["git", "merge", &second]);
    let first_branch = branch_of(&project, &first);
    let second_branch = branch_of(&project, &second);
    // The user looks at the first execution's work in their own tree, so
    // that branch cannot be deleted; it comes first in the listing.
    git(
        &project,
        &["worktree", "remove", &worktree_dir(&project, &first)],
    );
    git(&project, &["checkout", "-q", &first_branch]);

    let report = project.json(&["git", "cleanup"]);
    let outcome = |branch: &str| cleanup_outcome(&report, branch);
    assert_eq!(outcome(&first_branch)["removed"], false, "{report}");
    assert!(
        outcome(&first_branch)["detail"]
            .as_str()
            .unwrap()
            .contains("checked out"),
        "{report}"
    );
    assert_eq!(outcome(&second_branch)["removed"], true, "{report}");
    let branches = git(&project, &["branch", "--format=%(refname:short)"]);
    assert!(branches.contains(&first_branch), "{branches}");
    assert!(!branches.contains(&second_branch), "{branches}");
    assert_eq!(
        git(&project, &["symbolic-ref", "--short", "HEAD"]).trim(),
        first_branch
    );
}

#[test]
fn an_approved_execution_merges_and_cleans_up_itself_when_configured() {
    let project = repo_project(&["--auto-merge", "true", "--auto-cleanup", "true"]);
    let id = start(&project, "build");
    project.json(&["run", "next", "--run", &id]);
    // Not approved yet: nothing reaches main.
    assert_eq!(git(&project, &["rev-list", "--count", "main"]).trim(), "1");
    project.json(&["run", "approve", "--run", &id]);
    project.json(&["run", "next", "--run", &id]);

    let log = git(&project, &["log", "--format=%s", "main"]);
    assert!(
        log.contains("phase `build`") && log.contains("phase `plan`"),
        "{log}"
    );
    assert!(
        project.path().join("notes.md").is_file(),
        "main's checkout followed the merge"
    );
    assert_eq!(git(&project, &["branch", "--list", "exec/*"]), "");
    assert_eq!(worktrees(&project).len(), 1);
}

#[test]
fn pr_create_describes_the_run_and_prints_the_gh_command() {
    let project = repo_project(&[]);
    let id = complete_build(&project, "Build the thing.");
    let branch = branch_of(&project, &id);
    let pr = project.json(&["git", "pr-create", &id, "--body", "Please review."]);
    let file = project.path().join(format!(".paracle/prs/{id}.md"));
    assert_eq!(
        std::fs::canonicalize(pr["file"].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(&file).unwrap()
    );
    assert_eq!(pr["title"], "build: Build the thing.");
    let command = pr["command"].as_str().unwrap();
    assert!(
        command.starts_with(&format!("gh pr create --base main --head {branch} --title 'build: Build the thing.' --body-file .paracle/prs/{id}.md")),
        "{command}"
    );
    let body = std::fs::read_to_string(&file).unwrap();
    for expected in [
        "Please review.",
        "| plan | approved | 1/1 succeeded |",
        "| build | succeeded | 1/1 succeeded |",
        "**planner**: succeeded",
        "**builder**: succeeded",
        "| Agents succeeded | 2 |",
        "- `docs/plan.md`",
        "- `notes.md`",
        "2 commit(s), 2 file(s) changed",
    ] {
        assert!(body.contains(expected), "`{expected}` in:\n{body}");
    }
    // Nothing was pushed or changed in the repository.
    assert_eq!(git(&project, &["remote"]), "");
    let error = project.fails(&["git", "pr-create", "20000101_000000_000-000000"]);
    assert!(error.contains("no run"), "{error}");
}

#[test]
fn a_plugin_without_the_git_grant_cannot_import_git() {
    let project = repo_project(&[]);
    git(&project, &["branch", "side"]);
    let snoop = Path::new(GUESTS).join("git_snoop.wasm");
    let snoop = snoop.to_str().unwrap();

    let error = project.fails(&["plugin", "load", snoop]);
    assert!(error.contains("imports the `git` interface"), "{error}");
    assert!(error.contains("--grant git"), "{error}");
    let plugins = project.json(&["plugin", "list"]);
    assert!(
        !plugins.to_string().contains("git-snoop"),
        "a refused plugin is not registered: {plugins}"
    );
    // Declared in paracle.toml without the grant, it is refused when used.
    project.write(
        "paracle.toml",
        &format!("[plugins.git-snoop]\npath = {snoop:?}\n"),
    );
    let error = project.fails(&[
        "plugin",
        "call",
        "git-snoop",
        "delete-branch",
        r#"{"name": "side"}"#,
    ]);
    assert!(error.contains("imports the `git` interface"), "{error}");
    assert!(git(&project, &["branch", "--list", "side"]).contains("side"));

    // Granted, it reaches the repository, and only as the host allows.
    project.write(
        "paracle.toml",
        &format!("[plugins.git-snoop]\npath = {snoop:?}\ngrants = {{ git = true }}\n"),
    );
    let listed = project.json(&["plugin", "call", "git-snoop", "branches", "{}"]);
    assert!(listed.to_string().contains("side"), "{listed}");
    let error = project.fails(&[
        "plugin",
        "call",
        "git-snoop",
        "delete-branch",
        r#"{"name": "main"}"#,
    ]);
    assert!(error.contains("checked out"), "{error}");
    project.json(&[
        "plugin",
        "call",
        "git-snoop",
        "delete-branch",
        r#"{"name": "side"}"#,
    ]);
    assert_eq!(git(&project, &["branch", "--list", "side"]), "");
}

#[test]
fn init_workflow_checks_the_repository() {
    let project = Project::new();
    let error = project.fails(&["git", "init-workflow"]);
    assert!(error.contains("not in a git repository"), "{error}");
    git(&project, &["init", "-q", "-b", "main"]);
    let error = project.fails(&["git", "init-workflow"]);
    assert!(error.contains("no commit yet"), "{error}");
    git(&project, &["commit", "-q", "--allow-empty", "-m", "first"]);
    let error = project.fails(&["git", "init-workflow", "--base", "trunk"]);
    assert!(error.contains("no branch `trunk`"), "{error}");
    let error = project.fails(&["git", "branches"]);
    assert!(error.contains("paracle git init-workflow"), "{error}");

    project.write(
        ".paracle/config.toml",
        "# mine\n[orchestrator]\nmax_parallel_agents = 2\n",
    );
    let set = project.json(&["git", "init-workflow", "--auto-merge", "true"]);
    assert_eq!(set["settings"]["base_branch"], "main");
    assert_eq!(set["settings"]["auto_merge"], true);
    assert_eq!(set["settings"]["auto_commit"], true);
    let config = std::fs::read_to_string(project.path().join(".paracle/config.toml")).unwrap();
    assert!(
        config.starts_with("# mine\n[orchestrator]\nmax_parallel_agents = 2\n"),
        "{config}"
    );
    assert!(config.contains("[git]\nbase_branch = \"main\"\nauto_commit = true\nauto_merge = true\nauto_cleanup = false\n"), "{config}");
    // Strict: an unknown key names its line.
    project.write(
        ".paracle/config.toml",
        &format!("{config}auto_merj = true\n"),
    );
    let error = project.fails(&["git", "branches"]);
    assert!(
        error.contains("config.toml:11:") && error.contains("auto_merj"),
        "{error}"
    );
}

#[test]
fn quickstart_after_init_workflow_keeps_the_git_settings() {
    let project = Project::new();
    git(&project, &["init", "-q", "-b", "main"]);
    git(&project, &["commit", "-q", "--allow-empty", "-m", "first"]);
    project.json(&["git", "init-workflow", "--auto-merge", "true"]);
    let config_file = project.path().join(".paracle/config.toml");
    let git_settings = std::fs::read_to_string(&config_file).unwrap();

    let out = project.json(&["quickstart", "--type", "webapp", "--name", "shop"]);
    let config = std::fs::read_to_string(&config_file).unwrap();
    assert!(config.starts_with(&git_settings), "{config}");
    assert!(config.contains("max_parallel_agents = 4"), "{config}");
    let id = out["id"].as_str().expect("quickstart started a run");
    branch_of(&project, id);
    assert!(worktrees(&project).contains(&worktree_dir(&project, id)));

    // Other orchestrator settings are the user's: refused, then with
    // --force replaced, while [git] stays as it was.
    let tuned = config.replace("max_parallel_agents = 4", "max_parallel_agents = 2");
    std::fs::write(&config_file, &tuned).unwrap();
    let error = project.fails(&["quickstart", "--type", "webapp", "--name", "shop"]);
    assert!(
        error.contains("config.toml already exists") && error.contains("--force"),
        "{error}"
    );
    assert_eq!(std::fs::read_to_string(&config_file).unwrap(), tuned);
    project.json(&[
        "quickstart",
        "--type",
        "webapp",
        "--name",
        "shop",
        "--force",
    ]);
    assert_eq!(std::fs::read_to_string(&config_file).unwrap(), config);
}

#[test]
fn a_run_whose_worktree_was_removed_by_hand_is_refused_until_it_is_back() {
    let project = repo_project(&[]);
    let id = start(&project, "build");
    let branch = branch_of(&project, &id);
    let worktree = worktree_dir(&project, &id);
    git(&project, &["worktree", "remove", "--force", &worktree]);

    let error = project.fails(&["run", "next", "--run", &id]);
    assert!(
        error.contains("is gone") && error.contains("git worktree add"),
        "{error}"
    );
    assert!(
        !Path::new(&worktree).exists(),
        "nothing written in its place"
    );
    let status = project.json(&["run", "status", "--run", &id]);
    assert_eq!(status["status"], "ready", "{status}");
    // Rollback writes only in the run's own directory, so it still works.
    project.json(&["run", "rollback", "--run", &id, "--phase", "plan"]);

    // What the error says to do brings the run back onto its branch.
    git(&project, &["worktree", "prune"]);
    git(&project, &["worktree", "add", &worktree, &branch]);
    project.json(&["run", "next", "--run", &id]);
    let files = git(&project, &["ls-tree", "-r", "--name-only", &branch]);
    assert!(files.contains("docs/plan.md"), "{files}");
}

#[test]
fn what_a_plugin_plants_in_a_worktree_reaches_nothing_outside_its_branch() {
    let project = repo_project(&[]);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "host secret\n").unwrap();
    let snapshot = |project: &Project| {
        (
            git(
                project,
                &["status", "--porcelain=v1", "--", ".", ":!.paracle"],
            ),
            git(project, &["ls-files", "--stage"]),
            git(project, &["symbolic-ref", "HEAD"]),
            git(project, &["rev-parse", "HEAD"]),
        )
    };
    let before = snapshot(&project);
    let id = start(&project, "build");
    let worktree = Path::new(&worktree_dir(&project, &id)).to_path_buf();
    // What a plugin granted the run's workspace can write there: the
    // worktree's `.git` pointed at the user's own repository, a tracked
    // directory swapped for a link out of it, and a link to a host file.
    std::fs::write(
        worktree.join(".git"),
        format!("gitdir: {}\n", project.path().join(".git").display()),
    )
    .unwrap();
    std::fs::remove_dir_all(worktree.join("src")).unwrap();
    std::os::unix::fs::symlink(outside.path(), worktree.join("src")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), worktree.join("leak.md"))
        .unwrap();

    let planned = project.json(&["run", "next", "--run", &id]);
    assert_eq!(planned["status"], "awaiting-approval", "{planned}");
    assert_eq!(
        snapshot(&project),
        before,
        "the user's repository did not move"
    );
    let branch = branch_of(&project, &id);
    let files = git(&project, &["ls-tree", "-r", "--name-only", &branch]);
    assert!(files.lines().any(|f| f == "docs/plan.md"), "{files}");
    assert!(
        !files.contains("leak.md") && !files.contains("secret"),
        "{files}"
    );
    assert_eq!(
        git(&project, &["show", &format!("{branch}:src/app.txt")]),
        "version 1\n"
    );

    project.json(&["run", "approve", "--run", &id]);
    let built = project.json(&["run", "next", "--run", &id]);
    assert_eq!(built["status"], "completed", "{built}");
    assert_eq!(snapshot(&project), before);
    // Merged into the user's tree: the agents' files, and nothing the
    // links pointed at.
    project.json(&["git", "merge", &id]);
    assert!(project.path().join("docs/plan.md").is_file());
    assert!(!project.path().join("leak.md").exists());
    assert_eq!(
        std::fs::read_to_string(project.path().join("src/app.txt")).unwrap(),
        "version 1\n"
    );
    let names: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "nothing was written outside");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(),
        "host secret\n"
    );
}
