//! Workflows of agents. A run goes through its workflow's phases one
//! `next` at a time; each phase runs its agents through their adapter
//! plugins, on an [`Executor`] ([`LocalPool`] by default), records every
//! outcome in the run's state, checks and bundles the phase's artifacts,
//! and stops at approval gates.
//!
//! - [`spec`]: agents and workflows as written in `.paracle/`;
//! - [`run`]: a run's state on disk and its lock;
//! - `execute`: one phase, its agents as [`Job`]s handed to the executor;
//! - `events`: execution events for observer plugins and progress;
//! - `bundle`: artifact validation and zip bundles;
//! - `report`: review requests, decisions, rollback advisories, metrics;
//! - [`quickstart`]: ready-made projects.

mod bundle;
mod clock;
mod error;
mod events;
mod execute;
mod executor;
mod gate;
pub mod hygiene;
mod job;
mod orchestrator;
pub mod quickstart;
mod report;
pub mod run;
pub mod spec;
pub mod trace;

pub use clock::now_ms;
pub use error::OrchestratorError;
pub use events::{llm_call_data, tool_call_data, Listener};
pub use execute::RunOptions;
pub use executor::{Executor, LocalPool, Running};
pub use gate::RunGate;
pub use job::{
    classify, run_attempt, Attempt, Attempted, Attempts, CallEventKind, Finished, Job, Reaches,
};
pub use orchestrator::{ListedRun, Orchestrator, RunView, WorkflowSummary};
pub use report::{human_ms, metrics_json};
