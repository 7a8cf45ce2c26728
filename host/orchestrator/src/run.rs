//! A run's state, in `.paracle/runs/<run-id>/state.json`. It is rewritten
//! whole, atomically, after every agent that finishes, so a process that
//! dies loses at most the agents that were still running.
//!
//! Whoever advances a run holds an OS lock on `<run-dir>/lock`. The lock
//! goes when the process goes, however it goes, so a phase marked running
//! whose lock is free was interrupted.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hygiene::Hygiene;

use paracle_base::atomic;

use crate::clock;
use crate::error::OrchestratorError;
use crate::spec::Workflow;

pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// The next phase can run.
    Ready,
    /// A phase is running, or was interrupted while running.
    Running,
    AwaitingApproval,
    /// A required phase failed; retry it or roll back.
    Failed,
    Rejected,
    Completed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ready => "ready",
            RunStatus::Running => "running",
            RunStatus::AwaitingApproval => "awaiting-approval",
            RunStatus::Failed => "failed",
            RunStatus::Rejected => "rejected",
            RunStatus::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseStatus {
    Pending,
    Running,
    Succeeded,
    /// Some agents failed; the phase failed if it was not optional.
    Failed,
    AwaitingApproval,
    Approved,
    Rejected,
}

impl PhaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseStatus::Pending => "pending",
            PhaseStatus::Running => "running",
            PhaseStatus::Succeeded => "succeeded",
            PhaseStatus::Failed => "failed",
            PhaseStatus::AwaitingApproval => "awaiting-approval",
            PhaseStatus::Approved => "approved",
            PhaseStatus::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Pending => "pending",
            AgentStatus::Running => "running",
            AgentStatus::Succeeded => "succeeded",
            AgentStatus::Failed => "failed",
        }
    }
}

/// Why an agent failed, told apart as the host tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The adapter, or a plugin it relied on, returned an error.
    Error,
    /// A plugin trapped.
    Trap,
    /// A plugin hit one of its limits (memory, time per call, output...).
    Limit,
    /// A plugin needed a capability it was not granted.
    Denied,
    /// The attempt ran past the phase's timeout.
    Timeout,
    /// The agent could not be started: a plugin failed to load or to start.
    Setup,
    /// The agent was running when its process died.
    Interrupted,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Trap => "trap",
            FailureKind::Limit => "limit",
            FailureKind::Denied => "denied",
            FailureKind::Timeout => "timeout",
            FailureKind::Setup => "setup",
            FailureKind::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub prompt: u64,
    pub completion: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRun {
    pub name: String,
    pub status: AgentStatus,
    pub attempts: u32,
    pub started_at: Option<String>,
    /// Of the last attempt.
    pub duration_ms: u64,
    /// All attempts, waits between them excluded.
    pub total_ms: u64,
    pub output: String,
    pub failure: Option<FailureKind>,
    /// The last attempt's failure, in one line.
    pub error: Option<String>,
    pub tokens: Tokens,
    pub steps: u32,
    pub tool_calls: u32,
    /// Written into the workspace, relative to it.
    pub artifacts: Vec<String>,
    /// The sha256 of each artifact as written, so that a resumed phase can
    /// tell whether a finished agent's files survived.
    pub artifact_sha256: BTreeMap<String, String>,
    /// Where its attempts ran, when its phase ran on workers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placements: Vec<Placement>,
}

/// One attempt of an agent on one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub attempt: u32,
    pub worker: String,
    pub status: PlacementStatus,
}

/// What became of an attempt on a worker. A worker that died while it ran
/// one left it `interrupted`: the attempt was handed to another worker, and
/// it counts once against the phase's retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementStatus {
    Succeeded,
    Failed,
    Interrupted,
}

