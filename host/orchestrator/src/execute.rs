//! One phase of a run: its agents run through their adapter plugins, at
//! most so many at once, each attempt under a timeout, failed attempts
//! retried by the phase's policy. Every finished agent is written to the
//! run's state before the next is recorded, so a process that dies loses
//! only the agents still running.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use paracle_base::atomic;
use paracle_base::beneath::{Beneath, MAX_FILE_BYTES};
use paracle_contract::{Event, EventKind, Task};
use paracle_project::{AuditAction, AuditRecord, Registry, Settings};
use paracle_runtime::{AgentRoutes, ToolChoice};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::bundle;
use crate::clock;
use crate::error::OrchestratorError;
use crate::events::{observers, AgentCalls, EventBus, Listener, Scope};
use crate::executor::Executor;
use crate::gate::RunGate;
use crate::hygiene::{self, Rules, Snapshot};
use crate::job::{Finished, Job, Reaches};
use crate::report;
use crate::run::{
    AgentRun, AgentStatus, CallDecision, FailureKind, GatedCall, PhaseRun, PhaseStatus, RunState,
    RunStatus, RunStore, Tokens,
};
use crate::spec::{Agent, Phase};

/// How `run next` and `run retry` run a phase.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run the phase's agents concurrently even if it does not ask for it.
    pub parallel: bool,
    /// At most this many agents at once, under the configured maximum.
    pub max_workers: Option<usize>,
    /// Per attempt of one agent, instead of the phase's timeout.
    pub timeout: Option<Duration>,
}

/// How much of an earlier agent's output later agents see in their context.
const CONTEXT_OUTPUT_CHARS: usize = 4000;

/// A run that `start` put in a git worktree runs only there: where the
/// worktree was removed by hand, writing into a plain directory of that name
/// would leave the agents' files off the execution's branch.
/// Note the calls that waited at the gate, and put the agents that made
/// them back to pending, to run again once the calls are decided. Whether
/// any call is waiting.
fn hold_at_gate(
    phase: &mut PhaseRun,
    waiting: Vec<GatedCall>,
    secrets: &[(String, String)],
) -> bool {
    for mut call in waiting {
        // The arguments are kept and shown to reviewers.
        hygiene::hide_secrets(&mut call.arguments, secrets);
        if !phase.calls.iter().any(|c| c.key == call.key) {
            phase.calls.push(call);
        }
    }
    let held: Vec<String> = phase.awaiting_calls().map(|c| c.agent.clone()).collect();
    for agent in &mut phase.agents {
        let count = held.iter().filter(|a| **a == agent.name).count();
        if count > 0 {
            agent.status = AgentStatus::Pending;
            agent.failure = None;
            agent.error = Some(format!(
                "{count} tool call{} await{} a person's approval; it runs again once decided",
                if count == 1 { "" } else { "s" },
                if count == 1 { "s" } else { "" }
            ));
        }
    }
    !held.is_empty()
}

fn worktree_present(state: &RunState) -> Result<(), OrchestratorError> {
    match &state.workspace {
        Some(worktree) if !is_worktree(worktree) => Err(OrchestratorError::WorktreeGone {
            run: state.id.clone(),
            path: worktree.clone(),
        }),
        _ => Ok(()),
    }
}

/// Whether `dir` holds the `.git` file of a worktree. A link named `.git`
/// does not count: a plugin may have planted it.
pub(crate) fn is_worktree(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(".git")).is_ok_and(|m| m.is_file())
}

/// Whether the artifacts an agent wrote are still there as it wrote them.
pub(crate) fn artifacts_intact(workspace: &Path, agent: &AgentRun) -> bool {
    let Ok(root) = Beneath::open(workspace) else {
        return agent.artifact_sha256.is_empty();
    };
    agent.artifact_sha256.iter().all(|(file, digest)| {
        root.read(file, MAX_FILE_BYTES)
            .is_ok_and(|bytes| hex::encode(Sha256::digest(&bytes)) == *digest)
    })
}

/// The outputs of earlier phases, for the agents of phase `index`.
fn context(state: &RunState, index: usize, workspace: &Path) -> String {
    let mut previous = Map::new();
    for phase in &state.phases[..index] {
        let outputs: Map<String, Value> = phase
            .agents
            .iter()
            .filter(|a| a.status == AgentStatus::Succeeded)
            .map(|a| {
                (
                    a.name.clone(),
                    Value::String(a.output.chars().take(CONTEXT_OUTPUT_CHARS).collect()),
                )
            })
            .collect();
        previous.insert(phase.name.clone(), Value::Object(outputs));
    }
    json!({
        "run_id": state.id,
        "workflow": state.workflow.name,
        "phase": state.phases[index].name,
        "workspace_files": Beneath::open(workspace).map(|w| w.files().files).unwrap_or_default(),
        "previous_phases": previous,
    })
    .to_string()
}

