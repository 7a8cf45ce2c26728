//! What crosses the wire between a coordinator and its workers, and where
//! in NATS it goes. Every message is JSON; everything read from NATS is
//! size-checked and depth-checked before it is parsed, since anyone who can
//! publish on these subjects can write one.

use std::collections::BTreeSet;

use paracle_contract::json::{nests_deeper_than, MAX_JSON_DEPTH};
use paracle_contract::{AgentSpec, Artifact, Outcome, Task, Usage};
use paracle_orchestrator::run::{FailureKind, GatedCall};
use paracle_policy::{Approvals, Grants, Limits};
use paracle_runtime::{Isolation, PluginKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The work-queue stream agent tasks wait in until a worker takes them.
pub(crate) const TASKS_STREAM: &str = "PARACLE_TASKS";
pub(crate) const TASKS_SUBJECT: &str = "paracle.tasks";
/// The durable pull consumer every worker shares.
pub(crate) const WORKERS_CONSUMER: &str = "paracle-workers";
/// Outcomes, kept so that a coordinator that was down finds them.
pub(crate) const RESULTS_STREAM: &str = "PARACLE_RESULTS";
pub(crate) const RESULTS_PREFIX: &str = "paracle.results";
/// Live notices: a worker took a task, an agent made a call.
pub(crate) const PROGRESS_PREFIX: &str = "paracle.progress";
/// Plugin components by digest.
pub(crate) const COMPONENTS_BUCKET: &str = "paracle-components";
/// Outcomes with their artifacts, by task key.
pub(crate) const OUTCOMES_BUCKET: &str = "paracle-outcomes";
/// Which attempt of each agent a coordinator sent, to pick it up again:
/// the last message on each agent's subject.
pub(crate) const JOURNAL_STREAM: &str = "PARACLE_DISPATCH";
pub(crate) const JOURNAL_PREFIX: &str = "paracle.dispatch";

/// A task, a result or a notice larger than this is refused unread. NATS
/// itself caps a message at 1 MiB by default.
pub(crate) const MAX_MESSAGE_BYTES: usize = 8 << 20;
/// An outcome with its artifacts, read from the object store.
pub(crate) const MAX_OUTCOME_BYTES: usize = 64 << 20;
/// A component, read from the object store.
pub(crate) const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// A subject token for `text` (a run id), which may hold characters NATS
/// gives meaning to.
pub(crate) fn token(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..12])
}

pub(crate) fn results_subject(run: &str) -> String {
    format!("{RESULTS_PREFIX}.{}", token(run))
}

pub(crate) fn progress_subject(run: &str) -> String {
    format!("{PROGRESS_PREFIX}.{}", token(run))
}

