//! Where a phase's agents run. The orchestrator hands an [`Executor`] the
//! phase's jobs and how many may run at once, and records each one as it
//! comes back; everything else (retries within a job aside: timeouts, gates,
//! bundles, metrics, the git workflow's commits) stays with the
//! orchestrator. [`LocalPool`] runs them as tasks of this process; an
//! executor that sends them to other machines implements the same trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use paracle_project::Registry;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::job::{Finished, Job};

/// Runs a phase's jobs.
pub trait Executor: Send + Sync {
    /// Get ready to run a phase's jobs, at most `workers` at once, with the
    /// plugins of `registry`.
    fn start<'a>(&'a self, workers: usize, registry: &'a Registry) -> Box<dyn Running + 'a>;

    /// Whether the person at hand for the run (a terminal's user) can be
    /// asked by the agents' plugins. Where they run elsewhere they cannot:
    /// tool calls that need approval wait at the phase's gate instead.
    fn reaches_person(&self) -> bool {
        true
    }
}

/// A phase's jobs on an [`Executor`]. Dropping it stops those still running.
pub trait Running: Send {
    /// Run `job` as soon as a worker is free: the orchestrator hands each
    /// job over as soon as it is made, so the first agents run while the
    /// plugins of the next load.
    fn spawn(&mut self, job: Job);

    /// The next job to finish; None when every job has come back, or when
    /// the executor lost the rest.
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<Finished>> + Send + '_>>;
}

/// Runs jobs as tasks of this process, under a semaphore of `workers`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalPool;

impl Executor for LocalPool {
    fn start<'a>(&'a self, workers: usize, _registry: &'a Registry) -> Box<dyn Running + 'a> {
        Box::new(LocalTasks {
            permits: Arc::new(Semaphore::new(workers.max(1))),
            tasks: JoinSet::new(),
        })
    }
}

struct LocalTasks {
    permits: Arc<Semaphore>,
    tasks: JoinSet<Finished>,
}

impl Running for LocalTasks {
    fn spawn(&mut self, job: Job) {
        let permits = self.permits.clone();
        // The person at hand for the run (a terminal's user) is asked by
        // its agents' plugins too, from their own tasks.
        let person = paracle_runtime::person_at_hand();
        self.tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            match person {
                Some(person) => paracle_runtime::with_person(person, job.run()).await,
                None => job.run().await,
            }
        });
    }

    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<Finished>> + Send + '_>> {
        Box::pin(async move {
            while let Some(joined) = self.tasks.join_next().await {
                match joined {
                    Ok(finished) => return Some(finished),
                    // A panic in the host's own task: the agent is unknown;
                    // the orchestrator fails every agent it still has running.
                    Err(error) => tracing::error!("an agent task failed: {error}"),
                }
            }
            None
        })
    }
}
