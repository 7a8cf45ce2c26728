//! One agent of a phase, ready to run: its adapter, routes, task, retries
//! and timeout, and what became of it. An [`crate::Executor`] runs jobs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paracle_base::beneath::{Beneath, BeneathError};
use paracle_contract::{AgentSpec, EventKind, Outcome, Task};
use paracle_runtime::{AgentRoutes, CallError, Plugin};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::events::{EventBus, Scope};
use crate::run::FailureKind;
use crate::spec::Retry;

/// One agent, ready to run on its own task.
pub struct Job {
    pub(crate) name: String,
    pub(crate) adapter: Arc<Plugin>,
    pub(crate) routes: Arc<AgentRoutes>,
    pub(crate) spec: AgentSpec,
    pub(crate) task: Task,
    pub(crate) retry: Retry,
    pub(crate) timeout: Duration,
    pub(crate) workspace: PathBuf,
    pub(crate) bus: Arc<EventBus>,
    pub(crate) scope: Scope,
}

impl Job {
    /// The agent's name in its phase.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What became of one agent.
pub struct Finished {
    pub(crate) name: String,
    pub(crate) attempts: u32,
    pub(crate) last: Duration,
    pub(crate) total: Duration,
    pub(crate) result: Result<(Outcome, Written), (FailureKind, String)>,
    /// Flushing the artifacts to the disk.
    pub(crate) syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

fn classify(error: CallError) -> (FailureKind, String) {
    let kind = match &error {
        CallError::Trap { .. } => FailureKind::Trap,
        CallError::Limit { .. } => FailureKind::Limit,
        CallError::Denied { .. } => FailureKind::Denied,
        CallError::InvalidRequest { .. } => FailureKind::Error,
        CallError::Instantiate { .. } | CallError::InitRejected { .. } => FailureKind::Setup,
    };
    (kind, error.to_string())
}

/// Write the outcome's artifacts into the workspace; their paths and
/// digests, or why not. They are flushed to the disk in the background, and
/// the phase waits for that before it ends. A path through a link the
/// workspace holds is refused: the link may point anywhere.
pub(crate) fn write_artifacts(workspace: &Path, outcome: &Outcome) -> Result<Written, String> {
    let mut written = Written::new();
    let root = Beneath::open(workspace).map_err(|e| {
        format!(
            "cannot open the run's workspace {}: {e}",
            workspace.display()
        )
    })?;
    for artifact in &outcome.artifacts {
        root.write(&artifact.path, artifact.content.as_bytes(), false)
            .map_err(|e| match e {
                BeneathError::NotRelative(_) => format!(
                    "artifact path `{}` is not a relative path inside the run's workspace",
                    artifact.path
                ),
                e => format!("cannot write artifact: {e}"),
            })?;
        written.insert(
            artifact.path.trim_start_matches("./").to_string(),
            hex::encode(Sha256::digest(artifact.content.as_bytes())),
        );
    }
    Ok(written)
}

/// Artifacts written, by path, with their sha256.
pub(crate) type Written = BTreeMap<String, String>;

impl Job {
    /// Run the agent, with its retries, and write its artifacts.
    pub async fn run(self) -> Finished {
        let mut attempts = 0;
        let mut total = Duration::ZERO;
        let mut last = Duration::ZERO;
        let mut result = Err((FailureKind::Error, "not run".to_string()));
        while attempts < self.retry.attempts {
            attempts += 1;
            tokio::time::sleep(self.retry.delay_before(attempts)).await;
            let mut started_event = self.scope.event(EventKind::AgentStarted);
            started_event.plugin = Some(self.adapter.name().to_string());
            started_event.data = json!({ "attempt": attempts }).to_string();
            self.bus.emit(started_event);
            let started = Instant::now();
            let task = Task {
                id: format!("{}-{attempts}", self.task.id),
                ..self.task.clone()
            };
            let call = self
                .adapter
                .run_agent(&self.spec, &task, self.routes.clone());
            result = match tokio::time::timeout(self.timeout, call).await {
                Err(_) => Err((
                    FailureKind::Timeout,
                    format!(
                        "agent `{}` ran past its timeout of {}",
                        self.name,
                        humantime::format_duration(self.timeout)
                    ),
                )),
                Ok(Err(error)) => Err(classify(error)),
                Ok(Ok(Err(error))) => Err((FailureKind::Error, error.to_string())),
                Ok(Ok(Ok(outcome))) => match write_artifacts(&self.workspace, &outcome) {
                    Ok(written) => Ok((outcome, written)),
                    Err(message) => Err((FailureKind::Error, message)),
                },
            };
            last = started.elapsed();
            total += last;
            let mut finished_event = self.scope.finished(
                EventKind::AgentFinished,
                last,
                result.is_ok(),
                match &result {
                    Ok((outcome, written)) => json!({
                        "attempt": attempts,
                        "steps": outcome.steps,
                        "tool_calls": outcome.tool_calls,
                        "prompt_tokens": outcome.usage.prompt_tokens,
                        "completion_tokens": outcome.usage.completion_tokens,
                        "artifacts": written.keys().collect::<Vec<_>>(),
                    }),
                    Err((kind, message)) => json!({
                        "attempt": attempts,
                        "failure": kind.as_str(),
                        "error": message,
                    }),
                },
            );
            finished_event.plugin = Some(self.adapter.name().to_string());
            self.bus.emit(finished_event);
            match &result {
                Ok(_) => break,
                // A missing grant will not appear between attempts.
                Err((FailureKind::Denied | FailureKind::Setup, _)) => break,
                Err(_) => {}
            }
        }
        // Off the agents' path: the next agent starts while these flush.
        let syncing = result.as_ref().ok().map(|(_, written)| {
            let files: Vec<String> = written.keys().cloned().collect();
            let workspace = self.workspace.clone();
            tokio::task::spawn_blocking(move || {
                Beneath::open(&workspace)?
                    .sync(&files)
                    .map_err(std::io::Error::other)
            })
        });
        Finished {
            name: self.name,
            attempts,
            last,
            total,
            result,
            syncing,
        }
    }
}
