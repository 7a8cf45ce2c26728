//! Workflows of agents. A run goes through its workflow's phases one
//! `next` at a time; each phase runs its agents through their adapter
//! plugins, records every outcome in the run's state, checks and bundles the
//! phase's artifacts, and stops at approval gates.
//!
//! - [`spec`]: agents, workflows and settings as written in `.paracle/`;
//! - [`run`]: a run's state on disk and its lock;
//! - [`execute`]: one phase's agents, concurrently, with retries and timeouts;
//! - [`events`]: execution events for observer plugins and progress;
//! - [`bundle`]: artifact validation and zip bundles;
//! - [`report`]: review requests, decisions, rollback advisories, metrics;
//! - [`quickstart`]: ready-made projects.

use std::path::PathBuf;
use std::sync::Arc;

use paracle_base::atomic;
use paracle_contract::EventKind;
use paracle_project::{AuditAction, AuditRecord, Registry, Settings};
use serde_json::{json, Value};

use crate::error::OrchestratorError;
use crate::events::{observers, EventBus, Listener, Scope};
use crate::execute::{self, PhaseRunner, RunOptions};
use crate::executor::{Executor, LocalPool};
use crate::run::{
    self, AgentStatus, CallDecision, Decision, PhaseStatus, RunState, RunStatus, RunStore,
};
use crate::spec::{Specs, Workflow};
use crate::{clock, report};

/// A run as `run status` reports it.
pub struct RunView {
    pub state: RunState,
    /// The phase a process was running when it died.
    pub interrupted: Option<String>,
    /// Whether a live process is advancing the run now.
    pub busy: bool,
}

impl RunView {
    /// The status to show: a running phase whose process died is interrupted.
    pub fn status(&self) -> &'static str {
        if self.interrupted.is_some() {
            "interrupted"
        } else {
            self.state.status.as_str()
        }
    }

    /// The run's state with what `run status --json` adds: the status to
    /// show, whether it is busy, the next step and where its files are.
    pub fn to_json(&self, runs: &RunStore) -> Value {
        let mut value = serde_json::to_value(&self.state).expect("run state serialises");
        let object = value.as_object_mut().expect("run state is an object");
        object.insert("status".into(), json!(self.status()));
        object.insert("interrupted_phase".into(), json!(self.interrupted));
        object.insert("busy".into(), json!(self.busy));
        object.insert("next_step".into(), json!(self.next_step()));
        object.insert("run_dir".into(), json!(runs.run_dir(&self.state.id)));
        object.insert("workspace".into(), json!(runs.workspace(&self.state)));
        value
    }

    /// What the user can do next, as a command.
    pub fn next_step(&self) -> String {
        let run = &self.state.id;
        let phase = |i: usize| {
            self.state
                .phases
                .get(i)
                .map(|p| p.name.clone())
                .unwrap_or_default()
        };
        if let Some(phase) = &self.interrupted {
            return format!("`paracle run next --run {run}` finishes phase `{phase}`");
        }
        match self.state.status {
            RunStatus::Ready => format!("`paracle run next --run {run}` runs phase `{}`", phase(self.state.cursor)),
            RunStatus::Running => "wait: a phase is running".into(),
            RunStatus::AwaitingApproval => format!(
                "review {}, then `paracle run approve --run {run}` or `paracle run reject --run {run} --reason \"...\"`",
                self.state.phases[self.state.cursor]
                    .request
                    .as_deref()
                    .map(|r| format!(".paracle/runs/{run}/{r}"))
                    .unwrap_or_else(|| "the phase's outcomes".into())
            ),
            RunStatus::Failed => format!(
                "`paracle run retry --run {run} --phase {}` runs the failed agents again",
                phase(self.state.cursor)
            ),
            RunStatus::Rejected => format!(
                "`paracle run retry --run {run} --phase {}` runs the phase again, or `paracle run rollback --run {run} --phase P` goes back further",
                phase(self.state.cursor)
            ),
            RunStatus::Completed => format!("done; `paracle run metrics --run {run}` sums it up"),
        }
    }
}