impl AgentRun {
    pub fn pending(name: &str) -> Self {
        AgentRun {
            name: name.to_string(),
            status: AgentStatus::Pending,
            attempts: 0,
            started_at: None,
            duration_ms: 0,
            total_ms: 0,
            output: String::new(),
            failure: None,
            error: None,
            tokens: Tokens::default(),
            steps: 0,
            tool_calls: 0,
            artifacts: Vec::new(),
            artifact_sha256: BTreeMap::new(),
            placements: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    /// Workspace files that match the phase's artifact patterns.
    pub found: Vec<String>,
    /// Patterns that matched nothing.
    pub missing: Vec<String>,
    /// Symbolic links in the workspace: never artifacts, and never followed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub approved: bool,
    pub reason: String,
    pub at: String,
    /// The `DECISION_*.md` written for it, relative to the run directory.
    pub file: String,
}

/// Where a tool call whose approval setting is `ask` stands, when nobody
/// was at hand to decide it while the phase ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallDecision {
    Pending,
    Approved,
    Rejected,
}

/// A tool call that waited at the phase's gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatedCall {
    /// The same agent making the same call again has the same key.
    pub key: String,
    pub agent: String,
    pub plugin: String,
    pub tool: String,
    /// As the agent wrote them, cut to 4 KiB.
    pub arguments: String,
    pub decision: CallDecision,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRun {
    pub name: String,
    pub status: PhaseStatus,
    /// How many times this phase was started (next, retry, resume).
    pub runs: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: u64,
    pub agents: Vec<AgentRun>,
    pub validation: Option<Validation>,
    /// The phase's bundle, relative to the project.
    pub bundle: Option<String>,
    /// The reviewer's request, relative to the run directory.
    pub request: Option<String>,
    pub decision: Option<Decision>,
    /// Tool calls that waited for a person at this phase's gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<GatedCall>,
    /// What the phase wrote, scanned for the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hygiene: Option<Hygiene>,
}

impl PhaseRun {
    pub fn pending(name: &str, agents: &[String]) -> Self {
        PhaseRun {
            name: name.to_string(),
            status: PhaseStatus::Pending,
            runs: 0,
            started_at: None,
            finished_at: None,
            duration_ms: 0,
            agents: agents.iter().map(|a| AgentRun::pending(a)).collect(),
            validation: None,
            bundle: None,
            request: None,
            decision: None,
            calls: Vec::new(),
            hygiene: None,
        }
    }

    /// Calls still waiting for a decision.
    pub fn awaiting_calls(&self) -> impl Iterator<Item = &GatedCall> {
        self.calls
            .iter()
            .filter(|c| c.decision == CallDecision::Pending)
    }

    pub fn agent_mut(&mut self, name: &str) -> Option<&mut AgentRun> {
        self.agents.iter_mut().find(|a| a.name == name)
    }

    pub fn succeeded(&self) -> usize {
        self.agents
            .iter()
            .filter(|a| a.status == AgentStatus::Succeeded)
            .count()
    }

    pub fn failed(&self) -> usize {
        self.agents
            .iter()
            .filter(|a| a.status == AgentStatus::Failed)
            .count()
    }
}

/// Something done to the run that is not a phase's own record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: String,
    pub action: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunState {
    pub version: u32,
    pub id: String,
    pub workflow: Workflow,
    /// The task the run was started with.
    pub input: String,
    pub created_at: String,
    pub updated_at: String,
    pub status: RunStatus,
    /// The index of the next phase to run; `phases.len()` when done.
    pub cursor: usize,
    pub phases: Vec<PhaseRun>,
    pub history: Vec<HistoryEntry>,
    /// Records of phase runs that a retry or a rollback replaced, oldest
    /// first, so that nothing a phase produced is forgotten.
    pub archive: Vec<PhaseRun>,
    /// Where the agents work when it is not the run's own directory: the
    /// git worktree that the git workflow made for the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<PathBuf>,
}

impl RunState {
    pub fn new(id: String, workflow: Workflow, input: String) -> Self {
        let now = clock::now_rfc3339();
        let phases = workflow
            .phases
            .iter()
            .map(|p| PhaseRun::pending(&p.name, &p.agents))
            .collect();
        RunState {
            version: STATE_VERSION,
            id,
            workflow,
            input,
            created_at: now.clone(),
            updated_at: now,
            status: RunStatus::Ready,
            cursor: 0,
            phases,
            history: Vec::new(),
            archive: Vec::new(),
            workspace: None,
        }
    }

