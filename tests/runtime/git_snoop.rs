//! The `git-snoop` fixture: a tool that imports the `git` interface. The
//! runtime refuses to load it without the grant, and with the grant its
//! calls reach only the backend the host gave it: here an in-memory one,
//! so the runtime is tested without git2 (the libgit2 backend is tested in
//! `paracle-gitflow` and through the command line).

use std::sync::{Arc, Mutex};

use crate::test_host::{answer, TestHost};
use paracle_contract::{BranchInfo, CommitInfo, DiffStat, MergeOutcome, RepositoryInfo, WitError};
use paracle_policy::Grants;
use paracle_runtime::{GitBackend, GitResult, LoadError, PluginSettings};
use serde_json::json;

/// Branches by name; the one named `main` is checked out.
#[derive(Debug, Default)]
struct Branches(Mutex<Vec<String>>);

fn unsupported<T>() -> GitResult<T> {
    Err(WitError::Unavailable("not in this test backend".into()))
}

impl GitBackend for Branches {
    fn repository(&self) -> GitResult<RepositoryInfo> {
        unsupported()
    }
    fn list_branches(&self, prefix: &str) -> GitResult<Vec<BranchInfo>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|name| name.starts_with(prefix))
            .map(|name| BranchInfo {
                name: name.clone(),
                head: CommitInfo {
                    id: "0".repeat(40),
                    summary: String::new(),
                    timestamp_ms: 0,
                },
                worktree: None,
                current: name == "main",
            })
            .collect())
    }
    fn create_branch(&self, _name: &str, _start: &str) -> GitResult<CommitInfo> {
        unsupported()
    }
    fn delete_branch(&self, name: &str) -> GitResult<()> {
        if name == "main" {
            return Err(WitError::Denied("`main` is checked out".into()));
        }
        let mut branches = self.0.lock().unwrap();
        let before = branches.len();
        branches.retain(|b| b != name);
        if branches.len() == before {
            return Err(WitError::NotFound(format!("no branch `{name}`")));
        }
        Ok(())
    }
    fn add_worktree(&self, _name: &str, _branch: &str) -> GitResult<String> {
        unsupported()
    }
    fn remove_worktree(&self, _name: &str, _force: bool) -> GitResult<()> {
        unsupported()
    }
    fn commit(&self, _: &str, _: &str, _: &[String]) -> GitResult<Option<CommitInfo>> {
        unsupported()
    }
    fn merge(&self, _: &str, _: &str, _: &str) -> GitResult<MergeOutcome> {
        unsupported()
    }
    fn count_commits(&self, _base: &str, _head: &str) -> GitResult<u32> {
        unsupported()
    }
    fn diff_stats(&self, _base: &str, _head: &str) -> GitResult<DiffStat> {
        unsupported()
    }
}

fn granted(git: bool, backend: Option<Arc<dyn GitBackend>>) -> PluginSettings {
    PluginSettings {
        grants: Grants {
            git,
            ..Grants::default()
        },
        git: backend,
        ..PluginSettings::default()
    }
}

#[tokio::test]
async fn without_the_grant_it_does_not_load() {
    let host = TestHost::new().await;
    let backend: Arc<dyn GitBackend> = Arc::new(Branches::default());
    for settings in [
        granted(false, None),
        // A repository handed over without the grant is not a grant.
        granted(false, Some(backend)),
        // The grant without a repository reaches nothing.
        granted(true, None),
    ] {
        let bytes = std::fs::read(paracle_guests::GIT_SNOOP).unwrap();
        let error = host
            .load_bytes(paracle_guests::GIT_SNOOP, &bytes, settings)
            .await
            .err()
            .expect("refused");
        assert!(matches!(error, LoadError::GitNotGranted { .. }), "{error}");
        assert!(error.to_string().contains("--grant git"), "{error}");
    }
    host.still_serves().await;
}

#[tokio::test]
async fn with_the_grant_it_reaches_only_the_backend_it_was_given() {
    let host = TestHost::new().await;
    let branches = Arc::new(Branches(Mutex::new(vec!["main".into(), "side".into()])));
    let snoop = host
        .plugin("git_snoop.wasm", granted(true, Some(branches.clone())))
        .await;
    assert_eq!(
        answer(&snoop, "branches", json!({})).await,
        json!(["main", "side"])
    );
    answer(&snoop, "delete-branch", json!({"name": "side"})).await;
    assert_eq!(*branches.0.lock().unwrap(), vec!["main".to_string()]);
    // The backend's refusal reaches the plugin as its error, with its kind.
    let refused = snoop
        .invoke_tool(
            "delete-branch",
            &json!({"name": "main"}),
            &crate::test_host::context(),
        )
        .await
        .expect("no trap");
    let error = refused.expect_err("refused");
    assert!(error.message.contains("checked out"), "{error}");
    host.still_serves().await;
}

/// wasmtime links an import by semver: a component that asks for another
/// 0.1.x of `git` would reach the `git` the linker offers. It still needs
/// the grant, whatever version it names.
#[tokio::test]
async fn a_git_import_under_another_version_still_needs_the_grant() {
    let host = TestHost::new().await;
    let mut version = paracle_contract::CONTRACT_VERSION.to_string();
    let last = version.pop().expect("a version");
    version.push(if last == '9' { '8' } else { '9' });
    let ours = format!("paracle:plugin/git@{}", paracle_contract::CONTRACT_VERSION);
    let theirs = format!("paracle:plugin/git@{version}");
    let mut bytes = std::fs::read(paracle_guests::GIT_SNOOP).unwrap();
    let mut renamed = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..]
        .windows(ours.len())
        .position(|window| window == ours.as_bytes())
    {
        let start = at + found;
        bytes[start..start + ours.len()].copy_from_slice(theirs.as_bytes());
        renamed += 1;
        at = start + ours.len();
    }
    assert!(renamed > 0, "git_snoop.wasm names {ours}");
    let error = host
        .load_bytes("git-snoop-renamed.wasm", &bytes, granted(false, None))
        .await
        .err()
        .expect("refused without the grant");
    assert!(matches!(error, LoadError::GitNotGranted { .. }), "{error}");
    host.still_serves().await;
}
