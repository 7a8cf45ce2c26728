//! One trait per kind of plugin. Methods with a body are optional.

use serde_json::Value;

use crate::git::{
    Cleaned, ExecutionBranch, GitSettings, MergeOutcome, PullRequest, SettingsRequest,
};
use crate::types::*;

/// What every plugin implements, whatever its kind.
///
/// The host creates an instance of the plugin's component, calls `init` with
/// the operator's config, and then calls the kind's methods on the value that
/// `init` returned. An instance serves one call at a time; the host may create
/// several instances, and may drop one at any time, so keep durable state in a
/// granted directory or in memory, not in the value.
pub trait Plugin: Sized + 'static {
    /// Describe the plugin: name, version and what it asks to be granted.
    fn info() -> PluginInfo;

    /// Build the plugin from its config, a JSON object (`{}` when there is none).
    fn init(config: Value) -> Result<Self, Error>;

    fn health(&self) -> HealthStatus {
        HealthStatus::ready()
    }
}

/// An LLM backend.
pub trait Provider: Plugin {
    fn list_models(&mut self) -> Result<Vec<ModelInfo>, Error>;

    fn chat(&mut self, request: ChatRequest) -> Result<ChatResponse, Error>;
}

/// A set of tools.
pub trait Tool: Plugin {
    fn list_tools(&self) -> Vec<ToolSpec>;

    /// Run the tool `name`. The host has already checked `arguments` against
    /// the tool's input schema.
    fn invoke(
        &mut self,
        name: &str,
        arguments: Value,
        context: &InvocationContext,
    ) -> Result<Value, Error>;
}

/// A namespaced key-value store with search.
pub trait Memory: Plugin {
    fn put(&mut self, namespace: &str, key: &str, value: &str) -> Result<(), Error>;

    fn get(&mut self, namespace: &str, key: &str) -> Result<Option<String>, Error>;

    fn delete(&mut self, namespace: &str, key: &str) -> Result<bool, Error>;

    fn keys(&mut self, namespace: &str, prefix: &str) -> Result<Vec<String>, Error>;

    /// Entries relevant to `query`, best first. The default ranks entries by
    /// how many of the query's words they contain, in key and value.
    fn search(
        &mut self,
        namespace: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>, Error> {
        let words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let mut hits = Vec::new();
        for key in self.keys(namespace, "")? {
            let Some(value) = self.get(namespace, &key)? else {
                continue;
            };
            let haystack = format!("{key} {value}").to_lowercase();
            let score = words
                .iter()
                .filter(|w| haystack.contains(w.as_str()))
                .count();
            if score > 0 {
                hits.push(SearchHit {
                    key,
                    value,
                    score: score as f32,
                });
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
        hits.truncate(limit as usize);
        Ok(hits)
    }
}

/// Hears what happens in the host.
pub trait Observer: Plugin {
    fn on_event(&mut self, event: Event) -> Result<(), Error>;

    /// What the observer has gathered so far.
    fn report(&self) -> Value {
        Value::Object(Default::default())
    }
}

/// The policy of the git workflow, behind `paracle git ...`: an observer
/// that also answers the command line. It reaches the repository through
/// [`crate::git`], which needs the operator's `git` grant.
pub trait GitWorkflow: Observer {
    /// Check the repository and settle the settings to write into
    /// `.paracle/config.toml`.
    fn init_workflow(&mut self, requested: SettingsRequest) -> Result<GitSettings, Error>;

    /// Every execution branch.
    fn branches(&mut self) -> Result<Vec<ExecutionBranch>, Error>;

    /// Merge `branch` into `target`, by default the base branch.
    fn merge(&mut self, branch: &str, target: Option<&str>) -> Result<MergeOutcome, Error>;

    /// Describe an execution's branch as a pull request. `run` holds the
    /// run's state and metrics: `{"run": ..., "metrics": ...}`.
    fn describe_pull_request(
        &mut self,
        execution_id: &str,
        run: Value,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<PullRequest, Error>;

    /// Delete merged execution branches and their worktrees, keeping those
    /// of the executions in `active`.
    fn cleanup(
        &mut self,
        target: Option<&str>,
        older_than_ms: Option<u64>,
        active: &[String],
    ) -> Result<Vec<Cleaned>, Error>;
}

/// Runs an agent on a task, reaching the model, tools and memory that the
/// agent's spec names through the functions of [`crate::agent`].
pub trait Adapter: Plugin {
    fn run_agent(&mut self, agent: AgentSpec, task: Task) -> Result<Outcome, Error>;
}
