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
    let registry = Registry::open(paths, Arc::new(runtime))?;
    Ok(paracle_gitflow::with_repository(registry))
}
