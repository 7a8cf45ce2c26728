//! Why the orchestrator refused or failed. Every message says what to do.

use std::path::PathBuf;

use paracle_project::{RegistryError, SettingsError};

#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error("{}:{line}: {message}", .file.display())]
    Spec {
        file: PathBuf,
        line: usize,
        message: String,
    },

    #[error("no workflow `{name}`; {known}")]
    UnknownWorkflow { name: String, known: String },

    #[error("no run `{0}`; `paracle run list` shows the runs")]
    UnknownRun(String),

    #[error("no runs yet; start one with `paracle run start WORKFLOW`")]
    NoRuns,

    #[error("run `{run}` has no phase `{phase}` (its phases: {known})")]
    UnknownPhase {
        run: String,
        phase: String,
        known: String,
    },

    #[error("phase `{phase}` has no agent `{agent}` (its agents: {known})")]
    UnknownAgent {
        phase: String,
        agent: String,
        known: String,
    },

    #[error("run `{0}` is being advanced by another paracle process; wait for it to finish")]
    Busy(String),

    /// The run is not in a state where the command makes sense.
    #[error("run `{run}` is {status}: {hint}")]
    Refused {
        run: String,
        status: &'static str,
        hint: String,
    },

    /// The run works in a git worktree that is no longer one: its agents'
    /// files would land outside the execution's branch.
    #[error(
        "run `{run}` works in the git worktree {}, which is gone; restore it with `git worktree prune && git worktree add {} BRANCH` (`paracle git branches` names the run's branch), then try again; a run whose branch was cleaned up cannot go on, so start a new one",
        .path.display(),
        .path.display()
    )]
    WorktreeGone { run: String, path: PathBuf },

    #[error("`{}` is not a valid run state ({message}); it was not changed", .file.display())]
    CorruptState { file: PathBuf, message: String },

    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("quickstart: {0}")]
    Quickstart(String),

    #[error(transparent)]
    Registry(#[from] RegistryError),

    #[error(transparent)]
    Settings(#[from] SettingsError),
}