/// What running one phase needs of the orchestrator.
pub(crate) struct PhaseRunner<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) runs: &'a RunStore,
    pub(crate) settings: &'a Settings,
    pub(crate) executor: &'a dyn Executor,
    /// Hears every event, for progress displays.
    pub(crate) listener: Option<Listener>,
}

impl PhaseRunner<'_> {
    /// The plugins `agent` runs on, as this run sees them.
    #[allow(clippy::too_many_arguments)]
    async fn job(
        &self,
        agent: &Agent,
        state: &RunState,
        index: usize,
        options: &RunOptions,
        bus: &Arc<EventBus>,
        shared_context: &str,
        resumed: bool,
    ) -> Result<Job, String> {
        let workspace = self.runs.workspace(state);
        let get = |name: String| {
            let workspace = workspace.clone();
            async move {
                self.registry
                    .get_in_workspace(&name, &workspace)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        let adapter = get(agent.adapter.clone()).await?;
        let provider = get(agent.provider.clone()).await?;
        let memory = match &agent.memory {
            Some(memory) => Some(get(memory.clone()).await?),
            None => None,
        };
        let mut tools = Vec::new();
        for (plugin, only) in &agent.tools {
            tools.push(ToolChoice {
                plugin: get(plugin.clone()).await?,
                only: only.clone(),
                approvals: agent.approvals_for(plugin),
            });
        }
        let reaches = Reaches {
            provider: provider.clone(),
            memory: memory.clone(),
            tools: tools.clone(),
        };
        let phase = &state.workflow.phases[index];
        let scope = Scope {
            execution: Some(state.id.clone()),
            phase: Some(phase.name.clone()),
            agent: Some(agent.name.clone()),
        };
        let routes = AgentRoutes::new(
            adapter.name(),
            Some(provider),
            tools,
            memory,
            Some(state.id.clone()),
            Some(agent.name.clone()),
        )
        .map_err(|e| e.to_string())?
        .observed(Arc::new(AgentCalls {
            bus: bus.clone(),
            scope: scope.clone(),
        }));
        let input = phase.task.clone().unwrap_or_else(|| state.input.clone());
        Ok(Job {
            name: agent.name.clone(),
            adapter,
            reaches,
            resumed,
            prior_attempts: state.phases[index]
                .agents
                .iter()
                .find(|a| a.name == agent.name)
                .map_or(0, |a| a.attempts),
            decided: state.phases[index]
                .calls
                .iter()
                .filter(|c| c.agent == agent.name && c.decision != CallDecision::Pending)
                .cloned()
                .collect(),
            routes: Arc::new(routes),
            spec: agent.spec(),
            task: Task {
                id: format!("{}.{}.{}", state.id, phase.name, agent.name),
                input,
                context: shared_context.to_string(),
            },
            retry: phase.retry.clone(),
            timeout: options
                .timeout
                .or(phase.timeout_ms.map(Duration::from_millis))
                .unwrap_or(self.settings.agent_timeout),
            workspace,
            bus: bus.clone(),
            scope,
        })
    }

    /// Run `agents` of phase `index`, then settle the phase: validation,
    /// bundle, review request, and where the run goes next.
    pub(crate) async fn execute(
        &self,
        state: &mut RunState,
        index: usize,
        agents: Vec<String>,
        options: &RunOptions,
    ) -> Result<(), OrchestratorError> {
        worktree_present(state)?;
        let workspace = self.runs.workspace(state);
        let spec = state.workflow.phases[index].clone();
        let before = self.snapshot_before(state, index, &workspace)?;
        let bus = Arc::new(EventBus::new(
            observers(self.registry).await,
            self.listener.clone(),
        ));
        let phase_started = Instant::now();
        // Agents a process that died left running; an executor that keeps
        // attempts elsewhere picks theirs up.
        let resumed: HashSet<String> = state.phases[index]
            .agents
            .iter()
            .filter(|a| a.status == AgentStatus::Running)
            .map(|a| a.name.clone())
            .collect();
        {
            let phase = &mut state.phases[index];
            phase.status = PhaseStatus::Running;
            phase.runs += 1;
            phase.started_at = Some(clock::now_rfc3339());
            phase.finished_at = None;
            phase.validation = None;
            phase.bundle = None;
            for name in &agents {
                if let Some(agent) = phase.agent_mut(name) {
                    agent.status = AgentStatus::Running;
                    agent.started_at = Some(clock::now_rfc3339());
                }
            }
        }
        state.status = RunStatus::Running;
        self.runs.save(state)?;

        let scope = Scope {
            execution: Some(state.id.clone()),
            phase: Some(spec.name.clone()),
            agent: None,
        };
        let parallel = spec.parallel || options.parallel;
        let workers = if parallel {
            self.settings
                .max_parallel_agents
                .min(options.max_workers.unwrap_or(usize::MAX))
                .max(1)
        } else {
            1
        };
        let mut started = scope.event(EventKind::PhaseStarted);
        started.data = json!({
            "agents": agents,
            "total_agents": spec.agents.len(),
            "workers": workers,
        })
        .to_string();
        bus.emit(started);

        let shared_context = context(state, index, &workspace);
        // Nobody to ask: tool calls that need approval wait at a gate.
        let gate = (paracle_runtime::person_at_hand().is_none() || !self.executor.reaches_person())
            .then(|| Arc::new(RunGate::new(&state.phases[index].calls)));
        let jobs = self.run_jobs(
            state,
            index,
            &agents,
            options,
            &bus,
            &shared_context,
            workers,
            &resumed,
        );
        let syncing = match &gate {
            Some(gate) => {
                paracle_runtime::with_person(gate.clone() as Arc<dyn paracle_runtime::Person>, jobs)
                    .await?
            }
            None => jobs.await?,
        };
        for flushed in syncing {
            let flushed = flushed
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            flushed.map_err(|source| OrchestratorError::Io {
                path: workspace.clone(),
                source,
            })?;
        }
        for agent in &mut state.phases[index].agents {
            if agent.status == AgentStatus::Running {
                agent.status = AgentStatus::Failed;
                agent.failure = Some(FailureKind::Error);
                agent.error = Some("the host lost track of this agent".into());
            }
        }
        let secrets = self.secret_values();
        let gated = gate
            .is_some_and(|gate| hold_at_gate(&mut state.phases[index], gate.waiting(), &secrets));
        self.settle_phase(
            state,
            index,
            &spec,
            &bus,
            &scope,
            phase_started,
            &workspace,
            gated,
            &before,
        )
        .await
    }

    /// What the workspace held before the phase, so that its hygiene
    /// report looks at what it wrote: taken as a phase starts afresh, and
    /// kept for a phase that goes on (resumed, or back from a gate).
    fn snapshot_before(
        &self,
        state: &RunState,
        index: usize,
        workspace: &Path,
    ) -> Result<Snapshot, OrchestratorError> {
        let phase = &state.phases[index];
        let file = self
            .runs
            .run_dir(&state.id)
            .join(&phase.name)
            .join("before.json");
        let going_on = !phase.calls.is_empty() || phase.status == PhaseStatus::Running;
        if going_on {
            if let Some(kept) = std::fs::read(&file)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            {
                return Ok(kept);
            }
        }
        let snapshot = Snapshot::take(&bundle::open(workspace)?);
        atomic::write(
            &file,
            &serde_json::to_vec(&snapshot).expect("a snapshot serialises"),
        )
        .map_err(|source| OrchestratorError::Io { path: file, source })?;
        Ok(snapshot)
    }

    /// Start the jobs of `agents` and record each as it finishes. Returns
    /// the artifact syncs still under way.
    #[allow(clippy::too_many_arguments)]
    async fn run_jobs(
        &self,
        state: &mut RunState,
        index: usize,
        agents: &[String],
        options: &RunOptions,
        bus: &Arc<EventBus>,
        shared_context: &str,
        workers: usize,
        resumed: &HashSet<String>,
    ) -> Result<Vec<tokio::task::JoinHandle<std::io::Result<()>>>, OrchestratorError> {
        let mut running = self.executor.start(workers, self.registry);
        for name in agents {
            let agent = state.workflow.agents[name].clone();
            match self
                .job(
                    &agent,
                    state,
                    index,
                    options,
                    bus,
                    shared_context,
                    resumed.contains(name),
                )
                .await
            {
                Ok(job) => running.spawn(job),
                Err(message) => {
                    self.record(
                        state,
                        index,
                        Finished::lost(name, FailureKind::Setup, message),
                    )?;
                }
            }
        }
        let mut syncing = Vec::new();
        // An agent whose task was lost (a panic in the host's own task) never
        // comes back: every agent still marked running is failed below.
        while let Some(mut finished) = running.next().await {
            syncing.extend(finished.syncing.take());
            self.record(state, index, finished)?;
        }
        Ok(syncing)
    }

    /// Validate, bundle and report a phase whose agents have finished, and
    /// move the run on or stop it at its gate.
    #[allow(clippy::too_many_arguments)]
    async fn settle_phase(
        &self,
        state: &mut RunState,
        index: usize,
        spec: &Phase,
        bus: &Arc<EventBus>,
        scope: &Scope,
        phase_started: Instant,
        workspace: &Path,
        gated: bool,
        before: &Snapshot,
    ) -> Result<(), OrchestratorError> {
        let phase = &mut state.phases[index];
        phase.finished_at = Some(clock::now_rfc3339());
        phase.duration_ms = phase_started.elapsed().as_millis() as u64;
        let root = bundle::open(workspace)?;
        let validation = bundle::validate(&root, &spec.artifacts);
        let passed = phase.failed() == 0
            && phase.succeeded() == phase.agents.len()
            && validation.missing.is_empty();
        phase.validation = Some(validation);
        let secrets = self.secret_values();
        let hygiene = hygiene::scan(
            &root,
            before,
            &Rules {
                secrets: &secrets,
                max_file_bytes: self.settings.hygiene_max_file_kib.saturating_mul(1024),
                patterns: &spec.artifacts,
            },
        );
        let hygiene_file = self
            .runs
            .run_dir(&state.id)
            .join(&spec.name)
            .join("hygiene.json");
        atomic::write(
            &hygiene_file,
            &serde_json::to_vec_pretty(&hygiene).expect("a report serialises"),
        )
        .map_err(|source| OrchestratorError::Io {
            path: hygiene_file.clone(),
            source,
        })?;
        phase.hygiene = Some(hygiene);
        let bundle_file = bundle::write(&self.registry.paths().state, &root, state, index)?;
        state.phases[index].bundle = Some(
            bundle_file
                .strip_prefix(&self.registry.paths().project)
                .unwrap_or(&bundle_file)
                .display()
                .to_string(),
        );
        for later in index + 1..state.phases.len() {
            state.reset_phase(later);
        }
        let mut execution_finished = None;
        if spec.requires_approval || gated {
            let relative = format!("{}/REQUEST.md", spec.name);
            state.phases[index].status = PhaseStatus::AwaitingApproval;
            state.phases[index].request = Some(relative.clone());
            state.cursor = index;
            state.status = RunStatus::AwaitingApproval;
            let file = self.runs.run_dir(&state.id).join(relative);
            atomic::write(&file, report::request_md(state, index).as_bytes())
                .map_err(|source| OrchestratorError::Io { path: file, source })?;
        } else if passed || spec.optional {
            state.phases[index].status = if passed {
                PhaseStatus::Succeeded
            } else {
                PhaseStatus::Failed
            };
            execution_finished = advance(state, index);
        } else {
            state.phases[index].status = PhaseStatus::Failed;
            state.cursor = index;
            state.status = RunStatus::Failed;
        }
        let phase = &state.phases[index];
        bus.emit(scope.finished(
            EventKind::PhaseFinished,
            phase_started.elapsed(),
            passed,
            json!({
                "workflow": state.workflow.name,
                "status": phase.status.as_str(),
                "succeeded": phase.succeeded(),
                "failed": phase.failed(),
                "agents": phase.agents.iter().map(|a| json!({
                    "name": a.name,
                    "status": a.status.as_str(),
                    "failure": a.failure.map(|f| f.as_str()),
                    "error": a.error,
                    "artifacts": a.artifacts,
                })).collect::<Vec<_>>(),
                "bundle": phase.bundle,
                "validation": phase.validation,
            }),
        ));
        if let Some(finished) = execution_finished {
            bus.emit(finished);
        }
        self.runs.save(state)?;
        bus.close().await;
        Ok(())
    }

    /// Record one finished agent and save the run at once.
    fn record(
        &self,
        state: &mut RunState,
        index: usize,
        finished: Finished,
    ) -> Result<(), OrchestratorError> {
        let phase = &mut state.phases[index];
        let Some(record) = phase.agent_mut(&finished.name) else {
            return Ok(());
        };
        let previous_attempts = record.attempts;
        let started_at = record.started_at.clone();
        let mut placements = std::mem::take(&mut record.placements);
        placements.extend(finished.placements);
        *record = AgentRun {
            attempts: previous_attempts + finished.attempts,
            placements,
            started_at,
            duration_ms: finished.last.as_millis() as u64,
            total_ms: record.total_ms + finished.total.as_millis() as u64,
            ..AgentRun::pending(&finished.name)
        };
        let secrets = self.secret_values();
        match finished.result {
            Ok((outcome, written)) => {
                record.status = AgentStatus::Succeeded;
                record.output = outcome.output;
                hygiene::hide_secrets(&mut record.output, &secrets);
                record.tokens = Tokens {
                    prompt: outcome.usage.prompt_tokens as u64,
                    completion: outcome.usage.completion_tokens as u64,
                };
                record.steps = outcome.steps;
                record.tool_calls = outcome.tool_calls;
                record.artifacts = written.keys().cloned().collect();
                record.artifact_sha256 = written;
            }
            Err((kind, mut message)) => {
                hygiene::hide_secrets(&mut message, &secrets);
                if kind == FailureKind::Denied {
                    self.registry.audit_quietly(
                        AuditRecord::new(AuditAction::Denial, "sandbox", message.as_str())
                            .outcome("deny")
                            .detail(format!("agent {} of run {}", finished.name, state.id)),
                    );
                }
                record.status = AgentStatus::Failed;
                record.failure = Some(kind);
                record.error = Some(message);
            }
        }
        self.runs.save(state)
    }

    /// The user's secrets, to keep their values out of the run's state and
    /// reports; none when the secrets file cannot be read (a load of a
    /// plugin granted one says why).
    fn secret_values(&self) -> Vec<(String, String)> {
        self.registry
            .secrets()
            .map(|store| store.values())
            .unwrap_or_default()
    }
}

/// After phase `index` passed (or was approved): move the cursor on, and
/// finish the run after its last phase. Returns the execution-finished
/// event when the run is done, for the caller to emit after its own
/// events about the phase.
pub(crate) fn advance(state: &mut RunState, index: usize) -> Option<Event> {
    state.cursor = index + 1;
    if state.cursor < state.phases.len() {
        state.status = RunStatus::Ready;
        return None;
    }
    state.status = RunStatus::Completed;
    let succeeded = state
        .phases
        .iter()
        .all(|p| matches!(p.status, PhaseStatus::Succeeded | PhaseStatus::Approved));
    let started = clock::parse_ms(&state.created_at).unwrap_or(0);
    let scope = Scope {
        execution: Some(state.id.clone()),
        ..Scope::default()
    };
    Some(scope.finished(
        EventKind::ExecutionFinished,
        Duration::from_millis(clock::now_ms().saturating_sub(started)),
        succeeded,
        json!({
            "workflow": state.workflow.name,
            "status": state.status.as_str(),
            "metrics": report::metrics_json(state)["totals"],
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::write_artifacts;
    use paracle_contract::{Artifact, Outcome, Usage};

    #[test]
    fn artifacts_are_checked_against_the_digests_they_were_written_with() {
        let workspace = tempfile::tempdir().unwrap();
        let outcome = Outcome {
            output: String::new(),
            artifacts: vec![Artifact {
                path: "docs/plan.md".into(),
                content: "the plan".into(),
            }],
            usage: Usage {
                prompt_tokens: 0,
                completion_tokens: 0,
            },
            steps: 1,
            tool_calls: 0,
        };
        let mut agent = AgentRun::pending("a");
        agent.artifact_sha256 = write_artifacts(workspace.path(), &outcome).unwrap();
        assert!(artifacts_intact(workspace.path(), &agent));
        std::fs::write(workspace.path().join("docs/plan.md"), "").unwrap();
        assert!(
            !artifacts_intact(workspace.path(), &agent),
            "a truncated file"
        );
        std::fs::remove_file(workspace.path().join("docs/plan.md")).unwrap();
        assert!(
            !artifacts_intact(workspace.path(), &agent),
            "a missing file"
        );
        // The same bytes behind a link do not count: the link is not followed.
        std::fs::write(workspace.path().join("elsewhere.md"), "the plan").unwrap();
        std::os::unix::fs::symlink("../elsewhere.md", workspace.path().join("docs/plan.md"))
            .unwrap();
        assert!(!artifacts_intact(workspace.path(), &agent), "a link");

        let outside = tempfile::tempdir().unwrap();
        std::fs::remove_dir_all(workspace.path().join("docs")).unwrap();
        std::os::unix::fs::symlink(outside.path(), workspace.path().join("docs")).unwrap();
        let through_a_link = write_artifacts(workspace.path(), &outcome);
        assert!(
            through_a_link
                .as_ref()
                .is_err_and(|e| e.contains("symbolic link")),
            "{through_a_link:?}"
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);

        let escaping = Outcome {
            artifacts: vec![Artifact {
                path: "../outside".into(),
                content: String::new(),
            }],
            ..outcome
        };
        assert!(write_artifacts(workspace.path(), &escaping).is_err());
    }
}
