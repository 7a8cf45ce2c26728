//! Opening the project: where the command line composes the layers (the
//! engine, the project's registry, and the repository a `git` grant
//! reaches).

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use paracle_project::{Paths, Registry};
use paracle_runtime::Runtime;

use super::compiling::CompileProgress;

/// The project at `project`, its registry open on a fresh engine.
pub(super) fn open(project: &Path) -> Result<Registry> {
    let paths = Paths::for_project(project);
    let mut runtime = Runtime::new(Some(paths.cache.clone()))?;
    runtime.observe_compiles(CompileProgress::on_stderr());
    reopen(project, Arc::new(runtime))
}

/// The project at `project` opened again on an engine already running: its
/// plugins' deadlines go on being enforced by that engine's ticker, however
/// long the ones loaded before stay in use.
pub(super) fn reopen(project: &Path, runtime: Arc<Runtime>) -> Result<Registry> {
    let registry = Registry::open(Paths::for_project(project), runtime)?;
    Ok(paracle_gitflow::with_repository(registry))
}