/// The error for a command that `state` does not allow while its caller
/// holds the run's lock: `why`, then what the user can do instead.
fn refused(state: RunState, why: Option<&str>) -> OrchestratorError {
    let run = state.id.clone();
    let status = state.status.as_str();
    let view = RunView {
        state,
        interrupted: None,
        busy: false,
    };
    let hint = match why {
        Some(why) => format!("{why}; next: {}", view.next_step()),
        None => view.next_step(),
    };
    OrchestratorError::Refused { run, status, hint }
}

/// A run's id and what `run status` would say of it, or why it cannot.
pub type ListedRun = (String, Result<RunView, OrchestratorError>);

/// A workflow as `workflow list` shows it.
pub struct WorkflowSummary {
    pub name: String,
    pub description: String,
    pub phases: Vec<String>,
}

pub struct Orchestrator<'r> {
    registry: &'r Registry,
    runs: RunStore,
    listener: Option<Listener>,
    executor: Arc<dyn Executor>,
}

impl<'r> Orchestrator<'r> {
    /// The orchestrator of `registry`'s project, running agents on this
    /// machine until [`Orchestrator::with_executor`] says otherwise.
    pub fn new(registry: &'r Registry) -> Self {
        Orchestrator {
            registry,
            runs: RunStore::new(&registry.paths().state),
            listener: None,
            executor: Arc::new(LocalPool),
        }
    }

