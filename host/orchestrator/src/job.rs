//! One agent of a phase, ready to run: its adapter, routes, task, retries
//! and timeout, and what became of it. An [`crate::Executor`] runs jobs.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use paracle_base::beneath::{Beneath, BeneathError};
use paracle_contract::{AgentSpec, EventKind, Outcome, Task};
use paracle_runtime::{AgentRoutes, CallError, Plugin, ToolChoice};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::events::{EventBus, Scope};
use crate::run::{FailureKind, GatedCall, Placement};
use crate::spec::Retry;

/// One agent, ready to run on its own task.
pub struct Job {
    pub(crate) name: String,
    pub(crate) adapter: Arc<Plugin>,
    /// The plugins its routes reach, for an executor that runs the agent
    /// elsewhere and makes its routes there.
    pub(crate) reaches: Reaches,
    pub(crate) routes: Arc<AgentRoutes>,
    pub(crate) spec: AgentSpec,
    pub(crate) task: Task,
    pub(crate) retry: Retry,
    pub(crate) timeout: Duration,
    pub(crate) workspace: PathBuf,
    pub(crate) bus: Arc<EventBus>,
    pub(crate) scope: Scope,
    /// Whether it was running when the process that ran its phase died.
    pub(crate) resumed: bool,
    /// Its tool calls a person decided at the phase's gate.
    pub(crate) decided: Vec<GatedCall>,
    /// Attempts recorded for it before this job (earlier runs of the phase).
    pub(crate) prior_attempts: u32,
}

/// The plugins an agent's adapter reaches.
#[derive(Clone)]
pub struct Reaches {
    pub provider: Arc<Plugin>,
    pub memory: Option<Arc<Plugin>>,
    pub tools: Vec<ToolChoice>,
}

impl Job {
    /// The agent's name in its phase.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn adapter(&self) -> &Arc<Plugin> {
        &self.adapter
    }

    /// The provider, memory and tool plugins the agent reaches.
    pub fn reaches(&self) -> &Reaches {
        &self.reaches
    }

    pub fn spec(&self) -> &AgentSpec {
        &self.spec
    }

    pub fn task(&self) -> &Task {
        &self.task
    }

    /// How long one attempt may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The run this agent belongs to.
    pub fn run_id(&self) -> &str {
        self.scope.execution.as_deref().unwrap_or_default()
    }

    /// Whether the agent was running when the process that ran its phase
    /// died: an executor that kept its attempts elsewhere picks them up.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Attempts the run's state records for this agent in its phase
    /// before this job: the same when a dead process's phase is picked up,
    /// more when the phase runs again.
    pub fn prior_attempts(&self) -> u32 {
        self.prior_attempts
    }

    /// Its tool calls a person has decided at the phase's gate, for a
    /// gate where it runs elsewhere.
    pub fn decided_calls(&self) -> &[GatedCall] {
        &self.decided
    }

    /// The phase this agent runs in.
    pub fn phase(&self) -> &str {
        self.scope.phase.as_deref().unwrap_or_default()
    }

    /// Tell the run's observers of a provider or tool call the agent made
    /// elsewhere, as its routes would have here.
    pub fn emit_call(
        &self,
        kind: CallEventKind,
        plugin: &str,
        elapsed: Duration,
        ok: bool,
        data: Value,
    ) {
        let kind = match kind {
            CallEventKind::Llm => EventKind::LlmCall,
            CallEventKind::Tool => EventKind::ToolCall,
        };
        let mut event = self.scope.finished(kind, elapsed, ok, data);
        event.plugin = Some(plugin.to_string());
        self.bus.emit(event);
    }
}

/// Which call an agent made, for [`Job::emit_call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEventKind {
    Llm,
    Tool,
}

/// One attempt of a job, as the job makes it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 1-based, within this job.
    pub number: u32,
    /// Its span in the run's trace ([`crate::trace`]), for a worker that
    /// runs it to hang its own spans under.
    pub span_id: String,
}

/// What one attempt of an agent came to, before its artifacts are written.
pub type Attempted = Result<Outcome, (FailureKind, String)>;