/// Parse `bytes` as a `T`, refusing what is too large or nests too deep.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, String> {
    if bytes.len() > max {
        return Err(format!("{} bytes, over the limit of {max}", bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    if nests_deeper_than(text, MAX_JSON_DEPTH) {
        return Err(format!("JSON nested deeper than {MAX_JSON_DEPTH} levels"));
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("wire types serialise")
}

/// One plugin a task needs: which component, and how the coordinator's
/// operator set it up. The worker holds no grant that is not here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PluginRef {
    pub name: String,
    pub digest: String,
    pub kind: PluginKind,
    /// The config for `init`, as JSON text.
    pub config: String,
    pub grants: Grants,
    pub limits: Limits,
    pub isolation: Isolation,
    pub approvals: Approvals,
    /// The signature that came with the component, for the worker's trust
    /// list.
    pub signature: Option<String>,
}

/// A tool plugin an agent may use, and which of its tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolRef {
    pub plugin: PluginRef,
    pub only: BTreeSet<String>,
    pub approvals: Approvals,
}

/// One attempt of one agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskMessage {
    /// Unique to this attempt; results are keyed by it.
    pub key: String,
    pub run: String,
    pub phase: String,
    pub agent: String,
    pub attempt: u32,
    pub timeout_ms: u64,
    pub adapter: PluginRef,
    pub provider: PluginRef,
    pub memory: Option<PluginRef>,
    pub tools: Vec<ToolRef>,
    pub spec: WireSpec,
    pub task: WireTask,
    /// Tool calls of this agent a person has decided, at the phase's gate.
    pub decided: Vec<GatedCall>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireSpec {
    pub name: String,
    pub description: String,
    pub system_prompt: String,
    pub model: String,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub max_steps: u32,
    pub memory_namespace: String,
    pub config: String,
}

impl From<&AgentSpec> for WireSpec {
    fn from(spec: &AgentSpec) -> Self {
        WireSpec {
            name: spec.name.clone(),
            description: spec.description.clone(),
            system_prompt: spec.system_prompt.clone(),
            model: spec.model.clone(),
            temperature: spec.temperature,
            max_tokens: spec.max_tokens,
            max_steps: spec.max_steps,
            memory_namespace: spec.memory_namespace.clone(),
            config: spec.config.clone(),
        }
    }
}

impl From<WireSpec> for AgentSpec {
    fn from(spec: WireSpec) -> Self {
        AgentSpec {
            name: spec.name,
            description: spec.description,
            system_prompt: spec.system_prompt,
            model: spec.model,
            temperature: spec.temperature,
            max_tokens: spec.max_tokens,
            max_steps: spec.max_steps,
            memory_namespace: spec.memory_namespace,
            config: spec.config,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireTask {
    pub id: String,
    pub input: String,
    pub context: String,
}

impl From<&Task> for WireTask {
    fn from(task: &Task) -> Self {
        WireTask {
            id: task.id.clone(),
            input: task.input.clone(),
            context: task.context.clone(),
        }
    }
}

impl From<WireTask> for Task {
    fn from(task: WireTask) -> Self {
        Task {
            id: task.id,
            input: task.input,
            context: task.context,
        }
    }
}

/// An agent's outcome, kept in the object store under its task key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireOutcome {
    pub output: String,
    pub artifacts: Vec<(String, String)>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub steps: u32,
    pub tool_calls: u32,
}

impl From<&Outcome> for WireOutcome {
    fn from(outcome: &Outcome) -> Self {
        WireOutcome {
            output: outcome.output.clone(),
            artifacts: outcome
                .artifacts
                .iter()
                .map(|a| (a.path.clone(), a.content.clone()))
                .collect(),
            prompt_tokens: outcome.usage.prompt_tokens,
            completion_tokens: outcome.usage.completion_tokens,
            steps: outcome.steps,
            tool_calls: outcome.tool_calls,
        }
    }
}

impl From<WireOutcome> for Outcome {
    fn from(outcome: WireOutcome) -> Self {
        Outcome {
            output: outcome.output,
            artifacts: outcome
                .artifacts
                .into_iter()
                .map(|(path, content)| Artifact { path, content })
                .collect(),
            usage: Usage {
                prompt_tokens: outcome.prompt_tokens,
                completion_tokens: outcome.completion_tokens,
            },
            steps: outcome.steps,
            tool_calls: outcome.tool_calls,
        }
    }
}

/// What a worker made of a task, published on the run's results subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResultMessage {
    pub key: String,
    pub worker: String,
    /// Which delivery of the task this was: more than 1 when a worker that
    /// held it before died.
    pub delivered: u32,
    pub elapsed_ms: u64,
    pub result: WireResult,
    /// Tool calls held for a person's approval.
    pub waiting: Vec<GatedCall>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum WireResult {
    /// The outcome is in the outcomes bucket (see [`outcome_object`]),
    /// `bytes` long, with this sha256.
    Succeeded {
        bytes: u64,
        sha256: String,
    },
    Failed {
        kind: FailureKind,
        message: String,
    },
}

/// A live notice from a worker about a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum Progress {
    /// A worker took the task (its `delivered`th delivery).
    Taken {
        key: String,
        worker: String,
        delivered: u32,
    },
    /// The agent made a provider or tool call.
    Call {
        key: String,
        llm: bool,
        plugin: String,
        elapsed_ms: u64,
        ok: bool,
        data: serde_json::Value,
    },
}

/// Where the outcome of a task's `delivered`th delivery is kept: each
/// delivery its own, so that a worker running a task again after another
/// died does not overwrite the outcome a result already names.
pub(crate) fn outcome_object(key: &str, delivered: u32) -> String {
    format!("{key}.{delivered}")
}

/// The sha256 of `bytes`, in hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The object name of a component: its digest without the `sha256:`.
pub(crate) fn component_object(digest: &str) -> Option<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_read_from_nats_is_bounded_before_it_is_parsed() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let refused = decode::<serde_json::Value>(deep.as_bytes(), 1 << 20);
        assert!(refused.is_err_and(|e| e.contains("nested deeper")));
        let large = vec![b' '; 33];
        assert!(
            decode::<serde_json::Value>(&large, 32).is_err_and(|e| e.contains("over the limit"))
        );
        assert!(decode::<serde_json::Value>(b"\xff", 32).is_err());
        let extra = br#"{"notice":"taken","key":"k","worker":"w","delivered":1,"more":1}"#;
        assert!(
            decode::<Progress>(extra, 1 << 20).is_err(),
            "unknown fields are refused"
        );
    }

    #[test]
    fn component_objects_are_named_by_a_digest_only() {
        let hex = "a".repeat(64);
        assert_eq!(
            component_object(&format!("sha256:{hex}")),
            Some(hex.as_str())
        );
        assert_eq!(component_object("sha256:../../etc"), None);
        assert_eq!(component_object(&hex), None);
    }
}