    /// Run phases' agents on `executor`.
    pub fn with_executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = executor;
        self
    }

    /// Hear every event as it happens, for progress displays.
    pub fn with_listener(mut self, listener: Listener) -> Self {
        self.listener = Some(listener);
        self
    }

    pub fn runs(&self) -> &RunStore {
        &self.runs
    }

    pub fn settings(&self) -> &Settings {
        self.registry.settings()
    }

    fn specs(&self) -> Result<Specs, OrchestratorError> {
        Specs::read(&self.registry.paths().state)
    }

    /// The project's workflows, each checked in full.
    pub async fn workflows(&self) -> Result<Vec<WorkflowSummary>, OrchestratorError> {
        let specs = self.specs()?;
        let mut summaries = Vec::new();
        for name in specs.workflow_names() {
            let workflow = specs.workflow(name, self.registry).await?;
            summaries.push(WorkflowSummary {
                name: workflow.name,
                description: workflow.description,
                phases: workflow.phases.into_iter().map(|p| p.name).collect(),
            });
        }
        Ok(summaries)
    }

    pub async fn workflow(&self, name: &str) -> Result<Workflow, OrchestratorError> {
        self.specs()?.workflow(name, self.registry).await
    }

    async fn bus(&self) -> Arc<EventBus> {
        Arc::new(EventBus::new(
            observers(self.registry).await,
            self.listener.clone(),
        ))
    }

    fn runner(&self) -> PhaseRunner<'_> {
        PhaseRunner {
            registry: self.registry,
            runs: &self.runs,
            settings: self.registry.settings(),
            executor: self.executor.as_ref(),
            listener: self.listener.clone(),
        }
    }

    /// Start a run of `workflow`. `input` is the task for its agents; the
    /// workflow's own task when None.
    pub async fn start(
        &self,
        workflow: &str,
        input: Option<String>,
    ) -> Result<RunState, OrchestratorError> {
        let workflow = self.workflow(workflow).await?;
        let input = input.unwrap_or_else(|| workflow.task.clone());
        let mut state = RunState::new(self.runs.new_id(), workflow, input);
        self.runs.create(&state)?;
        let bus = self.bus().await;
        let scope = Scope {
            execution: Some(state.id.clone()),
            ..Scope::default()
        };
        let mut event = scope.event(EventKind::ExecutionStarted);
        event.data = json!({
            "workflow": state.workflow.name,
            "phases": state.workflow.phases.iter().map(|p| &p.name).collect::<Vec<_>>(),
        })
        .to_string();
        bus.emit(event);
        // Observers have heard the start once the bus is closed, so a
        // worktree the git workflow made for the run is there now.
        bus.close().await;
        let worktree = self.registry.paths().worktrees().join(&state.id);
        if execute::is_worktree(&worktree) {
            state.note(
                "workspace",
                format!("the git worktree {}", worktree.display()),
            );
            state.workspace = Some(worktree);
            self.runs.save(&state)?;
        }
        Ok(state)
    }

    pub fn status(&self, run: Option<&str>) -> Result<RunView, OrchestratorError> {
        let id = self.runs.resolve(run)?;
        let state = self.runs.load(&id)?;
        let busy = self.runs.is_locked(&id);
        let interrupted = match state.running_phase() {
            Some(index) if !busy => Some(state.phases[index].name.clone()),
            _ => None,
        };
        Ok(RunView {
            state,
            interrupted,
            busy,
        })
    }

    /// Every run, oldest first; a run whose state cannot be read is listed
    /// with its error.
    pub fn list(&self) -> Result<Vec<ListedRun>, OrchestratorError> {
        Ok(self
            .runs
            .ids()?
            .into_iter()
            .map(|id| {
                let view = self.status(Some(&id));
                (id, view)
            })
            .collect())
    }

    /// Run the next phase, or finish the one a dead process left running.
    pub async fn next(
        &self,
        run: Option<&str>,
        options: &RunOptions,
    ) -> Result<RunState, OrchestratorError> {
        let id = self.runs.resolve(run)?;
        let _lock = self.runs.lock(&id)?;
        let mut state = self.runs.load(&id)?;
        let (index, agents) = match state.status {
            RunStatus::Running => {
                // Our lock is held, so the running phase's process is gone.
                let index = state.running_phase().unwrap_or(state.cursor);
                // Artifacts reach the disk when a phase ends; a finished
                // agent whose files did not survive the stop runs again.
                let workspace = self.runs.workspace(&state);
                let mut lost = Vec::new();
                for agent in &mut state.phases[index].agents {
                    if agent.status == AgentStatus::Succeeded
                        && !execute::artifacts_intact(&workspace, agent)
                    {
                        lost.push(agent.name.clone());
                        *agent = run::AgentRun::pending(&agent.name);
                    }
                }
                if !lost.is_empty() {
                    state.note(
                        "resume",
                        format!("artifacts of {} were lost; they run again", lost.join(", ")),
                    );
                }
                let phase = &state.phases[index];
                let unfinished: Vec<String> = phase
                    .agents
                    .iter()
                    .filter(|a| matches!(a.status, AgentStatus::Pending | AgentStatus::Running))
                    .map(|a| a.name.clone())
                    .collect();
                let detail = format!(
                    "phase `{}` was interrupted; {} of {} agents had finished and are kept",
                    phase.name,
                    phase.agents.len() - unfinished.len(),
                    phase.agents.len()
                );
                state.note("resume", detail);
                (index, unfinished)
            }
            RunStatus::Ready => {
                let index = state.cursor;
                let phase = &state.phases[index];
                let held: Vec<String> = phase
                    .agents
                    .iter()
                    .filter(|a| a.status == AgentStatus::Pending)
                    .map(|a| a.name.clone())
                    .collect();
                if !phase.calls.is_empty() && !held.is_empty() && held.len() < phase.agents.len() {
                    // Back from a gate on tool calls: the agents that made
                    // them run again; the others' work is kept.
                    (index, held)
                } else {
                    (index, state.workflow.phases[index].agents.clone())
                }
            }
            _ => return Err(refused(state, None)),
        };
        self.runner()
            .execute(&mut state, index, agents, options)
            .await?;
        Ok(state)
    }

    /// Run phase `phase` again, all its agents or only `agent`. The run then
    /// carries on from that phase: later phases that had run are archived
    /// and will run again.
    pub async fn retry(
        &self,
        run: Option<&str>,
        phase: &str,
        agent: Option<&str>,
        options: &RunOptions,
    ) -> Result<RunState, OrchestratorError> {
        let id = self.runs.resolve(run)?;
        let _lock = self.runs.lock(&id)?;
        let mut state = self.runs.load(&id)?;
        let index = state.phase_index(phase)?;
        if index > state.cursor {
            return Err(OrchestratorError::Refused {
                run: id.clone(),
                status: state.status.as_str(),
                hint: format!(
                    "phase `{phase}` has not run yet; `paracle run next --run {id}` runs phase `{}`",
                    state.phases[state.cursor].name
                ),
            });
        }
        let agents = match agent {
            Some(agent) => {
                if !state.workflow.phases[index]
                    .agents
                    .iter()
                    .any(|a| a == agent)
                {
                    return Err(OrchestratorError::UnknownAgent {
                        phase: phase.to_string(),
                        agent: agent.to_string(),
                        known: state.workflow.phases[index].agents.join(", "),
                    });
                }
                // The phase's other outcomes stand; only this agent's record
                // starts afresh, the old one kept in the archive.
                let old = state.phases[index].clone();
                state.archive.push(old);
                let fresh = run::AgentRun::pending(agent);
                if let Some(record) = state.phases[index].agent_mut(agent) {
                    *record = fresh;
                }
                vec![agent.to_string()]
            }
            None => {
                state.reset_phase(index);
                state.workflow.phases[index].agents.clone()
            }
        };
        let phase_record = &mut state.phases[index];
        phase_record.decision = None;
        phase_record.request = None;
        state.note(
            "retry",
            match agent {
                Some(agent) => format!("phase `{phase}`, agent `{agent}`"),
                None => format!("phase `{phase}`"),
            },
        );
        self.runner()
            .execute(&mut state, index, agents, options)
            .await?;
        Ok(state)
    }

    /// Approve or reject the phase awaiting approval. Writes a
    /// `DECISION_<time>.md` beside its `REQUEST.md` and returns its path.
    pub async fn decide(
        &self,
        run: Option<&str>,
        approved: bool,
        reason: &str,
    ) -> Result<(RunState, PathBuf), OrchestratorError> {
        let id = self.runs.resolve(run)?;
        let _lock = self.runs.lock(&id)?;
        let mut state = self.runs.load(&id)?;
        if state.status != RunStatus::AwaitingApproval {
            return Err(refused(state, Some("no phase awaits approval")));
        }
        let index = state.cursor;
        if state.phases[index].awaiting_calls().next().is_some() {
            return self.decide_calls(state, index, approved, reason);
        }
        let now = clock::now_ms();
        let at = clock::rfc3339(now);
        let name = state.phases[index].name.clone();
        let relative = format!("{name}/DECISION_{}.md", clock::stamp_ms(now));
        let file = self.runs.run_dir(&id).join(&relative);
        let text = report::decision_md(&state, &name, approved, reason, &at);
        atomic::write(&file, text.as_bytes()).map_err(|source| OrchestratorError::Io {
            path: file.clone(),
            source,
        })?;
        let phase = &mut state.phases[index];
        phase.decision = Some(Decision {
            approved,
            reason: reason.to_string(),
            at,
            file: relative,
        });
        let verdict = if approved { "approved" } else { "rejected" };
        state.note(
            verdict,
            format!(
                "phase `{name}`{}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            ),
        );
        if approved {
            state.phases[index].status = PhaseStatus::Approved;
            let bus = self.bus().await;
            if let Some(finished) = execute::advance(&mut state, index) {
                bus.emit(finished);
            }
            self.runs.save(&state)?;
            bus.close().await;
        } else {
            state.phases[index].status = PhaseStatus::Rejected;
            state.status = RunStatus::Rejected;
            self.runs.save(&state)?;
        }
        Ok((state, file))
    }

    /// Decide the tool calls waiting at phase `index`'s gate, all at once.
    /// The agents that made them run again at the next `run next`, and
    /// find their calls approved (they run) or rejected (refused to them).
    fn decide_calls(
        &self,
        mut state: RunState,
        index: usize,
        approved: bool,
        reason: &str,
    ) -> Result<(RunState, PathBuf), OrchestratorError> {
        let now = clock::now_ms();
        let name = state.phases[index].name.clone();
        let relative = format!("{name}/CALLS_{}.md", clock::stamp_ms(now));
        let file = self.runs.run_dir(&state.id).join(&relative);
        let decision = if approved {
            CallDecision::Approved
        } else {
            CallDecision::Rejected
        };
        let verdict = if approved { "approved" } else { "rejected" };
        let who = format!("run:{}", state.id);
        let mut decided = Vec::new();
        for call in &mut state.phases[index].calls {
            if call.decision == CallDecision::Pending {
                call.decision = decision;
                decided.push(call.clone());
            }
        }
        let text = report::calls_decision_md(
            &state,
            &name,
            &decided,
            approved,
            reason,
            &clock::rfc3339(now),
        );
        atomic::write(&file, text.as_bytes()).map_err(|source| OrchestratorError::Io {
            path: file.clone(),
            source,
        })?;
        for call in &decided {
            let mut record = AuditRecord::new(
                AuditAction::Approval,
                who.as_str(),
                format!("tool {}/{}", call.plugin, call.tool),
            )
            .outcome(verdict)
            .detail(format!("call {} by agent {}", call.key, call.agent));
            record.plugin = Some(call.plugin.clone());
            self.registry.audit_quietly(record);
        }
        state.note(
            verdict,
            format!(
                "{} tool call{} of phase `{name}`{}; its agents run again at `paracle run next`",
                decided.len(),
                if decided.len() == 1 { "" } else { "s" },
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            ),
        );
        state.phases[index].status = PhaseStatus::Pending;
        state.cursor = index;
        state.status = RunStatus::Ready;
        self.runs.save(&state)?;
        Ok((state, file))
    }

    /// Point the run back at `phase`. Writes a `ROLLBACK_<time>.md` advisory
    /// listing what that phase and the later ones produced; no file in the
    /// workspace is touched. Returns the advisory's path.
    pub fn rollback(
        &self,
        run: Option<&str>,
        phase: &str,
    ) -> Result<(RunState, PathBuf), OrchestratorError> {
        let id = self.runs.resolve(run)?;
        let _lock = self.runs.lock(&id)?;
        let mut state = self.runs.load(&id)?;
        let index = state.phase_index(phase)?;
        let now = clock::now_ms();
        let file = self
            .runs
            .run_dir(&id)
            .join(format!("ROLLBACK_{}.md", clock::stamp_ms(now)));
        let text = report::rollback_md(&state, index, &clock::rfc3339(now));
        atomic::write(&file, text.as_bytes()).map_err(|source| OrchestratorError::Io {
            path: file.clone(),
            source,
        })?;
        for later in index..state.phases.len() {
            state.reset_phase(later);
        }
        state.cursor = index;
        state.status = RunStatus::Ready;
        state.note(
            "rollback",
            format!("to phase `{phase}`; advisory {}", file.display()),
        );
        self.runs.save(&state)?;
        Ok((state, file))
    }

    /// The run's metrics; also written to `metrics.json` and `metrics.prom`
    /// in the run's directory, whose paths are returned.
    pub fn metrics(
        &self,
        run: Option<&str>,
    ) -> Result<(RunState, Value, [PathBuf; 2]), OrchestratorError> {
        let id = self.runs.resolve(run)?;
        let state = self.runs.load(&id)?;
        let metrics = report::metrics_json(&state);
        let dir = self.runs.run_dir(&id);
        let json_file = dir.join("metrics.json");
        let prom_file = dir.join("metrics.prom");
        for (file, bytes) in [
            (
                &json_file,
                serde_json::to_vec_pretty(&metrics).expect("JSON values serialise"),
            ),
            (&prom_file, report::metrics_prom(&state).into_bytes()),
        ] {
            atomic::write(file, &bytes).map_err(|source| OrchestratorError::Io {
                path: file.clone(),
                source,
            })?;
        }
        Ok((state, metrics, [json_file, prom_file]))
    }
}