/// Runs the attempts of one job: here ([`Job::run`]), or elsewhere (an
/// executor that sends each attempt to a worker). The retries, the events
/// and the writing of artifacts are the job's, wherever it ran.
pub trait Attempts: Send {
    /// How many attempts had started before this process took the job up
    /// (a coordinator that died while one ran): the last of them is picked
    /// up again rather than made anew. Zero for a job never started.
    fn started(&mut self, _job: &Job) -> Pin<Box<dyn Future<Output = u32> + Send + '_>> {
        Box::pin(std::future::ready(0))
    }

    /// Make `attempt`, or pick it up where it was made.
    fn attempt<'a>(
        &'a mut self,
        job: &'a Job,
        attempt: &'a Attempt,
    ) -> Pin<Box<dyn Future<Output = Attempted> + Send + 'a>>;

    /// Where the attempts ran, for the run's state.
    fn placements(&mut self) -> Vec<Placement> {
        Vec::new()
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
    pub(crate) placements: Vec<Placement>,
}

impl Finished {
    /// A job that could not be run at all: the executor lost it.
    pub fn lost(name: &str, kind: FailureKind, message: String) -> Self {
        Finished {
            name: name.to_string(),
            attempts: 0,
            last: Duration::ZERO,
            total: Duration::ZERO,
            result: Err((kind, message)),
            syncing: None,
            placements: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Attempts in this process, through the adapter plugin loaded here.
struct Here;

impl Attempts for Here {
    fn attempt<'a>(
        &'a mut self,
        job: &'a Job,
        attempt: &'a Attempt,
    ) -> Pin<Box<dyn Future<Output = Attempted> + Send + 'a>> {
        Box::pin(run_attempt(
            &job.adapter,
            &job.name,
            &job.spec,
            &job.task,
            attempt.number,
            job.routes.clone(),
            job.timeout,
        ))
    }
}

/// One attempt of agent `name` through `adapter`, under `timeout`, as it
/// runs wherever it runs: here, or on a worker.
pub async fn run_attempt(
    adapter: &Plugin,
    name: &str,
    spec: &AgentSpec,
    task: &Task,
    attempt: u32,
    routes: Arc<AgentRoutes>,
    timeout: Duration,
) -> Attempted {
    let task = Task {
        id: format!("{}-{attempt}", task.id),
        ..task.clone()
    };
    match tokio::time::timeout(timeout, adapter.run_agent(spec, &task, routes)).await {
        Err(_) => Err(timed_out(name, timeout)),
        Ok(Err(error)) => Err(classify(error)),
        Ok(Ok(Err(error))) => Err((FailureKind::Error, error.to_string())),
        Ok(Ok(Ok(outcome))) => Ok(outcome),
    }
}

fn timed_out(name: &str, timeout: Duration) -> (FailureKind, String) {
    (
        FailureKind::Timeout,
        format!(
            "agent `{name}` ran past its timeout of {}",
            humantime::format_duration(timeout)
        ),
    )
}

/// How the host's own errors from a call are told apart in a run.
pub fn classify(error: CallError) -> (FailureKind, String) {
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
    /// The failure of an attempt that ran past the job's timeout.
    pub fn timed_out(&self) -> (FailureKind, String) {
        timed_out(&self.name, self.timeout)
    }

    /// Run the agent here, with its retries, and write its artifacts.
    pub async fn run(self) -> Finished {
        self.run_with(Here).await
    }

    /// Run the agent's attempts through `attempts`, with the job's retries,
    /// and write the artifacts of the one that succeeds.
    pub async fn run_with(self, mut attempts_by: impl Attempts) -> Finished {
        let mut attempts = attempts_by
            .started(&self)
            .await
            .min(self.retry.attempts)
            .saturating_sub(1);
        // The attempt picked up again waited its delay before it first ran.
        let mut picked_up = attempts > 0;
        let mut total = Duration::ZERO;
        let mut last = Duration::ZERO;
        let mut result = Err((FailureKind::Error, "not run".to_string()));
        while attempts < self.retry.attempts {
            attempts += 1;
            if !std::mem::take(&mut picked_up) {
                tokio::time::sleep(self.retry.delay_before(attempts)).await;
            }
            let mut started_event = self.scope.event(EventKind::AgentStarted);
            started_event.plugin = Some(self.adapter.name().to_string());
            let attempt = Attempt {
                number: attempts,
                span_id: crate::trace::new_span_id(),
            };
            started_event.data =
                json!({ "attempt": attempts, "span_id": attempt.span_id }).to_string();
            self.bus.emit(started_event);
            let started = Instant::now();
            result = match attempts_by.attempt(&self, &attempt).await {
                Err(failure) => Err(failure),
                Ok(outcome) => match write_artifacts(&self.workspace, &outcome) {
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
            placements: attempts_by.placements(),
        }
    }
}