    pub fn phase_index(&self, name: &str) -> Result<usize, OrchestratorError> {
        self.workflow
            .phase_index(name)
            .ok_or_else(|| OrchestratorError::UnknownPhase {
                run: self.id.clone(),
                phase: name.to_string(),
                known: self
                    .workflow
                    .phases
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn note(&mut self, action: &str, detail: impl Into<String>) {
        self.history.push(HistoryEntry {
            at: clock::now_rfc3339(),
            action: action.to_string(),
            detail: detail.into(),
        });
    }

    /// Put phase `index`'s record in the archive and start it afresh.
    pub fn reset_phase(&mut self, index: usize) {
        let spec = &self.workflow.phases[index];
        let fresh = PhaseRun::pending(&spec.name, &spec.agents);
        let old = std::mem::replace(&mut self.phases[index], fresh);
        if old.status != PhaseStatus::Pending {
            self.archive.push(old);
        }
    }

    /// The phase left running by a process that died, if any.
    pub fn running_phase(&self) -> Option<usize> {
        self.phases
            .iter()
            .position(|p| p.status == PhaseStatus::Running)
    }
}

/// The runs of one project.
/// A name that stays one directory below the runs: letters, digits, `_`,
/// `-` and `.`, not starting with `.`.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[derive(Debug, Clone)]
pub struct RunStore {
    dir: PathBuf,
}

impl RunStore {
    pub fn new(state: &Path) -> Self {
        RunStore {
            dir: state.join("runs"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Where the run's agents work: its git worktree, or else its own
    /// `workspace` directory.
    pub fn workspace(&self, state: &RunState) -> PathBuf {
        state
            .workspace
            .clone()
            .unwrap_or_else(|| self.own_workspace(&state.id))
    }

    fn own_workspace(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("workspace")
    }

    fn state_file(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("state.json")
    }

    /// A fresh id that sorts in the order runs were started (to the
    /// millisecond): the UTC time and a random suffix.
    pub fn new_id(&self) -> String {
        let mut random = [0u8; 3];
        // Without randomness two runs in the same second could clash; the
        // create_dir below still refuses a clash, so a fixed suffix is safe.
        let _ = getrandom::fill(&mut random);
        format!(
            "{}-{}",
            clock::stamp_ms(clock::now_ms()),
            hex::encode(random)
        )
    }

    pub fn create(&self, state: &RunState) -> Result<(), OrchestratorError> {
        let dir = self.run_dir(&state.id);
        std::fs::create_dir_all(&self.dir).map_err(|source| OrchestratorError::Io {
            path: self.dir.clone(),
            source,
        })?;
        std::fs::create_dir(&dir).map_err(|source| OrchestratorError::Io {
            path: dir.clone(),
            source,
        })?;
        std::fs::create_dir_all(self.own_workspace(&state.id)).map_err(|source| {
            OrchestratorError::Io {
                path: dir.clone(),
                source,
            }
        })?;
        self.save(state)
    }

    pub fn save(&self, state: &RunState) -> Result<(), OrchestratorError> {
        let mut state = state.clone();
        state.updated_at = clock::now_rfc3339();
        let text = serde_json::to_vec_pretty(&state).expect("run state serialises");
        let file = self.state_file(&state.id);
        atomic::write(&file, &text).map_err(|source| OrchestratorError::Io { path: file, source })
    }

    pub fn load(&self, id: &str) -> Result<RunState, OrchestratorError> {
        let file = self.state_file(id);
        let bytes = std::fs::read(&file).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                OrchestratorError::UnknownRun(id.to_string())
            } else {
                OrchestratorError::Io {
                    path: file.clone(),
                    source,
                }
            }
        })?;
        let state: RunState =
            serde_json::from_slice(&bytes).map_err(|e| OrchestratorError::CorruptState {
                file: file.clone(),
                message: e.to_string(),
            })?;
        if state.version != STATE_VERSION {
            return Err(OrchestratorError::CorruptState {
                file,
                message: format!(
                    "state version {} is not supported (this paracle writes {STATE_VERSION})",
                    state.version
                ),
            });
        }
        Ok(state)
    }

    /// Run ids, oldest first.
    pub fn ids(&self) -> Result<Vec<String>, OrchestratorError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(OrchestratorError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("state.json").is_file())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The run `id`, or the newest when None. An id names a directory under
    /// `.paracle/runs/`, and may come from a plugin (the git workflow's
    /// branches name their runs): anything but a plain name is unknown.
    pub fn resolve(&self, id: Option<&str>) -> Result<String, OrchestratorError> {
        match id {
            Some(id) if !is_plain_id(id) => Err(OrchestratorError::UnknownRun(id.to_string())),
            Some(id) => Ok(id.to_string()),
            None => self.ids()?.pop().ok_or(OrchestratorError::NoRuns),
        }
    }

    /// Take the run's lock, or say who has it.
    pub fn lock(&self, id: &str) -> Result<RunLock, OrchestratorError> {
        let path = self.run_dir(id).join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| OrchestratorError::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(OrchestratorError::Busy(id.to_string())),
            Err(std::fs::TryLockError::Error(source)) => {
                Err(OrchestratorError::Io { path, source })
            }
        }
    }

    /// Whether some live process holds the run's lock.
    pub fn is_locked(&self, id: &str) -> bool {
        match self.lock(id) {
            Ok(_) => false,
            Err(OrchestratorError::Busy(_)) => true,
            Err(_) => false,
        }
    }
}

/// Held while a process advances a run; released on drop or death.
pub struct RunLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_would_leave_the_runs_directory_are_unknown_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::new(dir.path());
        for id in ["../worktrees/x", "/etc", "..", ".hidden", "a/b", "", "a\\b"] {
            assert!(
                matches!(
                    store.resolve(Some(id)),
                    Err(OrchestratorError::UnknownRun(_))
                ),
                "{id:?}"
            );
        }
        let id = store.new_id();
        assert_eq!(store.resolve(Some(&id)).unwrap(), id);
    }
}
